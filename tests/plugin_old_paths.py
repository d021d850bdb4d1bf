"""A third-party plugin written against the 1.x import paths (hookspecs, components, context),
which stay as deprecated shims for one minor version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from distilforge.engine.components import Filter
from distilforge.engine.context import RunContext
from distilforge.engine.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record


class ShortTextConfig(ComponentConfig):
    type: Literal["old-short-text"] = "old-short-text"
    max_chars: int = 40


class ShortTextFilter(Filter[ShortTextConfig]):
    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        return {r.id: "too long" for r in records if len(r.input) > self.config.max_chars}


@hookimpl
def register_filters(register: Register) -> None:
    register(ShortTextConfig, ShortTextFilter)
