"""Dataset ``gsm-symbolic``: GSM8K-style word problems from ``reasoning-gym`` (generated offline).

``reasoning_gym.create_dataset("gsm_symbolic", size=N, seed=S)`` instantiates GSM8K templates
with random names and numbers. The test split is drawn with its own ``split_seed``, so it never
moves with the run seed; the seed (training) set is drawn from a different generator stream
and every question that is also in the test split (compared by whitespace-normalised text) or
already taken is skipped, so the two splits are disjoint and free of duplicates.

Records: ``input`` = the question, ``target`` = the chain of thought followed by ``#### <answer>``
(reasoning-gym's chain of thought already ends with such a line; it is replaced by one built
from the item's ``answer`` so every target ends the same way).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from distilforge.engine.api.components import Dataset, DatasetSplits
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record, content_hash

TASK = "Solve grade-school math word problems step by step; the answer ends with '#### <number>'."
_TRAILING_FINAL = re.compile(r"\n?[ \t]*####[^\n]*\s*$")
# Draws per generator stream: enough for any sane split even after dropping collisions.
_MAX_ATTEMPTS = 6


def _norm(question: str) -> str:
    return " ".join(question.split()).casefold()


def gsm_target(answer_cot: str, answer: str) -> str:
    """``<chain of thought>\\n#### <answer>`` with any trailing ``####`` line of the CoT removed."""
    cot = _TRAILING_FINAL.sub("", answer_cot.rstrip()).rstrip()
    return f"{cot}\n#### {answer.strip()}"


def _items(size: int, seed: int) -> list[dict[str, Any]]:
    try:
        import reasoning_gym
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DistilforgeError("the 'gsm-symbolic' dataset needs the 'reasoning-gym' package") from exc
    return list(reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed))


def _draw(count: int, seed: int, exclude: set[str]) -> Iterator[dict[str, Any]]:
    """Yield ``count`` items with new questions (not in ``exclude``, not repeated), drawing
    larger batches from derived seeds until enough are found; ``exclude`` is updated."""
    found = 0
    size = max(8, count + count // 4)
    for attempt in range(_MAX_ATTEMPTS):
        stream = seed if attempt == 0 else int(content_hash({"gsm-stream": seed, "attempt": attempt}), 16) % 2**31
        for item in _items(size, stream):
            key = _norm(str(item["question"]))
            if key in exclude:
                continue
            exclude.add(key)
            yield item
            found += 1
            if found == count:
                return
        size *= 2
    raise DistilforgeError(f"gsm-symbolic: found only {found} distinct problems of the {count} asked for")


def _record(item: dict[str, Any], origin: Literal["seed", "real"]) -> Record:
    meta = item.get("metadata") or {}
    answer = str(item["answer"])
    cot = str(meta.get("answer_cot") or "")
    return Record(
        input=str(item["question"]).strip(),
        target=gsm_target(cot, answer),
        origin=origin,
        meta={"answer": answer, "source_index": meta.get("source_index")},
    )


class GSMSymbolicConfig(ComponentConfig):
    type: Literal["gsm-symbolic"] = "gsm-symbolic"
    seed_size: int = Field(32, ge=1, description="seed (training) problems; they change with the run seed")
    test_size: int = Field(200, ge=1, description="held-out problems, fixed by split_seed")
    split_seed: int = Field(12345, description="fixes the test split independently of the run seed")


class GSMSymbolic(Dataset[GSMSymbolicConfig]):
    """GSM8K-style problems with worked answers; the test split never moves with the run seed."""

    def load(self, seed: int) -> DatasetSplits:
        c = self.config
        taken: set[str] = set()
        test = [_record(item, "real") for item in _draw(c.test_size, c.split_seed, taken)]
        # The seed stream is derived from both seeds, so run seed == split_seed still differs.
        seed_stream = int(content_hash({"gsm-seed": seed, "split": c.split_seed}), 16) % 2**31
        seeds = [_record(item, "seed") for item in _draw(c.seed_size, seed_stream, taken)]
        return DatasetSplits(seed=seeds, test=test, labels=None, task=TASK)


@hookimpl
def register_datasets(register: Register) -> None:
    register(GSMSymbolicConfig, GSMSymbolic)
