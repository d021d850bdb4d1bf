"""Progress reaches a log file: plain timestamped lines when stderr is not a terminal."""

from __future__ import annotations

import io
import re

from rich.console import Console

from distilforge.engine.progress import sampling_progress, stage_status
from distilforge.schemas import Completion


def _completion(i: int) -> Completion:
    return Completion(request_id=str(i), sample_index=0, text="x", completion_tokens=10, model="m")


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=150)
    with stage_status(console, "round 0: training the student"):
        pass
    with sampling_progress(console, "round 1: teacher", 4, every_s=0.0) as on_completion:
        for i in range(3):
            on_completion(_completion(i))
    lines = out.getvalue().splitlines()
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in lines), lines
    assert lines[0].endswith("round 0: training the student ...")
    assert "round 0: training the student: done in 0m00s" in lines[1]
    assert lines[2].endswith("round 1: teacher: 4 samples to make")
    assert "1/4 samples (25%)" in lines[3] and "left" in lines[3] and "tok/s" in lines[3]
    assert "3/4 samples (75%)" in lines[-1]


def test_a_terminal_gets_the_live_bar_and_no_plain_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with sampling_progress(console, "round 1: teacher", 2, every_s=0.0) as on_completion:
        on_completion(_completion(0))
    assert "samples to make" not in out.getvalue()
