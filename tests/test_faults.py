"""The fault suite: kills at every durable write point of a run, resumed, compared with a run that was
never interrupted: nothing lost, nothing duplicated, no sample paid twice, every round's metrics kept."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import plugin_majority
import pytest
from fault_points import run_forked
from helpers import loop_config, read_lines, write_config
from rich.console import Console

from distilforge.engine.build import Engine
from distilforge.engine.cli import main as cli_main
from distilforge.engine.errors import StoreDamaged
from distilforge.engine.runner import start_run
from distilforge.engine.store.run_store import RunStore

CLI = str(Path(sys.executable).with_name("distilforge"))


def _quiet() -> Console:
    return Console(quiet=True)


@functools.cache
def _engine() -> Engine:
    """One engine for the module, loaded in the parent (with matplotlib, which the report imports), so
    each forked child starts warm: a child then costs about a second, not ten."""
    import matplotlib.pyplot  # noqa: F401

    return Engine.load(extra_plugins=[plugin_majority])


def _outcome(tmp: Path, name: str) -> dict[str, Any]:
    run = tmp / "runs" / name
    return {
        "records": (run / "records.jsonl").read_bytes(),
        "rejects": (run / "rejects.jsonl").read_bytes(),
        "metrics": sorted(p.parent.name for p in (run / "rounds").glob("*/metrics.json")),
    }


def _kill_and_resume(tmp: Path, config: dict[str, Any], kill_at: int) -> tuple[str, list[tuple[str, int]]]:
    engine = _engine()
    path = write_config(tmp / f"{config['name']}.yaml", config)
    status, _ = run_forked(lambda: start_run(engine, path, console=_quiet()), kill_at=kill_at)
    delivered = [(c["request_id"], c["sample_index"]) for c in read_lines(tmp / f"{config['name']}-calls.jsonl")]
    # the user's remedy for any kill: the same command again (it resumes a run that has a manifest)
    resumed, _ = run_forked(lambda: start_run(engine, path, console=_quiet()))
    assert resumed == "ok", f"resume after a kill at write {kill_at} failed"
    return status, delivered


def _reference(tmp: Path, **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    engine = _engine()
    path = write_config(tmp / "ref.yaml", loop_config(tmp, name="ref", **overrides))
    status, writes = run_forked(lambda: start_run(engine, path, console=_quiet()))
    assert status == "ok"
    return _outcome(tmp, "ref"), writes


@pytest.mark.slow
@pytest.mark.parametrize("method", [{"type": "llm2llm", "rounds": 2, "k": 3}])
def test_a_kill_before_every_durable_write_resumes_to_the_uninterrupted_run(tmp_path: Path, method: Any) -> None:
    reference, writes = _reference(tmp_path, method=method)
    assert len(writes) > 20 and "RunStore.save_manifest" in writes, writes
    print(f"{len(writes)} write points")
    assert len(reference["metrics"]) == 3
    for kill_at in range(1, len(writes) + 1):
        name = f"k{kill_at}"
        status, before = _kill_and_resume(tmp_path, loop_config(tmp_path, name=name, method=method), kill_at)
        assert status == "killed", f"write {kill_at} ({writes[kill_at - 1]}) was never reached"
        got = _outcome(tmp_path, name)
        where = f"kill before write {kill_at} ({writes[kill_at - 1]})"
        assert got["records"] == reference["records"], f"{where}: records differ"
        assert got["rejects"] == reference["rejects"], f"{where}: rejects differ"
        assert got["metrics"] == reference["metrics"], f"{where}: rounds without metrics.json"
        calls = [(c["request_id"], c["sample_index"]) for c in read_lines(tmp_path / f"{name}-calls.jsonl")]
        assert len(calls) == len(set(calls)), f"{where}: a sample was paid twice"
        assert set(before) <= set(calls)


# --------------------------------------------------------------------------- damaged run directories


def _finished_run(tmp: Path, name: str = "done") -> Path:
    config = loop_config(tmp, name=name, method={"type": "llm2llm", "rounds": 2, "k": 3})
    path = write_config(tmp / f"{name}.yaml", config)
    status, _ = run_forked(lambda: start_run(_engine(), path, console=_quiet()), kill_at=None)
    assert status == "ok"
    manifest = json.loads((tmp / "runs" / name / "manifest.json").read_text())
    manifest["status"] = "running"  # as if killed at the very end: a resume opens and checks the files
    (tmp / "runs" / name / "manifest.json").write_text(json.dumps(manifest))
    return tmp / "runs" / name


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and console output of the real CLI (a subprocess), rich's wrapping undone; no traceback."""
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=env)
    output = " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in output, output
    return done.returncode, output


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The same through the CLI's entry point in this process (seconds faster than a subprocess)."""
    code = cli_main(list(args))
    captured = capsys.readouterr()
    output = " ".join((captured.out + captured.err).split())
    assert "Traceback" not in output, output
    return code, output


@pytest.mark.parametrize(
    "damage",
    ["cut the last line", "delete a middle line", "edit a byte", "empty the file", "remove the file"],
)
def test_a_damaged_committed_records_file_is_refused_with_a_message(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _finished_run(tmp_path)
    records = run / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3
    if damage == "cut the last line":
        records.write_bytes(b"".join(lines)[:-7])
    elif damage == "delete a middle line":
        records.write_bytes(b"".join(lines[:2] + lines[3:]))
    elif damage == "edit a byte":
        records.write_bytes(b"".join(lines).replace(b'"target":"positive"', b'"target":"negative"', 1))
    elif damage == "empty the file":
        records.write_bytes(b"")
    else:
        records.unlink()
    before = records.read_bytes() if records.exists() else None
    with pytest.raises(StoreDamaged, match=r"records\.jsonl no longer holds what was committed"):
        RunStore(run).open()
    assert (records.read_bytes() if records.exists() else None) == before, "the damaged file was changed"
    code, output = _main(capsys, "resume", str(run)) if damage != "cut the last line" else _cli("resume", str(run))
    assert code == 2 and "no longer holds what was committed" in output and "nothing is paid twice" in output


def test_lines_after_the_committed_part_are_cut_and_the_committed_part_kept(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    records = run / "records.jsonl"
    committed = records.read_bytes()
    with records.open("ab") as handle:
        handle.write(b'{"id": "uncommitted", "input": "x", "target": "positive"}\n{"torn": ')
    store = RunStore(run)
    store.open()
    store.close()
    assert records.read_bytes() == committed


def test_a_truncated_or_foreign_manifest_is_refused_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _finished_run(tmp_path)
    manifest = run / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    code, output = _main(capsys, "resume", str(run))
    assert code == 2 and "manifest.json is not valid JSON" in output
    manifest.write_text("[]")
    with pytest.raises(StoreDamaged, match="not a distilforge manifest"):
        RunStore(run).open()


def test_records_without_a_manifest_are_not_overwritten(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    records = (run / "records.jsonl").read_bytes()
    (run / "manifest.json").unlink()
    with pytest.raises(StoreDamaged, match=r"holds records\.jsonl and rejects\.jsonl but no manifest\.json"):
        start_run(_engine(), tmp_path / "done.yaml", console=_quiet())
    assert (run / "records.jsonl").read_bytes() == records
