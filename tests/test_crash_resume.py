"""kill -9 in the middle of a round, resume, and compare with an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import loop_config, read_lines, write_config

DRIVER = Path(__file__).parent / "run_driver.py"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [4, 23])
def test_sigkill_mid_round_resumes_exactly(tmp_path: Path, kill_after: int) -> None:
    # reference: the same config, never interrupted
    ref = write_config(tmp_path / "ref.yaml", loop_config(tmp_path, name="ref"))
    done = _run(["run", str(ref)])
    assert done.returncode == 0, done.stderr
    reference = read_lines(tmp_path / "runs/ref/records.jsonl")

    cfg = loop_config(tmp_path, name="crash", teacher={"delay_s": 0.05})
    path = write_config(tmp_path / "crash.yaml", cfg)
    log = tmp_path / "crash-calls.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while len(read_lines(log)) < kill_after and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {(c["request_id"], c["sample_index"]) for c in read_lines(log)}
    assert len(before) >= kill_after

    resumed = _run(["resume", str(tmp_path / "runs/crash")])
    assert resumed.returncode == 0, resumed.stderr
    calls = [(c["request_id"], c["sample_index"]) for c in read_lines(log)]
    after = calls[len(before) :]
    assert not set(after) & before, "a sample delivered before the kill was requested again"
    assert len(calls) == len(set(calls))

    records = read_lines(tmp_path / "runs/crash/records.jsonl")
    assert records == reference  # none lost, none duplicated, same order
    assert len({r["id"] for r in records}) == len(records)
    manifest = (tmp_path / "runs/crash/manifest.json").read_text()
    assert '"status": "completed"' in manifest
