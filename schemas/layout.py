"""Where every file of a run directory lives: the one place that spells the run's paths.

The store, the round loop, the report, plugins (through ``RunContext.layout``), the testing kit
and the benchmarks all ask a :class:`RunLayout` instead of joining path pieces themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def records(self) -> Path:
        return self.root / "records.jsonl"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.jsonl"

    @property
    def test(self) -> Path:
        return self.root / "test.jsonl"

    @property
    def validation(self) -> Path:
        """The validation split carved from the seeds (config ``validation.fraction``)."""
        return self.root / "validation.jsonl"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def engine_log(self) -> Path:
        """What the libraries (vLLM, torch, llama.cpp) printed during the run, kept off the console."""
        return self.root / "engine.log"

    @property
    def teacher_baseline(self) -> Path:
        return self.root / "teacher_baseline.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def accuracy_plot(self) -> Path:
        return self.root / "accuracy.png"

    @property
    def confusion_plot(self) -> Path:
        return self.root / "confusion.png"

    @property
    def report_sections(self) -> Path:
        """Markdown sections (and their images) that plugins add to the report."""
        return self.root / "report"

    @property
    def rounds_dir(self) -> Path:
        return self.root / "rounds"

    def round_dir(self, round_index: int) -> Path:
        return self.rounds_dir / str(round_index)

    def round_file(self, round_index: int, name: str) -> Path:
        return self.round_dir(round_index) / name

    def metrics(self, round_index: int) -> Path:
        return self.round_file(round_index, "metrics.json")

    def student(self, round_index: int) -> Path:
        """The student checkpoint trained in this round (kept for the latest trained round)."""
        return self.round_file(round_index, "student")

    def rounds(self) -> list[int]:
        """The rounds that have a directory, in order."""
        if not self.rounds_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.rounds_dir.iterdir() if p.is_dir() and p.name.isdigit())
