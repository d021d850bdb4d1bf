"""Deprecated: import from :mod:`distilforge.engine.api` (this path goes away in 0.3)."""

import warnings

from distilforge.engine.api.context import *  # noqa: F403

warnings.warn(
    "distilforge.engine.context is deprecated; import from distilforge.engine.api instead",
    DeprecationWarning,
    stacklevel=2,
)
