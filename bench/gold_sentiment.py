"""Experiment: GOLD vs the no-feedback baseline vs the teacher itself, on Rotten Tomatoes.

The only real data: the task description and 3 examples per label (per random seed). For each
seed, one GOLD run and one no-feedback run (same prompts, same number of generated training
samples, same filters, same student), each scored at the end on the fixed 1,000-snippet test
split; and the teacher classifying that split itself zero-shot (the engine's teacher baseline:
300 snippets, guided choice, both label orders averaged). Then whether energy
separates out-of-distribution text: the AUROC of each final student's energy for 500 review
snippets (test split) vs 500 of the corpus's "plot" rows (plot summaries, not opinions).

    .venv/bin/python bench/gold_sentiment.py                      # 3 seeds, 20 batches of 8, SmolLM2
    .venv/bin/python bench/gold_sentiment.py --teacher qwen2.5-coder-1.5b --judge --tag q15

Runs are reused when finished and resumed when cut off (see bench/experiment_runs.py). Prints the table and
writes it to bench/results/gold_sentiment[-TAG].md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from experiment_runs import ROOT, mean_sd, run_config
from sklearn.metrics import roc_auc_score

from distilforge.engine.api.toolkit.predictions import free_energy
from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig, load_rotten_tomatoes
from distilforge.plugins.students.text_classifier import TextClassifierConfig, TextClassifierStudent
from distilforge.schemas import RunLayout

LABELS = ["negative", "positive"]
STUDENT = {"type": "text-classifier", "mode": "frozen"}


def config(args: argparse.Namespace, seed: int, feedback: bool) -> dict[str, Any]:
    return {
        "name": f"gold-{args.tag}-{'gold' if feedback else 'nofeedback'}-s{seed}",
        "seed": seed,
        "dataset": {"type": "rotten-tomatoes", "seed_per_class": 3, "test_size": 1000, "holdout": args.holdout},
        # tuning runs on the validation split skip the teacher baseline (600 more prompts for the 1.5B teacher)
        "teacher_baseline": {"enabled": args.holdout == "test"},
        "teacher": {"type": "vllm", "seed": seed, "max_model_len": 1536, "model": args.teacher},
        "student": STUDENT,
        "method": {
            "type": "gold",
            "batches": args.batches,
            "batch_size": args.batch_size,
            "validation_size": args.validation_size,
            "train_every": args.train_every,
            "feedback": feedback,
            **({"band": args.band} if args.band else {}),
            "sampling": {"temperature": args.temperature, "max_tokens": 96, "stop": ["\n\n"]},
        },
        "scorers": [{"type": "energy"}],
        "filters": [
            {"type": "parse-validity"},
            {"type": "exact-dedup"},
            {"type": "faiss-novelty", "threshold": 0.92},
            *([{"type": "label-judge"}] if args.judge else []),
        ],
    }


def final_student(run_dir: Path) -> TextClassifierStudent:
    layout = RunLayout(run_dir)
    last = layout.student(max(r for r in layout.rounds() if layout.student(r).exists()))
    student = TextClassifierStudent(TextClassifierConfig.model_validate(STUDENT))
    student.load(last)
    return student


def ood_auroc(student: TextClassifierStudent, reviews: list[str], plots: list[str]) -> float:
    """AUROC of energy as a detector of plot rows (positives) among review snippets."""
    energy = free_energy(student.text_logits(reviews + plots))
    return float(roc_auc_score([0] * len(reviews) + [1] * len(plots), energy))


def real_data_auroc(sizes: list[int], reviews: list[str], plots: list[str]) -> dict[int, dict[str, float]]:
    """The same energy check for the same student trained on real examples (per class): does
    energy separate plot rows from reviews at all for this kind of student?"""
    out = {}
    for size in sizes:
        splits = RottenTomatoes(RottenTomatoesConfig(seed_per_class=size, test_size=1000)).load(0)
        student = TextClassifierStudent(TextClassifierConfig.model_validate(STUDENT))
        student.train(splits.seed, seed=0)
        accuracy = student.evaluate(splits.test, "test").metrics["accuracy"]
        out[size] = {"auroc": ood_auroc(student, reviews, plots), "accuracy": accuracy}
        print(f"student on {size} real examples per class: energy AUROC {out[size]['auroc']:.3f}", flush=True)
    return out


def teacher_zero_shot(run_dir: Path) -> float | None:
    path = run_dir / "teacher_baseline.json"
    return float(json.loads(path.read_text())["accuracy"]) if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--validation-size", type=int, default=8)
    parser.add_argument("--train-every", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--ood-n", type=int, default=500, help="review snippets and plot rows for the AUROC")
    parser.add_argument("--real-sizes", type=int, nargs="+", default=[3, 32, 128], help="energy check on real data")
    parser.add_argument("--teacher", default=None, help="teacher preset or model directory (default: SmolLM2)")
    parser.add_argument("--judge", action="store_true", help="add the label-judge filter (the teacher as judge)")
    parser.add_argument("--holdout", choices=["test", "validation"], default="test")
    parser.add_argument("--band", type=float, nargs=2, default=None, help="energy rank band of the feedback samples")
    parser.add_argument("--tag", default="base")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-gold")
    args = parser.parse_args()

    dataset = RottenTomatoes(RottenTomatoesConfig(seed_per_class=3, test_size=1000))
    splits = {seed: dataset.load(seed) for seed in args.seeds}
    test = splits[args.seeds[0]].test
    rng = random.Random(0)
    reviews = rng.sample([r.input for r in test], args.ood_n)
    plot_rows = [row["text"] for row in load_rotten_tomatoes() if row["category"] == "plot" and len(row["text"]) >= 20]
    plots = rng.sample(sorted(set(plot_rows)), args.ood_n)

    rows = []
    for seed in args.seeds:
        for feedback in (True, False):
            cfg = config(args, seed, feedback)
            started = time.perf_counter()
            metrics = run_config(cfg, args.out)
            last = metrics[-1]
            rows.append(
                {
                    "variant": "GOLD" if feedback else "no feedback",
                    "seed": seed,
                    "accuracy": last["test_metrics"]["accuracy"],
                    "train_size": last["train_size"],
                    "accepted": sum(m.get("accepted", 0) for m in metrics),
                    "rejected": sum(sum((m.get("rejected") or {}).values()) for m in metrics),
                    "feedback_used": sum(m.get("failures", 0) for m in metrics),
                    "auroc": ood_auroc(final_student(args.out / cfg["name"]), reviews, plots),
                    "judge_rejected": sum((m.get("rejected") or {}).get("label-judge", 0) for m in metrics),
                    "teacher_zero_shot": teacher_zero_shot(args.out / cfg["name"]),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)

    real = real_data_auroc(args.real_sizes, reviews, plots)

    lines = [
        f"GOLD vs no-feedback vs the teacher, Rotten Tomatoes (3 real examples per label), teacher"
        f" {args.teacher or 'smollm2-135m'}, judge {args.judge},"
        f" frozen MiniLM student; batches={args.batches} x {args.batch_size}, validation {args.validation_size},"
        f" train every {args.train_every}, temperature {args.temperature}, seeds {args.seeds}, evaluated on the"
        f" {args.holdout} split (n={len(test)})",
        "",
        "| variant | test accuracy | training samples kept | accepted (incl. validation) | rejected (judge) | feedback"
        " samples used | energy AUROC reviews vs plots |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in ("GOLD", "no feedback"):
        group = [r for r in rows if r["variant"] == variant]

        def avg(key: str, group: list[dict[str, Any]] = group) -> str:
            return f"{statistics.mean(r[key] for r in group):.0f}"

        lines.append(
            f"| {variant} | {mean_sd([r['accuracy'] for r in group])} | {avg('train_size')} | {avg('accepted')} |"
            f" {avg('rejected')} ({avg('judge_rejected')}) | {avg('feedback_used')} |"
            f" {mean_sd([r['auroc'] for r in group])} |"
        )
    zero_shot = [r["teacher_zero_shot"] for r in rows if r["teacher_zero_shot"] is not None]
    if zero_shot:
        lines.append(
            f"| teacher zero-shot (300 test snippets) | {statistics.mean(zero_shot):.3f} | – | – | – | – | – |"
        )
    gold = {r["seed"]: r["accuracy"] for r in rows if r["variant"] == "GOLD"}
    base = {r["seed"]: r["accuracy"] for r in rows if r["variant"] == "no feedback"}
    lines += ["", f"GOLD − no feedback, paired by seed: {mean_sd([gold[s] - base[s] for s in args.seeds])}", ""]
    lines += ["| the same student trained on real examples per class | test accuracy | energy AUROC |", "|---|---|---|"]
    lines += [f"| {size} | {v['accuracy']:.3f} | {v['auroc']:.3f} |" for size, v in real.items()]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / f"gold_sentiment-{args.tag}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    details = "\n".join(json.dumps(r) for r in rows)
    out.write_text(f"{table}\n\nper run:\n\n{details}\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
