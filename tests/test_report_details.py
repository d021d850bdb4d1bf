"""The report's per-class section and reject summary."""

from __future__ import annotations

from pathlib import Path

import plugin_majority
import pytest
from rich.console import Console

from distilforge.engine.build import Engine
from distilforge.engine.report_details import class_scores
from distilforge.engine.runner import start_run
from tests.helpers import loop_config, write_config


def test_class_scores_by_hand() -> None:
    targets = ["a", "a", "a", "b", "b", "c"]
    guesses = ["a", "a", "b", "b", "a", "c"]
    scores = class_scores(targets, guesses, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["recall"] == pytest.approx({"a": 2 / 3, "b": 1 / 2, "c": 1.0})
    # F1: a = 2*(2/3)(2/3)/(4/3) = 2/3, b = 2*(1/2)(1/2)/1 = 1/2, c = 1
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert scores["confusion"]["a"] == {"a": 2, "b": 1}


def test_the_report_has_classes_majority_baseline_confusion_and_rejects(tmp_path: Path) -> None:
    config = loop_config(tmp_path, name="rep", method={"rounds": 1})
    start_run(
        Engine.load(extra_plugins=[plugin_majority]),
        write_config(tmp_path / "r.yaml", config),
        console=Console(quiet=True),
    )
    run = tmp_path / "runs" / "rep"
    report = (run / "report.md").read_text()
    assert "## Test split by class" in report and "| majority class (always `" in report
    assert "| seed-only (round 0) |" in report and "| final (round 1) |" in report
    assert "recall `negative`" in report and (run / "confusion.png").stat().st_size > 1000
    assert "## What the teacher wrote" in report and "| rejected by | kind | count |" in report
    assert "Accepted (" in report and "Rejected (" in report
