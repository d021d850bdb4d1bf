"""Filter ``parse-validity``: drop candidates that a parser let through but that are not usable.

Rules, checked in this order (the reason names the first that fires):

* ``truncated``: the teacher stopped at its token limit (``meta["finish_reason"] == "length"``);
  a cut-off example may have lost the part that decides its label.
* ``empty-target`` / ``label``: the target is empty, or not one of ``ctx.labels`` (when the
  task has a label set).
* ``too-short`` / ``too-long``: the stripped input has fewer than ``min_chars`` or more than
  ``max_chars`` characters.
* ``refusal``: the teacher declined instead of answering ("I'm sorry, but I cannot ...",
  "I can't help with that"); instruct models tuned for code do this with some requests.
* ``debris``: the input still holds prompt-template scaffolding, e.g. a line that starts with
  ``Label:`` or ``Text:`` (the teacher wrote two examples in one, or echoed the format), or
  talk about the task instead of an example ("Here's a new example with the label ...",
  "Sure thing! ...").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from distilforge.engine.api.components import Filter
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record
from distilforge.schemas.validators import regex_list

if TYPE_CHECKING:
    from distilforge.engine.api.context import RunContext

DEFAULT_REFUSALS = [
    r"^\W*(i'?m|i am)\s+(sorry|afraid|unable)\b",
    r"^\W*sorry,?\s+(but\s+)?i\b",
    r"\bi\s+(can(no|')?t|cannot|won'?t|am unable to)\s+(help(?!\s+but\b)|assist|provide|write|create|comply|fulfil)",
    r"\bas an ai\b",
]
DEFAULT_DEBRIS = [
    r"^\s*(label|text|input|output|sentiment|category|class|example\s*\d*)\s*:",
    # talk about the task instead of an example: "Here's a new example with the label ..."
    r"^\s*here(\s+is|\s+are|'s|’s)\b",
    r"^\W*(sure|certainly|of course|absolutely)(\s+thing)?\s*[!,.:]\s*(here|i'?ll|i will|let me|below)\b",
    r"\b(with|has) the label\b|\blabel(l?ed)? as\b|\bthe (new|old|original) example\b",
]


class ParseValidityConfig(ComponentConfig):
    type: Literal["parse-validity"] = "parse-validity"
    min_chars: int = Field(3, ge=0, description="shortest accepted input (stripped)")
    max_chars: int = Field(4000, ge=1, description="longest accepted input (stripped)")
    check_labels: bool = Field(True, description="reject targets outside ctx.labels (when the task has labels)")
    reject_truncated: bool = True
    refusal_patterns: Annotated[list[str], regex_list] = Field(
        default_factory=lambda: list(DEFAULT_REFUSALS),
        description="regexes (case-insensitive, multi-line) marking a refusal instead of an answer",
    )
    debris_patterns: Annotated[list[str], regex_list] = Field(
        default_factory=lambda: list(DEFAULT_DEBRIS),
        description="regexes (case-insensitive, multi-line: ^ matches each line start) marking template debris",
    )


class ParseValidityFilter(Filter[ParseValidityConfig]):
    def __init__(self, config: ParseValidityConfig) -> None:
        super().__init__(config)
        self._refusals = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in config.refusal_patterns]
        self._debris = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in config.debris_patterns]

    def check(self, record: Record, labels: Sequence[str] | None) -> str | None:
        """The reason ``record`` is invalid, or None."""
        cfg = self.config
        if cfg.reject_truncated and record.meta.get("truncated", record.meta.get("finish_reason") == "length"):
            return "truncated: the teacher hit its token limit (finish_reason=length)"
        target = record.target.strip()
        if not target:
            return "empty-target: the target is empty"
        if cfg.check_labels and labels is not None and target not in labels:
            return f"label: target {target!r} is not one of the task labels {list(labels)}"
        text = record.input.strip()
        if len(text) < cfg.min_chars:
            return f"too-short: input has {len(text)} chars < min_chars={cfg.min_chars}"
        if len(text) > cfg.max_chars:
            return f"too-long: input has {len(text)} chars > max_chars={cfg.max_chars}"
        for pattern in self._refusals:
            if pattern.search(text.replace("’", "'")):
                return f"refusal: the teacher declined instead of answering ({text[:60]!r})"
        for pattern in self._debris:
            match = pattern.search(text)
            if match:
                line = text[match.start() :].splitlines()[0][:60]
                return f"debris: input contains template text {line!r}"
        return None

    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        labels = list(ctx.labels) if ctx.labels is not None else None
        out: dict[str, str] = {}
        for record in records:
            reason = self.check(record, labels)
            if reason is not None:
                out[record.id] = reason
        return out


@hookimpl
def register_filters(register: Register) -> None:
    register(ParseValidityConfig, ParseValidityFilter)
