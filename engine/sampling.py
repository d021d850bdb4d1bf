"""Ask the teacher through the content-addressed cache, caching each completion as it arrives."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distilforge.engine.components import Teacher
from distilforge.engine.context import RunContext
from distilforge.engine.executors import executor_for
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
    ctx: RunContext,
    requests: Sequence[TeacherRequest],
    cache: TeacherCache,
    on_completion: Callable[[Completion], None] | None = None,
    teacher: Teacher[Any] | None = None,
) -> tuple[dict[tuple[str, int], Completion], SampleStats]:
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
        stream = other.sample(todo) if other is not None else executor_for(ctx).sample(todo, ctx)
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
            results[key] = Completion(
                request_id=key[0],
                sample_index=key[1],
                error="the teacher returned no completion for this sample",
                model=model_id,
            )
    for completion in results.values():
        if not completion.ok:
            stats.errors += 1
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
    stats.seconds = time.perf_counter() - started
    return results, stats


def ask_teacher(
    ctx: RunContext, requests: Sequence[TeacherRequest], *, purpose: str, teacher: Teacher[Any] | None = None
) -> dict[tuple[str, int], Completion]:
    """Sample through the run's teacher cache from inside a stage (a filter, a baseline), and count
    the samples in ``ctx.usage`` under ``purpose`` so the round's metrics and the report show them.
    """
    if ctx.cache is None:
        raise RuntimeError("ask_teacher needs the run's teacher cache (ctx.cache)")
    completions, stats = sample_with_cache(ctx, requests, ctx.cache, teacher=teacher)
    usage = ctx.usage.setdefault(purpose, {})
    for key, value in stats.as_dict().items():
        usage[key] = round(usage.get(key, 0) + value, 3)
    return completions
