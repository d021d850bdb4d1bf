"""Small helpers shared by the core tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from distilforge.engine.api.context import RunContext
from distilforge.schemas import Record

DATA = Path(__file__).parent / "data"
# the penguins table's features after one-hot encoding, in the table student's order
PENGUIN_FEATURES = [
    "island=Biscoe",
    "island=Dream",
    "island=Torgersen",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex=female",
    "sex=male",
]


def loop_config(tmp: Path, name: str = "run", **overrides: Any) -> dict[str, Any]:
    """An LLM2LLM config on the tiny sentiment set with the fake teacher and the majority student."""
    config: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "output_dir": str(tmp / "runs"),
        "teacher_cache": str(tmp / f"{name}-cache.sqlite"),
        "method": {"type": "llm2llm", "rounds": 3, "k": 3},
        "teacher": {
            "type": "fake",
            "responses": ["A review that says {hash} was great fun", "Text: a {hash} film, honestly", "no"],
            "call_log": str(tmp / f"{name}-calls.jsonl"),
        },
        "student": {"type": "majority"},
        "dataset": {
            "type": "file",
            "train": str(DATA / "tiny_sentiment_train.jsonl"),
            "test": str(DATA / "tiny_sentiment_test.jsonl"),
            "labels": ["negative", "positive"],
            "task": "Classify the sentiment of a movie review.",
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_cli(capsys: Any, *args: str) -> tuple[int, str]:
    """The CLI's entry point in this process: (exit code, stdout + stderr with whitespace collapsed);
    fails the test on a traceback, which no error may print."""
    from distilforge.engine.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    output = " ".join((captured.out + captured.err).split())
    assert "Traceback" not in output, output
    return code, output


def make_ctx(pool: list[Record] | None = None, labels: list[str] | None = None, filters: Any = ()) -> RunContext:
    """A real RunContext; the components these filters never touch are left as None."""
    return RunContext(
        config=None,  # type: ignore[arg-type]
        run_dir=Path("."),
        teacher=None,  # type: ignore[arg-type]
        student=None,  # type: ignore[arg-type]
        method=None,  # type: ignore[arg-type]
        dataset=None,  # type: ignore[arg-type]
        filters=list(filters),
        pool=list(pool or []),
        labels=labels,
    )
