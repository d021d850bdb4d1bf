"""Content-addressed cache of teacher completions.

Key: sha256 of (model id, prompt, sampling params without ``n``, sample index). A resumed or
re-run job looks every sample up here first and never pays twice for one it already has.

Stored in SQLite rather than JSON Lines on purpose: at 10^5-10^6 completions the engine needs
random lookups without loading everything into memory, atomic batched commits that survive
``kill -9`` (WAL journal), and safe use by several processes sharing one cache file.
Only successful completions are cached; failures are retried next time.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from distilforge.engine.api.errors import DistilforgeError
from distilforge.schemas import Completion, TeacherRequest, content_hash

log = logging.getLogger("distilforge.cache")


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


class CacheDamaged(DistilforgeError):
    """The teacher cache file cannot be used; the message names it and the remedy."""


class TeacherCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise CacheDamaged(
                f"teacher_cache {self.path} is a directory; give a file path such as {self.path / 'cache.sqlite'}"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.dropped = 0  # rows that no longer parsed: treated as misses, asked for again
        with self._guard():
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, body TEXT NOT NULL)"
            )
            self._db.commit()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's "file is not a database" / "disk image is malformed" as a message with the remedy."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise CacheDamaged(
                f"the teacher cache {self.path} cannot be read ({exc}). Move it away (e.g. `mv {self.path}"
                f" {self.path}.broken`) and run the same command again: the run resumes from its last committed"
                " round, and only the samples of the round in flight are asked for again."
            ) from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        bad: list[str] = []
        with self._lock, self._guard():
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, body FROM completions WHERE key IN ({marks})", chunk)
                for key, body in rows:
                    try:
                        found[key] = Completion.model_validate_json(body)
                    except ValidationError:
                        bad.append(key)
            if bad:  # a damaged row is a miss: the sample is asked for again and the row replaced
                self._db.executemany("DELETE FROM completions WHERE key = ?", [(key,) for key in bad])
                self._db.commit()
                self.dropped += len(bad)
                log.warning(
                    "teacher cache %s: %d damaged rows dropped; those samples are asked again", self.path, len(bad)
                )
        return found

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        rows = [(key, c.model, c.model_copy(update={"cached": False}).model_dump_json()) for key, c in items if c.ok]
        if not rows:
            return
        with self._lock, self._guard():
            self._db.executemany("INSERT OR REPLACE INTO completions (key, model, body) VALUES (?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
