"""Throughput of the ``vllm`` teacher plugin against raw ``vllm.LLM.chat`` on the same engine.

The same chat prompts go through three paths in one process, the order rotated every repetition
so no path always runs on a warmer machine, several repetitions each, all on one engine (the
plugin's):

- ``raw``: one ``LLM.chat`` call with one unseeded ``SamplingParams`` (the limit);
- ``raw-seeded``: the same call with the seed the plugin gives each request, so it produces the
  very tokens the plugin does: ``plugin / raw-seeded`` is what the plugin's code adds (building
  per-request params, grouping, turning outputs into ``Completion`` objects), free of the noise of
  different answer lengths;
- ``plugin``: ``VLLMTeacher.sample``.

``raw-seeded / raw`` is then the price of per-request seeds (vLLM samples seeded requests with
their own generators), which buy answers that do not depend on the batch they ran in. Unseeded
answers differ in length from run to run, and tokens/s moves with the length (the prompt's
prefill is paid once, whatever follows): ``--ignore-eos`` makes every answer exactly
``--max-tokens`` long on every path, so tokens/s then compares the same work.

    HF_HUB_OFFLINE=1 python bench/teacher_throughput.py --prompts 256 --reps 3 --max-tokens 48
    HF_HUB_OFFLINE=1 python bench/teacher_throughput.py --model qwen2.5-coder-1.5b --prompts 64 --reps 3 \
        --ignore-eos --out bench/results/teacher_throughput-qwen2.5-coder-1.5b

Exit status 1 when the median plugin/raw ratio (tokens/s) is below ``--floor`` (default 0.97).
``--out PATH`` also writes PATH.md (the command, the machine, every repetition, the medians) and
PATH.json (PATH may contain dots: ``teacher_throughput-qwen2.5-coder-0.5b``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = [
    "a haunted lighthouse",
    "a chess prodigy",
    "a time-travelling chef",
    "a lost dog",
    "a space station",
    "a jazz band",
    "a small-town election",
    "a bank heist",
    "a desert crossing",
    "a robot gardener",
    "a family reunion",
    "a mountain rescue",
    "a silent film star",
    "a pirate radio station",
    "a haunted hotel",
    "a spelling bee",
]
TASKS = [
    "Write a one-sentence positive movie review about {t}.",
    "Write a one-sentence negative movie review about {t}.",
    "Summarise the plot of a film about {t} in two sentences.",
    "Give three adjectives that describe a story about {t}.",
    "Ask a quiz question about {t}.",
    "Explain to a child what a film about {t} is about.",
    "Write a tweet announcing a new film about {t}.",
    "Describe the opening scene of a movie about {t}.",
    "Suggest a title for a movie about {t} and explain it.",
    "Write a short dialogue line from a character in a film about {t}.",
    "Is a movie about {t} better as a comedy or a drama? Answer briefly.",
    "List two risks the hero of a story about {t} faces.",
    "Write the first line of a poem about {t}.",
    "Rate a film about {t} from 1 to 10 and justify it in one sentence.",
    "Write a headline for a newspaper review of a film about {t}.",
    "What music would suit a film about {t}? One sentence.",
]


def make_prompts(count: int) -> list[str]:
    prompts = [task.format(t=topic) for task in TASKS for topic in TOPICS]
    while len(prompts) < count:
        prompts += [f"{p} (variant {len(prompts)})" for p in prompts[: count - len(prompts)]]
    return prompts[:count]


def throughput_parser(description: str | None) -> argparse.ArgumentParser:
    """The options the throughput benchmarks share (this one and bench/ray_scaling.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--model", default=None, help="model directory; default: the embedded SmolLM2-135M")
    parser.add_argument("--kv-cache-gib", type=float, default=1.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = throughput_parser(__doc__)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--floor", type=float, default=0.97)
    parser.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.json")
    parser.add_argument(
        "--ignore-eos",
        action="store_true",
        help="every answer runs to --max-tokens on every path, so tokens/s compares the same amount of work",
    )
    args = parser.parse_args(argv)
    command = "HF_HUB_OFFLINE=1 .venv/bin/python bench/teacher_throughput.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    from vllm import SamplingParams as VLLMSamplingParams

    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
    from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

    teacher = VLLMTeacher(
        VLLMTeacherConfig(
            model=args.model,
            dtype=args.dtype,
            max_model_len=1024,
            kv_cache_memory_bytes=int(args.kv_cache_gib * (1 << 30)),
        )
    )
    started = time.perf_counter()
    llm = teacher.llm
    dtype = llm.llm_engine.model_config.dtype
    say(f"engine ready in {time.perf_counter() - started:.1f} s: {teacher.model_id}, dtype {dtype}")

    texts = make_prompts(args.prompts)
    conversations = [[{"role": "user", "content": t}] for t in texts]
    fixed = {"ignore_eos": True} if args.ignore_eos else {}
    raw_params = VLLMSamplingParams(temperature=args.temperature, top_p=1.0, max_tokens=args.max_tokens, **fixed)
    requests = [
        TeacherRequest(
            messages=[ChatMessage(role="user", content=t)],
            sampling=SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens),
        )
        for t in texts
    ]

    if args.ignore_eos:
        build = teacher.sampling_params

        def run_to_max_tokens(request: TeacherRequest) -> Any:
            params = build(request)
            params.ignore_eos = True  # read when the engine takes the request
            return params

        teacher.sampling_params = run_to_max_tokens
    # the very params the plugin sends (its per-request seeds), built once outside the clock
    seeded_params = [teacher.sampling_params(r) for r in requests]

    def raw_path(params: Any) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            t0 = time.perf_counter()
            outputs = llm.chat(conversations, params, use_tqdm=False)
            elapsed = time.perf_counter() - t0
            return elapsed, sum(len(o.outputs[0].token_ids) for o in outputs)

        return run

    def run_plugin() -> tuple[float, int]:
        t0 = time.perf_counter()
        completions = list(teacher.sample(requests))
        elapsed = time.perf_counter() - t0
        assert len(completions) == len(requests) and all(c.ok for c in completions)
        return elapsed, sum(c.completion_tokens for c in completions)

    # warm-up of both paths (first-call allocations, chat template compilation)
    llm.chat(conversations[:8], raw_params, use_tqdm=False)
    list(teacher.sample(requests[:8]))

    paths = {"raw": raw_path(raw_params), "raw-seeded": raw_path(seeded_params), "plugin": run_plugin}
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in paths}
    names = list(paths)
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            elapsed, tokens = paths[name]()
            results[name].append((elapsed, tokens))
            say(
                f"rep {rep + 1} {name:10s}: {elapsed:6.2f} s  {tokens / elapsed:7.1f} tok/s  "
                f"{len(texts) / elapsed:6.2f} prompts/s  ({tokens} tokens)"
            )

    def per_rep(top: str, bottom: str) -> list[float]:
        """tokens/s of ``top`` over tokens/s of ``bottom``, repetition by repetition."""
        return [(t_t / t_e) / (b_t / b_e) for (t_e, t_t), (b_e, b_t) in zip(results[top], results[bottom], strict=True)]

    say()
    say(f"{len(texts)} chat prompts x {args.max_tokens} max tokens, temperature {args.temperature}, {args.reps} reps")
    for name, label in (("raw", "raw LLM.chat"), ("raw-seeded", "raw, plugin's seeds"), ("plugin", "VLLMTeacher")):
        tok_s = statistics.median(t / e for e, t in results[name])
        prm_s = statistics.median(len(texts) / e for e, _ in results[name])
        say(f"{label:20s}: {tok_s:7.1f} tok/s  {prm_s:6.2f} prompts/s (median)")
    ratios = {
        "plugin/raw": per_rep("plugin", "raw"),
        "plugin/raw-seeded": per_rep("plugin", "raw-seeded"),
        "raw-seeded/raw": per_rep("raw-seeded", "raw"),
    }
    for key, values in ratios.items():
        say(
            f"median {key:18s}: {statistics.median(values):.3f} (tokens/s); per rep "
            + ", ".join(f"{r:.3f}" for r in values)
        )
    ratio = statistics.median(ratios["plugin/raw"])
    say(f"floor (plugin/raw) {args.floor}: {'met' if ratio >= args.floor else 'missed'}")
    teacher.close()
    if args.out is not None:
        medians = {key: statistics.median(values) for key, values in ratios.items()}
        write_results(args.out, command, lines, results, medians, args.floor)
    return 0 if ratio >= args.floor else 1


def cpu_model() -> str:
    """The CPU's name (the same model runs 2-3x faster on AMX than on AVX-512 alone)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.machine()


def write_results(
    out: Path,
    command: str,
    lines: list[str],
    results: dict[str, list[tuple[float, int]]],
    medians: dict[str, float],
    floor: float,
) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs, load average {load}"
    out.parent.mkdir(parents=True, exist_ok=True)
    body = [f"# Teacher throughput, {time.strftime('%Y-%m-%d')}", "", f"`{command}` — {machine} at the end", ""]
    Path(f"{out}.md").write_text("\n".join([*body, "```", *lines, "```", ""]), encoding="utf-8")
    record = {"command": command, "machine": machine, "runs": results, "median_ratios": medians, "floor": floor}
    Path(f"{out}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
