"""The fault suite: kills at every durable write point of a run, resumed, compared with a run that was
never interrupted: nothing lost, nothing duplicated, no sample paid twice, every round's metrics kept."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import plugin_majority
import pytest
from fault_points import run_forked
from helpers import loop_config, read_lines, run_cli, write_config
from rich.console import Console

from distilforge.engine.api.errors import DistilforgeError, StoreDamaged
from distilforge.engine.build import Engine
from distilforge.engine.runner import start_run
from distilforge.engine.store.cache import CacheDamaged, TeacherCache
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
    code, output = run_cli(capsys, "resume", str(run)) if damage != "cut the last line" else _cli("resume", str(run))
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
    code, output = run_cli(capsys, "resume", str(run))
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


# --------------------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_as_interrupted_and_the_same_command_resumes(tmp_path: Path, stop: int) -> None:
    # the CLI knows the installed plugins only: a built-in student; the majority one leaves seeds wrong
    config = loop_config(tmp_path, name="sig", teacher={"delay_s": 0.2}, student={"type": "tfidf-logreg"})
    config["method"] = {"type": "llm2llm", "rounds": 2, "k": 3}
    path = write_config(tmp_path / "sig.yaml", config)
    log = tmp_path / "sig-calls.jsonl"
    proc = subprocess.Popen([CLI, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(read_lines(log)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(stop)
    proc.send_signal(stop)  # a second one while stopping must not break the shutdown
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out + err, err
    manifest = json.loads((tmp_path / "runs/sig/manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    code, output = _cli("run", str(path))
    assert code == 0, output
    assert json.loads((tmp_path / "runs/sig/manifest.json").read_text())["status"] == "completed"
    calls = [(c["request_id"], c["sample_index"]) for c in read_lines(log)]
    assert len(calls) == len(set(calls))


# --------------------------------------------------------------------------- bad files and paths


def test_a_damaged_cache_row_is_asked_again_and_a_damaged_cache_file_is_named(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    cache_path = tmp_path / "done-cache.sqlite"
    with sqlite3.connect(cache_path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM completions").fetchone()
        db.execute("UPDATE completions SET body = ? WHERE rowid = 1", ['{"not": "a completion"'])
    shutil.rmtree(run)
    config = tmp_path / "done.yaml"
    start_run(_engine(), config, console=_quiet())  # the damaged row is a miss, re-asked; no traceback
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == count
    cache_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{cache_path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(CacheDamaged, match=r"cannot be read .*Move it away"):
        TeacherCache(cache_path)
    with pytest.raises(CacheDamaged, match="is a directory"):
        TeacherCache(tmp_path)


def _bad_config(tmp_path: Path, name: str = "", **changes: Any) -> Path:
    name = name or f"bad{len(list(tmp_path.glob('bad*.yaml')))}"
    config = loop_config(tmp_path, name=name, **{"student": {"type": "tfidf-logreg"}, **changes})
    return write_config(tmp_path / f"{name}.yaml", config)


def test_bad_paths_and_files_give_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    cases: list[tuple[Path, str]] = []
    cases.append((_bad_config(tmp_path, output_dir=str(tmp_path / "file")), "is a file, not a directory"))
    cases.append((_bad_config(tmp_path, teacher_cache=str(tmp_path)), "is a directory"))
    data = tmp_path / "data"
    data.mkdir()
    dataset = {"type": "file", "train": str(data), "test": str(data)}
    cases.append((_bad_config(tmp_path, dataset=dataset), "is a folder but not one saved with datasets' save_to_disk"))
    for name, content, message in (
        ("broken", b'{"text": "fine", "label": "positive"}\n{"text": oops}\n', "broken.jsonl:2: not valid JSON"),
        ("latin", b'{"text": "caf\xe9", "label": "positive"}\n', "latin.jsonl:1: not UTF-8"),
        ("null", b'{"text": null, "label": "positive"}\n', "null.jsonl:1: column 'text' must be non-empty text"),
    ):
        data_file = tmp_path / f"{name}.jsonl"
        data_file.write_bytes(content)
        dataset = {"type": "file", "train": str(data_file), "test": str(data_file)}
        cases.append((_bad_config(tmp_path, dataset=dataset), message))
    config = tmp_path / "dup.yaml"
    config.write_text("name: a\nseed: 0\nseed: 1\n")
    cases.append((config, "key 'seed' is given twice"))
    config = tmp_path / "latin.yaml"
    config.write_bytes(b"name: caf\xe9\n")
    cases.append((config, "not UTF-8"))
    for path, message in cases:
        code, output = run_cli(capsys, "run", str(path))
        assert code == 2 and message in output, (path, output)


def test_an_empty_test_split_or_train_split_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "a fine film", "label": "positive"}\n{"text": "dull", "label": "negative"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for train, test, split in ((good, empty, "test"), (empty, good, "train")):
        dataset = {"type": "file", "train": str(train), "test": str(test), "labels": ["negative", "positive"]}
        with pytest.raises(DistilforgeError, match=f"the {split}.* split is empty"):
            start_run(_engine(), _bad_config(tmp_path, name=f"e{split}", dataset=dataset), console=_quiet())


def test_a_run_directory_from_before_the_hashes_resumes_and_gains_them(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in ("records", "rejects"):  # what an older distilforge wrote: line counts only
        del manifest["committed"][f"{name}_bytes"], manifest["committed"][f"{name}_sha256"]
    manifest_path.write_text(json.dumps(manifest))
    store = RunStore(run)
    store.open()
    store.commit([], [])  # the next commit records hashes that cover the whole file
    store.close()
    store.open()  # and they verify
    store.close()
    assert json.loads(manifest_path.read_text())["committed"]["records_sha256"]
