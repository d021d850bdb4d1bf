"""A deterministic test student: predicts the most common training label (ties: first in sort order).

With balanced seeds it gets every seed of one label wrong, so the LLM2LLM loop has failures to
augment, and each round's synthetic records shift the majority — a cheap, exact way to drive the
loop in tests. Registered in-process with ``Engine.load(extra_plugins=[plugin_majority])``. It is
``distilforge.testing``'s majority-label student under the short name the core tests use.
"""

from __future__ import annotations

from typing import Literal

from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig
from distilforge.testing.components import MajorityLabelStudent


class MajorityConfig(ComponentConfig):
    type: Literal["majority"] = "majority"


@hookimpl
def register_students(register: Register) -> None:
    register(MajorityConfig, MajorityLabelStudent)
