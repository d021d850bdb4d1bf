"""Embeddings kept across rounds and runs, in the run folder's cache file (SQLite).

The engine hands every stage the path of the teacher cache (``RunContext.vector_cache``); the
vectors live there in their own table, keyed by (embedder id, sha256 of the text), so a resumed
or re-run job embeds nothing it embedded before, and a different embedder (another model, another
truncation length) never gets stale vectors. Rows are float32 bytes; a row of the wrong size is a
miss (it is computed again and replaced).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

_CHUNK = 500  # SQLite's bound-parameter limit is well above this


class VectorStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (embedder TEXT NOT NULL, text_sha256 TEXT NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (embedder, text_sha256)) WITHOUT ROWID"
        )
        self._db.commit()
        self.dims: dict[str, int] = {}

    def get_many(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors among ``hashes`` (sha256 hex of the texts) for ``embedder``."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), _CHUNK):
                chunk = list(hashes[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT text_sha256, vector FROM vectors WHERE embedder = ? AND text_sha256 IN ({marks})",
                    [embedder, *chunk],
                )
                for sha, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if self.dims.setdefault(embedder, vector.size) == vector.size:
                        found[sha] = vector.copy()
        return found

    def put_many(self, embedder: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(embedder, sha, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for sha, v in items]
        if not rows:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (embedder, text_sha256, vector) VALUES (?, ?, ?)", rows
            )
            self._db.commit()

    def count(self, embedder: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE embedder = ?", [embedder]).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_STORES: dict[Path, VectorStore] = {}


def vector_store(path: Path) -> VectorStore:
    """One open :class:`VectorStore` per file and process."""
    key = Path(path).resolve()
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = VectorStore(key)
    return store
