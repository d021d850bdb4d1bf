"""Components for plugin tests: a scripted teacher and a trivially predictable student.

They live in this module, which :func:`distilforge.testing.run_round` registers as a plugin;
they are not part of a normal installation's config schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from distilforge.engine.api.components import Prediction, Student, Teacher
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import Completion, ComponentConfig, Record, TeacherRequest, content_hash


class ScriptedTeacherConfig(ComponentConfig):
    type: Literal["scripted"] = "scripted"
    model: str = "scripted-teacher"
    answers: list[str] = Field(
        default_factory=lambda: ["A scripted review, number {n}, that is short and plain."],
        min_length=1,
        description="served in order, cycling; placeholders {n} (1-based sample counter), {i} (sample"
        " index within the request) and {hash} (8 hex chars of the request id and sample index)",
    )
    rules: dict[str, str] = Field(
        default_factory=dict,
        description="prompt substring -> answer; the first rule whose key occurs in the prompt text wins"
        " (before 'answers'); same placeholders",
    )
    errors: list[str] = Field(
        default_factory=list,
        description="a request whose prompt contains one of these substrings gets error completions",
    )
    finish_reason: str = "stop"


def prompt_text(request: TeacherRequest) -> str:
    """The text a request sends: the plain prompt, or every chat message's content, one per line."""
    if request.prompt is not None:
        return request.prompt
    return "\n".join(m.content for m in request.messages or [])


class ScriptedTeacher(Teacher[ScriptedTeacherConfig]):
    """Answers from a script; ``self.calls`` lists ``(request_id, prompt_text)`` in call order."""

    def __init__(self, config: ScriptedTeacherConfig) -> None:
        super().__init__(config)
        self.served = 0
        self.calls: list[tuple[str, str]] = []

    @property
    def model_id(self) -> str:
        return f"scripted:{self.config.model}"

    def _answer(self, text: str, request: TeacherRequest, index: int) -> str:
        template = next((a for key, a in self.config.rules.items() if key in text), None)
        if template is None:
            template = self.config.answers[(self.served - 1) % len(self.config.answers)]
        digest = content_hash({"request": request.id, "i": index})[:8]
        return template.replace("{n}", str(self.served)).replace("{i}", str(index)).replace("{hash}", digest)

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        for request in requests:
            text = prompt_text(request)
            self.calls.append((request.id, text))
            indices = request.meta.get("sample_indices") or range(request.sampling.n)
            for position, index in enumerate(indices):
                base = {"request_id": request.id, "sample_index": position, "model": self.model_id}
                failing = next((e for e in self.config.errors if e in text), None)
                if failing is not None:
                    yield Completion(**base, error=f"scripted error: prompt contains {failing!r}")
                    continue
                self.served += 1
                answer = self._answer(text, request, index)
                yield Completion(
                    **base,
                    text=answer,
                    finish_reason=self.config.finish_reason,
                    prompt_tokens=len(text.split()),
                    completion_tokens=len(answer.split()),
                )


class MajorityLabelConfig(ComponentConfig):
    type: Literal["majority-label"] = "majority-label"


class MajorityLabelStudent(Student[MajorityLabelConfig]):
    """Predicts the most common training label (ties: the first in sort order), with one-hot logits.

    On a balanced set it gets every seed of the other label wrong, so a method always has
    failures to work on; each synthetic record of that label moves the majority.
    """

    def __init__(self, config: MajorityLabelConfig) -> None:
        super().__init__(config)
        self.label = ""
        self.labels: list[str] = []

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        counts = Counter(r.target for r in records)
        self.labels = sorted(counts)
        self.label = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else ""
        return {"records": float(len(records))}

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        logits = np.array([1.0 if label == self.label else 0.0 for label in self.labels])
        return [Prediction(label=self.label, logits=logits, confidence=1.0) for _ in records]

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "majority.json").write_text(json.dumps({"label": self.label, "labels": self.labels}))

    def load(self, path: Path) -> None:
        data = json.loads((path / "majority.json").read_text())
        self.label, self.labels = data["label"], data["labels"]


@hookimpl
def register_teachers(register: Register) -> None:
    register(ScriptedTeacherConfig, ScriptedTeacher)


@hookimpl
def register_students(register: Register) -> None:
    register(MajorityLabelConfig, MajorityLabelStudent)
