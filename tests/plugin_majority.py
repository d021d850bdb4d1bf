"""A deterministic test student: predicts the most common training label (ties: first in sort order).

With balanced seeds it gets every seed of one label wrong, so the LLM2LLM loop has failures to
augment, and each round's synthetic records shift the majority — a cheap, exact way to drive the
loop in tests. Registered in-process with ``Engine.load(extra_plugins=[plugin_majority])``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from distilforge.engine.components import Prediction, Student
from distilforge.engine.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record


class MajorityConfig(ComponentConfig):
    type: Literal["majority"] = "majority"


class MajorityStudent(Student[MajorityConfig]):
    label: str = ""
    labels: list[str] = []

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        counts = Counter(r.target for r in records)
        self.labels = sorted(counts)
        self.label = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return {"records": float(len(records))}

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        logits = np.array([1.0 if lab == self.label else 0.0 for lab in self.labels])
        return [Prediction(label=self.label, logits=logits, confidence=1.0) for _ in records]

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "majority.json").write_text(json.dumps({"label": self.label, "labels": self.labels}))

    def load(self, path: Path) -> None:
        data = json.loads((path / "majority.json").read_text())
        self.label, self.labels = data["label"], data["labels"]


@hookimpl
def register_students(register: Register) -> None:
    register(MajorityConfig, MajorityStudent)
