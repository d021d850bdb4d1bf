"""Experiment: seed-only training vs LLM2LLM on Rotten Tomatoes, any teacher preset, with or without the judge.

For every seed size (per class) and random seed, one LLM2LLM run is made; its round 0 is the
student trained on the seeds only (the baseline), its last round the student trained on seeds +
everything LLM2LLM generated. Both are scored on the same fixed 1,000-snippet test split, which
is never used to choose anything: every variant run is reported, none is picked.

    .venv/bin/python bench/llm2llm_sentiment.py                       # 3 sizes x 3 seeds, SmolLM2
    .venv/bin/python bench/llm2llm_sentiment.py --rounds 5 --k 4 --temperature 0.7 --tag more
    .venv/bin/python bench/llm2llm_sentiment.py --teacher qwen2.5-coder-1.5b --judge --tag q15-judge
    .venv/bin/python bench/llm2llm_sentiment.py --holdout validation ...   # tune on validation, never on test

Each run is its own `distilforge run` process; re-running the script reuses finished runs and
resumes cut-off ones. Prints mean ± sd per seed size and writes the table to bench/results/llm2llm_sentiment[-TAG].md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from experiment_runs import ROOT, mean_sd, run_config


def config(args: argparse.Namespace, size: int, seed: int) -> dict[str, Any]:
    return {
        "name": f"rt-{args.tag}-n{size}-s{seed}",
        "seed": seed,
        "dataset": {"type": "rotten-tomatoes", "seed_per_class": size, "test_size": 1000, "holdout": args.holdout},
        "teacher": {"type": "vllm", "seed": seed, "model": args.teacher, "max_model_len": 1024},
        "teacher_baseline": {"max_examples": args.baseline_examples},
        "student": {
            "type": "text-classifier",
            "mode": args.student_mode,
            **({"C": args.C} if args.student_mode == "frozen" else {}),
        },
        "method": {
            "type": "llm2llm",
            "rounds": args.rounds,
            "k": args.k,
            "min_confidence": args.min_confidence or None,
            "sampling": {"temperature": args.temperature, "max_tokens": 96},
        },
        "filters": [
            {"type": "parse-validity"},
            {"type": "exact-dedup"},
            {"type": "rouge-novelty", "threshold": 0.95},
            *([{"type": "label-judge", "threshold": args.judge_threshold}] if args.judge else []),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32], help="seed examples per class")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--student-mode", choices=["finetune", "frozen"], default="frozen")
    parser.add_argument("--C", type=float, default=10.0, help="frozen mode: inverse L2 strength of the head")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.8,
        help="seeds the student is less sure of count as failures; 0 = wrong answers only (the reference)",
    )
    parser.add_argument("--teacher", default=None, help="teacher preset or model directory (default: SmolLM2)")
    parser.add_argument("--judge", action="store_true", help="add the label-judge filter (the teacher as judge)")
    parser.add_argument("--judge-threshold", type=float, default=0.5)
    parser.add_argument("--holdout", choices=["test", "validation"], default="test")
    parser.add_argument("--baseline-examples", type=int, default=300, help="teacher zero-shot baseline sample")
    parser.add_argument("--tag", default="base")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-llm2llm")
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            started = time.perf_counter()
            cfg = config(args, size, seed)
            metrics = run_config(cfg, args.out)
            first, last = metrics[0], metrics[-1]
            baseline_file = args.out / cfg["name"] / "teacher_baseline.json"
            baseline = json.loads(baseline_file.read_text())["accuracy"] if baseline_file.exists() else None
            rows.append(
                {
                    "size": size,
                    "seed": seed,
                    "seed_only": first["test_metrics"]["accuracy"],
                    "llm2llm": last["test_metrics"]["accuracy"],
                    "best_round": max(m["test_metrics"]["accuracy"] for m in metrics),
                    "train_size": last["train_size"],
                    "failures": sum(m.get("failures", 0) for m in metrics),
                    "accepted": sum(m.get("accepted", 0) for m in metrics),
                    "rejected": sum(sum((m.get("rejected") or {}).values()) for m in metrics),
                    "judge_rejected": sum((m.get("rejected") or {}).get("label-judge", 0) for m in metrics),
                    "teacher_zero_shot": baseline,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)

    lines = [
        f"LLM2LLM vs seed-only, Rotten Tomatoes, teacher {args.teacher or 'smollm2-135m'}, judge {args.judge}"
        f" (threshold {args.judge_threshold}), text-classifier ({args.student_mode}) student; "
        f"rounds={args.rounds}, k={args.k}, temperature={args.temperature}, min_confidence={args.min_confidence}, "
        f"C={args.C}, seeds={args.seeds}, evaluated on the {args.holdout} split (n=1000)",
        "",
        "| seeds/class | seed-only acc | LLM2LLM acc | Δ | teacher zero-shot | final train size | failures augmented"
        " | accepted | rejected (judge) | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        group = [r for r in rows if r["size"] == size]
        base = [r["seed_only"] for r in group]
        ours = [r["llm2llm"] for r in group]
        delta = [o - b for o, b in zip(ours, base, strict=True)]
        keys = ("train_size", "failures", "accepted", "rejected", "judge_rejected", "seconds")
        means = {key: statistics.mean(r[key] for r in group) for key in keys}
        zero_shot = [r["teacher_zero_shot"] for r in group if r["teacher_zero_shot"] is not None]
        teacher = f"{statistics.mean(zero_shot):.3f}" if zero_shot else "–"
        lines.append(
            f"| {size} | {mean_sd(base)} | {mean_sd(ours)} | {mean_sd(delta)} | {teacher}"
            f" | {means['train_size']:.0f} | {means['failures']:.1f} | {means['accepted']:.1f}"
            f" | {means['rejected']:.1f} ({means['judge_rejected']:.1f}) | {means['seconds']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / f"llm2llm_sentiment-{args.tag}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n\nper run:\n\n" + "\n".join(json.dumps(r) for r in rows) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
