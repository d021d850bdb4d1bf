"""Durable state on disk: atomic files, the run lock, JSON Lines, the manifest and the teacher cache."""

from distilforge.engine.api.toolkit.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from distilforge.engine.store.cache import TeacherCache, cache_key
from distilforge.engine.store.jsonl import JsonlAppender, read_jsonl, truncate_jsonl
from distilforge.engine.store.lock import RunLock
from distilforge.engine.store.run_store import RunStore

__all__ = [
    "JsonlAppender",
    "RunLock",
    "RunStore",
    "TeacherCache",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_key",
    "read_jsonl",
    "truncate_jsonl",
]
