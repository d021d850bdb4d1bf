"""The data model: what the teacher is asked, what it answers, and the training records made from it.

Every model here is written to disk as one JSON object per line; ``SCHEMA_VERSION`` is stored
with each file (see ``distilforge.engine.store``) so later versions can read old runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import ConfigDict, Field

from distilforge.schemas.validators import NoBoolNumbers

SCHEMA_VERSION = 1

Origin = Literal["seed", "synthetic", "real"]


def content_hash(obj: Any, length: int = 16) -> str:
    """A stable hex digest of any JSON-serialisable object (keys sorted, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class _Strict(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(_Strict):
    """Sampling settings for one request. ``n`` samples are drawn; each is cached separately."""

    temperature: float = Field(1.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    n: int = Field(1, ge=1)
    stop: list[str] = Field(default_factory=list)
    logprobs: int | None = Field(None, ge=0, description="top-k token logprobs per generated token")
    prompt_logprobs: int | None = Field(None, ge=0)
    json_schema: dict[str, Any] | None = Field(None, description="constrain the answer to this JSON schema")
    choice: list[str] | None = Field(None, description="constrain the answer to one of these strings")

    def cache_fields(self) -> dict[str, Any]:
        """Everything that changes the distribution of one sample (``n`` does not)."""
        return self.model_dump(exclude={"n"})


class TeacherRequest(_Strict):
    """One prompt for the teacher: chat ``messages`` or a plain ``prompt``, never both."""

    id: str = ""
    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    meta: dict[str, Any] = Field(default_factory=dict, description="carried through, not sent")
    salt: str = Field(
        "",
        description="part of the request's identity (id, cache key, sampling seed) but never sent: the same"
        " prompt with another salt draws fresh samples instead of hitting the cache",
    )

    def model_post_init(self, __context: Any) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a TeacherRequest needs exactly one of 'messages' or 'prompt'")
        if not self.id:
            self.id = self.prompt_hash()

    def prompt_payload(self) -> Any:
        if self.messages is not None:
            return [m.model_dump() for m in self.messages]
        return self.prompt

    def prompt_hash(self) -> str:
        identity: dict[str, Any] = {"prompt": self.prompt_payload(), "sampling": self.sampling.cache_fields()}
        if self.salt:
            identity["salt"] = self.salt
        return content_hash(identity)


class TokenLogprob(_Strict):
    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Completion(_Strict):
    """One sample of the teacher's answer to one request (or the error that stopped it)."""

    request_id: str
    sample_index: int = 0
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None
    prompt_logprobs: list[float | None] | None = None
    model: str = ""
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Provenance(_Strict):
    teacher: str
    prompt_hash: str
    sampling: dict[str, Any] = Field(default_factory=dict)
    sample_index: int = 0


class Record(_Strict):
    """One training example. ``id`` is a content hash of input and target, so duplicates collide."""

    schema_version: int = SCHEMA_VERSION
    id: str = ""
    input: str
    target: str
    origin: Origin = "seed"
    parent_id: str | None = None
    round: int = 0
    provenance: Provenance | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    rejected_by: str | None = None
    reject_reason: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            self.id = content_hash({"input": self.input, "target": self.target})


class Reject(_Strict):
    """Something that did not become a training record, and why. Nothing is dropped silently."""

    schema_version: int = SCHEMA_VERSION
    round: int
    stage: Literal["sample", "parse", "filter"]
    reason: str
    rejected_by: str
    request_id: str | None = None
    sample_index: int | None = None
    record: Record | None = None
    text: str | None = None


class RecordResult(_Strict):
    record_id: str
    correct: bool
    prediction: str
    confidence: float | None = None


class Evaluation(_Strict):
    """Per-record correctness plus aggregate metrics for one split."""

    split: str
    results: list[RecordResult] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)

    def wrong_ids(self) -> set[str]:
        return {r.record_id for r in self.results if not r.correct}
