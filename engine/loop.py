"""The round loop: seed the run, ask for the teacher baseline, then run each round's stages.

A round is train -> evaluate -> select -> generate (the last round: train -> evaluate); the stages
and the runner that owns their resume are in :mod:`distilforge.engine.stages` and
:mod:`distilforge.engine.generation`. Every stage's status is kept in the manifest and its output
on disk, so an interrupted round is redone from its last finished stage without losing or
duplicating a record and without paying again for a sample.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import pluggy
from rich.console import Console

from distilforge.engine.api.context import RunContext
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.api.toolkit.files import atomic_write_text
from distilforge.engine.best_round import carve_validation, patience_exhausted
from distilforge.engine.executors import Executor
from distilforge.engine.generation import GenerateStage
from distilforge.engine.sampling import CachedTeacherAccess
from distilforge.engine.stages import (
    EvaluateStage,
    RoundState,
    SelectStage,
    Stage,
    StageRunner,
    TrainStage,
    write_round_metrics,
)
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
        ctx.teacher_access = CachedTeacherAccess(cache, executor, self.console)
        self.runner = StageRunner(self)
        train, evaluate = TrainStage(self), EvaluateStage(self)
        self.assess: list[Stage] = [train, evaluate]
        self.grow: list[Stage] = [SelectStage(self), GenerateStage(self)]

    # ------------------------------------------------------------------ entry point
    def run(self) -> list[dict[str, Any]]:
        self.ctx.method.check(self.ctx)
        for teacher in (self.ctx.teacher, self.ctx.judge):
            if teacher is not None:
                _ = teacher.model_id  # resolves the model: a teacher preset not set up stops here, before any work
        self._seed()
        self.ctx.state = dict(self.store.manifest.get("state", {}))
        self.ctx.pool = self.store.load_records()  # the seeds: the teacher baseline calibrates on them
        self._teacher_baseline()
        total_rounds = self.ctx.method.rounds
        final = total_rounds
        for round_index in range(total_rounds + 1):
            if self.store.manifest.get("stopped_early") is not None:
                final = int(self.store.manifest["stopped_early"])
                break
            self.ctx.round = round_index
            self.ctx.pool = self.store.load_records()
            last = round_index == total_rounds
            if self.store.stage_done(round_index, "generate") or (
                last and self.store.stage_done(round_index, "evaluate")
            ):
                continue
            fresh = not self.store.manifest["rounds"].get(str(round_index))
            started = time.perf_counter()
            training = self.ctx.method.training_records(self.ctx.pool, self.ctx)
            metrics: dict[str, Any] = {
                "round": round_index,
                "train_size": len(training),
                "pool_size": len(self.ctx.pool),
            }
            state = RoundState(round=round_index, last=last, training=training, metrics=metrics)
            self.runner.run(self.assess, state)
            best = self.store.manifest.get("best")
            if not last and patience_exhausted(best, round_index, self.ctx.config.validation):
                self._stop_early(state)
                continue  # the check at the top ends the loop
            if not last:
                self.runner.run(self.grow, state)
                if round_index == 0 and fresh:
                    self._estimate(time.perf_counter() - started, total_rounds)
        self._method_report()
        self.store.set_status("completed")
        return [self._metrics(r) for r in range(final + 1)]

    def _stop_early(self, state: RoundState) -> None:
        best = self.store.manifest["best"]
        state.metrics["stopped_early"] = True
        write_round_metrics(self.store, state.round, state.metrics)
        self.store.manifest["stopped_early"] = state.round
        self.store.save_manifest()
        self.console.print(
            f"stopping early after round {state.round}: no validation gain for"
            f" {self.ctx.config.validation.patience} rounds since round {best['round']}"
            f" ({best['metric']} {best['value']:.3f})",
            highlight=False,
        )

    def _estimate(self, seconds: float, total_rounds: int) -> None:
        """After round 0, what the rest of the run will take at its pace (rounds 1.. are alike)."""
        remaining = total_rounds - 1  # generating rounds after round 0; the last round only trains
        if remaining <= 0:
            return
        m = self._metrics(0)
        counts = [m, *(m.get("usage") or {}).values()]  # the method's samples, then the judge's and others
        tokens = sum(int(c.get(k) or 0) for c in counts for k in ("prompt_tokens", "completion_tokens"))
        self.console.print(
            f"round 0 took {seconds:.0f} s and {tokens:,} teacher tokens (prompt + completion); at that pace the other"
            f" {remaining} generating rounds take about {seconds * remaining / 60:.0f} min and"
            f" {tokens * remaining:,} tokens (fewer when answers are cached)",
            highlight=False,
        )

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
            self.ctx.validation = self.store.load_validation()
            self.ctx.labels = self.store.manifest.get("labels")
            self.ctx.task = self.store.manifest.get("task", "")
            self.ctx.dataset_info = self.store.manifest.get("dataset_info", {})
            return
        splits = self.ctx.dataset.load(self.ctx.seed)
        check_splits(splits)
        seeds = [r.model_copy(update={"origin": r.origin or "seed", "round": 0}) for r in splits.seed]
        unique = list({r.id: r for r in seeds}.values())
        unique, validation = carve_validation(
            unique, self.ctx.config.validation, self.ctx.seed, stratified=splits.labels is not None
        )
        for path, split in ((self.store.test_path, splits.test), (self.store.layout.validation, validation)):
            path.unlink(missing_ok=True)
            if split or path == self.store.test_path:
                with JsonlAppender(path) as out:
                    out.write_many(r.model_dump(mode="json") for r in split)
        # the seeds and the "seeded" flag land in one manifest write: a kill between two writes re-seeded a
        # run whose seeds were already committed, and every seed record was then in the pool twice
        dataset = {"labels": splits.labels, "task": splits.task, "dataset_info": splits.extra}
        self.store.commit(unique, manifest_updates={**dataset, "seeded": True})
        self.ctx.test, self.ctx.labels, self.ctx.task = list(splits.test), splits.labels, splits.task
        self.ctx.validation = validation
        self.ctx.dataset_info = dict(splits.extra)

    def _teacher_baseline(self) -> None:
        settings = self.ctx.config.teacher_baseline
        if not (settings.enabled and self.ctx.labels) or load_teacher_baseline(self.store.run_dir) is not None:
            return
        self.console.print("teacher baseline: the teacher classifies the test split zero-shot", highlight=False)
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

    def prune_checkpoints(self) -> None:
        """With ``keep_checkpoints: last``, drop every student checkpoint but the latest trained one
        and the best round's (chosen on the validation split)."""
        if self.ctx.config.keep_checkpoints != "last" or self.student_round is None:
            return
        best = self.store.manifest.get("best") or {}
        keep = {self.student_round, best.get("checkpoint")}
        for older in range(self.student_round):
            if older not in keep:
                shutil.rmtree(self.store.layout.student(older), ignore_errors=True)

    def _metrics(self, r: int) -> dict[str, Any]:
        path = self.store.layout.metrics(r)
        return self.store.load_json(r, "metrics.json") if path.exists() else {"round": r}
