"""Deterministic kills for the fault suite: run a function in a forked child that SIGKILLs itself
just before its N-th durable write, so every gap between two writes of a run can be hit exactly,
without timing. The durable writes are the manifest, the per-round JSON files, the JSONL appends
and the teacher-cache inserts. A run with ``kill_at=None`` only counts them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from distilforge.engine.store.cache import TeacherCache
from distilforge.engine.store.jsonl import JsonlAppender
from distilforge.engine.store.run_store import RunStore

WRITE_POINTS: list[tuple[type, str]] = [
    (RunStore, "save_manifest"),
    (RunStore, "save_json"),
    (JsonlAppender, "write_many"),
    (TeacherCache, "put_many"),
]


def _install(kill_at: int | None, seen: list[str]) -> None:
    """Wrap every write point (in this process only: the child's)."""
    for owner, name in WRITE_POINTS:
        original = getattr(owner, name)

        def wrapper(*args: Any, _original: Any = original, _name: str = f"{owner.__name__}.{name}") -> Any:
            seen.append(_name)
            if kill_at is not None and len(seen) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return _original(*args)

        setattr(owner, name, wrapper)


def run_forked(fn: Callable[[], object], kill_at: int | None = None) -> tuple[str, list[str]]:
    """Run ``fn`` in a child. Returns ("killed" | "ok" | "failed", the write points the child passed)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        seen: list[str] = []
        _install(kill_at, seen)
        code = 0
        try:
            fn()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        with os.fdopen(write_end, "w") as out:
            out.write("\n".join(seen))
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        passed = [line for line in pipe.read().splitlines() if line]
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed", passed
    return ("ok" if os.WEXITSTATUS(status) == 0 else "failed"), passed
