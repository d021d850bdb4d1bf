"""Atomic writes, the run lock, crash-tolerant JSON Lines and the teacher cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distilforge.engine.api.errors import RunLockedError
from distilforge.engine.store import RunLock, TeacherCache, atomic_write_text, cache_key, read_jsonl, truncate_jsonl
from distilforge.schemas import Completion, SamplingParams, TeacherRequest


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"], "no temp files left behind"


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_lock_excludes_a_second_writer_and_dies_with_its_holder(tmp_path: Path) -> None:
    lock_path = tmp_path / ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from distilforge.engine.store import RunLock; lock = RunLock({str(lock_path)!r}); lock.acquire()\n"
            "print('ok', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
    with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
        RunLock(lock_path).acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = RunLock(lock_path)
    lock.acquire()  # a killed holder leaves no stale lock
    lock.release()


def test_lock_is_reentrant_only_after_release(tmp_path: Path) -> None:
    first = RunLock(tmp_path / ".lock")
    first.acquire()
    with pytest.raises(RunLockedError):
        RunLock(tmp_path / ".lock").acquire()
    first.release()
    with RunLock(tmp_path / ".lock"):
        pass


def test_torn_last_line_is_ignored_and_truncation_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 4')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2, 3]
    assert truncate_jsonl(path, 2) == 2
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n'
    assert truncate_jsonl(path, 5) == 0


def test_cache_is_keyed_by_model_prompt_sampling_and_index(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path / "c.sqlite")
    request = TeacherRequest(prompt="hi", sampling=SamplingParams(temperature=0.5, n=2))
    k0, k1 = cache_key("m", request, 0), cache_key("m", request, 1)
    assert len({k0, k1, cache_key("other", request, 0)}) == 3
    hotter = request.model_copy(update={"sampling": SamplingParams(temperature=0.9, n=2)})
    assert cache_key("m", hotter, 0) != k0
    more = request.model_copy(update={"sampling": SamplingParams(temperature=0.5, n=5)})
    assert cache_key("m", more, 0) == k0, "n does not change a sample's distribution"
    salted = TeacherRequest(prompt="hi", sampling=SamplingParams(temperature=0.5, n=2), salt="round 1")
    assert cache_key("m", salted, 0) != k0 and salted.id != request.id
    cache.put_many(
        [(k0, Completion(request_id=request.id, text="a")), (k1, Completion(request_id=request.id, error="boom"))]
    )
    cache.close()
    reopened = TeacherCache(tmp_path / "c.sqlite")
    got = reopened.get_many([k0, k1])
    assert got[k0].text == "a" and k1 not in got, "failures are not cached"
    assert len(reopened) == 1


def test_cache_survives_sigkill_right_after_a_put(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    code = (
        "from distilforge.engine.store import TeacherCache\n"
        "from distilforge.schemas import Completion\n"
        "import os, signal\n"
        f"c = TeacherCache({str(db)!r})\n"
        "for i in range(50): c.put_many([(f'k{i}', Completion(request_id=str(i), text='t'))])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.1)
    assert len(TeacherCache(db).get_many([f"k{i}" for i in range(50)])) == 50
