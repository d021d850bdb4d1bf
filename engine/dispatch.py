"""Default stage hooks: hand each stage to the components named in the run config.

These implementations are ``trylast``, so any plugin that implements a stage hook itself runs
first (and, for firstresult hooks, can take the stage over by returning non-None).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from distilforge.engine.api.components import Student, Verdict
from distilforge.engine.api.context import RunContext, TeacherContext
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.engine.executors import score_with
from distilforge.schemas import Completion, Evaluation, Record, TeacherRequest


@hookimpl(trylast=True)
def teacher_sample(requests: Sequence[TeacherRequest], ctx: TeacherContext) -> Iterable[Completion]:
    return ctx.teacher.sample(requests)


@hookimpl(trylast=True)
def select_failures(records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record]:
    return ctx.method.select_failures(records, evaluation, ctx)


@hookimpl(trylast=True)
def build_prompts(failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]:
    return ctx.method.build_prompts(failures, ctx)


@hookimpl(trylast=True)
def parse_completion(completion: Completion, request: TeacherRequest, ctx: RunContext) -> list[Record] | str:
    return ctx.method.parse_completion(completion, request, ctx)


@hookimpl(trylast=True)
def train_student(student: Student, records: Sequence[Record], ctx: RunContext) -> dict[str, float]:
    return student.train(records, seed=ctx.seed)


@hookimpl(trylast=True)
def evaluate_student(student: Student, records: Sequence[Record], split: str, ctx: RunContext) -> Evaluation:
    return student.evaluate(records, split)


@hookimpl(trylast=True)
def score_ood(records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
    # called by the executor: here on the whole batch, or on a Ray worker per shard (with the
    # shard-safe scorers; the executor runs the others on the driver)
    return score_with(ctx.scorers, records, ctx)


@hookimpl(trylast=True)
def filter_records(records: Sequence[Record], ctx: RunContext) -> list[Verdict]:
    """Apply the configured filters in order; each sees only the survivors of the ones before."""
    verdicts: list[Verdict] = []
    survivors = list(records)
    for component in ctx.filters:
        rejected = component.reject(survivors, ctx)
        verdicts.extend(Verdict(rid, component.name, reason) for rid, reason in rejected.items())
        survivors = [r for r in survivors if r.id not in rejected]
    return verdicts
