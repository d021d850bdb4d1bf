"""The executor interface and the ``local`` executor (everything in this process)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from distilforge.engine import hooks
from distilforge.schemas import Completion, Record, TeacherRequest
from distilforge.schemas.config import ExecutorConfig

if TYPE_CHECKING:
    from distilforge.engine.context import RunContext


def score_locally(records: Sequence[Record], ctx: RunContext, scorers: Sequence[Any] | None = None) -> dict[str, Any]:
    """Every scorer on every record in this process; scores of one record merged."""
    merged: dict[str, dict[str, float]] = {}
    for scorer in ctx.scorers if scorers is None else scorers:
        for record_id, scores in scorer.score(records, ctx).items():
            merged.setdefault(record_id, {}).update(scores)
    return merged


class Executor(ABC):
    """Runs the two parallel stages: teacher sampling and scoring.

    The driver keeps everything else (the cache, the run store, parsing, filters, training), so
    writes stay in one process: an executor only hands results back, in any order.
    """

    name: str = "executor"

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.stats: dict[str, Any] = {}

    @abstractmethod
    def sample(self, requests: Sequence[TeacherRequest], ctx: RunContext) -> Iterator[Completion]:
        """Yield every sample of every request (``sample_index`` relative to the request), any order."""

    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        """``{record_id: {score name: value}}`` from every configured scorer."""
        return score_locally(records, ctx)

    @property
    def chunk_hint(self) -> int:
        """Requests worth handing over in one call to keep every worker busy (0: no preference)."""
        return 0

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers. Idempotent."""


class LocalExecutor(Executor):
    """The default: the ``teacher_sample`` hook in this process (one engine, continuous batching)."""

    name = "local"

    def sample(self, requests: Sequence[TeacherRequest], ctx: RunContext) -> Iterator[Completion]:
        yield from hooks.teacher_sample(ctx.pm, requests, ctx)


def make_executor(config: ExecutorConfig | None) -> Executor:
    config = config or ExecutorConfig()
    if config.type == "ray":
        from distilforge.engine.executors.ray_executor import RayExecutor

        return RayExecutor(config)
    return LocalExecutor(config)


def executor_for(ctx: RunContext) -> Executor:
    """The context's executor, built from ``config.executor`` on first use (never before: a run
    whose answers are all cached starts no cluster and no worker)."""
    if ctx.executor is None:
        ctx.executor = make_executor(getattr(ctx.config, "executor", None))
    executor: Executor = ctx.executor
    return executor
