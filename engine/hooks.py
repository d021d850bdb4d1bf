"""Thin typed wrappers: the only place the core calls ``pm.hook.*``.

Each wrapper states what the engine expects back and turns "no plugin answered" into a clear
error instead of a silent ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pluggy

from distilforge.engine.api.components import Student, Verdict
from distilforge.engine.api.context import RunContext, TeacherContext
from distilforge.engine.api.errors import DistilforgeError
from distilforge.schemas import Completion, Evaluation, Record, TeacherRequest


def _answered(hook: str, value: object) -> None:
    if value is None:
        raise DistilforgeError(f"no plugin answered hook {hook!r}; is the component that handles it installed?")


def teacher_sample(
    pm: pluggy.PluginManager, requests: Sequence[TeacherRequest], ctx: TeacherContext
) -> Iterable[Completion]:
    result = pm.hook.teacher_sample(requests=requests, ctx=ctx)
    _answered("teacher_sample", result)
    return result


def select_failures(
    pm: pluggy.PluginManager, records: Sequence[Record], evaluation: Evaluation, ctx: RunContext
) -> list[Record]:
    result = pm.hook.select_failures(records=records, evaluation=evaluation, ctx=ctx)
    _answered("select_failures", result)
    return list(result)


def build_prompts(pm: pluggy.PluginManager, failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]:
    result = pm.hook.build_prompts(failures=failures, ctx=ctx)
    _answered("build_prompts", result)
    return list(result)


def parse_completion(
    pm: pluggy.PluginManager, completion: Completion, request: TeacherRequest, ctx: RunContext
) -> list[Record] | str:
    result = pm.hook.parse_completion(completion=completion, request=request, ctx=ctx)
    _answered("parse_completion", result)
    return result if isinstance(result, str) else list(result)


def train_student(
    pm: pluggy.PluginManager, student: Student, records: Sequence[Record], ctx: RunContext
) -> dict[str, float]:
    result = pm.hook.train_student(student=student, records=records, ctx=ctx)
    _answered("train_student", result)
    return dict(result)


def evaluate_student(
    pm: pluggy.PluginManager, student: Student, records: Sequence[Record], split: str, ctx: RunContext
) -> Evaluation:
    """Per-record results from the first answer that has them; metrics merged from all answers."""
    answers: list[Evaluation] = [
        a for a in pm.hook.evaluate_student(student=student, records=records, split=split, ctx=ctx) if a
    ]
    _answered("evaluate_student", answers or None)
    # pluggy returns the last-registered (and tryfirst) implementations first; the engine's
    # default is trylast, so a plugin's per-record results take precedence over the default.
    primary = next((a for a in answers if a.results), answers[0])
    merged = primary.model_copy(deep=True)
    for answer in answers:
        if answer is not primary:
            merged.metrics.update(answer.metrics)
    return merged


def score_ood(pm: pluggy.PluginManager, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
    merged: dict[str, dict[str, float]] = {}
    for answer in pm.hook.score_ood(records=records, ctx=ctx):
        for record_id, scores in (answer or {}).items():
            merged.setdefault(record_id, {}).update(scores)
    return merged


def filter_records(pm: pluggy.PluginManager, records: Sequence[Record], ctx: RunContext) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for answer in pm.hook.filter_records(records=records, ctx=ctx):
        verdicts.extend(Verdict(*v) for v in answer or [])
    return verdicts
