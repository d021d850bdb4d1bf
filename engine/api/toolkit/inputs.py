"""Reading the files a user hands over (prompts, datasets): every problem named with file and line.

Unlike the engine's own append-only files (``store/jsonl.py``, where an unterminated last line is
a torn write and is dropped), an INPUT file's last line without a newline is complete: editors
and ``echo -n`` write such files. A byte-order mark is accepted; any other undecodable byte, a
line that is not JSON, or a JSON value that is not an object is an :class:`InputFileError`
naming the file and the line, before any work starts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distilforge.engine.api.errors import DistilforgeError


class InputFileError(DistilforgeError):
    """An input file is missing, unreadable or malformed; the message names the file and the line."""


def _text(path: Path, what: str) -> str:
    if not path.exists():
        raise InputFileError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{what} {path}: is a directory, not a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFileError(
            f"{what} {path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start});"
            " save the file as UTF-8"
        ) from None


def read_jsonl_input(path: Path, what: str = "input file") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number from 1, object)`` for every non-blank line of a JSON Lines input file."""
    path = Path(path)
    for number, line in enumerate(_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{what} {path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise InputFileError(f"{what} {path}:{number}: a line must be a JSON object, got {type(value).__name__}")
        yield number, value


def read_table_input(path: Path, what: str = "input file") -> list[tuple[int, dict[str, Any]]]:
    """Rows of a ``.csv`` (line number of the row, dict) or of a ``.jsonl`` file."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return list(read_jsonl_input(path, what))
    reader = csv.DictReader(io.StringIO(_text(path, what), newline=""))
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise InputFileError(f"{what} {path}:{reader.line_num}: {exc}") from None
