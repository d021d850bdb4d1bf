"""The plugin-author kit: hookspec stability, `plugins --check`, the scaffold, distilforge.testing,
the documented examples, and the third-party MinHash example plugin end to end."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api import hookspecs
from distilforge.engine.api.errors import DistilforgeError, PluginError
from distilforge.engine.plugin_check import check_plugins, hookspec_signatures
from distilforge.engine.scaffold import new_plugin
from distilforge.testing import read_metrics, read_records, read_rejects, read_requests, run_round

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
CLI = [sys.executable, "-m", "distilforge.engine.cli"]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300, cwd=cwd
    )


@contextmanager
def plugin_module(name: str, source: str) -> Iterator[types.ModuleType]:
    """A real module made from ``source`` (pydantic resolves annotations through sys.modules)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[name]


def fake_distribution(site: Path, dist: str, entry_point: str, module: str, source: str) -> dict[str, str]:
    """Install a plugin the way pip would, but only for subprocesses given the returned env."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[distilforge]\n{entry_point} = {module}\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


# --------------------------------------------------------------------------- hookspec stability


def _render(sig: dict[str, Any]) -> str:
    kind = "firstresult" if sig["firstresult"] else "collect"
    return f"{kind}{' historic' if sig['historic'] else ''} ({', '.join(sig['args'])}) -> {sig['returns']}"


# One entry per released HOOKSPEC_VERSION. Changing a hookspec means a new version and a new
# entry here (never editing a released one): plugins rely on these signatures.
PINNED: dict[str, dict[str, str]] = {
    "1.0": {
        "build_prompts": "firstresult (failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest] | None",
        "evaluate_student": "collect (student: Student, records: Sequence[Record], split: str, ctx: RunContext)"
        " -> Evaluation | None",
        "filter_records": "collect (records: Sequence[Record], ctx: RunContext) -> list[Verdict] | None",
        "parse_completion": "firstresult (completion: Completion, request: TeacherRequest, ctx: RunContext)"
        " -> list[Record] | str | None",
        "register_datasets": "collect (register: Register) -> None",
        "register_filters": "collect (register: Register) -> None",
        "register_methods": "collect (register: Register) -> None",
        "register_scorers": "collect (register: Register) -> None",
        "register_students": "collect (register: Register) -> None",
        "register_teachers": "collect (register: Register) -> None",
        "score_ood": "collect (records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]] | None",
        "select_failures": "firstresult (records: Sequence[Record], evaluation: Evaluation, ctx: RunContext)"
        " -> list[Record] | None",
        "teacher_sample": "firstresult (requests: Sequence[TeacherRequest], ctx: RunContext)"
        " -> Iterable[Completion] | None",
        "train_student": "firstresult (student: Student, records: Sequence[Record], ctx: RunContext)"
        " -> dict[str, float] | None",
    },
}
# 2.0: teacher_sample gets a TeacherContext; register_commands is new
PINNED["2.0"] = {
    **PINNED["1.0"],
    "register_commands": "collect (subparsers: CommandParsers) -> None",
    "teacher_sample": "firstresult (requests: Sequence[TeacherRequest], ctx: TeacherContext)"
    " -> Iterable[Completion] | None",
}


def current_signatures() -> dict[str, str]:
    return {name: _render(sig) for name, sig in hookspec_signatures().items()}


def test_hookspec_signatures_match_the_pin_of_their_version() -> None:
    version = hookspecs.HOOKSPEC_VERSION
    assert version in PINNED, f"HOOKSPEC_VERSION {version} has no pinned signatures in {__file__}"
    assert current_signatures() == PINNED[version], (
        "a hookspec changed: bump HOOKSPEC_VERSION (major if it can break a plugin) and pin the new"
        " signatures under the new version"
    )


def test_a_changed_signature_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    @hookspecs.hookspec
    def filter_records(candidates: Any, ctx: Any) -> Any:
        """A renamed argument."""

    monkeypatch.setattr(hookspecs, "filter_records", filter_records)
    changed = current_signatures()
    assert changed != PINNED[hookspecs.HOOKSPEC_VERSION]
    assert changed["filter_records"].startswith("collect (candidates: Any, ctx: Any)")


# --------------------------------------------------------------------------- plugins --check

BAD_PLUGIN = """
from typing import Literal

from pydantic import ConfigDict

from distilforge.engine.api.components import Filter
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.schemas import ComponentConfig

DISTILFORGE_HOOKSPEC_VERSION = "0.9"


class LooseConfig(ComponentConfig):
    model_config = ConfigDict(extra="allow")
    type: Literal["loose"] = "loose"


class UntypedConfig(ComponentConfig):
    type: str = "untyped"


class CopyConfig(ComponentConfig):
    type: Literal["exact-dedup"] = "exact-dedup"


@hookimpl
def filter_recordz(records, ctx):
    return None


@hookimpl
def score_ood(recs, ctx):
    return None


@hookimpl
def register_filters(register):
    register(LooseConfig, Filter)
    register(UntypedConfig, Filter)
    register(dict, Filter)
    register(CopyConfig, Filter)


@hookimpl
def register_scorers(register):
    raise RuntimeError("scorer registry exploded")
"""


@pytest.mark.slow
def test_check_reports_each_mismatch_by_plugin_and_hook(tmp_path: Path) -> None:
    env = fake_distribution(tmp_path / "site", "distilforge-bad", "bad", "bad_plugin", BAD_PLUGIN)
    out = cli("plugins", "--check", "--json", env=env)
    assert out.returncode == 1, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["bad"]["origin"] == "entry point (distilforge-bad)" and not rows["bad"]["ok"]
    problems = {(p["hook"], p["message"]) for p in rows["bad"]["problems"]}
    expected = {
        ("-", "written for hookspec version 0.9, this distilforge has 2.0"),
        ("filter_recordz", "not a distilforge hook; did you mean 'filter_records'?"),
        ("score_ood", "argument 'recs' is not in the spec; the hook passes: records, ctx"),
        ("register_filters", "LooseConfig accepts unknown keys; keep ComponentConfig's extra='forbid'"),
        ("register_filters", "UntypedConfig.type must be a Literal of one name, e.g. Literal['my-filter']"),
        ("register_filters", "dict is not a ComponentConfig subclass"),
        ("register_scorers", "raised RuntimeError: scorer registry exploded"),
    }
    assert expected <= problems
    assert any(h == "register_filters" and "'exact-dedup' is already registered by" in m for h, m in problems)
    assert len(problems) == len(expected) + 1
    # everything else is fine, and the human-readable form names the plugin and the hooks too
    assert all(row["ok"] for name, row in rows.items() if name != "bad")
    text = cli("plugins", "--check", env=env)
    assert text.returncode == 1
    assert "FAIL bad" in text.stdout and "hook 'filter_recordz'" in text.stdout and "1 with problems" in text.stdout


def test_check_passes_on_the_installed_plugins() -> None:
    out = cli("plugins", "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all ok" in out.stdout
    names = {r.name for r in check_plugins()}
    assert {"minhash", "wordcount", "distilforge.engine.dispatch"} <= names


def test_check_in_process_flags_an_argument_the_spec_lacks() -> None:
    class Sloppy:
        @hookspecs.hookimpl
        def train_student(self, student: Any, records: Any, context: Any) -> None:
            return None

    report = check_plugins([Sloppy()], entrypoints=False)[-1]
    assert report.name == "Sloppy" and [(p.hook, p.message.split(";")[0]) for p in report.problems] == [
        ("train_student", "argument 'context' is not in the spec")
    ]


# --------------------------------------------------------------------------- a plugin that raises

EXPLODING = """
from typing import Literal

from distilforge.engine.api.components import Filter
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.schemas import ComponentConfig


class ExplodingConfig(ComponentConfig):
    type: Literal["exploding"] = "exploding"


class Exploding(Filter[ExplodingConfig]):
    def reject(self, records, ctx):
        raise RuntimeError("boom in reject")


@hookimpl
def register_filters(register):
    register(ExplodingConfig, Exploding)
"""


def test_a_component_that_raises_is_named_with_its_plugin_and_hook(tmp_path: Path) -> None:
    with plugin_module("exploding_plugin", EXPLODING) as module, pytest.raises(PluginError) as err:
        run_round(module, workdir=tmp_path, filters=[{"type": "exploding"}])
    # not "distilforge.engine.dispatch", which only delegated to the component
    assert (err.value.plugin, err.value.hook) == ("exploding_plugin", "filter_records")
    assert str(err.value) == "plugin 'exploding_plugin' raised in hook 'filter_records': RuntimeError: boom in reject"
    manifest = json.loads((tmp_path / "runs/plugin-test/manifest.json").read_text())
    assert manifest["status"] == "failed" and "boom in reject" in manifest["error"]


@pytest.mark.slow
def test_an_installed_plugin_that_raises_is_reported_by_the_cli(tmp_path: Path) -> None:
    env = fake_distribution(tmp_path / "site", "distilforge-exploding", "exploding", "exploding_plugin", EXPLODING)
    cfg = loop_config(tmp_path, method={"rounds": 1, "min_confidence": 0.999}, student={"type": "tfidf-logreg"})
    cfg["filters"] = [{"type": "exploding"}]
    out = cli("run", str(write_config(tmp_path / "c.yaml", cfg)), env=env)
    assert out.returncode == 2
    assert "plugin 'exploding' raised in hook 'filter_records': RuntimeError: boom in reject" in out.stderr


# --------------------------------------------------------------------------- distilforge.testing


def test_the_kit_is_a_pytest_plugin_loaded_from_its_entry_point(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("distilforge")
    assert plugin is not None and plugin.__name__ == "distilforge.testing.pytest_plugin"
    # resolvable by name from a test module that imports nothing of the kit
    assert request.getfixturevalue("scripted_teacher")("x") == {"type": "scripted", "answers": ["x"]}


# LLM2LLM shows two other seeds of the failure's label as its demonstration by default; a fixed one
# keeps each prompt's seed text to the failure itself, so prompt-substring rules hit one seed only.
FIXED_DEMO = {
    "input": "The soup was cold and the waiter ignored us.",
    "target": "negative",
    "new_input": "Our pasta arrived lukewarm and nobody came back.",
}


def test_scripted_teacher_follows_its_script(
    distilforge_run: Callable[..., Path], scripted_teacher: Callable[..., dict[str, Any]]
) -> None:
    teacher = scripted_teacher(
        "Plain answer number {n}, sample {i}.",
        rules={"loved every minute": "Rule answer about love, number {n}."},
        errors=["superb direction"],
    )
    run_dir = distilforge_run(teacher=teacher, method={"demonstration": FIXED_DEMO})
    synthetic = [r["input"] for r in read_records(run_dir) if r["origin"] == "synthetic"]
    # 6 wrong positive seeds x k=2 = 12 samples: one seed's two fail, another's two follow the rule
    assert len(synthetic) == 10
    assert sum(s.startswith("Rule answer about love") for s in synthetic) == 2
    assert sum(s.startswith("Plain answer number") for s in synthetic) == 8
    errors = [r for r in read_rejects(run_dir) if r["stage"] == "sample"]
    assert len(errors) == 2 and all("prompt contains 'superb direction'" in r["reason"] for r in errors)
    metrics = read_metrics(run_dir, 0)
    assert (metrics.failures, metrics.requests, metrics.accepted) == (6, 6, 10)
    assert len(read_requests(run_dir, 0)) == 6
    assert read_metrics(run_dir, 1).train_size == 12 + 10


def test_tiny_dataset_fixture_is_a_file_dataset_config(tiny_dataset: dict[str, Any]) -> None:
    assert tiny_dataset["type"] == "file" and tiny_dataset["labels"] == ["negative", "positive"]
    assert len(read_lines(Path(tiny_dataset["train"]))) == 12 and len(read_lines(Path(tiny_dataset["test"]))) == 20


# --------------------------------------------------------------------------- the documented examples


def doc_examples() -> dict[str, str]:
    blocks = re.findall(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return dict(blocks)


def doc_teacher_answer(prompt: str, sample_index: int) -> str:
    """Used by the documented python-function teacher."""
    if "loved every minute" in prompt:
        raise ValueError("this generator does not do love")
    return f"An invented review, {hashlib.sha256(prompt.encode()).hexdigest()[:6]} take {sample_index}."


def test_every_component_kind_has_a_documented_example() -> None:
    assert set(doc_examples()) == {"teacher", "selector", "scorer", "filter", "student", "method"}


def _run_doc_example(name: str, tmp_path: Path, **config: Any) -> Path:
    with plugin_module(f"doc_example_{name}", doc_examples()[name]) as module:
        return run_round(module, workdir=tmp_path, **config)


def test_doc_teacher(tmp_path: Path) -> None:
    run_dir = _run_doc_example(
        "teacher",
        tmp_path,
        teacher={"type": "python-function", "function": "test_plugin_kit:doc_teacher_answer"},
        method={"demonstration": FIXED_DEMO},
    )
    synthetic = [r for r in read_records(run_dir) if r["origin"] == "synthetic"]
    assert len(synthetic) == 10  # 6 failures x 2 samples, one failure's generator raised
    assert {r["provenance"]["teacher"] for r in synthetic} == {"python-function:test_plugin_kit:doc_teacher_answer"}
    errors = [r for r in read_rejects(run_dir) if r["stage"] == "sample"]
    assert len(errors) == 2 and all(r["reason"] == "ValueError: this generator does not do love" for r in errors)


def test_doc_selector(tmp_path: Path) -> None:
    run_dir = _run_doc_example("selector", tmp_path)
    failures = json.loads((run_dir / "rounds/0/failures.json").read_text())
    seeds = {r["id"]: r for r in read_records(run_dir) if r["origin"] == "seed"}
    wrong_by_id = sorted(i for i, r in seeds.items() if r["target"] == "positive")  # the student says negative
    assert failures == wrong_by_id[:4]  # the budget, wrong first, ties by id (LLM2LLM alone would take 6)


def test_doc_scorer(tmp_path: Path) -> None:
    run_dir = _run_doc_example("scorer", tmp_path, scorers=[{"type": "length-z"}])
    records = read_records(run_dir)
    lengths = np.array([len(r["input"].split()) for r in records if r["origin"] == "seed"], dtype=float)
    synthetic = [r for r in records if r["origin"] == "synthetic"]
    assert synthetic
    for r in synthetic:
        expected = (len(r["input"].split()) - lengths.mean()) / lengths.std()
        assert r["scores"]["length_z"] == pytest.approx(expected)


def test_doc_filter(tmp_path: Path) -> None:
    teacher = {"answers": ["A spoiler-heavy review, number {n}.", "A careful review, number {n}."]}
    run_dir = _run_doc_example(
        "filter", tmp_path, teacher=teacher, filters=[{"type": "blocklist", "words": ["Spoiler"]}]
    )
    rejects = [r for r in read_rejects(run_dir) if r["rejected_by"] == "blocklist"]
    assert len(rejects) == 6 and {r["reason"] for r in rejects} == {"blocked word 'Spoiler'"}
    assert not any("spoiler" in r["input"] for r in read_records(run_dir))


def test_doc_student(tmp_path: Path) -> None:
    teacher = {"answers": ["A wonderful, brilliant and charming film, number {n}."]}
    run_dir = _run_doc_example("student", tmp_path, teacher=teacher, student={"type": "centroid"})
    round0 = read_metrics(run_dir, 0)
    assert round0.train_metrics["accuracy"] == 1.0  # a centroid per label separates the 12 seeds
    assert round0.failures == 0  # so LLM2LLM has nothing to augment
    assert (run_dir / "rounds/1/student/centroids.npy").exists()
    assert json.loads((run_dir / "rounds/1/student/labels.json").read_text()) == ["negative", "positive"]


def test_doc_method(tmp_path: Path) -> None:
    teacher = {"answers": ["An altered wording of the review, take {n}.\nignored second line"]}
    run_dir = _run_doc_example("method", tmp_path, teacher=teacher, method={"type": "paraphrase", "rounds": 1, "k": 2})
    requests = read_requests(run_dir, 0)
    assert len(requests) == 6 and all(q["prompt"].startswith("Rewrite this text") for q in requests)
    assert all(q["sampling"]["n"] == 2 and q["sampling"]["stop"] == ["\n"] for q in requests)
    records = read_records(run_dir)
    seeds = {r["id"] for r in records if r["origin"] == "seed"}
    synthetic = [r for r in records if r["origin"] == "synthetic"]
    assert len(synthetic) == 12 and {r["target"] for r in synthetic} == {"positive"}
    assert all(r["parent_id"] in seeds and not r["input"].endswith("line") for r in synthetic)


# --------------------------------------------------------------------------- scaffold


def test_scaffold_writes_a_package_with_the_entry_point(tmp_path: Path) -> None:
    root = new_plugin("keyword-filter", tmp_path)
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "distilforge-keyword-filter"
    assert project["project"]["entry-points"]["distilforge"] == {"keyword-filter": "distilforge_keyword_filter"}
    source = (root / "distilforge_keyword_filter/__init__.py").read_text()
    assert 'type: Literal["keyword-filter"] = "keyword-filter"' in source and "def register_filters(" in source
    assert (root / "tests/test_keyword_filter.py").exists()
    with pytest.raises(DistilforgeError, match="not empty"):
        new_plugin("keyword-filter", tmp_path)
    with pytest.raises(DistilforgeError, match="lower-case letters"):
        new_plugin("Keyword_Filter", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "name"), [("filter", "shout-filter"), ("scorer", "long-words")])
def test_scaffolded_package_installs_and_passes_its_own_tests(tmp_path: Path, kind: str, name: str) -> None:
    made = cli("new-plugin", name, "--kind", kind, "--dir", str(tmp_path / "src"))
    assert made.returncode == 0, made.stderr
    root = Path(made.stdout.strip())
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    installed = subprocess.run([*pip, "--target", str(site), str(root)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {"PYTHONPATH": str(site)}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the package directory: import what pip installed
        env={**os.environ, **env},
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert re.search(r"\b3 passed\b", tests.stdout)
    rows = {row["name"]: row for row in json.loads(cli("plugins", "--check", "--json", env=env).stdout)}
    assert rows[name]["ok"] and rows[name]["origin"] == f"entry point (distilforge-{name})"
    assert f'"{name}"' in cli("schema", env=env).stdout


# --------------------------------------------------------------------------- the MinHash example plugin


def plugin_rows(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    out = cli("plugins", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_minhash_plugin_is_discovered_and_in_the_schema() -> None:
    row = plugin_rows().get("minhash")
    assert row is not None, "pip install ./examples/plugin_minhash (make setup does) before the tests"
    assert row["origin"] == "entry point (distilforge-minhash)" and row["version"] == "0.1.0"
    assert row["components"] == ["filter:minhash-dedup"] and row["hooks"] == ["register_filters"]
    schema = cli("schema")
    assert schema.returncode == 0 and '"minhash-dedup"' in schema.stdout


@pytest.mark.slow
def test_the_allow_list_switches_minhash_off() -> None:
    assert "minhash" not in plugin_rows({"DISTILFORGE_PLUGINS": ""})
    assert "minhash" not in plugin_rows({"DISTILFORGE_PLUGINS": "wordcount"})
    assert "minhash" in plugin_rows({"DISTILFORGE_PLUGINS": "wordcount,minhash"})
    assert '"minhash-dedup"' not in cli("schema", env={"DISTILFORGE_PLUGINS": "wordcount"}).stdout


def minhash_config(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = loop_config(
        tmp_path,
        method={"rounds": 1, "k": 2, "min_confidence": 0.999},  # every seed counts as a failure
        student={"type": "tfidf-logreg"},
        teacher={
            "type": "fake",
            "responses": ["A wonderful film that I would happily watch again and again with friends, {hash}"],
        },
    )
    cfg["filters"] = [{"type": "parse-validity"}, {"type": "minhash-dedup", "threshold": 0.6}]
    return write_config(tmp_path / "minhash.yaml", cfg)


@pytest.mark.slow
def test_minhash_plugin_runs_end_to_end_with_distilforge_run(tmp_path: Path) -> None:
    out = cli("run", str(minhash_config(tmp_path)))
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "runs/run"
    synthetic = [r for r in read_lines(run_dir / "records.jsonl") if r["origin"] == "synthetic"]
    rejects = [r for r in read_lines(run_dir / "rejects.jsonl") if r["rejected_by"] == "minhash-dedup"]
    metrics = json.loads((run_dir / "rounds/0/metrics.json").read_text())
    # the teacher writes the same sentence with 8 different hex characters: one survives
    assert len(synthetic) == 1 and len(rejects) == metrics["generated"] - 1 >= 10
    assert all(r["reason"].startswith(f"near-duplicate of {synthetic[0]['id']}") for r in rejects)
    # switched off by the allow-list, the same config names a filter that does not exist
    off = cli("run", str(minhash_config(tmp_path / "off")), env={"DISTILFORGE_PLUGINS": ""})
    assert off.returncode == 2 and "'minhash-dedup' is not an installed filter" in off.stderr


@pytest.mark.slow
def test_minhash_example_passes_its_own_tests(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "examples/plugin_minhash")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r"\b6 passed\b", out.stdout)
