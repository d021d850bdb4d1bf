"""One place that decides how the engine prints: rich on stderr, wide enough for the tables."""

from __future__ import annotations

import sys

from rich.console import Console


def make_console() -> Console:
    """A stderr console; when stderr is not a terminal (CI, logs) use 130 columns, not rich's 80."""
    return Console(stderr=True, width=None if sys.stderr.isatty() else 130)
