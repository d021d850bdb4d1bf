"""The round loop with the fake teacher: selection, provenance, rejects, cache, resume."""

from __future__ import annotations

from pathlib import Path

import plugin_majority
import pytest
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api.errors import ResumeRefused
from distilforge.engine.build import Engine
from distilforge.engine.runner import resume_run, start_run


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(extra_plugins=[plugin_majority])


def test_llm2llm_loop_records_provenance_and_rejects(engine: Engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path))
    metrics = start_run(engine, cfg)
    run = tmp_path / "runs" / "run"
    records = read_lines(run / "records.jsonl")
    rejects = read_lines(run / "rejects.jsonl")
    seeds = {r["id"]: r for r in records if r["origin"] == "seed"}
    synthetic = [r for r in records if r["origin"] == "synthetic"]
    assert len(seeds) == 12 and synthetic
    # every synthetic record descends from a seed and says where it came from
    for r in synthetic:
        assert r["parent_id"] in seeds
        assert r["target"] == seeds[r["parent_id"]]["target"]
        assert r["provenance"]["teacher"] == "fake:fake-teacher"
        assert len(r["provenance"]["prompt_hash"]) == 16
    # the majority student gets all positive seeds wrong in round 0: failures are seed-only
    failures0 = (run / "rounds/0/failures.json").read_text()
    assert all(seeds[i]["target"] == "positive" for i in __import__("json").loads(failures0))
    assert metrics[0]["failures_by_origin"] == {"seed": 6}
    # the answer "no" is too short: it is a parse reject with its reason, not a lost sample
    parse_rejects = [x for x in rejects if x["stage"] == "parse"]
    assert parse_rejects and all(x["reason"].startswith("too short") for x in parse_rejects)
    assert all(x["rejected_by"] == "llm2llm" for x in parse_rejects)
    samples = sum(m.get("samples_requested", 0) for m in metrics)
    dup = [x for x in rejects if x["rejected_by"] == "engine:duplicate-id"]
    assert samples == len(synthetic) + len(parse_rejects) + len(dup)
    assert (run / "report.md").exists() and (run / "accuracy.png").stat().st_size > 1000


def test_rerun_of_same_config_pays_nothing(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    start_run(engine, write_config(tmp_path / "a.yaml", cfg))
    calls = len(read_lines(tmp_path / "run-calls.jsonl"))
    assert calls > 0
    cfg["name"] = "again"  # a new run directory, the same cache
    cfg["teacher"]["call_log"] = str(tmp_path / "run-calls.jsonl")
    metrics = start_run(engine, write_config(tmp_path / "b.yaml", cfg))
    assert len(read_lines(tmp_path / "run-calls.jsonl")) == calls
    assert sum(m.get("samples_new", 0) for m in metrics) == 0
    assert sum(m.get("samples_cached", 0) for m in metrics) > 0
    first = read_lines(tmp_path / "runs/run/records.jsonl")
    second = read_lines(tmp_path / "runs/again/records.jsonl")
    assert first == second


def test_changed_config_refused_with_diff_unless_forced(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, method={"rounds": 1})
    start_run(engine, write_config(tmp_path / "a.yaml", cfg))
    cfg["method"]["k"] = 5
    cfg["seed"] = 3
    changed = write_config(tmp_path / "b.yaml", cfg)
    with pytest.raises(ResumeRefused) as err:
        resume_run(engine, tmp_path / "runs/run", config_path=changed)
    assert "method.k: 3 -> 5" in str(err.value) and "seed: 0 -> 3" in str(err.value)
    with pytest.raises(ResumeRefused):
        start_run(engine, changed)
    resume_run(engine, tmp_path / "runs/run", config_path=changed, force=True)


def test_second_writer_is_locked_out(engine: Engine, tmp_path: Path) -> None:
    from distilforge.engine.api.errors import RunLockedError
    from distilforge.engine.store import RunLock

    cfg = write_config(tmp_path / "a.yaml", loop_config(tmp_path, method={"rounds": 1}))
    start_run(engine, cfg)
    with RunLock(tmp_path / "runs/run/.lock"), pytest.raises(RunLockedError, match="in use by another"):
        resume_run(engine, tmp_path / "runs/run")
