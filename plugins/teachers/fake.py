"""A deterministic scripted teacher for tests, dry runs and plugin authors.

Each answer is picked from ``responses`` by a hash of (prompt, salt, sample index) and formatted
with ``{hash}`` (8 hex chars of that hash), so the same request always gets the same answer
and different requests get different ones. ``call_log`` appends one JSON line per delivered
sample (fsync'd), which lets tests count exactly which requests the teacher answered.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import Completion, ComponentConfig, TeacherRequest, content_hash


class FakeTeacherConfig(ComponentConfig):
    type: Literal["fake"] = "fake"
    model: str = "fake-teacher"
    responses: list[str] = Field(default_factory=lambda: ["fake answer {hash}"], min_length=1)
    delay_s: float = Field(0.0, ge=0.0, description="sleep per sample, to make runs slow enough to kill")
    call_log: Path | None = Field(None, description="append one JSON line per sample served")


class FakeTeacher(Teacher[FakeTeacherConfig]):
    @property
    def model_id(self) -> str:
        return f"fake:{self.config.model}"

    def answer(self, request: TeacherRequest, sample_index: int) -> str:
        identity = {"prompt": request.prompt_payload(), "i": sample_index}
        if request.salt:  # a salted request asks for fresh samples of the same prompt
            identity["salt"] = request.salt
        digest = content_hash(identity)
        template = self.config.responses[int(digest, 16) % len(self.config.responses)]
        return template.replace("{hash}", digest[:8])

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        for request in requests:
            indices = request.meta.get("sample_indices") or range(request.sampling.n)
            for position, index in enumerate(indices):
                if self.config.delay_s:
                    time.sleep(self.config.delay_s)
                text = self.answer(request, index)
                yield Completion(
                    request_id=request.id,
                    sample_index=position,
                    text=text,
                    finish_reason="stop",
                    prompt_tokens=len(json.dumps(request.prompt_payload()).split()),
                    completion_tokens=len(text.split()),
                    model=self.model_id,
                )
                # logged after the consumer took the completion (and cached it): the log lists
                # exactly the samples that were delivered
                self._log(request, index)

    def _log(self, request: TeacherRequest, index: int) -> None:
        if self.config.call_log is None:
            return
        with open(self.config.call_log, "a", encoding="utf-8") as log:
            chat = request.messages is not None
            log.write(json.dumps({"request_id": request.id, "sample_index": index, "chat": chat}) + "\n")
            log.flush()
            os.fsync(log.fileno())


@hookimpl
def register_teachers(register: Register) -> None:
    register(FakeTeacherConfig, FakeTeacher)
