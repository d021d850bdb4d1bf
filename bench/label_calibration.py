"""How a teacher's labels should be read: label orders, calibration, guided or first-token decoding.

Every text of a held-out set is asked in every cyclic label order once, with the first token's
top log-probabilities, and so are the calibration inputs (content-free texts; labelled seeds).
All the ways to read a label are then computed from those same answers:

- ``orders=k``: average the label distributions of the first k orders (today's default: 2);
- ``order i``: one order alone, raw;
- ``+ content-free``: each order's distribution divided by that order's prior, the mean answer to
  "N/A", "[MASK]" and "" (Zhao et al. 2021): 3 prompts per order, once per task;
- ``+ seeds``: a per-label bias fitted on the labelled seeds' answers (maximum likelihood);
- ``+ batch``: the prior is the mean answer over the labelled texts themselves (transductive;
  shown for reference, it needs the whole batch first and assumes balanced labels).

Each order is one timed teacher call, so the cost of an order is measured, not assumed. Texts
come from a split no setting is tuned on twice: Rotten Tomatoes' validation holdout (disjoint
from the test split and from the seeds), and for ``--task rt-plot`` the corpus's plot summaries
as a third label. Answers are cached (``--cache``), so a rerun or a killed run pays nothing twice.

    HF_HUB_OFFLINE=1 python bench/label_calibration.py \\
        --teacher '{"type": "llamacpp", "model": "qwen2.5-coder-1.5b"}' --first-token \\
        --task rt --per-label 200 --out bench/results/label_calibration-rt
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from result_files import save_results
from teacher_throughput import cpu_model  # noqa: F401  (also sets the offline environment)

from distilforge.engine.api.toolkit.labelling import (
    combine_votes,
    content_free_prior,
    content_free_requests,
    fitted_prior,
    label_distribution,
    label_requests,
)
from distilforge.engine.store.cache import TeacherCache, cache_key
from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig, load_rotten_tomatoes
from distilforge.plugins.teachers.cpu_kind import describe_cpu
from distilforge.schemas import Completion, TeacherRequest

PLOT_TASK = (
    "Classify a text about a movie: a positive review snippet, a negative review snippet, or a plot summary"
    " (it tells what happens in the film, without an opinion)."
)


def build_teacher(spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "vllm":
        from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig

        return VLLMTeacher(VLLMTeacherConfig(**spec))
    if kind == "llamacpp":
        from distilforge.plugins.teachers.llamacpp_teacher import LlamaCppTeacher, LlamaCppTeacherConfig

        return LlamaCppTeacher(LlamaCppTeacherConfig(**spec))
    if kind == "openai":
        from distilforge.plugins.teachers.openai_config import OpenAITeacherConfig
        from distilforge.plugins.teachers.openai_teacher import OpenAITeacher

        return OpenAITeacher(OpenAITeacherConfig(**spec))
    raise SystemExit(f"unknown teacher type {kind!r} (vllm, llamacpp, openai)")


def task_data(task: str, per_label: int, seeds_per_label: int) -> tuple[list[str], str, list, list]:
    """(labels, task text, [(text, label)] to label, [(text, label)] seeds), all from the training side."""
    rt = RottenTomatoes(RottenTomatoesConfig(holdout="validation", seed_per_class=seeds_per_label)).load(0)
    rng = random.Random(7)
    held = {label: [r.input for r in rt.test if r.target == label] for label in rt.labels or []}
    items = [(t, label) for label, texts in held.items() for t in rng.sample(texts, min(per_label, len(texts)))]
    seeds = [(r.input, r.target) for r in rt.seed]
    labels, description = list(rt.labels or []), rt.task
    if task == "rt-plot":
        plots = sorted({row["text"] for row in load_rotten_tomatoes() if row["category"] == "plot"})
        plots = [p for p in plots if 20 <= len(p) <= 600]
        rng.shuffle(plots)
        items += [(t, "plot") for t in plots[:per_label]]
        seeds += [(t, "plot") for t in plots[per_label : per_label + seeds_per_label]]
        labels, description = [*labels, "plot"], PLOT_TASK
    rng.shuffle(items)
    return labels, description, items, seeds


def ask(teacher: Any, cache: TeacherCache, requests: list[TeacherRequest]) -> tuple[dict, float, int]:
    """Answers of ``requests`` (cached ones read back), the seconds spent and the count asked."""
    keys = {q.id: cache_key(teacher.model_id, q, 0) for q in requests}
    found = cache.get_many(list(keys.values()))
    todo = [q for q in requests if keys[q.id] not in found]
    started = time.perf_counter()
    fresh = list(teacher.sample(todo)) if todo else []
    seconds = time.perf_counter() - started
    cache.put_many((keys[c.request_id], c) for c in fresh if c.ok)
    answers = {(q.id, 0): found[keys[q.id]] for q in requests if keys[q.id] in found}
    answers.update({(c.request_id, c.sample_index): c for c in fresh})
    return answers, seconds, len(todo)


def score(votes: dict[str, Any], truth: dict[str, str], labels: Sequence[str]) -> dict[str, Any]:
    correct = sum(1 for key, label in truth.items() if key in votes and votes[key].label == label)
    predicted = Counter(votes[key].label for key in truth if key in votes)
    recalls = []
    for label in labels:
        members = [k for k, y in truth.items() if y == label]
        recalls.append(sum(1 for k in members if k in votes and votes[k].label == label) / max(1, len(members)))
    return {
        "accuracy": correct / len(truth),
        "balanced_accuracy": sum(recalls) / len(recalls),
        "top_share": max(predicted.values()) / max(1, sum(predicted.values())),
        "undecided": sum(1 for k in truth if k not in votes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="teacher config as JSON")
    parser.add_argument("--task", choices=["rt", "rt-plot"], default="rt")
    parser.add_argument("--per-label", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=8, help="labelled seeds per label for the seed calibration")
    parser.add_argument("--first-token", action="store_true", help="one free token instead of guided choice")
    parser.add_argument("--cache", type=Path, default=Path("bench/cache/label_calibration.sqlite"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    labels, task, items, seeds = task_data(args.task, args.per_label, args.seeds)
    orders = len(labels)
    prompt = {"orders": orders, "first_token": args.first_token}
    text_requests = {
        f"t{i}": label_requests(f"t{i}", text, labels, task, **prompt) for i, (text, _) in enumerate(items)
    }
    seed_requests = [
        q for i, (text, _) in enumerate(seeds) for q in label_requests(f"s{i}", text, labels, task, **prompt)
    ]
    free_requests = content_free_requests(labels, task, **prompt)
    truth = {f"t{i}": label for i, (_, label) in enumerate(items)}
    seed_truth = {f"s{i}": label for i, (_, label) in enumerate(seeds)}

    teacher = build_teacher(json.loads(args.teacher))
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = TeacherCache(args.cache)
    answers: dict[tuple[str, int], Completion] = {}
    timings = []
    try:
        calibration, seconds, asked = ask(teacher, cache, free_requests + seed_requests)
        answers.update(calibration)
        print(f"calibration prompts: {asked} asked in {seconds:.1f} s", flush=True)
        for order in range(orders):
            batch = [qs[order] for qs in text_requests.values()]
            got, seconds, asked = ask(teacher, cache, batch)
            answers.update(got)
            tokens = sum(c.prompt_tokens for c in got.values())
            timings.append({"order": order, "asked": asked, "seconds": round(seconds, 2), "prompt_tokens": tokens})
            rate = f"{asked / seconds:.2f} labels/s" if asked else "all cached"
            print(f"order {order}: {len(batch)} texts, {asked} asked in {seconds:.1f} s ({rate})", flush=True)
    finally:
        teacher.close()
        cache.close()

    all_requests = [q for qs in text_requests.values() for q in qs]
    free = content_free_prior(free_requests, answers, labels)
    seed_prior = {}
    for order in range(orders):
        dists, targets = [], []
        for q in seed_requests:
            if q.meta["label_order"] != order:
                continue
            completion = answers.get((q.id, 0))
            d = label_distribution(completion, labels) if completion else None
            if d is not None:
                dists.append(d)
                targets.append(seed_truth[str(q.meta["judge_key"])])
        seed_prior[order] = fitted_prior(dists, targets, labels) or {}
    batch_prior = {}
    for order in range(orders):
        dists = [label_distribution(answers[(q.id, 0)], labels) for q in all_requests if q.meta["label_order"] == order]
        found = [d for d in dists if d]
        batch_prior[order] = {label: sum(d[label] for d in found) / len(found) for label in labels}

    def pick(order_set: Sequence[int]) -> list[TeacherRequest]:
        return [q for q in all_requests if q.meta["label_order"] in order_set]

    rows = []
    variants: list[tuple[str, Sequence[int], dict | None]] = []
    for k in range(1, orders + 1):
        for name, prior in (("raw", None), ("content-free", free), ("seeds", seed_prior), ("batch", batch_prior)):
            variants.append((f"orders 0..{k - 1}, {name}" if k > 1 else f"order 0, {name}", list(range(k)), prior))
    for order in range(1, orders):
        for name, prior in (("raw", None), ("content-free", free), ("seeds", seed_prior)):
            variants.append((f"order {order}, {name}", [order], prior))
    for name, order_set, prior in variants:
        votes = combine_votes(pick(order_set), answers, labels, prior)
        rows.append({"variant": name, "prompts_per_label": len(order_set), **score(votes, truth, labels)})

    priors = "; ".join(
        f"{o}: " + ", ".join(f"{lab} {p:.2f}" for lab, p in free.get(o, {}).items()) for o in range(orders)
    )
    lines = [
        f"task {args.task}: {len(items)} texts ({args.per_label} per label: {', '.join(labels)}),"
        f" teacher {args.teacher}",
        f"decoding: {'first token, free' if args.first_token else 'guided choice'}; {describe_cpu()}",
        f"content-free prior per order: {priors}",
        "",
        "| variant | prompts/label | accuracy | balanced acc | top label share | undecided |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['prompts_per_label']} | {row['accuracy']:.3f} | {row['balanced_accuracy']:.3f}"
            f" | {row['top_share']:.2f} | {row['undecided']} |"
        )
    lines += ["", "| order | texts asked | seconds | labels/s |", "|---|---|---|---|"]
    for t in timings:
        rate = f"{t['asked'] / t['seconds']:.2f}" if t["asked"] else "cached"
        lines.append(f"| {t['order']} | {t['asked']} | {t['seconds']} | {rate} |")
    print("\n".join(lines))
    if args.out:
        save_results(args.out, "Label reading", lines, {"rows": rows, "timings": timings, "prior": free})


if __name__ == "__main__":
    main()
