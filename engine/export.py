"""``distilforge export RUN_DIR``: a run's data as a file other tools read, without touching the run.

Only what the manifest says is committed is exported (a run cut off mid-write may hold a torn or
uncommitted tail), and the run directory is only read, so a run still going can be exported.

Formats: ``jsonl``, ``csv``, ``parquet``, ``datasets`` (a ``save_to_disk`` folder) carry one row per
record with ``input``, ``target``, ``origin`` and ``round`` (plus ``id``, ``parent_id``,
``provenance`` and ``scores`` with ``provenance=True``; rejects add ``reason`` and ``rejected_by``).
``chat`` writes the chat-format JSONL that fine-tuning tools take: a system message with the task
when there is one, the input as the user's turn and the target as the assistant's.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.store.jsonl import read_jsonl
from distilforge.schemas import RunLayout

PARTS: tuple[str, ...] = ("seeds", "synthetic", "rejects")
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "datasets": "", "chat": ".jsonl"}
FORMATS: tuple[str, ...] = tuple(SUFFIX)


def _committed(path: Path, count: int) -> Iterable[dict[str, Any]]:
    return islice(read_jsonl(path), count) if path.exists() else iter(())


def export_rows(run_dir: Path, parts: Iterable[str], *, provenance: bool) -> list[dict[str, Any]]:
    """The rows to export, seeds first, then synthetic records, then rejects (each in file order)."""
    layout = RunLayout(run_dir)
    if not layout.manifest.exists():
        raise DistilforgeError(f"{run_dir} is not a distilforge run directory (no manifest.json)")
    wanted = set(parts)
    unknown = sorted(wanted - set(PARTS))
    if unknown or not wanted:
        raise DistilforgeError(f"--include takes {', '.join(PARTS)} (comma-separated); got {sorted(wanted)}")
    committed = json.loads(layout.manifest.read_text())["committed"]
    rows: list[dict[str, Any]] = []
    for record in _committed(layout.records, int(committed["records"])):
        part = "seeds" if record.get("origin") in ("seed", "real") else "synthetic"
        if part in wanted:
            rows.append(_row(record, provenance))
    if "rejects" in wanted:
        for reject in _committed(layout.rejects, int(committed["rejects"])):
            record = reject.get("record") or {}
            row = _row({**record, "input": record.get("input", reject.get("text") or "")}, provenance)
            row.update(
                origin="rejected", round=reject["round"], reason=reject["reason"], rejected_by=reject["rejected_by"]
            )
            rows.append(row)
    return rows


def _row(record: dict[str, Any], provenance: bool) -> dict[str, Any]:
    row = {
        "input": record.get("input", ""),
        "target": record.get("target", ""),
        "origin": record.get("origin", ""),
        "round": record.get("round"),
    }
    if provenance:
        row.update(
            id=record.get("id"),
            parent_id=record.get("parent_id"),
            provenance=json.dumps(record.get("provenance"), sort_keys=True),
            scores=json.dumps(record.get("scores") or {}, sort_keys=True),
        )
    return row


def _task(run_dir: Path) -> str:
    manifest = json.loads(RunLayout(run_dir).manifest.read_text())
    return str(manifest.get("task") or "")


def write_export(rows: list[dict[str, Any]], out: Path, fmt: str, *, task: str = "") -> Path:
    """Write ``rows`` to ``out`` in ``fmt``; returns the path written."""
    if fmt not in FORMATS:
        raise DistilforgeError(f"--format takes one of {', '.join(FORMATS)}; got {fmt!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "chat":
        system = [{"role": "system", "content": task}] if task else []
        lines = [
            {
                "messages": [
                    *system,
                    {"role": "user", "content": r["input"]},
                    {"role": "assistant", "content": r["target"]},
                ]
            }
            for r in rows
        ]
        out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    elif fmt == "csv":
        columns = list(dict.fromkeys(k for r in rows for k in r)) or ["input", "target", "origin", "round"]
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), out)
    else:
        _to_dataset(rows).save_to_disk(str(out))
    return out


def _to_dataset(rows: list[dict[str, Any]]) -> Any:
    try:
        import datasets
    except ImportError:
        raise DistilforgeError("--format datasets needs the `datasets` package (the `tabular` extra)") from None
    return datasets.Dataset.from_list(rows)


def _hub_token() -> str:
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise DistilforgeError("--push-to-hub needs a token in $HF_TOKEN (it is read from the environment only)")
    return token


def push_to_hub(rows: list[dict[str, Any]], repo: str, token: str) -> None:
    """Upload as a private Hugging Face dataset; the token is passed on, never stored."""
    _to_dataset(rows).push_to_hub(repo, token=token, private=True)


def default_output(run_dir: Path, fmt: str) -> Path:
    return RunLayout(run_dir).root / "export" / f"data{SUFFIX.get(fmt, '')}"


def export_run(
    run_dir: Path,
    fmt: str,
    out: Path | None = None,
    *,
    include: Iterable[str] = ("seeds", "synthetic"),
    provenance: bool = False,
    hub_repo: str | None = None,
) -> tuple[Path, int]:
    """Export a run's committed data; returns (where it went, how many rows). Nothing leaves the
    machine unless ``hub_repo`` is given."""
    token = _hub_token() if hub_repo else None
    rows = export_rows(run_dir, include, provenance=provenance)
    path = write_export(rows, out or default_output(run_dir, fmt), fmt, task=_task(run_dir))
    if hub_repo and token:
        push_to_hub(rows, hub_repo, token)
    return path, len(rows)
