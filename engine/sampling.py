"""Ask the teacher through the content-addressed cache, caching each completion as it arrives."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.context import RunContext, Samples, TeacherContext
from distilforge.engine.api.toolkit.completions import error_completion
from distilforge.engine.executors import Executor
from distilforge.engine.progress import sampling_progress
from distilforge.engine.store.cache import TeacherCache, cache_key
from distilforge.schemas import Completion, TeacherRequest


@dataclass
class SampleStats:
    requested: int = 0
    cached: int = 0
    new: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {
            "samples_requested": self.requested,
            "samples_cached": self.cached,
            "samples_new": self.new,
            "sample_errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "sample_seconds": round(self.seconds, 3),
        }


def unique_requests(requests: Sequence[TeacherRequest]) -> list[TeacherRequest]:
    """Requests with the same id are the same prompt and sampling: ask once."""
    seen: dict[str, TeacherRequest] = {}
    for request in requests:
        seen.setdefault(request.id, request)
    return list(seen.values())


def sample_with_cache(
    ctx: TeacherContext,
    requests: Sequence[TeacherRequest],
    cache: TeacherCache,
    executor: Executor,
    on_completion: Callable[[Completion], None] | None = None,
    teacher: Teacher[Any] | None = None,
) -> tuple[Samples, SampleStats]:
    """Return ``{(request_id, sample_index): Completion}`` for every sample of every request.

    Cached samples are never sent again. Each new one is written to the cache the moment the
    teacher yields it, so a crash loses nothing the teacher already delivered. A sample the teacher did
    not return at all comes back as an error completion, so nothing disappears silently.

    ``teacher`` other than the run's (e.g. a separate judge model) is asked directly in this
    process; the run's own teacher goes through the executor (``teacher_sample`` hook, or Ray).
    """
    started = time.perf_counter()
    stats = SampleStats()
    other = teacher if teacher is not None and teacher is not ctx.teacher else None
    model_id = (other or ctx.teacher).model_id
    requests = unique_requests(requests)
    keys = {(r.id, i): cache_key(model_id, r, i) for r in requests for i in range(r.sampling.n)}
    stats.requested = len(keys)
    hits = cache.get_many(list(keys.values()))
    results: dict[tuple[str, int], Completion] = {}
    todo: list[TeacherRequest] = []
    missing_indices: dict[str, list[int]] = {}
    for request in requests:
        missing = []
        for index in range(request.sampling.n):
            hit = hits.get(keys[(request.id, index)])
            if hit is None:
                missing.append(index)
                continue
            completion = hit.model_copy(update={"cached": True, "request_id": request.id, "sample_index": index})
            results[(request.id, index)] = completion
            stats.cached += 1
            if on_completion:
                on_completion(completion)
        if missing:
            missing_indices[request.id] = missing
            sampling = request.sampling.model_copy(update={"n": len(missing)})
            meta = {**request.meta, "sample_indices": missing}
            todo.append(request.model_copy(update={"sampling": sampling, "meta": meta}))

    if todo:
        # the executor runs the teacher_sample hook here (local) or on Ray workers, in any order
        stream = other.sample(todo) if other is not None else executor.sample(todo, ctx)
        for completion in stream:
            indices = missing_indices.get(completion.request_id)
            if indices is None or completion.sample_index >= len(indices):
                continue  # not something we asked for
            index = indices[completion.sample_index]
            completion = completion.model_copy(update={"sample_index": index, "cached": False})
            if (completion.request_id, index) in results:
                continue
            results[(completion.request_id, index)] = completion
            if completion.ok:
                stats.new += 1
                # one small WAL transaction per sample (tens of microseconds): a kill right
                # after the teacher answered still finds the answer on resume
                cache.put_many([(keys[(completion.request_id, index)], completion)])
            if on_completion:
                on_completion(completion)

    for key in keys:
        if key not in results:
            reason = "the teacher returned no completion for this sample"
            results[key] = error_completion(key[0], reason, model=model_id, indices=[key[1]])[0]
    for completion in results.values():
        if not completion.ok:
            stats.errors += 1
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
    stats.seconds = time.perf_counter() - started
    return results, stats


class CachedTeacherAccess:
    """The engine's :class:`~distilforge.engine.api.context.TeacherAccess`: stages that ask a teacher
    themselves (a judge, the teacher baseline) go through the run's cache and executor, and their
    samples are counted in ``ctx.usage`` under ``purpose`` so the round's metrics and the report show them."""

    def __init__(self, cache: TeacherCache, executor: Executor, console: Console | None = None) -> None:
        self.cache = cache
        self.executor = executor
        self.console = console

    def __call__(
        self, ctx: RunContext, requests: list[TeacherRequest], *, purpose: str, teacher: Teacher[Any] | None
    ) -> Samples:
        if self.console is None:
            completions, stats = sample_with_cache(ctx, requests, self.cache, self.executor, teacher=teacher)
        else:
            total = sum(q.sampling.n for q in unique_requests(requests))
            with sampling_progress(self.console, f"teacher ({purpose})", total) as on_completion:
                completions, stats = sample_with_cache(
                    ctx, requests, self.cache, self.executor, on_completion, teacher=teacher
                )
        usage = ctx.usage.setdefault(purpose, {})
        for key, value in stats.as_dict().items():
            usage[key] = round(usage.get(key, 0) + value, 3)
        return completions
