"""One place that decides how the engine prints: rich on stderr, wide enough for the tables."""

from __future__ import annotations

import sys

from rich.console import Console


def make_console(stderr: bool = True) -> Console:
    """A rich console; when it is not a terminal (CI, logs) use 150 columns, not rich's 80."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 150)
