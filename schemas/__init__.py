"""Pydantic models shared by the engine and every plugin: records, completions, evaluations, config."""

from distilforge.schemas.config import ComponentConfig, ExecutorConfig, LabelReading, RunConfig, RunSettings
from distilforge.schemas.layout import RunLayout
from distilforge.schemas.metrics import RoundMetrics
from distilforge.schemas.records import (
    SCHEMA_VERSION,
    ChatMessage,
    Completion,
    Evaluation,
    Origin,
    Provenance,
    Record,
    RecordResult,
    Reject,
    SamplingParams,
    TeacherRequest,
    content_hash,
)

__all__ = [
    "SCHEMA_VERSION",
    "ChatMessage",
    "Completion",
    "ComponentConfig",
    "Evaluation",
    "ExecutorConfig",
    "LabelReading",
    "Origin",
    "Provenance",
    "Record",
    "RecordResult",
    "Reject",
    "RoundMetrics",
    "RunConfig",
    "RunLayout",
    "RunSettings",
    "SamplingParams",
    "TeacherRequest",
    "content_hash",
]
