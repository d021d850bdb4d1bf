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
committed in the manifest (atomic replace), with the committed line count, byte length and
sha256 of each file. On resume each file is checked against them: a committed part that was cut
or edited stops the run with :class:`StoreDamaged` (nothing is changed); what lies beyond it (an
interrupted round) is cut off, so a round interrupted half-way leaves nothing behind and is redone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distilforge.engine import __version__
from distilforge.engine.api.errors import StoreDamaged
from distilforge.engine.api.toolkit.files import atomic_write_json, atomic_write_text
from distilforge.engine.store.jsonl import (
    JsonlAppender,
    read_jsonl,
    truncate_bytes,
    truncate_jsonl,
)
from distilforge.engine.store.lock import RunLock
from distilforge.schemas import SCHEMA_VERSION, Record, Reject, RunLayout

STAGES = ("train", "evaluate", "select", "generate")
COMMITTED_FILES = ("records", "rejects")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self.lock = RunLock(self.layout.lock)
        self.manifest: dict[str, Any] = {}
        # sha256 of each file's committed bytes so far, carried on by every commit
        self._digests = {name: hashlib.sha256() for name in COMMITTED_FILES}

    # ------------------------------------------------------------------ paths
    @property
    def manifest_path(self) -> Path:
        return self.layout.manifest

    @property
    def config_path(self) -> Path:
        return self.layout.config

    @property
    def records_path(self) -> Path:
        return self.layout.records

    @property
    def rejects_path(self) -> Path:
        return self.layout.rejects

    @property
    def test_path(self) -> Path:
        return self.layout.test

    def round_dir(self, round_index: int) -> Path:
        path = self.layout.round_dir(round_index)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ life cycle
    @staticmethod
    def exists(run_dir: Path) -> bool:
        return RunLayout(run_dir).manifest.exists()

    def create(self, config: dict[str, Any], fingerprint: str) -> None:
        blocking = next((p for p in (self.run_dir, *self.run_dir.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise StoreDamaged(
                f"cannot create the run directory {self.run_dir}: {blocking} is a file, not a directory;"
                " set output_dir (or name) to a directory path"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        paths = [self._path(name) for name in COMMITTED_FILES]
        orphans = [path.name for path in paths if path.exists() and path.stat().st_size]
        if orphans:
            self.lock.release()
            raise StoreDamaged(
                f"{self.run_dir} holds {' and '.join(orphans)} but no manifest.json, so what was committed is"
                " unknown. Restore manifest.json, or move the directory away (or set another `name`) to start again."
            )
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))
        self.manifest = {
            "schema_version": SCHEMA_VERSION,
            "distilforge_version": __version__,
            "fingerprint": fingerprint,
            "created": _now(),
            "status": "running",
            "seeded": False,
            "committed": {name: 0 for name in COMMITTED_FILES}
            | {f"{name}_bytes": 0 for name in COMMITTED_FILES}
            | {f"{name}_sha256": hashlib.sha256().hexdigest() for name in COMMITTED_FILES},
            "rounds": {},
            "state": {},
        }
        self.save_manifest()

    def open(self) -> None:
        """Take the lock, check the committed part of each file, and drop anything written after it."""
        self.lock.acquire()
        try:
            self.manifest = self._read_manifest()
            for name in COMMITTED_FILES:
                self._verify_and_cut(name)
        except BaseException:
            self.lock.release()
            raise

    def _read_manifest(self) -> dict[str, Any]:
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreDamaged(
                f"{self.manifest_path} is not valid JSON ({exc}); the engine writes it atomically, so it was"
                " changed from outside. Restore it from a backup, or start the run again under a new name"
                " (the teacher cache keeps every completion, so nothing is paid twice)."
            ) from None
        if not isinstance(manifest, dict) or "committed" not in manifest:
            raise StoreDamaged(f"{self.manifest_path} is not a distilforge manifest (no 'committed' section)")
        return manifest

    def _path(self, name: str) -> Path:
        return self.run_dir / f"{name}.jsonl"

    def _verify_and_cut(self, name: str) -> None:
        committed = self.manifest["committed"]
        path, lines = self._path(name), int(committed[name])
        if f"{name}_sha256" not in committed:  # a run directory written before the hashes: line counts only
            truncate_jsonl(path, lines)
            kept = path.read_bytes() if path.exists() else b""
            held = sum(1 for line in kept.splitlines() if line.strip())
            if held < lines:
                self._damaged(path, f"{lines} committed lines, the file holds {held}")
            self._digests[name] = hashlib.sha256(kept)  # carried on: the next commit's hash covers the whole file
            return
        size, wanted = int(committed[f"{name}_bytes"]), committed[f"{name}_sha256"]
        actual = path.stat().st_size if path.exists() else 0
        if actual < size:
            self._damaged(path, f"{lines} committed lines in {size} bytes, the file has {actual} bytes")
        digest = hashlib.sha256()
        if size:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(min(1 << 20, size - handle.tell())), b""):
                    digest.update(block)
        if digest.hexdigest() != wanted:
            self._damaged(path, f"its first {size} bytes (the {lines} committed lines) were changed")
        if actual > size:
            truncate_bytes(path, size)  # an interrupted round's lines: never committed
        self._digests[name] = digest

    def _damaged(self, path: Path, what: str) -> None:
        raise StoreDamaged(
            f"{path} no longer holds what was committed: {what}. Nothing was changed. Restore the file from a"
            " backup, or start the run again under a new name or in a fresh output directory (the teacher cache"
            " keeps every completion, so nothing is paid twice)."
        )

    def close(self) -> None:
        self.lock.release()

    def discard(self) -> None:
        """Delete the run directory (the caller checked that it holds nothing worth keeping)."""
        shutil.rmtree(self.run_dir)

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

    def load_validation(self) -> list[Record]:
        """The validation split carved from the seeds; none when the run has no such split."""
        path = self.layout.validation
        return [Record.model_validate(row) for row in read_jsonl(path)] if path.exists() else []

    def commit(
        self,
        records: Sequence[Record],
        rejects: Sequence[Reject] = (),
        *,
        round_index: int | None = None,
        stage: str | None = None,
        state: dict[str, Any] | None = None,
        manifest_updates: dict[str, Any] | None = None,
    ) -> None:
        """Append records and rejects durably, then record the new line counts and hashes, the stage and
        ``manifest_updates`` in one atomic manifest write: a kill leaves either none of it or all of it."""
        committed = self.manifest["committed"]
        for name, rows in (("records", records), ("rejects", rejects)):
            path = self._path(name)
            start = path.stat().st_size if path.exists() else 0
            with JsonlAppender(path) as out:
                out.write_many(row.model_dump(mode="json") for row in rows)
            with path.open("rb") as handle:
                handle.seek(start)
                self._digests[name].update(handle.read())
            committed[name] += len(rows)
            committed[f"{name}_bytes"] = path.stat().st_size
            committed[f"{name}_sha256"] = self._digests[name].copy().hexdigest()
        if state is not None:
            self.manifest["state"] = state
        if round_index is not None and stage is not None:
            self.manifest["rounds"].setdefault(str(round_index), {})[stage] = "done"
        self.manifest.update(manifest_updates or {})
        self.save_manifest()

    # ------------------------------------------------------------------ round artifacts
    def save_json(self, round_index: int, name: str, obj: Any) -> None:
        atomic_write_json(self.round_dir(round_index) / name, obj)

    def load_json(self, round_index: int, name: str) -> Any:
        return json.loads((self.round_dir(round_index) / name).read_text())
