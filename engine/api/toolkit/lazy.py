"""Build a component from a module that is imported only when the component is built."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_factory(target: str) -> Callable[[Any], Any]:
    """A factory for ``register(ConfigClass, factory)`` that imports ``"package.module:Class"`` on
    its first call. Keep the config class in a light module and the component (torch, sklearn, an
    HTTP client...) in its own: every command's start-up then pays only for the configs."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"lazy_factory needs 'package.module:Class', got {target!r}")

    def build(config: Any) -> Any:
        return getattr(importlib.import_module(module_name), attribute)(config)

    build.__qualname__ = build.__name__ = f"lazy:{attribute}"
    return build
