"""The round loop: seed the run, ask for the teacher baseline, then run each round's stages.

A round is train -> evaluate -> select -> generate (the last round: train -> evaluate); the stages
and the runner that owns their resume are in :mod:`distilforge.engine.stages` and
:mod:`distilforge.engine.generation`. Every stage's status is kept in the manifest and its output
on disk, so an interrupted round is redone from its last finished stage without losing or
duplicating a record and without paying again for a sample.
"""

from __future__ import annotations

import shutil
from typing import Any

import pluggy
from rich.console import Console

from distilforge.engine.api.context import RunContext
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.api.toolkit.files import atomic_write_text
from distilforge.engine.executors import Executor
from distilforge.engine.generation import GenerateStage
from distilforge.engine.progress import stage_status
from distilforge.engine.sampling import CachedTeacherAccess
from distilforge.engine.stages import EvaluateStage, RoundState, SelectStage, Stage, StageRunner, TrainStage
from distilforge.engine.store import RunStore, TeacherCache
from distilforge.engine.store.jsonl import JsonlAppender
from distilforge.engine.teacher_baseline import load_teacher_baseline, run_teacher_baseline
from distilforge.engine.validation import check_splits


class RoundLoop:
    def __init__(
        self,
        ctx: RunContext,
        store: RunStore,
        cache: TeacherCache,
        executor: Executor,
        pm: pluggy.PluginManager,
        console: Console | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.cache = cache
        self.executor = executor
        self.pm = pm
        self.console = console or make_console()
        self.student_round: int | None = None  # whose checkpoint the in-memory student holds
        # stages that ask a teacher themselves (judge, baseline) go through the same cache and executor
        ctx.teacher_access = CachedTeacherAccess(cache, executor)
        self.runner = StageRunner(self)
        train, evaluate = TrainStage(self), EvaluateStage(self)
        self.stages: list[Stage] = [train, evaluate, SelectStage(self), GenerateStage(self)]
        self.last_stages: list[Stage] = [train, evaluate]

    # ------------------------------------------------------------------ entry point
    def run(self) -> list[dict[str, Any]]:
        self.ctx.method.check(self.ctx)
        for teacher in (self.ctx.teacher, self.ctx.judge):
            if teacher is not None:
                _ = teacher.model_id  # resolves the model: a teacher preset not set up stops here, before any work
        self._seed()
        self.ctx.state = dict(self.store.manifest.get("state", {}))
        self._teacher_baseline()
        total_rounds = self.ctx.method.rounds
        for round_index in range(total_rounds + 1):
            self.ctx.round = round_index
            self.ctx.pool = self.store.load_records()
            last = round_index == total_rounds
            if self.store.stage_done(round_index, "generate") or (
                last and self.store.stage_done(round_index, "evaluate")
            ):
                continue
            training = self.ctx.method.training_records(self.ctx.pool, self.ctx)
            metrics: dict[str, Any] = {
                "round": round_index,
                "train_size": len(training),
                "pool_size": len(self.ctx.pool),
            }
            state = RoundState(round=round_index, last=last, training=training, metrics=metrics)
            self.runner.run(self.last_stages if last else self.stages, state)
        self._method_report()
        self.store.set_status("completed")
        return [self._metrics(r) for r in range(total_rounds + 1)]

    def _method_report(self) -> None:
        """The method's report section, written where the report collects plugin sections."""
        text = self.ctx.method.report_section(self.ctx)
        if text:
            sections = self.store.layout.report_sections
            sections.mkdir(exist_ok=True)
            atomic_write_text(sections / f"{self.ctx.method.name}.md", text)

    # ------------------------------------------------------------------ before the rounds
    def _seed(self) -> None:
        if self.store.manifest["seeded"]:
            self.ctx.test = self.store.load_test()
            self.ctx.labels = self.store.manifest.get("labels")
            self.ctx.task = self.store.manifest.get("task", "")
            self.ctx.dataset_info = self.store.manifest.get("dataset_info", {})
            return
        splits = self.ctx.dataset.load(self.ctx.seed)
        check_splits(splits)
        seeds = [r.model_copy(update={"origin": r.origin or "seed", "round": 0}) for r in splits.seed]
        unique = list({r.id: r for r in seeds}.values())
        test_file = self.store.test_path
        test_file.unlink(missing_ok=True)
        with JsonlAppender(test_file) as out:
            out.write_many(r.model_dump(mode="json") for r in splits.test)
        # the seeds and the "seeded" flag land in one manifest write: a kill between two writes re-seeded a
        # run whose seeds were already committed, and every seed record was then in the pool twice
        dataset = {"labels": splits.labels, "task": splits.task, "dataset_info": splits.extra}
        self.store.commit(unique, manifest_updates={**dataset, "seeded": True})
        self.ctx.test, self.ctx.labels, self.ctx.task = list(splits.test), splits.labels, splits.task
        self.ctx.dataset_info = dict(splits.extra)

    def _teacher_baseline(self) -> None:
        settings = self.ctx.config.teacher_baseline
        if not (settings.enabled and self.ctx.labels) or load_teacher_baseline(self.store.run_dir) is not None:
            return
        with stage_status(self.console, "teacher baseline: the teacher classifies the test split zero-shot"):
            result = run_teacher_baseline(self.ctx)
        if result is not None:
            self.console.print(
                f"teacher zero-shot accuracy: {result['accuracy']:.3f} on {result['n']} test examples"
                f" ({result['seconds']:.0f} s)",
                highlight=False,
            )

    # ------------------------------------------------------------------ the student's checkpoints
    def load_student(self, r: int) -> None:
        """Load the checkpoint the student of round ``r`` is: that of the last round that trained."""
        trained = next(t for t in range(r, -1, -1) if self.store.layout.student(t).exists())
        if self.student_round != trained:
            self.ctx.student.load(self.store.layout.student(trained))
            self.student_round = trained

    def drop_checkpoints_before(self, r: int) -> None:
        for older in range(r):
            shutil.rmtree(self.store.layout.student(older), ignore_errors=True)

    def _metrics(self, r: int) -> dict[str, Any]:
        path = self.store.layout.metrics(r)
        return self.store.load_json(r, "metrics.json") if path.exists() else {"round": r}
