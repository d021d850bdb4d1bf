"""Atomic file replacement: write a temp file in the same folder, fsync, rename, fsync the folder.

A reader (or a resumed run after ``kill -9``) sees either the old file or the new one, never a
half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_artifact(path: Path, content: str | bytes | dict[str, Any] | list[Any]) -> Path:
    """Write one file of a run (a report section, a plot, a state dump) atomically: text as UTF-8,
    bytes as they are, a dict or list as indented JSON. Returns ``path``."""
    if isinstance(content, bytes):
        atomic_write_bytes(path, content)
    elif isinstance(content, str):
        atomic_write_text(path, content)
    else:
        atomic_write_json(path, content)
    return Path(path)
