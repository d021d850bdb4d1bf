"""The executor interface and the ``local`` executor (everything in this process).

The round loop hands both parallel stages to its executor, and the executor calls the stage
hook (``teacher_sample``, ``score_ood``) on each piece of work: locally on the whole batch, on
Ray once per shard on a worker. So any plugin's sampler or scorer runs wherever the executor puts it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel

from distilforge.engine import hooks
from distilforge.engine.api.components import Scorer
from distilforge.engine.api.context import RunContext, TeacherContext
from distilforge.schemas import Completion, Record, TeacherRequest
from distilforge.schemas.config import ExecutorConfig


@dataclass(frozen=True)
class Job:
    """What an executor works for: the settings of a run or a ``generate`` call and its directory
    (a remote worker rebuilds its teacher, and for scoring the run config, from these)."""

    settings: BaseModel
    run_dir: Path


def score_with(scorers: Sequence[Scorer[Any]], records: Sequence[Record], ctx: RunContext) -> dict[str, Any]:
    """Every scorer in ``scorers`` on every record; the scores of one record merged."""
    merged: dict[str, dict[str, float]] = {}
    for scorer in scorers:
        for record_id, scores in scorer.score(records, ctx).items():
            merged.setdefault(record_id, {}).update(scores)
    return merged


class Executor(ABC):
    """Runs the two parallel stages: teacher sampling and scoring.

    The driver keeps everything else (the cache, the run store, parsing, filters, training), so
    writes stay in one process: an executor only hands results back, in any order.
    """

    name: str = "executor"

    def __init__(self, config: ExecutorConfig, pm: pluggy.PluginManager, job: Job) -> None:
        self.config = config
        self.pm = pm
        self.job = job
        self.stats: dict[str, Any] = {}

    @abstractmethod
    def sample(self, requests: Sequence[TeacherRequest], ctx: TeacherContext) -> Iterator[Completion]:
        """Yield every sample of every request (``sample_index`` relative to the request), any order."""

    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        """``{record_id: {score name: value}}``: the ``score_ood`` hook over all records, here."""
        return hooks.score_ood(self.pm, records, ctx)

    @property
    def chunk_hint(self) -> int:
        """Requests worth handing over in one call to keep every worker busy (0: no preference)."""
        return 0

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers. Idempotent."""


class LocalExecutor(Executor):
    """The default: the stage hooks in this process (one engine, continuous batching)."""

    name = "local"

    def sample(self, requests: Sequence[TeacherRequest], ctx: TeacherContext) -> Iterator[Completion]:
        yield from hooks.teacher_sample(self.pm, requests, ctx)


def make_executor(config: ExecutorConfig | None, pm: pluggy.PluginManager, job: Job) -> Executor:
    """The executor ``config`` names. Cheap: a Ray cluster and its workers start on first use, so a
    run whose answers are all cached starts none."""
    config = config or ExecutorConfig()
    if config.type == "ray":
        from distilforge.engine.executors.ray_executor import RayExecutor

        return RayExecutor(config, pm, job)
    return LocalExecutor(config, pm, job)
