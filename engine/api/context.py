"""The contexts the engine hands to hooks and components.

* :class:`TeacherContext` is what ``teacher_sample`` gets everywhere it can run: in a run, in
  ``distilforge generate`` and on a Ray worker. It holds the teacher and nothing a teacher-only
  process does not have.
* :class:`RunContext` is what every other stage gets inside a run: the validated config, the
  round, the record pool, the built components, and :meth:`RunContext.ask_teacher` — the one way
  for a stage (a judging filter, a method) to ask a teacher itself, through the run's cache.

Neither exposes the plugin manager, the registry, the executor or the store: those stay the
engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from distilforge.engine.api.components import Dataset, Filter, Method, Scorer, Student, Teacher
from distilforge.engine.api.errors import DistilforgeError
from distilforge.schemas import Completion, Record, RunConfig, RunLayout, TeacherRequest

Samples = dict[tuple[str, int], Completion]


class TeacherAccess(Protocol):
    """What the engine plugs into a :class:`RunContext` so stages can ask a teacher (the run's
    cache in front, samples counted under ``purpose``)."""

    def __call__(
        self, ctx: RunContext, requests: list[TeacherRequest], *, purpose: str, teacher: Teacher[Any] | None
    ) -> Samples: ...


@dataclass(kw_only=True)
class TeacherContext:
    """Where a teacher runs: the run (or output) directory, the run's seed and the teacher."""

    run_dir: Path
    teacher: Teacher[Any]
    seed: int = 0

    def close(self) -> None:
        self.teacher.close()


@dataclass(kw_only=True)
class RunContext(TeacherContext):
    """Everything a stage of a run may read: config, run directory, round, pool, components.

    ``state`` is a JSON-serialisable dict a method may use to carry information from one round
    to the next; the engine saves it with each committed round, so it survives a resume.
    ``dataset_info`` is what the dataset said about itself beyond records (``DatasetSplits.extra``,
    e.g. a table's feature list), saved with the run. ``usage`` counts the samples stages asked
    for through :meth:`ask_teacher`, by purpose; the engine moves it into the round's metrics.
    ``seed`` is always ``config.seed``. ``vector_cache`` is the SQLite file (the teacher cache's)
    where components keep text embeddings across rounds and runs (None: in memory only).
    """

    config: RunConfig
    student: Student[Any] = None
    method: Method[Any] = None
    dataset: Dataset[Any] = None
    scorers: list[Scorer[Any]] = field(default_factory=list)
    filters: list[Filter[Any]] = field(default_factory=list)
    # the teacher a judging filter asks (config ``judge``); None = the run's teacher
    judge: Teacher[Any] | None = None
    round: int = 0
    pool: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)
    # held out of the seeds to choose the best round (config ``validation``); never in ``pool``
    validation: list[Record] = field(default_factory=list)
    labels: list[str] | None = None
    task: str = ""
    dataset_info: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    teacher_access: TeacherAccess | None = field(default=None, repr=False)
    # the run folder's cache file: embedders keep their vectors there (toolkit.vector_store)
    vector_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.config is not None:  # None only in unit tests of a single component
            self.seed = int(self.config.seed)

    def ask_teacher(
        self, requests: list[TeacherRequest], *, purpose: str, teacher: Teacher[Any] | None = None
    ) -> Samples:
        """``{(request_id, sample_index): Completion}`` for every sample of ``requests``, asked of
        ``teacher`` (default: the run's) through the run's teacher cache: a resumed run pays for
        nothing twice, and the samples are counted in the report under ``purpose``."""
        if self.teacher_access is None:
            raise DistilforgeError("ask_teacher works inside a run only (this context has no teacher access)")
        return self.teacher_access(self, requests, purpose=purpose, teacher=teacher)

    @property
    def layout(self) -> RunLayout:
        """Where the run's files live (``layout.round_file(r, name)``, ``layout.report_sections``...)."""
        return RunLayout(self.run_dir)

    def round_dir(self, round_index: int | None = None) -> Path:
        """This round's directory (or ``round_index``'s), created if missing."""
        path = self.layout.round_dir(self.round if round_index is None else round_index)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        components = (self.teacher, self.judge, self.student, self.method, self.dataset, *self.scorers, *self.filters)
        for component in components:
            if component is not None:
                component.close()
