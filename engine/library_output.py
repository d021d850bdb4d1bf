"""Keep the libraries' own output off the console during a run: into ``engine.log`` in the run directory.

vLLM, torch, oneDNN, transformers and llama.cpp print start-up lines ("Triton not available",
NUMA binding, model loading, FutureWarnings) to the process's stderr, much of it from C++ where no
Python setting reaches. For the length of a run, file descriptor 2 points at the log file, and so
do Python's warnings; ``sys.stderr`` (the run's console, tracebacks, ``DISTILFORGE_TRACE_HOOKS``)
keeps writing to the real stderr through a copy of the original descriptor. Everything is put back
on the way out.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


@contextlib.contextmanager
def library_output_to(log_path: Path) -> Iterator[None]:
    """Send what is written to fd 2, and Python's warnings, to ``log_path`` while the block runs."""
    try:
        sys.stderr.flush()
        saved_fd = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedded interpreter): nothing to move
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    real_stderr = os.fdopen(saved_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    python_stderr = sys.stderr
    show_warning = warnings.showwarning

    def to_log(
        message: Any, category: Any, filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
    ) -> None:
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    if _writes_to_fd(python_stderr, 2):
        sys.stderr = real_stderr
    # Hugging Face's loading bars write to sys.stderr, which stays on the console: switch them off
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    warnings.showwarning = to_log
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved_fd, 2)
        warnings.showwarning = show_warning
        sys.stderr = python_stderr
        real_stderr.close()
        os.close(saved_fd)
        log.close()


def _writes_to_fd(stream: object, fd: int) -> bool:
    """Whether ``stream`` writes to file descriptor ``fd`` (a captured or in-memory stream does not)."""
    try:
        return bool(stream.fileno() == fd)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
