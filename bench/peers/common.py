"""What every job script shares (stdlib only: the job scripts run inside each peer's own venv).

A job reads the prompts file (JSON lines ``{"id": ..., "prompt": ...}``), sends every prompt as
one user chat message, writes its answers to ``--out`` (JSON lines ``{"id", "text",
"finish_reason", "completion_tokens"}``, fields it cannot know are null) and prints one line
``RESULT {json}`` with ``wall_s`` (first request to last answer, imports and client set-up
excluded unless said otherwise), ``answers`` and anything else worth reporting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def job_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--prompts", type=Path, required=True, help="JSON lines with id and prompt")
    parser.add_argument("--out", type=Path, required=True, help="answers as JSON lines")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server, with /v1")
    parser.add_argument("--model", default="teacher", help="model name as the server knows it, or a directory")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--mode", default="default", help="default | best (the peer's own defaults or tuned)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (caches, run dirs)")
    return parser


def read_prompts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_answers(path: Path, answers: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for answer in answers:
            handle.write(json.dumps(answer, ensure_ascii=False) + "\n")


def report(**fields: Any) -> None:
    sys.stdout.write("RESULT " + json.dumps(fields) + "\n")
    sys.stdout.flush()
