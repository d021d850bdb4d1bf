"""Throughput of the ``openai`` teacher plugin vs a bare ``openai.AsyncOpenAI`` loop.

Starts a vLLM OpenAI-compatible server (default: the embedded SmolLM2-135M-Instruct), then
sends the same chat prompts through both clients with the same concurrency, alternating which
goes first in each repetition, and prints each run's throughput and the median ratio
plugin / raw. Both ask for exactly ``--max-tokens`` tokens per prompt (greedy, ``ignore_eos``),
so both do the same work and the ratio measures client overhead only.

    .venv/bin/python bench/openai_throughput.py                 # SmolLM2, 256 prompts, 3 reps
    .venv/bin/python bench/openai_throughput.py --model DIR --prompts 512 --reps 5
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai

from distilforge.plugins.teachers.openai_teacher import (
    OpenAITeacher,
    OpenAITeacherConfig,
)
from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest
from distilforge.testing.vllm_server import VLLMServer

SERVED = "teacher"
TOPICS = ["a rainy day", "a small robot", "the sea", "a chess game", "an old map", "a bakery",
          "a mountain trail", "a lost key", "a city at night", "a garden", "a violin", "a train"]  # fmt: skip
STYLES = ["a movie review", "a haiku", "a product description", "a news headline",
          "a short story opening", "a tweet", "a riddle", "a recipe tip"]  # fmt: skip


def prompts(count: int) -> list[str]:
    out = []
    for k in range(count):
        topic, style = TOPICS[k % len(TOPICS)], STYLES[(k // len(TOPICS)) % len(STYLES)]
        out.append(f"Write {style} about {topic}. (variant {k})")
    return out


def run_plugin(base_url: str, texts: list[str], concurrency: int, max_tokens: int) -> tuple[float, int]:
    teacher = OpenAITeacher(
        OpenAITeacherConfig(
            base_url=base_url,
            model=SERVED,
            api_key_env=None,
            concurrency=concurrency,
            extra_body={"ignore_eos": True},
        )
    )
    sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    requests = [TeacherRequest(messages=[ChatMessage(role="user", content=t)], sampling=sampling) for t in texts]
    started = time.perf_counter()
    completions = list(teacher.sample(requests))
    elapsed = time.perf_counter() - started
    failed = [c.error for c in completions if not c.ok]
    if failed or len(completions) != len(texts):
        raise SystemExit(f"plugin: {len(failed)} errors, {len(completions)} answers: {failed[:3]}")
    return elapsed, sum(c.completion_tokens for c in completions)


async def _raw(base_url: str, texts: list[str], concurrency: int, max_tokens: int) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=600)
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> int:
        async with gate:
            response = await client.chat.completions.create(
                model=SERVED,
                messages=[{"role": "user", "content": text}],
                temperature=0.0,
                top_p=1.0,
                max_tokens=max_tokens,
                n=1,
                extra_body={"ignore_eos": True},
            )
        return response.usage.completion_tokens if response.usage else 0

    try:
        return sum(await asyncio.gather(*(one(t) for t in texts)))
    finally:
        await client.close()


def run_raw(base_url: str, texts: list[str], concurrency: int, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = asyncio.run(_raw(base_url, texts, concurrency, max_tokens))
    return time.perf_counter() - started, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="HF model directory (default: SmolLM2-135M)")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--log", type=Path, help="server log file (default: a temporary file)")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for /health")
    args = parser.parse_args()
    # Let `kill PID` unwind through `with server:` so the vLLM server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.model is None:
        from distilforge.plugins.models.packaged import default_teacher_dir

        args.model = default_teacher_dir()
    log_path = args.log or Path(tempfile.mkdtemp(prefix="df-bench-")) / "vllm-server.log"
    texts = prompts(args.prompts)
    print(f"model {args.model}\nserver log {log_path}")
    print(f"{args.prompts} chat prompts x {args.max_tokens} tokens, concurrency {args.concurrency}")

    started = time.perf_counter()
    server = VLLMServer(
        args.model,
        served_name=SERVED,
        log_path=log_path,
        extra_args=["--seed", "0"],
        startup_timeout_s=args.startup_timeout,
    )
    with server:
        print(f"server ready in {time.perf_counter() - started:.1f}s at {server.base_url}")
        run_raw(server.base_url, texts[:16], args.concurrency, 8)  # warm-up
        runners = {"plugin": run_plugin, "raw": run_raw}
        results: dict[str, list[float]] = {"plugin": [], "raw": []}
        ratios = []
        for rep in range(args.reps):
            order = ["plugin", "raw"] if rep % 2 == 0 else ["raw", "plugin"]
            rates = {}
            for name in order:
                elapsed, tokens = runners[name](server.base_url, texts, args.concurrency, args.max_tokens)
                rates[name] = tokens / elapsed
                results[name].append(rates[name])
                print(
                    f"rep {rep + 1} {name:>6}: {elapsed:6.2f}s  {tokens} tokens  "
                    f"{rates[name]:7.1f} tok/s  {len(texts) / elapsed:6.2f} req/s"
                )
            ratios.append(rates["plugin"] / rates["raw"])
    print(
        f"median tok/s: plugin {statistics.median(results['plugin']):.1f}, "
        f"raw {statistics.median(results['raw']):.1f}; "
        f"median ratio plugin/raw {statistics.median(ratios):.3f} "
        f"(per rep: {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
