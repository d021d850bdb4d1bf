"""`distilforge generate`: streaming to disk, cache hits on re-run, exact resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import read_lines

from distilforge.engine.cli import main


def write_prompts(path: Path, count: int) -> Path:
    with path.open("w") as out:
        for i in range(count):
            if i % 2:
                out.write(
                    json.dumps({"id": f"p{i}", "messages": [{"role": "user", "content": f"Say something about {i}"}]})
                    + "\n"
                )
            else:
                out.write(json.dumps({"id": f"p{i}", "prompt": f"Complete: number {i} is"}) + "\n")
    return path


def fake_config(tmp_path: Path, delay: float = 0.0) -> Path:
    cfg = {
        "teacher": {
            "type": "fake",
            "responses": ["answer {hash}", "other {hash}"],
            "delay_s": delay,
            "call_log": str(tmp_path / "calls.jsonl"),
        },
        "sampling": {"max_tokens": 16, "n": 2},
        "chunk_size": 8,
        "teacher_cache": str(tmp_path / "cache.sqlite"),
    }
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_generate_writes_every_sample_and_rerun_hits_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 20)
    cfg = fake_config(tmp_path)
    assert main(["generate", str(prompts), "-o", str(tmp_path / "out.jsonl"), "-c", str(cfg)]) == 0
    rows = read_lines(tmp_path / "out.jsonl")
    assert sorted((r["id"], r["sample_index"]) for r in rows) == sorted(
        (f"p{i}", s) for i in range(20) for s in range(2)
    )
    assert all(r["completion_tokens"] > 0 and r["prompt_tokens"] > 0 for r in rows)
    assert len(read_lines(tmp_path / "calls.jsonl")) == 40
    err = capsys.readouterr().err
    assert "completion tokens/s" in err and "new from teacher" in err

    # the same prompts into a new output file: everything from the cache, zero teacher calls
    assert main(["generate", str(prompts), "-o", str(tmp_path / "again.jsonl"), "-c", str(cfg)]) == 0
    assert len(read_lines(tmp_path / "calls.jsonl")) == 40
    again = read_lines(tmp_path / "again.jsonl")
    assert all(r["cached"] for r in again)
    assert [r["text"] for r in again] == [r["text"] for r in rows]

    # the same output file again: every prompt is already done, nothing is written twice
    assert main(["generate", str(prompts), "-o", str(tmp_path / "out.jsonl"), "-c", str(cfg)]) == 0
    assert len(read_lines(tmp_path / "out.jsonl")) == 40


@pytest.mark.slow
def test_generate_killed_midway_resumes_with_each_prompt_once(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 60)
    cfg = fake_config(tmp_path, delay=0.02)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "distilforge.engine.cli", "generate", str(prompts), "-o", str(out), "-c", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(read_lines(out)) < 20 and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    delivered = {(c["request_id"], c["sample_index"]) for c in read_lines(tmp_path / "calls.jsonl")}
    assert 0 < len(read_lines(out)) < 120

    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    rows = read_lines(out)
    keys = [(r["id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 120, "each prompt's samples exactly once"
    calls = [(c["request_id"], c["sample_index"]) for c in read_lines(tmp_path / "calls.jsonl")]
    assert len(calls) == len(set(calls)), "no sample the teacher delivered before the kill was paid for again"
    assert len(calls) == 120 and delivered <= set(calls)
