"""``distilforge serve``: the tiny model behind vLLM's server, `generate` through it, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fixtures_models import require_vllm

from distilforge.plugins.teachers.vllm_server import free_port

pytestmark = pytest.mark.slow


def teacher_block(proc: subprocess.Popen[str], model: str, wait_s: float) -> Any:
    """The ``teacher:`` block ``serve`` prints once the server answers, parsed."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + wait_s
    while f"  model: {model}" not in lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    start = lines.index("teacher:")
    return yaml.safe_load("\n".join(lines[start : start + 4]))


def ctrl_c_stops(proc: subprocess.Popen[str], port: int) -> None:
    """Ctrl-C ends ``serve`` with exit status 0, and nothing answers on its port any more."""
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0)


def test_serve_prints_the_teacher_block_generate_uses_it_and_ctrl_c_stops_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    require_vllm()
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "distilforge.engine.cli", "serve", str(tiny_model_dir), "--port", str(port)]
    cmd += ["--name", "tiny", "--max-model-len", "512", "--kv-cache-gib", "1", "--log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        block = teacher_block(proc, "tiny", wait_s=600)
        assert block["teacher"] == {"type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "tiny"}

        config = tmp_path / "gen.yaml"
        config.write_text(
            yaml.safe_dump({**block, "sampling": {"max_tokens": 8}, "teacher_cache": str(tmp_path / "c.sqlite")})
        )
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text('{"prompt": "Say hi.", "topic": "greeting"}\n')
        out = tmp_path / "out.jsonl"
        gen = [
            sys.executable,
            "-m",
            "distilforge.engine.cli",
            "generate",
            str(prompts),
            "-c",
            str(config),
            "-o",
            str(out),
        ]
        done = subprocess.run(gen, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        row = json.loads(out.read_text().splitlines()[0])
        assert row["topic"] == "greeting" and row["model"] == "openai:127.0.0.1/tiny" and row["completion_tokens"] > 0

        ctrl_c_stops(proc, port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_on_llamacpp_answers_openai_requests_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """The embedded SmolLM2's packaged GGUF behind llama.cpp's server (the backend of CPUs without AMX)."""
    port = free_port()
    cmd = [sys.executable, "-m", "distilforge.engine.cli", "serve", "smollm2-135m", "--backend", "llamacpp"]
    cmd += ["--port", str(port), "--max-model-len", "512", "--parallel", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        block = teacher_block(proc, "smollm2-135m", wait_s=120)
        assert block["teacher"]["base_url"] == f"http://127.0.0.1:{port}/v1" and block["teacher"]["type"] == "openai"
        body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60).json()
        assert answer["choices"][0]["message"]["content"] and answer["usage"]["completion_tokens"] > 0
        ctrl_c_stops(proc, port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
