"""The teacher's own zero-shot accuracy on the test split: does the teacher know the task?

Computed once per run, right after seeding, through the teacher cache (a resumed run pays
nothing twice), and saved as ``teacher_baseline.json`` in the run directory; the summary table
and the report put it beside the student's seed-only and final accuracy.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from distilforge.engine.api.context import RunContext
from distilforge.engine.api.toolkit.files import atomic_write_text
from distilforge.engine.api.toolkit.labelling import ask_labels
from distilforge.schemas import RunLayout

FILE = RunLayout(Path(".")).teacher_baseline.name


def load_teacher_baseline(run_dir: Path) -> dict[str, Any] | None:
    path = RunLayout(run_dir).teacher_baseline
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run_teacher_baseline(ctx: RunContext) -> dict[str, Any] | None:
    """Classify (a fixed subset of) the test split with the run's teacher; None when the task has
    no labels or the baseline is switched off. Saved once; later calls read it back."""
    settings = ctx.config.teacher_baseline
    labels = list(ctx.labels or [])
    if not settings.enabled or not labels or not ctx.test:
        return None
    done = load_teacher_baseline(ctx.run_dir)
    if done is not None:
        return done
    test = [r for r in ctx.test if r.target in labels]
    if not test:
        return None
    if settings.max_examples is not None and len(test) > settings.max_examples:
        test = random.Random(0).sample(test, settings.max_examples)
    started = time.perf_counter()
    votes = ask_labels(ctx, {r.id: r.input for r in test}, labels, settings, purpose="teacher-baseline")
    correct = sum(1 for r in test if r.id in votes and votes[r.id].label == r.target)
    recall = {}
    for label in labels:
        members = [r for r in test if r.target == label]
        hits = sum(1 for r in members if r.id in votes and votes[r.id].label == label)
        recall[label] = round(hits / len(members), 4) if members else None
    result = {
        "teacher": ctx.teacher.model_id,
        "accuracy": round(correct / len(test), 4),
        "n": len(test),
        "test_size": len(ctx.test),
        "orders": settings.orders,
        "calibration": settings.calibration,
        "first_token": settings.first_token,
        "undecided": sum(1 for r in test if r.id not in votes),
        "recall": recall,
        "predicted": {label: sum(1 for v in votes.values() if v.label == label) for label in labels},
        "usage": ctx.usage.pop("teacher-baseline", {}),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(ctx.layout.teacher_baseline, json.dumps(result, indent=2) + "\n")
    return result
