"""distilforge-minhash: a MinHash/LSH near-duplicate filter (``type: minhash-dedup``).

Teachers repeat themselves: across samples and rounds they write the same example with a word
or a number changed. Exact-dedup misses those; embedding similarity catches them but needs a
model. MinHash over character shingles catches near-copies in microseconds per record, with no
model: a candidate is rejected when its estimated Jaccard similarity to an accepted record (or
to a candidate accepted earlier in the same batch) reaches ``threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from distilforge.engine.api import Filter, Register, hookimpl
from distilforge.schemas import ComponentConfig, Record
from distilforge_minhash.minhash import LSHIndex, MinHasher, shingles

DISTILFORGE_HOOKSPEC_VERSION = "2.0"


class MinHashDedupConfig(ComponentConfig):
    type: Literal["minhash-dedup"] = "minhash-dedup"
    threshold: float = Field(
        0.7, gt=0.0, le=1.0, description="reject at this estimated Jaccard similarity of the shingle sets or above"
    )
    unit: Literal["char", "word"] = Field("char", description="shingles of characters or of words")
    ngram: int = Field(5, ge=1, description="shingle length (characters or words)")
    num_perm: int = Field(128, ge=8, description="MinHash signature length; more = a tighter estimate")
    bands: int = Field(32, ge=1, description="LSH bands (num_perm must be a multiple); more = higher recall")
    against_pool: bool = Field(True, description="compare with the accepted records too, not only within the batch")
    seed: int = Field(1, description="seeds the hash functions")

    @model_validator(mode="after")
    def _bands_divide(self) -> MinHashDedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self


class MinHashDedup(Filter[MinHashDedupConfig]):
    def __init__(self, config: MinHashDedupConfig) -> None:
        super().__init__(config)
        self.hasher = MinHasher(config.num_perm, config.seed)
        self._signatures: dict[str, np.ndarray] = {}  # record id (a content hash) -> signature

    def signature(self, record: Record) -> np.ndarray:
        cached = self._signatures.get(record.id)
        if cached is None:
            cached = self.hasher.signature(shingles(record.input, self.config.ngram, self.config.unit))
            self._signatures[record.id] = cached
        return cached

    def reject(self, records: Sequence[Record], ctx: Any) -> dict[str, str]:
        c = self.config
        index = LSHIndex(c.num_perm, c.bands)
        if c.against_pool and ctx is not None:
            for record in ctx.pool:
                index.add(record.id, self.signature(record))
        out: dict[str, str] = {}
        for record in records:
            signature = self.signature(record)
            match = index.best_match(signature)
            if match is not None and match[1] >= c.threshold:
                out[record.id] = f"near-duplicate of {match[0]} (estimated Jaccard {match[1]:.2f} >= {c.threshold})"
            else:
                index.add(record.id, signature)
        return out


@hookimpl
def register_filters(register: Register) -> None:
    register(MinHashDedupConfig, MinHashDedup)
