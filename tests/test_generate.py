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


@pytest.mark.slow
def test_ctrl_c_inside_a_vllm_call_stops_within_seconds(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Ctrl-C lands while vLLM is generating: it is acted on at the next engine step, said at once,
    and the process ends as interrupted (exit 130), not after the call would have finished."""
    prompts = tmp_path / "prompts.jsonl"
    # ~1M tokens in one vLLM call: minutes even on a fast CPU (the tiny model does ~11k tok/s on
    # 2 AMX cores), so the call is still running when the signal lands
    count = 2400
    with prompts.open("w") as out:
        for i in range(count):
            out.write(json.dumps({"id": f"p{i}", "prompt": f"Count on from {i}:"}) + "\n")
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "teacher": {"type": "vllm", "model": str(tiny_model_dir), "max_model_len": 512},
                "sampling": {"max_tokens": 480, "temperature": 1.0},
                "chunk_size": count,
                "teacher_cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    cmd = [sys.executable, "-m", "distilforge.engine.cli", "generate", str(prompts), "-o", str(tmp_path / "o.jsonl")]
    cmd += ["-c", str(cfg), "--raw-prompts"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.time() + 240
            while "checkpoint shards: 100%" not in log.read_text() and time.time() < deadline and proc.poll() is None:
                time.sleep(0.1)
            time.sleep(10)  # the weights are loaded: the engine is inside its one call for every prompt
            assert proc.poll() is None, log.read_text()
            proc.send_signal(signal.SIGINT)
            sent = time.time()
            proc.wait(timeout=60)
        finally:
            proc.kill()
    err = log.read_text()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: stopping cleanly" in err
    assert time.time() - sent < 30
    assert not read_lines(tmp_path / "o.jsonl"), "the one call was cut short: nothing was finished"


# --------------------------------------------------------------------------- odd input, torn output


@pytest.mark.parametrize("raw", [False, True])
def test_prompts_go_through_the_chat_template_and_extra_fields_reach_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bool
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Write about rain.", "topic": "rain", "meta": {"k": [1]}}\n')
    out = tmp_path / "out.jsonl"
    args = ["generate", str(prompts), "-c", str(fake_config(tmp_path)), "-o", str(out)]
    assert main(args + (["--raw-prompts"] if raw else [])) == 0
    capsys.readouterr()
    assert [c["chat"] for c in read_lines(tmp_path / "calls.jsonl")] == [not raw, not raw]
    rows = read_lines(out)
    assert [(r["id"], r["topic"], r["meta"]) for r in rows] == [("1", "rain", {"k": [1]})] * 2
    assert all(r["text"].startswith(("answer", "other")) for r in rows)


def _generate(tmp_path: Path, prompts: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    out = tmp_path / "out.jsonl"
    code = main(["generate", str(prompts), "-c", str(fake_config(tmp_path)), "-o", str(out)])
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "Traceback" not in text
    return code, text, out


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'], "2: id 'a' is already used on line 1"),
        (['{"prompt": "x"}', '{"id": "1", "prompt": "y"}'], "2: id '1' is already used on line 1"),
        (['{"id": null, "prompt": "x"}'], "1: 'id' is null"),
        (['{"id": true, "prompt": "x"}'], "prompts"),
        (['{"prompt": "x", "temprature": 0.2}'], "1: temprature: not a field the engine reads"),
        (['{"prompt": "x", "temperature": 0.2}'], """'temperature' goes in "sampling": {...}"""),
        (['{"id": "a", "topic": "rain"}'], "1: a line needs 'prompt' (text) or 'messages'"),
        (['{"prompt": "x"}', "{not json"], "2: not valid JSON"),
        (['["a", "list"]'], "1: a line must be a JSON object, got list"),
        (['{"prompt": "x", "sampling": {"n": 0}}'], "1: n: Input should be greater than or equal to 1"),
    ],
)
def test_bad_prompt_lines_are_refused_with_file_and_line_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], message: str
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n")
    code, text, out = _generate(tmp_path, prompts, capsys)
    assert code == 2 and f"prompts {prompts}:" in text and message in text, text
    assert read_lines(tmp_path / "calls.jsonl") == [] and not out.exists()


def test_non_utf8_bom_no_final_newline_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(b'\xef\xbb\xbf{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "y"}')  # BOM, no final newline
    code, _, out = _generate(tmp_path, prompts, capsys)
    assert code == 0 and sorted({r["id"] for r in read_lines(out)}) == ["a", "b"]  # the last line counts
    prompts.write_bytes(b'{"id": "a", "prompt": "caf\xe9"}\n')
    code, text, _ = _generate(tmp_path, prompts, capsys)
    assert code == 2 and "prompts.jsonl:1: not UTF-8 (byte 0xe9" in text
    code, text, _ = _generate(tmp_path, tmp_path / "nope.jsonl", capsys)
    assert code == 2 and "nope.jsonl: no such file" in text


def test_a_torn_output_line_is_dropped_and_its_sample_written_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 4)
    code, _, out = _generate(tmp_path, prompts, capsys)
    assert code == 0
    complete = out.read_bytes()
    rows = complete.splitlines(keepends=True)
    out.write_bytes(b"".join(rows[:-1]) + rows[-1][:20])  # a kill in the middle of the last append
    code, text, _ = _generate(tmp_path, prompts, capsys)
    assert code == 0 and "dropped an unfinished last line" in text
    again = read_lines(out)
    assert sorted((r["id"], r["sample_index"]) for r in again) == sorted(
        (json.loads(r)["id"], json.loads(r)["sample_index"]) for r in rows
    )
    code, _, _ = _generate(tmp_path, prompts, capsys)  # and the next run reads it cleanly
    assert code == 0


def test_a_changed_prompt_under_the_same_id_is_not_mixed_with_its_old_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "first version"}\n')
    assert _generate(tmp_path, prompts, capsys)[0] == 0
    prompts.write_text('{"id": "a", "prompt": "second version"}\n')
    code, text, _ = _generate(tmp_path, prompts, capsys)
    assert code == 2 and "samples of prompt id 'a' made from another prompt" in text


def test_rejects_keep_only_the_samples_still_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2)
    _, _, out = _generate(tmp_path, prompts, capsys)
    rejects = Path(f"{out}.rejects.jsonl")
    row = read_lines(out)[0]
    rejects.write_text(json.dumps({"id": row["id"], "sample_index": row["sample_index"], "reason": "HTTP 503"}) + "\n")
    assert _generate(tmp_path, prompts, capsys)[0] == 0
    assert read_lines(rejects) == []
