"""An example third-party plugin: found through the ``distilforge`` entry-point group.

It adds a configurable filter component (``word-count``) and implements the ``score_ood``
stage hook directly, adding a ``words`` score to every candidate record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from distilforge.engine.api import Filter, Register, hookimpl
from distilforge.schemas import ComponentConfig, Record


class WordCountConfig(ComponentConfig):
    type: Literal["word-count"] = "word-count"
    min_words: int = Field(1, ge=0)
    max_words: int = Field(200, ge=1)


class WordCountFilter(Filter[WordCountConfig]):
    def reject(self, records: Sequence[Record], ctx: Any) -> dict[str, str]:
        out = {}
        for record in records:
            words = len(record.input.split())
            if not self.config.min_words <= words <= self.config.max_words:
                out[record.id] = f"{words} words, outside [{self.config.min_words}, {self.config.max_words}]"
        return out


@hookimpl
def register_filters(register: Register) -> None:
    register(WordCountConfig, WordCountFilter)


@hookimpl
def score_ood(records: Sequence[Record], ctx: Any) -> dict[str, dict[str, float]]:
    return {r.id: {"words": float(len(r.input.split()))} for r in records}
