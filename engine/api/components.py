"""Base classes of the named components that plugins register.

A component is built once per run from its validated config by the factory its plugin
registered. The engine's default stage hooks (``distilforge.engine.dispatch``) call these
methods; a plugin never has to subclass anything to implement a stage hook directly, but a
component is the easy way to add a configurable teacher, student, method, scorer, filter or
dataset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import numpy as np

from distilforge.schemas import Completion, ComponentConfig, Evaluation, Record, RecordResult, TeacherRequest

if TYPE_CHECKING:
    from distilforge.engine.api.context import RunContext

C = TypeVar("C", bound=ComponentConfig)


class Verdict(NamedTuple):
    """A filter's decision to reject one record."""

    record_id: str
    rejected_by: str
    reason: str


class Component(Generic[C]):
    def __init__(self, config: C) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.type

    def close(self) -> None:
        """Release engines, threads and files. Called once when the run ends."""


class Teacher(Component[C], ABC):
    """A text generator. Start engines lazily: a run whose answers are all cached never starts one."""

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Identifies the model in the teacher cache key (e.g. ``vllm:/path/to/model``)."""

    @abstractmethod
    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        """Yield ``request.sampling.n`` completions per request, in any order, as they finish."""


@dataclass
class Prediction:
    label: str
    logits: np.ndarray | None = None
    confidence: float | None = None


class Student(Component[C], ABC):
    """A small model trained inside the loop. ``train`` always starts from the base weights.

    Optional capabilities, declared by overriding (energy scoring needs one of them):

    * :meth:`logits` — per-label logits of a classifier; :meth:`free_energy` then follows from them.
    * :meth:`free_energy` — a sequence student's own energy (e.g. the mean per-token energy of the
      record's target under teacher forcing).
    """

    @abstractmethod
    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        """Train from the base weights on ``records``; return statistics."""

    @abstractmethod
    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        """Predict each record's target; ``logits`` when the student has them."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write a checkpoint into the directory ``path``."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Read a checkpoint written by :meth:`save`."""

    def logits(self, records: Sequence[Record]) -> np.ndarray:
        """``[len(records), len(labels)]`` logits in the student's label order. Not every student has them."""
        raise NotImplementedError(f"student {self.name!r} has no per-label logits")

    def free_energy(self, records: Sequence[Record], temperature: float = 1.0, batch_size: int = 32) -> np.ndarray:
        """Per record ``-T * logsumexp(logits / T)``: higher = more out-of-distribution to this student."""
        from distilforge.engine.api.toolkit.predictions import free_energy

        return free_energy(self.logits(records), temperature)

    @property
    def provides_logits(self) -> bool:
        return type(self).logits is not Student.logits

    @property
    def provides_energy(self) -> bool:
        return self.provides_logits or type(self).free_energy is not Student.free_energy

    def is_correct(self, prediction: Prediction, record: Record) -> bool:
        return prediction.label.strip() == record.target.strip()

    def evaluate(self, records: Sequence[Record], split: str) -> Evaluation:
        predictions = self.predict(records) if records else []
        results = [
            RecordResult(
                record_id=r.id,
                correct=self.is_correct(p, r),
                prediction=p.label,
                confidence=p.confidence,
            )
            for r, p in zip(records, predictions, strict=True)
        ]
        accuracy = sum(x.correct for x in results) / len(results) if results else 0.0
        return Evaluation(split=split, results=results, metrics={"accuracy": accuracy, "n": float(len(results))})


class Method(Component[C], ABC):
    """The algorithm that drives the loop: how many rounds, what to ask, how to read the answers."""

    @property
    @abstractmethod
    def rounds(self) -> int:
        """Number of generation rounds; the loop trains and evaluates once more after the last."""

    @abstractmethod
    def select_failures(self, records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record]: ...

    @abstractmethod
    def build_prompts(self, failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest]: ...

    @abstractmethod
    def parse_completion(
        self, completion: Completion, request: TeacherRequest, ctx: RunContext
    ) -> list[Record] | str: ...

    @property
    def retries(self) -> int:
        """How many times an answer that :meth:`parse_completion` rejects is asked for again (a fresh sample of
        the same prompt; every reject still lands in ``rejects.jsonl``). Default: never."""
        return 0

    def training_records(self, pool: Sequence[Record], ctx: RunContext) -> list[Record]:
        """The records the student trains on this round; default: every accepted record."""
        return list(pool)

    def should_train(self, round_index: int, ctx: RunContext) -> bool:
        """Whether the student is retrained at the start of this round; when not, the last
        trained checkpoint is kept (and its test evaluation reused). Round 0 always trains."""
        return True

    def check(self, ctx: RunContext) -> None:
        """Refuse a run whose other components this method cannot work with, before any work
        starts; raise :class:`distilforge.engine.api.errors.ConfigError` naming the field to fix."""

    def report_section(self, ctx: RunContext) -> str | None:
        """The method's section of ``report.md`` (markdown, links relative to the run directory; put images
        into ``ctx.layout.report_sections``), or None. Called after the last round, when every round's files
        and metrics are on disk (again when a finished run is resumed); the engine saves it as
        ``report/<method>.md``. Default: none."""
        return None


class Scorer(Component[C], ABC):
    # True when a record's score depends only on the record, the pool and the student (not on the
    # other candidates): the ray executor may then split the records over its workers
    shardable: bool = False

    @abstractmethod
    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        """Return ``{record_id: {score_name: value}}``."""


class Filter(Component[C], ABC):
    @abstractmethod
    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        """Return ``{record_id: reason}`` for each record this filter rejects."""


@dataclass
class DatasetSplits:
    """What a dataset component loads: the seed (training) records and a held-out test split."""

    seed: list[Record]
    test: list[Record]
    labels: list[str] | None = None
    task: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Dataset(Component[C], ABC):
    @abstractmethod
    def load(self, seed: int) -> DatasetSplits: ...
