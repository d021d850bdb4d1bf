"""A round as a short list of stages, and the runner that owns their resume.

A stage reads what the earlier stages left in the :class:`RoundState`, does its work and writes
its output into the round's directory; the runner then saves the round's metrics so far and marks
the stage done in the manifest. On resume, a stage marked done is not run again: its ``resume``
reads its output back, so the student is reloaded instead of retrained, the evaluation and the
chosen failures are read from disk, and the teacher's samples come from the cache. The generate
stage commits the round's records, rejects and its own "done" mark in one atomic step, so it marks
itself (``commits``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from distilforge.engine import hooks
from distilforge.engine.best_round import improved_best
from distilforge.engine.progress import stage_status
from distilforge.engine.store import RunStore
from distilforge.schemas import Evaluation, Record, RoundMetrics

if TYPE_CHECKING:
    from distilforge.engine.loop import RoundLoop

PARTIAL_METRICS = "metrics.partial.json"


def write_round_metrics(store: RunStore, r: int, metrics: dict[str, Any]) -> None:
    """``metrics.json`` of round ``r``, checked against :class:`RoundMetrics` first (a stage that
    wrote a field of the wrong type fails here, not in the report)."""
    store.save_json(r, "metrics.json", RoundMetrics.model_validate(metrics).model_dump(mode="json", exclude_unset=True))


@dataclass
class RoundState:
    """What one round's stages hand each other."""

    round: int
    last: bool  # the final evaluation round: train and evaluate only
    training: list[Record]
    metrics: dict[str, Any]
    train_eval: Evaluation | None = None
    failures: list[Record] = field(default_factory=list)


class Stage(ABC):
    name: ClassVar[str]
    commits: ClassVar[bool] = False  # marks itself done inside its own commit

    def __init__(self, loop: RoundLoop) -> None:
        self.loop = loop

    @abstractmethod
    def run(self, state: RoundState) -> None:
        """Do the stage's work and write its output to the round's directory."""

    def resume(self, state: RoundState) -> None:  # noqa: B027 - most stages have nothing to reload
        """Read back what :meth:`run` left, after a restart."""


class StageRunner:
    def __init__(self, loop: RoundLoop) -> None:
        self.store = loop.store

    def run(self, stages: list[Stage], state: RoundState) -> None:
        r = state.round
        state.metrics.update(self._partial(r))
        for stage in stages:
            if self.store.stage_done(r, stage.name):
                stage.resume(state)
                continue
            stage.run(state)
            if not stage.commits:
                self.store.save_json(r, PARTIAL_METRICS, state.metrics)
                self.store.mark(r, stage.name)

    def _partial(self, r: int) -> dict[str, Any]:
        if self.store.layout.round_file(r, PARTIAL_METRICS).exists():
            loaded: dict[str, Any] = self.store.load_json(r, PARTIAL_METRICS)
            return loaded
        return {}


class TrainStage(Stage):
    """Train the student from its base weights on the method's training records (or keep the last
    trained one, when the method says so) and checkpoint it."""

    name = "train"

    def run(self, state: RoundState) -> None:
        loop, ctx, r = self.loop, self.loop.ctx, state.round
        if r > 0 and not ctx.method.should_train(r, ctx):
            loop.load_student(r)  # a no-op unless resumed: the student in memory is the last one trained
            state.metrics["trained"] = False
            return
        started = time.perf_counter()
        with stage_status(loop.console, f"round {r}: training the student on {len(state.training)} records"):
            stats = hooks.train_student(loop.pm, ctx.student, state.training, ctx)
        state.metrics["train_stats"] = stats
        state.metrics["train_seconds"] = round(time.perf_counter() - started, 2)
        state.metrics["trained"] = True
        ctx.student.save(loop.store.layout.student(r))
        loop.student_round = r
        loop.prune_checkpoints()

    def resume(self, state: RoundState) -> None:
        self.loop.load_student(state.round)


class EvaluateStage(Stage):
    """Evaluate the student on its pool, on the test split and on the validation split if there is
    one (an untrained round reuses the last held-out evaluations: same student, same answers), and
    keep track of the best round on validation."""

    name = "evaluate"

    def run(self, state: RoundState) -> None:
        loop, ctx, store, r = self.loop, self.loop.ctx, self.loop.store, state.round
        trained = state.metrics.get("trained", True)
        with stage_status(loop.console, f"round {r}: evaluating the student"):
            train_eval = hooks.evaluate_student(loop.pm, ctx.student, ctx.pool, "train", ctx)
            held_out = {"test": ctx.test, "validation": ctx.validation}
            evaluations = {
                split: hooks.evaluate_student(loop.pm, ctx.student, records, split, ctx)
                if trained
                else Evaluation.model_validate(store.load_json(r - 1, f"evaluation_{split}.json"))
                for split, records in held_out.items()
                if records
            }
        store.save_json(r, "evaluation_train.json", train_eval.model_dump(mode="json"))
        for split, evaluation in evaluations.items():
            store.save_json(r, f"evaluation_{split}.json", evaluation.model_dump(mode="json"))
            state.metrics[f"{split}_metrics"] = evaluation.metrics
        state.train_eval = train_eval
        state.metrics["train_metrics"] = train_eval.metrics
        if "validation" in evaluations:
            self._track_best(r, evaluations["validation"].metrics)
        if state.last:  # the last round's metrics are final here; written before the stage counts as done
            write_round_metrics(store, r, state.metrics)

    def _track_best(self, r: int, metrics: dict[str, float]) -> None:
        """The manifest's ``best`` entry moves to round ``r`` when it beats it on validation (saved
        with the stage's done mark); the checkpoint it names is kept."""
        loop = self.loop
        best = improved_best(
            loop.store.manifest.get("best"),
            round_index=r,
            checkpoint=loop.student_round,
            metrics=metrics,
            settings=loop.ctx.config.validation,
        )
        if best is not None:
            loop.store.manifest["best"] = best
            loop.prune_checkpoints()

    def resume(self, state: RoundState) -> None:
        state.train_eval = Evaluation.model_validate(self.loop.store.load_json(state.round, "evaluation_train.json"))


class SelectStage(Stage):
    """The method picks the records the teacher should learn from (saved by id)."""

    name = "select"

    def run(self, state: RoundState) -> None:
        loop = self.loop
        assert state.train_eval is not None
        failures = hooks.select_failures(loop.pm, loop.ctx.pool, state.train_eval, loop.ctx)
        loop.store.save_json(state.round, "failures.json", [f.id for f in failures])
        self._count(state, failures)

    def resume(self, state: RoundState) -> None:
        by_id = {rec.id: rec for rec in self.loop.ctx.pool}
        ids = self.loop.store.load_json(state.round, "failures.json")
        self._count(state, [by_id[i] for i in ids if i in by_id])

    @staticmethod
    def _count(state: RoundState, failures: list[Record]) -> None:
        state.failures = failures
        state.metrics["failures"] = len(failures)
        state.metrics["failures_by_origin"] = dict(Counter(f.origin for f in failures))
