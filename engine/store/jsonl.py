"""Append-only JSON Lines with crash-safe reading.

Appends are flushed and fsync'd per batch. A process killed mid-append can leave a torn last
line; readers skip it, and :func:`truncate_jsonl` cuts a file back to the last committed line
count when a run resumes, so an uncommitted round never leaves duplicates behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import jsonlines

from distilforge.engine.api.toolkit.files import atomic_write_bytes


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield every complete JSON object in ``path``; a torn final line is ignored."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return  # torn write from a crash: never committed
            line = raw.strip()
            if line:
                yield json.loads(line)


def truncate_jsonl(path: Path, keep: int) -> int:
    """Keep only the first ``keep`` complete lines of ``path``; returns how many were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    lines: list[bytes] = []
    dropped = 0
    with path.open("rb") as handle:
        for raw in handle:
            if len(lines) < keep and raw.endswith(b"\n"):
                lines.append(raw)
            else:
                dropped += 1
    if dropped:
        atomic_write_bytes(path, b"".join(lines))
    return dropped


def rewrite_jsonl(path: Path, objects: Iterable[Any]) -> None:
    """Replace ``path`` atomically with ``objects``, one per line, as :class:`JsonlAppender` writes them."""
    lines = (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for obj in objects)
    atomic_write_bytes(path, "".join(lines).encode("utf-8"))


def drop_torn_tail(path: Path) -> int:
    """Cut an unterminated last line (a write a kill interrupted) off an append-only file; bytes cut."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb") as handle:
        data = handle.read()
    if data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    truncate_bytes(path, keep)
    return len(data) - keep


def truncate_bytes(path: Path, size: int) -> None:
    """Cut ``path`` to its first ``size`` bytes, durably."""
    with Path(path).open("r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


class JsonlAppender:
    """Append objects to a JSON Lines file; each :meth:`write_many` is flushed and fsync'd."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        self._writer = jsonlines.Writer(self._handle, compact=True, sort_keys=True)

    def write_many(self, objects: Iterable[Any]) -> int:
        count = 0
        for obj in objects:
            self._writer.write(obj)
            count += 1
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return count

    def close(self) -> None:
        self._writer.close()
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
