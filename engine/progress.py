"""Progress that reaches the user whether or not stderr is a terminal.

On a terminal: rich's spinner and live bar. Elsewhere (nohup, CI, a notebook, ``| tee``) a live
bar prints nothing, so long stages would be silent for minutes: there they print plain,
timestamped lines instead — when a stage starts and ends, and for teacher sampling one line every
``PLAIN_EVERY_S`` seconds with done/total, tokens/s, elapsed time and an estimate of what is left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from distilforge.schemas import Completion

PLAIN_EVERY_S = 30.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _plain(console: Console, text: str) -> None:
    console.print(f"[{time.strftime('%H:%M:%S')}] {text}", highlight=False, markup=False)


@contextlib.contextmanager
def stage_status(console: Console, message: str) -> Iterator[None]:
    """A spinner on a terminal; elsewhere a line when the stage starts and one when it ends."""
    if console.is_terminal:
        with console.status(message):
            yield
        return
    started = time.perf_counter()
    _plain(console, f"{message} ...")
    yield
    _plain(console, f"{message}: done in {_clock(time.perf_counter() - started)}")


@contextlib.contextmanager
def sampling_progress(
    console: Console, label: str, total: int, every_s: float = PLAIN_EVERY_S
) -> Iterator[Callable[[Completion], None]]:
    """Count the teacher's samples; yields the per-sample callback."""
    started = time.perf_counter()
    state: dict[str, Any] = {"done": 0, "tokens": 0, "last": started}

    def line(now: float) -> str:
        done, elapsed = state["done"], max(now - started, 1e-6)
        # an estimate from the first few samples is noise (a chunk often arrives at once)
        left = f", about {_clock(elapsed / done * (total - done))} left" if 0.1 * total <= done < total else ""
        share = f" ({100 * done / total:.0f}%)" if total else ""
        rate = state["tokens"] / elapsed
        return (
            f"{label}: {done}/{total} samples{share}, {done / elapsed:.2f} samples/s, {rate:.0f} tok/s,"
            f" {_clock(elapsed)} elapsed{left}"
        )

    if console.is_terminal:
        bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        task = bar.add_task("sample", total=total, rate="")

        def on_terminal(completion: Completion) -> None:
            state["tokens"] += completion.completion_tokens
            elapsed = max(time.perf_counter() - started, 1e-6)
            bar.update(task, advance=1, rate=f"{state['tokens'] / elapsed:.0f} tok/s")

        with bar:
            yield on_terminal
        return

    def on_plain(completion: Completion) -> None:
        state["done"] += 1
        state["tokens"] += completion.completion_tokens
        now = time.perf_counter()
        if now - state["last"] >= every_s:
            state["last"] = now
            _plain(console, line(now))

    _plain(console, f"{label}: {total} samples to make")
    yield on_plain
    _plain(console, line(time.perf_counter()))
