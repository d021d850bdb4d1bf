"""Plugin discovery, the allow-list, error attribution and hook validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plugin_majority
import pytest
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api.errors import PluginError
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.engine.build import Engine
from distilforge.engine.plugin_manager import DEFAULT_PLUGINS, build_plugin_manager
from distilforge.engine.runner import start_run

CLI = [sys.executable, "-m", "distilforge.engine.cli"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=120)


def plugin_rows(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    out = cli("plugins", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_example_plugin_is_discovered_from_its_entry_point() -> None:
    rows = plugin_rows()
    assert "wordcount" in rows, "pip install ./examples/plugin_wordcount (make setup does) before the tests"
    row = rows["wordcount"]
    assert row["origin"] == "entry point (distilforge-wordcount)"
    assert row["version"] == "0.1.0"
    assert row["hooks"] == ["register_filters", "score_ood"]
    assert row["components"] == ["filter:word-count"]
    for name in DEFAULT_PLUGINS:
        assert rows[name]["origin"] == "built-in"


def test_allow_list_switches_external_plugins_off() -> None:
    assert "wordcount" not in plugin_rows({"DISTILFORGE_PLUGINS": ""})
    assert "wordcount" in plugin_rows({"DISTILFORGE_PLUGINS": "wordcount"})
    assert "wordcount" not in plugin_rows({"DISTILFORGE_PLUGINS": "something-else"})
    schema = cli("schema", env={"DISTILFORGE_PLUGINS": ""})
    assert '"word-count"' not in schema.stdout
    assert '"word-count"' in cli("schema").stdout


def test_example_plugin_runs_in_a_round(tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, method={"rounds": 1})
    cfg["filters"] = [{"type": "word-count", "min_words": 1, "max_words": 6}]
    start_run(Engine.load(extra_plugins=[plugin_majority]), write_config(tmp_path / "c.yaml", cfg))
    run = tmp_path / "runs/run"
    rejects = [r for r in read_lines(run / "rejects.jsonl") if r["rejected_by"] == "word-count"]
    assert rejects and all("words, outside [1, 6]" in r["reason"] for r in rejects)
    synthetic = [r for r in read_lines(run / "records.jsonl") if r["origin"] == "synthetic"]
    assert synthetic and all(r["scores"]["words"] <= 6 for r in synthetic)


class Boom:
    @hookimpl
    def filter_records(self, records: Sequence[Any], ctx: Any) -> None:
        raise RuntimeError("kaboom")


def test_a_plugin_that_raises_is_named_with_its_hook(tmp_path: Path) -> None:
    engine = Engine.load(extra_plugins=[plugin_majority, Boom()])
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path, method={"rounds": 1}))
    with pytest.raises(PluginError) as err:
        start_run(engine, cfg)
    assert err.value.hook == "filter_records"
    assert err.value.plugin == "Boom"
    assert "raised in hook 'filter_records': RuntimeError: kaboom" in str(err.value)


class Misspelled:
    @hookimpl
    def filter_recordz(self, records: Sequence[Any], ctx: Any) -> None:
        return None


def test_check_pending_rejects_unknown_hooks() -> None:
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError, match="filter_recordz"):
        build_plugin_manager([Misspelled()])


def test_hook_tracing_logs_calls(tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, method={"rounds": 1}, student={"type": "tfidf-logreg"})
    out = cli("run", str(write_config(tmp_path / "c.yaml", cfg)), env={"DISTILFORGE_TRACE_HOOKS": "1"})
    assert out.returncode == 0, out.stderr
    assert "[hook] train_student(" in out.stderr and "[hook] evaluate_student ok in" in out.stderr


def test_a_plugin_on_the_old_import_paths_loads_with_a_deprecation_warning(tmp_path: Path) -> None:
    sys.modules.pop("plugin_old_paths", None)
    for old in ("hookspecs", "components", "context"):
        sys.modules.pop(f"distilforge.engine.{old}", None)
    with pytest.warns(DeprecationWarning, match=r"distilforge\.engine\.(hookspecs|components|context) is deprecated"):
        import plugin_old_paths
    from distilforge.engine import api

    assert plugin_old_paths.hookimpl is api.hookimpl and plugin_old_paths.Filter is api.Filter
    cfg = loop_config(tmp_path, method={"rounds": 1})
    cfg["filters"] = [{"type": "old-short-text", "max_chars": 30}]
    start_run(Engine.load(extra_plugins=[plugin_majority, plugin_old_paths]), write_config(tmp_path / "c.yaml", cfg))
    rejects = [r for r in read_lines(tmp_path / "runs/run/rejects.jsonl") if r["rejected_by"] == "old-short-text"]
    kept = [r for r in read_lines(tmp_path / "runs/run/records.jsonl") if r["origin"] == "synthetic"]
    assert rejects and all(len(r["record"]["input"]) > 30 for r in rejects)
    assert all(len(r["input"]) <= 30 for r in kept)
