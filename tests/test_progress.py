"""Progress reaches a log file: plain timestamped lines when stderr is not a terminal."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

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
    assert "1/4 samples (25%)" in lines[3] and "left" in lines[3] and "tok/s" in lines[3] and "samples/s" in lines[3]
    assert "3/4 samples (75%)" in lines[-1]


def test_a_terminal_gets_the_live_bar_and_no_plain_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with sampling_progress(console, "round 1: teacher", 2, every_s=0.0) as on_completion:
        on_completion(_completion(0))
    assert "samples to make" not in out.getvalue()


def test_library_output_goes_to_the_run_log_and_the_console_keeps_its_own(tmp_path: Path) -> None:
    """What a library writes to fd 2 (C++ included) and Python's warnings land in engine.log; what
    the engine prints through sys.stderr (the console, hook traces) still reaches the user."""
    log = tmp_path / "engine.log"
    script = (
        "import os, sys, warnings\n"
        "from pathlib import Path\n"
        "from distilforge.engine.library_output import library_output_to\n"
        f"with library_output_to(Path({str(log)!r})):\n"
        "    os.write(2, b'NUMA binding from C++\\n')\n"
        "    warnings.warn('a FutureWarning from a library', FutureWarning)\n"
        "    print('progress for the user', file=sys.stderr, flush=True)\n"
        "os.write(2, b'after the run\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "progress for the user" in done.stderr and "after the run" in done.stderr
    assert "NUMA" not in done.stderr and "FutureWarning" not in done.stderr
    text = log.read_text()
    assert "NUMA binding from C++" in text and "FutureWarning: a FutureWarning from a library" in text
