"""vLLM prefix caching on this CPU build, on the prompts the methods really send.

LLM2LLM's requests share a system prompt and a two-seed demonstration and differ in the failure;
GOLD's share the system prompt and every real example shown and differ in the label asked for.
Both are built here by the methods' own ``build_prompts`` from Rotten Tomatoes seeds, then sent
through the ``vllm`` teacher with prefix caching on, then, in a second engine, off (two engines
cannot share the 2 cores at once); each runs its repetitions back to back and the medians are
compared. Each request asks for its ``n`` samples at once: identical prompts are never sent as
duplicates.

    .venv/bin/python bench/prefix_caching.py --model qwen2.5-coder-0.5b
    .venv/bin/python bench/prefix_caching.py --model qwen2.5-coder-1.5b --failures 16 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from teacher_throughput import cpu_model  # also sets the offline environment

from distilforge.engine.api.context import RunContext
from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig
from distilforge.plugins.methods.gold import Gold, GoldConfig
from distilforge.plugins.methods.llm2llm import LLM2LLM, LLM2LLMConfig
from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
from distilforge.schemas import TeacherRequest

RESULTS = Path(__file__).parent / "results"


def method_requests(failures: int, k: int) -> dict[str, list[TeacherRequest]]:
    splits = RottenTomatoes(RottenTomatoesConfig(seed_per_class=16, test_size=10)).load(0)
    ctx = RunContext(
        config=None,  # type: ignore[arg-type]
        run_dir=Path("."),
        teacher=None,  # type: ignore[arg-type]
        pool=list(splits.seed),
        labels=splits.labels,
        task=splits.task,
    )
    llm2llm = LLM2LLM(LLM2LLMConfig(k=k)).build_prompts(splits.seed[:failures], ctx)
    gold = Gold(GoldConfig(batch_size=failures * k, validation_size=failures * k // 2)).build_prompts([], ctx)
    return {"llm2llm": llm2llm, "gold": gold}


def shared_prefix_chars(requests: list[TeacherRequest]) -> int:
    texts = [json.dumps([m.model_dump() for m in r.messages or []]) for r in requests]
    first = texts[0]
    length = min(len(t) for t in texts)
    return next((i for i in range(length) if any(t[i] != first[i] for t in texts)), length)


def timed(teacher: VLLMTeacher, requests: list[TeacherRequest], reps: int) -> list[tuple[float, int]]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        completions = list(teacher.sample(requests))
        seconds = time.perf_counter() - started
        assert all(c.ok for c in completions), [c.error for c in completions if not c.ok][:3]
        out.append((seconds, sum(c.completion_tokens for c in completions)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="teacher preset or model directory (default: SmolLM2)")
    parser.add_argument("--failures", type=int, default=16, help="LLM2LLM failures (GOLD: failures x k samples)")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    workloads = method_requests(args.failures, args.k)
    rows = []
    for caching in (True, False):
        teacher = VLLMTeacher(VLLMTeacherConfig(model=args.model, max_model_len=1024, prefix_caching=caching))
        llm = teacher.llm
        on = llm.llm_engine.vllm_config.cache_config.enable_prefix_caching
        for name, requests in workloads.items():
            list(teacher.sample(requests[:2]))  # warm-up
            runs = timed(teacher, requests, args.reps)
            seconds = statistics.median(s for s, _ in runs)
            tok_s = statistics.median(t / s for s, t in runs)
            rows.append(
                {
                    "workload": name,
                    "prefix_caching": on,
                    "requests": len(requests),
                    "seconds": seconds,
                    "tok_s": tok_s,
                    "samples": sum(r.sampling.n for r in requests),
                    "shared_prefix_chars": shared_prefix_chars(requests),
                    "runs": runs,
                }
            )
            print(f"{name:8s} prefix caching {on!s:5s}: {seconds:6.1f} s median, {tok_s:6.1f} tok/s", flush=True)
        teacher.close()
    lines = [
        f"vLLM prefix caching, teacher {args.model or 'smollm2-135m'}, {args.reps} reps each (medians),"
        f" LLM2LLM: {args.failures} failures x k={args.k}; GOLD: one batch; {cpu_model()}, {os.cpu_count()} CPUs,"
        f" {time.strftime('%Y-%m-%d')}",
        "",
        "| workload | requests | samples | shared prefix (chars) | caching on: s | off: s | on/off speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in workloads:
        on_row = next(r for r in rows if r["workload"] == name and r["prefix_caching"])
        off_row = next(r for r in rows if r["workload"] == name and not r["prefix_caching"])
        lines.append(
            f"| {name} | {on_row['requests']} | {on_row['samples']} | {on_row['shared_prefix_chars']} |"
            f" {on_row['seconds']:.1f} | {off_row['seconds']:.1f} | {off_row['seconds'] / on_row['seconds']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    suffix = f"-{args.tag}" if args.tag else f"-{(args.model or 'smollm2-135m').replace('/', '_')}"
    (RESULTS / f"prefix_caching{suffix}.md").write_text(text)
    (RESULTS / f"prefix_caching{suffix}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
