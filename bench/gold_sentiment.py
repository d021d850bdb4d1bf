"""Experiment: GOLD vs the no-feedback baseline vs the teacher itself, on Rotten Tomatoes.

The only real data: the task description and 3 examples per label (per random seed). For each
seed, one GOLD run and one no-feedback run (same prompts, same number of generated training
samples, same filters, same student), each scored at the end on the fixed 1,000-snippet test
split; and the SmolLM2 teacher classifying that split itself, zero-shot and with the same 6
examples in its prompt (greedy, answer constrained to the two labels). Then whether energy
separates out-of-distribution text: the AUROC of each final student's energy for 500 review
snippets (test split) vs 500 of the corpus's "plot" rows (plot summaries, not opinions).

    .venv/bin/python bench/gold_sentiment.py                      # 3 seeds, 20 batches of 8
    .venv/bin/python bench/gold_sentiment.py --batches 40 --tag long

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

from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig, load_rotten_tomatoes
from distilforge.plugins.scorers.energy import free_energy
from distilforge.plugins.students.text_classifier import TextClassifierConfig, TextClassifierStudent
from distilforge.schemas import ChatMessage, Record, SamplingParams, TeacherRequest

LABELS = ["negative", "positive"]
STUDENT = {"type": "text-classifier", "mode": "frozen"}


def config(args: argparse.Namespace, seed: int, feedback: bool) -> dict[str, Any]:
    return {
        "name": f"gold-{args.tag}-{'gold' if feedback else 'nofeedback'}-s{seed}",
        "seed": seed,
        "dataset": {"type": "rotten-tomatoes", "seed_per_class": 3, "test_size": 1000},
        "teacher": {"type": "vllm", "seed": seed, "max_model_len": 1536},
        "student": STUDENT,
        "method": {
            "type": "gold",
            "batches": args.batches,
            "batch_size": args.batch_size,
            "validation_size": args.validation_size,
            "train_every": args.train_every,
            "feedback": feedback,
            "sampling": {"temperature": args.temperature, "max_tokens": 96, "stop": ["\n\n"]},
        },
        "scorers": [{"type": "energy"}],
        "filters": [{"type": "parse-validity"}, {"type": "exact-dedup"}, {"type": "faiss-novelty", "threshold": 0.92}],
    }


def final_student(run_dir: Path) -> TextClassifierStudent:
    last = max((d for d in (run_dir / "rounds").iterdir() if (d / "student").exists()), key=lambda d: int(d.name))
    student = TextClassifierStudent(TextClassifierConfig.model_validate(STUDENT))
    student.load(last / "student")
    return student


def ood_auroc(student: TextClassifierStudent, reviews: list[str], plots: list[str]) -> float:
    """AUROC of energy as a detector of plot rows (positives) among review snippets."""
    energy = free_energy(student.logits(reviews + plots))
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


def teacher_accuracy(test: list[Record], shots: dict[int, list[Record]], task: str, saved: Path) -> dict[str, float]:
    """The teacher classifying the test split: zero-shot, and with each seed's examples.
    Deterministic (greedy), so the answer is kept in ``saved`` and read back on a re-run."""
    if saved.exists():
        return dict(json.loads(saved.read_text()))
    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig

    sampling = SamplingParams(temperature=0.0, max_tokens=4, choice=LABELS)

    def request(text: str, examples: list[Record]) -> TeacherRequest:
        shown = "".join(f"Text: {r.input}\nLabel: {r.target}\n\n" for r in examples)
        user = f"{task}\n\n{shown}Text: {text}\nLabel (positive or negative):"
        return TeacherRequest(messages=[ChatMessage(role="user", content=user)], sampling=sampling)

    teacher = VLLMTeacher(VLLMTeacherConfig(seed=0, max_model_len=1536))
    try:
        out = {}
        for name, examples in [("zero-shot", []), *((f"few-shot s{s}", ex) for s, ex in shots.items())]:
            requests = [request(r.input, examples) for r in test]
            answers = {c.request_id: c.text.strip() for c in teacher.sample(requests)}
            out[name] = sum(answers.get(q.id) == r.target for q, r in zip(requests, test, strict=True)) / len(test)
            print(f"teacher {name}: {out[name]:.3f}", flush=True)
        saved.write_text(json.dumps(out))
        return out
    finally:
        teacher.close()


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
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)

    shots = {seed: list(splits[seed].seed) for seed in args.seeds}
    saved = args.out / f"teacher-accuracy-{'-'.join(map(str, args.seeds))}.json"
    teacher = teacher_accuracy(test, shots, splits[args.seeds[0]].task, saved)
    real = real_data_auroc(args.real_sizes, reviews, plots)

    lines = [
        f"GOLD vs no-feedback vs the teacher, Rotten Tomatoes (3 real examples per label), SmolLM2-135M teacher,"
        f" frozen MiniLM student; batches={args.batches} x {args.batch_size}, validation {args.validation_size},"
        f" train every {args.train_every}, temperature {args.temperature}, seeds {args.seeds}, test n={len(test)}",
        "",
        "| variant | test accuracy | training samples kept | accepted (incl. validation) | rejected | feedback"
        " samples used | energy AUROC reviews vs plots |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in ("GOLD", "no feedback"):
        group = [r for r in rows if r["variant"] == variant]

        def avg(key: str, group: list[dict[str, Any]] = group) -> str:
            return f"{statistics.mean(r[key] for r in group):.0f}"

        lines.append(
            f"| {variant} | {mean_sd([r['accuracy'] for r in group])} | {avg('train_size')} | {avg('accepted')} |"
            f" {avg('rejected')} | {avg('feedback_used')} | {mean_sd([r['auroc'] for r in group])} |"
        )
    few = [v for k, v in teacher.items() if k.startswith("few-shot")]
    lines.append(f"| teacher zero-shot | {teacher['zero-shot']:.3f} | – | – | – | – | – |")
    lines.append(f"| teacher with the same 6 examples | {mean_sd(few)} | – | – | – | – | – |")
    gold = {r["seed"]: r["accuracy"] for r in rows if r["variant"] == "GOLD"}
    base = {r["seed"]: r["accuracy"] for r in rows if r["variant"] == "no feedback"}
    lines += ["", f"GOLD − no feedback, paired by seed: {mean_sd([gold[s] - base[s] for s in args.seeds])}", ""]
    lines += ["| the same student trained on real examples per class | test accuracy | energy AUROC |", "|---|---|---|"]
    lines += [f"| {size} | {v['accuracy']:.3f} | {v['auroc']:.3f} |" for size, v in real.items()]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / f"gold_sentiment-{args.tag}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    details = "\n".join(json.dumps(r) for r in rows) + "\n" + json.dumps({"teacher": teacher})
    out.write_text(f"{table}\n\nper run:\n\n{details}\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
