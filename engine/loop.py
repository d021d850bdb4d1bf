"""The round loop: train -> evaluate -> select failures -> prompt -> sample -> parse -> score -> filter -> commit.

Every stage's status is kept in the manifest and its output on disk, so a resumed run skips
finished stages: the student checkpoint is reloaded instead of retrained, the evaluation and
the chosen failures are read back, and teacher samples come from the cache. A round is
committed in one step (see ``RunStore.commit``); an interrupted round is redone from its last
finished stage without losing or duplicating a record and without paying again for a sample.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from typing import Any

import pluggy
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distilforge.engine import hooks
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import DistilforgeError, TeacherUnavailable
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.executors import Executor
from distilforge.engine.sampling import CachedTeacherAccess, sample_with_cache
from distilforge.engine.store import RunStore, TeacherCache
from distilforge.engine.store.jsonl import JsonlAppender
from distilforge.engine.teacher_baseline import load_teacher_baseline, run_teacher_baseline
from distilforge.schemas import Completion, Evaluation, Provenance, Record, Reject, TeacherRequest


def retry_request(request: TeacherRequest, count: int, attempt: int) -> TeacherRequest:
    """The same prompt asked again for ``count`` samples under a new salt, so a sampling teacher draws fresh
    answers and the cache does not hand back the ones that could not be parsed."""
    data = request.model_dump(exclude={"id"})
    data["sampling"]["n"] = count
    data["salt"] = f"{request.salt}|retry-{attempt}"
    data["meta"] = {**request.meta, "retry_of": request.meta.get("retry_of", request.id), "attempt": attempt}
    return TeacherRequest.model_validate(data)


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
        self._student_round: int | None = None  # whose checkpoint the in-memory student holds
        # stages that ask a teacher themselves (judge, baseline) go through the same cache and executor
        ctx.teacher_access = CachedTeacherAccess(cache, executor)

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
            self._round(round_index, generate=not last)
        self.store.set_status("completed")
        return [self._metrics(r) for r in range(total_rounds + 1)]

    # ------------------------------------------------------------------ stages
    def _seed(self) -> None:
        if self.store.manifest["seeded"]:
            self.ctx.test = self.store.load_test()
            self.ctx.labels = self.store.manifest.get("labels")
            self.ctx.task = self.store.manifest.get("task", "")
            self.ctx.dataset_info = self.store.manifest.get("dataset_info", {})
            return
        splits = self.ctx.dataset.load(self.ctx.seed)
        for split, rows in (("train (seed)", splits.seed), ("test", splits.test)):
            if not rows:
                raise DistilforgeError(
                    f"dataset: the {split} split is empty; a run needs seed examples to train on and test examples"
                    " to score the student"
                )
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
        with self.console.status("teacher baseline: the teacher classifies the test split zero-shot"):
            result = run_teacher_baseline(self.ctx)
        if result is not None:
            self.console.print(
                f"teacher zero-shot accuracy: {result['accuracy']:.3f} on {result['n']} test examples"
                f" ({result['seconds']:.0f} s)",
                highlight=False,
            )

    def _round(self, r: int, *, generate: bool) -> None:
        ctx, store = self.ctx, self.store
        training = ctx.method.training_records(ctx.pool, ctx)
        metrics: dict[str, Any] = {"round": r, "train_size": len(training), "pool_size": len(ctx.pool)}
        metrics.update(self._load_partial_metrics(r))

        if store.stage_done(r, "train"):
            self._load_student(r)
        elif r > 0 and not ctx.method.should_train(r, ctx):
            self._load_student(r)  # a no-op unless resumed: the student in memory is the last one trained
            metrics["trained"] = False
            self._save_partial_metrics(r, metrics)
            store.mark(r, "train")
        else:
            started = time.perf_counter()
            with self.console.status(f"round {r}: training the student on {len(training)} records"):
                stats = hooks.train_student(self.pm, ctx.student, training, ctx)
            metrics["train_stats"] = stats
            metrics["train_seconds"] = round(time.perf_counter() - started, 2)
            metrics["trained"] = True
            ctx.student.save(store.layout.student(r))
            self._student_round = r
            self._save_partial_metrics(r, metrics)
            store.mark(r, "train")
            self._drop_old_checkpoints(r)

        if store.stage_done(r, "evaluate"):
            train_eval = Evaluation.model_validate(store.load_json(r, "evaluation_train.json"))
        else:
            with self.console.status(f"round {r}: evaluating the student"):
                train_eval = hooks.evaluate_student(self.pm, ctx.student, ctx.pool, "train", ctx)
                if metrics.get("trained", True):
                    test_eval = hooks.evaluate_student(self.pm, ctx.student, ctx.test, "test", ctx)
                else:  # same student as last round: same answers on the test split
                    test_eval = Evaluation.model_validate(store.load_json(r - 1, "evaluation_test.json"))
            store.save_json(r, "evaluation_train.json", train_eval.model_dump(mode="json"))
            store.save_json(r, "evaluation_test.json", test_eval.model_dump(mode="json"))
            metrics["train_metrics"] = train_eval.metrics
            metrics["test_metrics"] = test_eval.metrics
            self._save_partial_metrics(r, metrics)
            if not generate:  # the last round's metrics are final here; written before the stage counts as done
                store.save_json(r, "metrics.json", metrics)
            store.mark(r, "evaluate")
        if not generate:
            return

        by_id = {rec.id: rec for rec in ctx.pool}
        if store.stage_done(r, "select"):
            failures = [by_id[i] for i in store.load_json(r, "failures.json") if i in by_id]
        else:
            failures = hooks.select_failures(self.pm, ctx.pool, train_eval, ctx)
            store.save_json(r, "failures.json", [f.id for f in failures])
            store.mark(r, "select")
        metrics["failures"] = len(failures)
        metrics["failures_by_origin"] = dict(Counter(f.origin for f in failures))

        self._generate(r, failures, metrics)

    def _generate(self, r: int, failures: list[Record], metrics: dict[str, Any]) -> None:
        ctx, store = self.ctx, self.store
        requests = hooks.build_prompts(self.pm, failures, ctx)
        metrics["requests"] = len(requests)
        sent, asked = list(requests), list(requests)
        candidates, rejects, totals = self._sample_and_parse(r, asked)
        if requests and rejects and all(x.stage == "sample" for x in rejects) and not candidates:
            raise TeacherUnavailable(
                f"round {r}: all {len(rejects)} teacher samples failed, the first with: {rejects[0].reason}. Nothing"
                " of this round was committed; fix the cause and run the same command again (it resumes here)."
            )
        latest = rejects
        for attempt in range(1, ctx.method.retries + 1):  # answers the method could not parse are asked again
            failed = Counter(x.request_id for x in latest if x.stage == "parse")
            asked = [retry_request(q, failed[q.id], attempt) for q in asked if failed[q.id]]
            if not asked:
                break
            sent += asked
            more, latest, stats = self._sample_and_parse(r, asked, {c.id for c in candidates})
            candidates += more
            rejects += latest
            totals = {k: totals[k] + v for k, v in stats.items()}
            metrics["retried"] = metrics.get("retried", 0) + sum(q.sampling.n for q in asked)
        store.save_json(r, "requests.json", [q.model_dump(mode="json") for q in sent])
        metrics.update(totals)
        metrics["generated"] = len(candidates) + sum(1 for x in rejects if x.stage == "parse")
        if candidates:
            by_id = {record.id: record for record in candidates}
            for record_id, scores in self.executor.score(candidates, ctx).items():
                if record_id in by_id:
                    by_id[record_id].scores.update(scores)
            ctx.usage = {}
            verdicts = hooks.filter_records(self.pm, candidates, ctx)
            if ctx.usage:  # samples the filters asked for (an LLM judge), cached and counted like the method's
                metrics["usage"] = ctx.usage
                ctx.usage = {}
            rejected: dict[str, tuple[str, str]] = {}
            for verdict in verdicts:
                rejected.setdefault(verdict.record_id, (verdict.rejected_by, verdict.reason))
            accepted = []
            for record in candidates:
                if record.id in rejected:
                    by, reason = rejected[record.id]
                    flagged = record.model_copy(update={"rejected_by": by, "reject_reason": reason})
                    rejects.append(Reject(round=r, stage="filter", reason=reason, rejected_by=by, record=flagged))
                else:
                    accepted.append(record)
        else:
            accepted = []
        metrics["accepted"] = len(accepted)
        metrics["rejected"] = dict(Counter(x.rejected_by for x in rejects))
        ctx.state = dict(ctx.state)
        # metrics first: a kill before the commit redoes the round and rewrites them; after it, they are there
        store.save_json(r, "metrics.json", metrics)
        store.commit(accepted, rejects, round_index=r, stage="generate", state=ctx.state)

    def _sample_and_parse(
        self, r: int, requests: list[TeacherRequest], earlier: set[str] | None = None
    ) -> tuple[list[Record], list[Reject], dict[str, float]]:
        with self._sampling_progress(r, sum(q.sampling.n for q in requests)) as on_completion:
            completions, stats = sample_with_cache(self.ctx, requests, self.cache, self.executor, on_completion)
        candidates, rejects = self._parse(r, requests, completions, earlier or set())
        return candidates, rejects, stats.as_dict()

    def _parse(
        self,
        r: int,
        requests: list[TeacherRequest],
        completions: dict[tuple[str, int], Completion],
        earlier: set[str],
    ) -> tuple[list[Record], list[Reject]]:
        ctx = self.ctx
        known = {rec.id for rec in ctx.pool} | earlier
        candidates: list[Record] = []
        rejects: list[Reject] = []
        by_request = {q.id: q for q in requests}
        for (request_id, index), completion in sorted(completions.items()):
            request = by_request[request_id]
            base = {"round": r, "request_id": request_id, "sample_index": index}
            if not completion.ok:
                rejects.append(Reject(stage="sample", reason=str(completion.error), rejected_by="teacher", **base))
                continue
            parsed = hooks.parse_completion(self.pm, completion, request, ctx)
            if isinstance(parsed, str):
                rejects.append(
                    Reject(stage="parse", reason=parsed, rejected_by=ctx.method.name, text=completion.text, **base)
                )
                continue
            for record in parsed:
                record = record.model_copy(
                    update={
                        "origin": "synthetic" if record.origin == "seed" else record.origin,
                        "round": r,
                        "parent_id": record.parent_id or request.meta.get("parent_id"),
                        "provenance": record.provenance
                        or Provenance(
                            teacher=completion.model or ctx.teacher.model_id,
                            prompt_hash=request.prompt_hash(),
                            sampling=request.sampling.cache_fields(),
                            sample_index=index,
                        ),
                        # "truncated" defaults to the answer's; a method that took a complete
                        # example out of a cut answer says so with meta["truncated"] = False
                        "meta": {
                            "truncated": completion.finish_reason == "length",
                            **record.meta,
                            "finish_reason": completion.finish_reason,
                        },
                    }
                )
                if record.id in known:
                    rejects.append(
                        Reject(
                            stage="filter",
                            reason=f"same input and target as record {record.id}",
                            rejected_by="engine:duplicate-id",
                            record=record,
                            **base,
                        )
                    )
                    continue
                known.add(record.id)
                candidates.append(record)
        return candidates, rejects

    # ------------------------------------------------------------------ helpers
    def _sampling_progress(self, r: int, total: int) -> Any:
        console = self.console

        class _Progress:
            def __enter__(self_inner) -> Any:
                self_inner.progress = Progress(
                    TextColumn(f"round {r}: teacher"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                )
                self_inner.progress.start()
                self_inner.task = self_inner.progress.add_task("sample", total=total, rate="")
                self_inner.started = time.perf_counter()
                self_inner.tokens = 0
                return self_inner.update

            def update(self_inner, completion: Completion) -> None:
                self_inner.tokens += completion.completion_tokens
                elapsed = max(time.perf_counter() - self_inner.started, 1e-6)
                self_inner.progress.update(self_inner.task, advance=1, rate=f"{self_inner.tokens / elapsed:.0f} tok/s")

            def __exit__(self_inner, *exc: object) -> None:
                self_inner.progress.stop()

        return _Progress()

    def _partial_path(self, r: int) -> Any:
        return self.store.round_dir(r) / "metrics.partial.json"

    def _load_partial_metrics(self, r: int) -> dict[str, Any]:
        path = self._partial_path(r)
        if path.exists():
            loaded: dict[str, Any] = self.store.load_json(r, path.name)
            return loaded
        return {}

    def _save_partial_metrics(self, r: int, metrics: dict[str, Any]) -> None:
        self.store.save_json(r, self._partial_path(r).name, metrics)

    def _load_student(self, r: int) -> None:
        """Load the checkpoint the student of round ``r`` is: that of the last round that trained."""
        trained = next(t for t in range(r, -1, -1) if self.store.layout.student(t).exists())
        if self._student_round != trained:
            self.ctx.student.load(self.store.layout.student(trained))
            self._student_round = trained

    def _drop_old_checkpoints(self, r: int) -> None:
        for older in range(r):
            shutil.rmtree(self.store.layout.student(older), ignore_errors=True)

    def _metrics(self, r: int) -> dict[str, Any]:
        path = self.store.layout.metrics(r)
        return self.store.load_json(r, "metrics.json") if path.exists() else {"round": r}
