"""Tiny datasets for plugin tests: small enough to read, balanced, with an obvious task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distilforge.schemas import Record

TINY_LABELS = ["negative", "positive"]
TINY_TASK = "Classify the sentiment of a movie review."

_TRAIN = [
    ("a wonderful, moving film", "positive"),
    ("brilliant acting and a great story", "positive"),
    ("I loved every minute of it", "positive"),
    ("a delightful and charming comedy", "positive"),
    ("superb direction and a beautiful score", "positive"),
    ("funny, warm and full of heart", "positive"),
    ("a dull, lifeless mess", "negative"),
    ("terrible acting and a boring plot", "negative"),
    ("I hated every minute of it", "negative"),
    ("a tedious and unfunny comedy", "negative"),
    ("sloppy direction and an awful score", "negative"),
    ("cold, cynical and empty", "negative"),
]
_TEST = [
    ("an excellent, gripping thriller", "positive"),
    ("the cast is fantastic", "positive"),
    ("a joyful celebration of friendship", "positive"),
    ("smart writing and great performances", "positive"),
    ("one of the best films this year", "positive"),
    ("a touching and lovely drama", "positive"),
    ("thrilling from start to finish", "positive"),
    ("beautifully shot and well acted", "positive"),
    ("a clever, witty delight", "positive"),
    ("genuinely inspiring and uplifting", "positive"),
    ("a weak, predictable thriller", "negative"),
    ("the cast is wasted", "negative"),
    ("a miserable slog with no point", "negative"),
    ("lazy writing and wooden performances", "negative"),
    ("one of the worst films this year", "negative"),
    ("a shallow and clumsy drama", "negative"),
    ("boring from start to finish", "negative"),
    ("ugly to look at and badly acted", "negative"),
    ("a stupid, witless bore", "negative"),
    ("painfully dull and depressing", "negative"),
]


def tiny_sentiment() -> tuple[list[Record], list[Record]]:
    """(seed, test) records: 6 + 6 seeds and 10 + 10 test reviews."""
    seed = [Record(input=text, target=label, origin="seed") for text, label in _TRAIN]
    test = [Record(input=text, target=label, origin="real") for text, label in _TEST]
    return seed, test


def write_tiny_dataset(directory: Path) -> dict[str, Any]:
    """Write the tiny set as JSON Lines into ``directory``; return a ``dataset:`` config (type ``file``)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in (("train", _TRAIN), ("test", _TEST)):
        path = directory / f"tiny_sentiment_{split}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
        paths[split] = str(path)
    return {"type": "file", **paths, "labels": list(TINY_LABELS), "task": TINY_TASK}
