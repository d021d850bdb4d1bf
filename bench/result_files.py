"""Where a benchmark leaves its figures: ``OUT.md`` (a title, the command, the printed lines) and
``OUT.json`` (the command, the machine, and whatever the benchmark records)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from distilforge.plugins.teachers.cpu_kind import describe_cpu


def save_results(out: Path, title: str, lines: list[str], record: dict[str, Any]) -> None:
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = [f"# {title}, {time.strftime('%Y-%m-%d')}", "", f"`{command}`", ""]
    Path(f"{out}.md").write_text("\n".join([*header, *lines, ""]), encoding="utf-8")
    full = {"command": command, "machine": describe_cpu(), **record}
    Path(f"{out}.json").write_text(json.dumps(full, indent=1), encoding="utf-8")
