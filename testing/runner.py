"""Run the round loop with a plugin under test registered, and read what the run left on disk."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from rich.console import Console

from distilforge.schemas import RoundMetrics, RunLayout
from distilforge.testing import components
from distilforge.testing.data import write_tiny_dataset


def base_config(workdir: Path, name: str = "plugin-test") -> dict[str, Any]:
    """An LLM2LLM config: scripted teacher, majority-label student, the tiny sentiment set, one round."""
    return {
        "name": name,
        "seed": 0,
        "output_dir": str(workdir / "runs"),
        "teacher_cache": str(workdir / f"{name}-cache.sqlite"),
        "method": {"type": "llm2llm", "rounds": 1, "k": 2},
        "teacher": {"type": "scripted"},
        "student": {"type": "majority-label"},
        "dataset": write_tiny_dataset(workdir / "data"),
    }


def _resolve(plugin: object) -> object:
    return importlib.import_module(plugin) if isinstance(plugin, str) else plugin


def build_engine(plugins: Iterable[object] = (), *, entrypoints: bool = False) -> Any:
    """An :class:`~distilforge.engine.build.Engine` with the built-ins, the test kit's components
    and ``plugins`` (modules, objects, or dotted module names). Installed third-party plugins
    load only with ``entrypoints=True``, so a test sees the same plugins on every machine."""
    from distilforge.engine.build import Engine
    from distilforge.engine.config import build_config_model
    from distilforge.engine.plugin_manager import build_plugin_manager
    from distilforge.engine.registry import collect_registry

    extra: list[object] = [components, *(_resolve(p) for p in plugins)]
    pm = build_plugin_manager(extra, load_entrypoints=entrypoints)
    registry = collect_registry(pm)
    return Engine(pm, registry, build_config_model(registry))


def _merge(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Dict values are merged into the default's section when its ``type`` stays the same."""
    out = dict(config)
    for key, value in overrides.items():
        current = out.get(key)
        if (
            isinstance(value, dict)
            and isinstance(current, dict)
            and value.get("type", current.get("type")) == current.get("type")
        ):
            out[key] = {**current, **value}
        else:
            out[key] = value
    return out


def run_round(
    *plugins: ModuleType | object | str,
    workdir: Path,
    rounds: int = 1,
    entrypoints: bool = False,
    quiet: bool = True,
    **overrides: Any,
) -> Path:
    """Run ``rounds`` rounds of a method with ``plugins`` registered; return the run directory.

    The defaults are :func:`base_config`'s; each keyword overrides one top-level config key
    (``filters=[{"type": "my-filter"}]``, ``teacher={"answers": [...]}``, ``method={...}``).
    ``rounds`` sets the default ``llm2llm`` method's rounds (a config of your own method sets its own).
    A dict for a key whose ``type`` does not change is merged into the default, so
    ``teacher={"answers": ["..."]}`` keeps ``type: scripted``. A plugin that raises surfaces as
    :class:`distilforge.engine.api.errors.PluginError` naming the plugin and the hook.
    """
    from distilforge.engine.runner import start_run

    workdir.mkdir(parents=True, exist_ok=True)
    config = _merge(base_config(workdir, str(overrides.pop("name", "plugin-test"))), overrides)
    method_override = overrides.get("method")
    explicit = isinstance(method_override, dict) and "rounds" in method_override
    if config["method"].get("type") == "llm2llm" and not explicit:
        config["method"] = {**config["method"], "rounds": rounds}
    path = workdir / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    engine = build_engine(plugins, entrypoints=entrypoints)
    start_run(engine, path, console=Console(quiet=True) if quiet else None)
    return Path(config["output_dir"]) / config["name"]


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The accepted records (``records.jsonl``), seeds first."""
    return _lines(RunLayout(run_dir).records)


def read_rejects(run_dir: Path) -> list[dict[str, Any]]:
    """Everything that did not become a record, with ``rejected_by`` and ``reason``."""
    return _lines(RunLayout(run_dir).rejects)


def read_metrics(run_dir: Path, round_index: int) -> RoundMetrics:
    """A round's metrics (``RunLayout.metrics``) as :class:`~distilforge.schemas.RoundMetrics`: sizes,
    accuracies, failures, accepted and rejected counts as fields; the sampling counts (``samples_new``...) and
    anything a method added as extra attributes (``metrics.samples_new``, ``metrics.model_extra``)."""
    return RoundMetrics.model_validate_json(RunLayout(run_dir).metrics(round_index).read_text(encoding="utf-8"))


def read_requests(run_dir: Path, round_index: int) -> list[dict[str, Any]]:
    """The teacher requests the method built in round ``round_index``."""
    data: list[dict[str, Any]] = json.loads(RunLayout(run_dir).round_file(round_index, "requests.json").read_text())
    return data
