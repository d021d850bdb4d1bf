"""Novelty filters: keep only candidates that add something the pool does not already have.

Three filters, from cheapest to most semantic, all with the same contract: a candidate is
compared with ``ctx.pool`` (the accepted records) and with the candidates of the same batch
that this filter has already let through; the reason of a reject names the record it matched.

* ``exact-dedup``: same input after normalisation (casefold, collapsed whitespace, punctuation
  stripped at both ends).
* ``rouge-novelty``: the LLM2LLM reference rule, ROUGE-L F > ``threshold`` (default 0.95) with
  any existing input, via the ``rouge_score`` package. Pairs whose ROUGE-L cannot exceed the
  threshold (by a token-count bound) are skipped, which makes it far cheaper than all-pairs
  scoring while giving exactly the same decisions.
* ``faiss-novelty``: cosine similarity of sentence embeddings to the nearest neighbour, exact
  ``IndexFlatIP`` up to ``hnsw_above`` vectors (200k) and ``IndexHNSWFlat`` above. Exact search
  stays the default that far because the within-batch path searches blocks of candidates at once
  (one BLAS product each): on 2 cores 100k static-embedded candidates take ~23 s of search,
  against ~60 s for building and querying HNSW, and it misses nothing. The ``embedder`` is
  the packaged all-MiniLM-L6-v2 (torch, exact), the same model through ONNX Runtime (fp32 or
  int8), or a static model2vec embedder distilled from it (:mod:`distilforge.plugins.models.embedders`).
  Vectors are kept in the run folder's cache file (``ctx.vector_cache``), keyed by embedder id and
  text hash, so a resumed run or a later round embeds nothing twice.
  Also registered as a scorer that stores the nearest-neighbour similarity as ``novelty_sim``.

Each filter keeps an index of the pool between calls (the pool only grows within a run) and
absorbs only the records added since the last call; if the pool is not an extension of what
was indexed (a different run, a resume), the index is rebuilt. Candidates accepted within a
call go into a per-call index, not the pool index, because a later filter may still reject
them; once the engine accepts them they arrive through ``ctx.pool`` (their embeddings are
cached, so they are not embedded twice).

Two candidates with the same ``id`` (same input and target) are the same record: the second is
neither compared nor rejected, since a reject is keyed by id and would also drop the first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from distilforge.engine.api.components import Filter, Scorer
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.engine.api.toolkit import compute_threads
from distilforge.engine.api.toolkit.embeddings import Embedder, embed_with
from distilforge.engine.api.toolkit.vector_store import VectorStore, vector_store
from distilforge.plugins.models.embedders import EmbedderName, embedder_for, is_set_up, not_set_up_message
from distilforge.schemas import ComponentConfig, Record

if TYPE_CHECKING:
    from distilforge.engine.api.context import RunContext


class _PoolTracker:
    """Remembers which prefix of ``ctx.pool`` has been indexed already."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def new_records(self, pool: Sequence[Record]) -> tuple[bool, list[Record]]:
        """``(reset, records to add)``: reset means the caller must drop its index first."""
        n = len(self.ids)
        if len(pool) >= n and [r.id for r in pool[:n]] == self.ids:
            fresh = list(pool[n:])
            self.ids.extend(r.id for r in fresh)
            return False, fresh
        self.ids = [r.id for r in pool]
        return True, list(pool)


# --------------------------------------------------------------------------- exact-dedup


def _strip_punctuation(text: str) -> str:
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]


def normalise(text: str) -> str:
    """Casefold, collapse whitespace, strip punctuation (and the spaces it frees) at both ends."""
    text = " ".join(text.casefold().split())
    previous = None
    while previous != text:
        previous = text
        text = _strip_punctuation(text).strip()
    return text


class ExactDedupConfig(ComponentConfig):
    type: Literal["exact-dedup"] = "exact-dedup"


class ExactDedupFilter(Filter[ExactDedupConfig]):
    def __init__(self, config: ExactDedupConfig) -> None:
        super().__init__(config)
        self._tracker = _PoolTracker()
        self._seen: dict[str, str] = {}  # normalised pool input -> first record id

    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        reset, fresh = self._tracker.new_records(ctx.pool)
        if reset:
            self._seen = {}
        for record in fresh:
            self._seen.setdefault(normalise(record.input), record.id)
        batch: dict[str, str] = {}
        accepted_ids: set[str] = set()
        out: dict[str, str] = {}
        for record in records:
            if record.id in accepted_ids:
                continue
            key = normalise(record.input)
            if key in self._seen:
                out[record.id] = f"exact duplicate of accepted record {self._seen[key]}"
            elif key in batch:
                out[record.id] = f"exact duplicate of candidate {batch[key]} in the same batch"
            else:
                batch[key] = record.id
                accepted_ids.add(record.id)
        return out


# --------------------------------------------------------------------------- rouge-novelty


_BOUND_SLACK = 1e-9


class _UnicodeTokenizer:
    """Word tokens of any script (rouge_score's default keeps only ASCII letters and digits)."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(r"\w+", text.casefold())


class RougeNoveltyConfig(ComponentConfig):
    type: Literal["rouge-novelty"] = "rouge-novelty"
    threshold: float = Field(0.95, ge=0.0, le=1.0, description="reject if ROUGE-L F > threshold (LLM2LLM: 0.95)")
    tokenizer: Literal["rouge", "unicode"] = Field(
        "rouge",
        description="'rouge': rouge_score's tokenizer (lowercased ASCII alphanumerics, as the reference);"
        " 'unicode': word characters of any script — use it for non-English text",
    )
    use_stemmer: bool = False


class RougeNoveltyFilter(Filter[RougeNoveltyConfig]):
    def __init__(self, config: RougeNoveltyConfig) -> None:
        super().__init__(config)
        from rouge_score import rouge_scorer, tokenizers

        tokenizer: Any = (
            _UnicodeTokenizer() if config.tokenizer == "unicode" else tokenizers.DefaultTokenizer(config.use_stemmer)
        )
        self._tokenizer = tokenizer
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer)
        self._tracker = _PoolTracker()
        self._pool: list[tuple[str, str, Counter[str], int]] = []  # id, input, token counts, length

    def _entry(self, record: Record) -> tuple[str, str, Counter[str], int]:
        tokens = self._tokenizer.tokenize(record.input)
        return record.id, record.input, Counter(tokens), len(tokens)

    def rouge_l(self, a: str, b: str) -> float:
        return float(self._scorer.score(a, b)["rougeL"].fmeasure)

    def _best_match(
        self, entry: tuple[str, str, Counter[str], int], existing: Sequence[tuple[str, str, Counter[str], int]]
    ) -> tuple[float, str] | None:
        """First existing input with ROUGE-L F > threshold, as (score, id); None if none.

        ROUGE-L F = 2*LCS/(la+lb) and LCS <= the size of the token multiset intersection, so a
        pair whose bound is below the threshold cannot exceed it and is not scored. The slack
        keeps the decision identical to rouge_score's float result, which can land just above
        the exact value (19 of 20 tokens scores 0.9500000000000001 there, so it is rejected).
        """
        _, text, counts, length = entry
        threshold = self.config.threshold
        for other_id, other_text, other_counts, other_length in existing:
            total = length + other_length
            if total == 0 or 2.0 * min(length, other_length) / total < threshold - _BOUND_SLACK:
                continue
            overlap = sum((counts & other_counts).values())
            if 2.0 * overlap / total < threshold - _BOUND_SLACK:
                continue
            score = self.rouge_l(other_text, text)
            if score > threshold:
                return score, other_id
        return None

    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        reset, fresh = self._tracker.new_records(ctx.pool)
        if reset:
            self._pool = []
        self._pool.extend(self._entry(r) for r in fresh)
        accepted: list[tuple[str, str, Counter[str], int]] = []
        accepted_ids: set[str] = set()
        out: dict[str, str] = {}
        for record in records:
            if record.id in accepted_ids:
                continue
            entry = self._entry(record)
            match = self._best_match(entry, self._pool) or self._best_match(entry, accepted)
            if match is not None:
                score, other = match
                where = "candidate" if other in accepted_ids else "accepted record"
                out[record.id] = f"ROUGE-L F {score:.4f} > {self.config.threshold} with {where} {other}"
            else:
                accepted.append(entry)
                accepted_ids.add(record.id)
        return out


# --------------------------------------------------------------------------- faiss-novelty


class _VectorIndex:
    """Inner-product index that is exact (flat) while small and switches to HNSW above a size."""

    def __init__(self, hnsw_above: int, hnsw_m: int, ef_construction: int, ef_search: int) -> None:
        self.hnsw_above, self.hnsw_m = hnsw_above, hnsw_m
        self.ef_construction, self.ef_search = ef_construction, ef_search
        self.ids: list[str] = []
        self.vectors: list[np.ndarray] = []
        self.index: Any = None

    @property
    def kind(self) -> str:
        return "empty" if self.index is None else type(self.index).__name__

    def __len__(self) -> int:
        return len(self.ids)

    def _new_index(self, dim: int, size: int) -> Any:
        import faiss

        if size > self.hnsw_above:
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        return faiss.IndexFlatIP(dim)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        import faiss

        if not len(ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ids.extend(ids)
        self.vectors.extend(vectors)
        size = len(self.ids)
        if self.index is None or (size > self.hnsw_above and isinstance(self.index, faiss.IndexFlatIP)):
            self.index = self._new_index(vectors.shape[1], size)
            self.index.add(np.stack(self.vectors))
        else:
            self.index.add(vectors)

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Cosine similarity to, and id of, each query's nearest neighbour (-1.0/None if empty)."""
        n = len(queries)
        if self.index is None or n == 0:
            return np.full(n, -1.0), [None] * n
        sims, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), 1)
        ids = [self.ids[int(i)] if i >= 0 else None for i in idx[:, 0]]
        return np.where(idx[:, 0] >= 0, sims[:, 0], -1.0).astype(np.float64), ids


# the static embedder's cosines run higher than MiniLM's for the same pair (a coarser space):
# 0.94 keeps its other rejects on the benchmark's 10k set as few as MiniLM's at 0.92
DEFAULT_THRESHOLDS: dict[str, float] = {"minilm": 0.92, "minilm-onnx": 0.92, "minilm-onnx-int8": 0.92, "static": 0.94}


class FaissNoveltyConfig(ComponentConfig):
    type: Literal["faiss-novelty"] = "faiss-novelty"
    threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="reject if cosine similarity to the nearest existing input > threshold; default per embedder"
        " (minilm and its ONNX exports 0.92, static 0.94). Measured with all-MiniLM-L6-v2: a one-word synonym swap"
        " ('film'->'movie') 0.97; real rewordings of one sentence 0.70-0.91; same topic, different content"
        " 0.50-0.61; unrelated ~0.03",
    )
    embedder: EmbedderName = Field(
        "minilm",
        description="'minilm': the packaged all-MiniLM-L6-v2 through transformers (exact); 'minilm-onnx' /"
        " 'minilm-onnx-int8': the same model through ONNX Runtime, fp32 or int8 weights; 'static': a model2vec"
        " static embedder distilled from it (fastest, coarser). The last three are derived by `distilforge setup`",
    )
    model: str | None = Field(
        None, description="encoder model directory (transformers) for embedder 'minilm'; default the packaged MiniLM"
    )
    max_length: int = Field(256, ge=8, description="tokens kept per text when embedding (MiniLM's own limit: 256)")
    hnsw_above: int = Field(
        200_000,
        ge=0,
        description="use IndexHNSWFlat (approximate) once an index holds more vectors; below, exact search,"
        " which on 2 cores is the faster of the two up to about this size",
    )
    hnsw_m: int = Field(32, ge=4)
    ef_construction: int = Field(200, ge=8)
    ef_search: int = Field(128, ge=1)
    batch_size: int = Field(64, ge=1)
    threads: int | None = Field(2, ge=1, description="torch, ONNX Runtime and faiss threads while embedding/searching")

    @property
    def cosine_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.embedder]

    @field_validator("embedder")
    @classmethod
    def _embedder_set_up(cls, name: EmbedderName) -> EmbedderName:
        if not is_set_up(name):
            raise ValueError(not_set_up_message(name))
        return name


class _FaissNoveltyBase:
    config: FaissNoveltyConfig

    def _init_index(self) -> None:
        self._tracker = _PoolTracker()
        self._pool_index = self._make_index()

    def _make_index(self) -> _VectorIndex:
        c = self.config
        return _VectorIndex(c.hnsw_above, c.hnsw_m, c.ef_construction, c.ef_search)

    @property
    def embedder(self) -> Embedder:
        c = self.config
        return embedder_for(
            c.embedder, model=c.model, max_length=c.max_length, batch_size=c.batch_size, threads=c.threads or 2
        )

    def embed(self, texts: Sequence[str], store: VectorStore | None = None) -> np.ndarray:
        return embed_with(self.embedder, texts, store)

    def _store(self, ctx: RunContext) -> VectorStore | None:
        return vector_store(ctx.vector_cache) if ctx.vector_cache is not None else None

    def _sync_pool(self, pool: Sequence[Record], store: VectorStore | None) -> _VectorIndex:
        reset, fresh = self._tracker.new_records(pool)
        if reset:
            self._pool_index = self._make_index()
        if fresh:
            self._pool_index.add([r.id for r in fresh], self.embed([r.input for r in fresh], store))
        return self._pool_index


class FaissNoveltyFilter(_FaissNoveltyBase, Filter[FaissNoveltyConfig]):
    BLOCK = 1024

    def __init__(self, config: FaissNoveltyConfig) -> None:
        Filter.__init__(self, config)
        self._init_index()
        self.last_batch_index: _VectorIndex | None = None

    def reject(self, records: Sequence[Record], ctx: RunContext) -> dict[str, str]:
        """Candidates in order, each against the pool and the candidates accepted before it.

        Done in blocks of ``BLOCK`` candidates so the index work is batched: a block is searched
        against the pool and the earlier blocks' accepted candidates at once, compared within
        itself by one matrix product, and its accepted candidates are added at once. The
        decisions are those of taking the candidates one by one (exactly so with flat indexes).
        """
        if not records:
            return {}
        threshold = self.config.cosine_threshold
        out: dict[str, str] = {}
        with compute_threads(self.config.threads, faiss=True):
            store = self._store(ctx)
            pool_index = self._sync_pool(ctx.pool, store)
            vectors = self.embed([r.input for r in records], store)
            pool_sims, pool_ids = pool_index.nearest(vectors)  # the pool does not change in a call
            batch_index = self._make_index()
            accepted_ids: set[str] = set()
            for start in range(0, len(records), self.BLOCK):
                block = vectors[start : start + self.BLOCK]
                prev_sims, prev_ids = batch_index.nearest(block)
                within = block @ block.T
                kept: list[int] = []  # block positions accepted so far
                for i in range(len(block)):
                    record = records[start + i]
                    if record.id in accepted_ids:
                        continue
                    best, other, where = float(pool_sims[start + i]), pool_ids[start + i], "accepted record"
                    if prev_sims[i] > best:
                        best, other, where = float(prev_sims[i]), prev_ids[i], "candidate"
                    if kept:
                        j = int(np.argmax(within[i, kept]))
                        if within[i, kept[j]] > best:
                            best, other, where = float(within[i, kept[j]]), records[start + kept[j]].id, "candidate"
                    if other is not None and best > threshold:
                        out[record.id] = f"cosine similarity {best:.4f} > {threshold} with {where} {other}"
                    else:
                        kept.append(i)
                        accepted_ids.add(record.id)
                batch_index.add([records[start + i].id for i in kept], block[kept])
        self.last_batch_index = batch_index
        return out


class FaissNoveltyScorer(_FaissNoveltyBase, Scorer[FaissNoveltyConfig]):
    """``novelty_sim``: cosine similarity to the nearest input in the pool (-1.0: empty pool).

    Pool only (not the other candidates), so a record's score does not depend on batch order.
    """

    shardable = True  # pool only: the ray executor may split the records over workers

    def __init__(self, config: FaissNoveltyConfig) -> None:
        Scorer.__init__(self, config)
        self._init_index()

    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        if not records:
            return {}
        with compute_threads(self.config.threads, faiss=True):
            store = self._store(ctx)
            pool_index = self._sync_pool(ctx.pool, store)
            sims, _ = pool_index.nearest(self.embed([r.input for r in records], store))
        return {r.id: {"novelty_sim": float(s)} for r, s in zip(records, sims, strict=True)}


@hookimpl
def register_filters(register: Register) -> None:
    register(ExactDedupConfig, ExactDedupFilter)
    register(RougeNoveltyConfig, RougeNoveltyFilter)
    register(FaissNoveltyConfig, FaissNoveltyFilter)


@hookimpl
def register_scorers(register: Register) -> None:
    register(FaissNoveltyConfig, FaissNoveltyScorer)
