"""Content-addressed cache of teacher completions.

Key: sha256 of (model id, prompt, sampling params without ``n``, sample index). A resumed or
re-run job looks every sample up here first and never pays twice for one it already has.

Stored in SQLite rather than JSON Lines on purpose: at 10^5-10^6 completions the engine needs
random lookups without loading everything into memory, atomic batched commits that survive
``kill -9`` (WAL journal), and safe use by several processes sharing one cache file.
Only successful completions are cached; failures are retried next time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from distilforge.schemas import Completion, TeacherRequest, content_hash


def cache_key(model_id: str, request: TeacherRequest, sample_index: int) -> str:
    identity = {
        "model": model_id,
        "prompt": request.prompt_payload(),
        "sampling": request.sampling.cache_fields(),
        "sample_index": sample_index,
    }
    if request.salt:
        identity["salt"] = request.salt
    return content_hash(identity, length=64)


class TeacherCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, body TEXT NOT NULL)"
        )
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, body FROM completions WHERE key IN ({marks})", chunk)
                for key, body in rows:
                    found[key] = Completion.model_validate_json(body)
        return found

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        rows = [(key, c.model, c.model_copy(update={"cached": False}).model_dump_json()) for key, c in items if c.ok]
        if not rows:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO completions (key, model, body) VALUES (?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
