"""The run context handed to every stage hook."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from distilforge.engine.components import Dataset, Filter, Method, Scorer, Student, Teacher
from distilforge.engine.registry import Registry
from distilforge.schemas import Record

if TYPE_CHECKING:
    from distilforge.engine.config import RunConfig


@dataclass
class RunContext:
    """Everything a plugin may need: config, run directory, round, record pool, components.

    ``state`` is a JSON-serialisable dict that a method may use to carry information from one
    round to the next; the engine saves it with each committed round, so it survives a resume.
    ``dataset_info`` is what the dataset said about itself beyond records (``DatasetSplits.extra``,
    e.g. a table's feature list), saved with the run.
    """

    config: RunConfig
    run_dir: Path
    pm: pluggy.PluginManager
    registry: Registry
    teacher: Teacher[Any]
    # absent only in `distilforge generate`, which needs a teacher and nothing else
    student: Student[Any] = None
    method: Method[Any] = None
    dataset: Dataset[Any] = None
    scorers: list[Scorer[Any]] = field(default_factory=list)
    filters: list[Filter[Any]] = field(default_factory=list)
    round: int = 0
    pool: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)
    labels: list[str] | None = None
    task: str = ""
    dataset_info: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    # where sampling and scoring run (distilforge.engine.executors); built on first use
    executor: Any = None
    # the run's teacher cache (set by the round loop), for stages that ask a teacher themselves
    cache: Any = None
    # the teacher a judging filter asks (config ``judge``); None = the run's teacher
    judge: Teacher[Any] | None = None
    # samples asked for outside the method's own requests, by purpose ("judge", "teacher-baseline");
    # the loop moves them into the round's metrics
    usage: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    def round_dir(self, round_index: int | None = None) -> Path:
        path = self.run_dir / "rounds" / str(self.round if round_index is None else round_index)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        components = (self.teacher, self.judge, self.student, self.method, self.dataset, *self.scorers, *self.filters)
        for component in components:
            if component is not None:
                component.close()
