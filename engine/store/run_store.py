"""The run directory.

```
runs/<name>/
  config.yaml          resolved config (written once)
  manifest.json        fingerprint, status, committed line counts, per-round stage status, method state
  records.jsonl        accepted records, append-only (seeds first)
  rejects.jsonl        everything that did not become a record, with who rejected it and why
  test.jsonl           the held-out split, fixed at the start
  rounds/<r>/          metrics.json, evaluation_*.json, failures.json, requests.jsonl, student/
  report.md  *.png     the report
  .lock                one writer at a time
```

Records and rejects of a round are appended, fsync'd, and only then is the round marked
committed in the manifest (atomic replace). On resume the two files are cut back to the
committed line counts, so a round interrupted half-way leaves nothing behind and is redone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distilforge.engine import __version__
from distilforge.engine.store.atomic import atomic_write_json, atomic_write_text
from distilforge.engine.store.jsonl import JsonlAppender, read_jsonl, truncate_jsonl
from distilforge.engine.store.lock import RunLock
from distilforge.schemas import SCHEMA_VERSION, Record, Reject

STAGES = ("train", "evaluate", "select", "generate")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.lock = RunLock(self.run_dir / ".lock")
        self.manifest: dict[str, Any] = {}

    # ------------------------------------------------------------------ paths
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.yaml"

    @property
    def records_path(self) -> Path:
        return self.run_dir / "records.jsonl"

    @property
    def rejects_path(self) -> Path:
        return self.run_dir / "rejects.jsonl"

    @property
    def test_path(self) -> Path:
        return self.run_dir / "test.jsonl"

    def round_dir(self, round_index: int) -> Path:
        path = self.run_dir / "rounds" / str(round_index)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ life cycle
    @staticmethod
    def exists(run_dir: Path) -> bool:
        return (Path(run_dir) / "manifest.json").exists()

    def create(self, config: dict[str, Any], fingerprint: str) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))
        self.manifest = {
            "schema_version": SCHEMA_VERSION,
            "distilforge_version": __version__,
            "fingerprint": fingerprint,
            "created": _now(),
            "status": "running",
            "seeded": False,
            "committed": {"records": 0, "rejects": 0},
            "rounds": {},
            "state": {},
        }
        self.save_manifest()

    def open(self) -> None:
        """Take the lock and drop anything written after the last commit."""
        self.lock.acquire()
        self.manifest = json.loads(self.manifest_path.read_text())
        committed = self.manifest["committed"]
        truncate_jsonl(self.records_path, committed["records"])
        truncate_jsonl(self.rejects_path, committed["rejects"])

    def close(self) -> None:
        self.lock.release()

    def stored_config(self) -> dict[str, Any]:
        data = yaml.safe_load(self.config_path.read_text())
        assert isinstance(data, dict)
        return data

    def save_manifest(self) -> None:
        self.manifest["updated"] = _now()
        atomic_write_json(self.manifest_path, self.manifest)

    # ------------------------------------------------------------------ stage status
    def stage_done(self, round_index: int, stage: str) -> bool:
        return self.manifest["rounds"].get(str(round_index), {}).get(stage) == "done"

    def mark(self, round_index: int, stage: str, status: str = "done") -> None:
        self.manifest["rounds"].setdefault(str(round_index), {})[stage] = status
        self.save_manifest()

    def set_status(self, status: str) -> None:
        self.manifest["status"] = status
        self.save_manifest()

    # ------------------------------------------------------------------ records
    def load_records(self) -> list[Record]:
        return [Record.model_validate(row) for row in read_jsonl(self.records_path)]

    def load_rejects(self) -> list[Reject]:
        return [Reject.model_validate(row) for row in read_jsonl(self.rejects_path)]

    def load_test(self) -> list[Record]:
        return [Record.model_validate(row) for row in read_jsonl(self.test_path)]

    def commit(
        self,
        records: Sequence[Record],
        rejects: Sequence[Reject] = (),
        *,
        round_index: int | None = None,
        stage: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Append records and rejects durably, then record the new line counts (and stage) atomically."""
        with JsonlAppender(self.records_path) as out:
            out.write_many(r.model_dump(mode="json") for r in records)
        with JsonlAppender(self.rejects_path) as out:
            out.write_many(r.model_dump(mode="json") for r in rejects)
        committed = self.manifest["committed"]
        committed["records"] += len(records)
        committed["rejects"] += len(rejects)
        if state is not None:
            self.manifest["state"] = state
        if round_index is not None and stage is not None:
            self.manifest["rounds"].setdefault(str(round_index), {})[stage] = "done"
        self.save_manifest()

    # ------------------------------------------------------------------ round artifacts
    def save_json(self, round_index: int, name: str, obj: Any) -> None:
        atomic_write_json(self.round_dir(round_index) / name, obj)

    def load_json(self, round_index: int, name: str) -> Any:
        return json.loads((self.round_dir(round_index) / name).read_text())
