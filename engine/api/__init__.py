"""The public API of distilforge: what a plugin imports (with :mod:`distilforge.schemas`).

Everything a plugin needs is re-exported here: the hook markers and the ``Register`` type, the
component base classes, the contexts the engine hands to hooks, the errors the CLI turns into
clear messages, and the record schemas. Helpers for component authors live in
:mod:`distilforge.engine.api.toolkit`. The rest of ``distilforge.engine`` is private: the import
contracts in ``pyproject.toml`` (checked by ``make lint``) keep the built-in plugins to this
surface, so a third-party plugin can rely on exactly what they use.
"""

from distilforge.engine.api.components import (
    Component,
    Dataset,
    DatasetSplits,
    Filter,
    Method,
    Prediction,
    Scorer,
    Student,
    Teacher,
    Verdict,
)
from distilforge.engine.api.context import RunContext, Samples, TeacherAccess, TeacherContext
from distilforge.engine.api.errors import (
    ConfigError,
    DistilforgeError,
    PluginError,
    ResumeRefused,
    RunLockedError,
    StoreDamaged,
    TeacherUnavailable,
)
from distilforge.engine.api.hookspecs import HOOKSPEC_VERSION, PROJECT_NAME, CommandParsers, Register, hookimpl
from distilforge.schemas import (
    ChatMessage,
    Completion,
    ComponentConfig,
    Evaluation,
    Record,
    RecordResult,
    Reject,
    RunConfig,
    SamplingParams,
    TeacherRequest,
    content_hash,
)
from distilforge.schemas.records import TokenLogprob

__all__ = [
    "HOOKSPEC_VERSION",
    "PROJECT_NAME",
    "ChatMessage",
    "CommandParsers",
    "Completion",
    "Component",
    "ComponentConfig",
    "ConfigError",
    "Dataset",
    "DatasetSplits",
    "DistilforgeError",
    "Evaluation",
    "Filter",
    "Method",
    "PluginError",
    "Prediction",
    "Record",
    "RecordResult",
    "Register",
    "Reject",
    "ResumeRefused",
    "RunConfig",
    "RunContext",
    "RunLockedError",
    "Samples",
    "SamplingParams",
    "Scorer",
    "StoreDamaged",
    "Student",
    "Teacher",
    "TeacherAccess",
    "TeacherContext",
    "TeacherRequest",
    "TeacherUnavailable",
    "TokenLogprob",
    "Verdict",
    "content_hash",
    "hookimpl",
]
