"""One sentence-embedding stack and one vector cache for every component that embeds text.

The novelty filters and scorers and the frozen text student embed through an :class:`Embedder`:
anything with an ``id`` (what its vectors depend on), a ``dim`` and ``encode(texts)`` returning
unit-norm float32 rows. Three kinds exist: the transformers encoder here (all-MiniLM-L6-v2 by
default: mean-pooled over the attention mask and L2-normalised, what sentence-transformers does),
and the ONNX Runtime and static (model2vec) embedders of :mod:`.embedders`.

:func:`embed_with` embeds each distinct text once per process and embedder (a vector is keyed by
the embedder's id and the text's sha256) and, given a :class:`~.vector_store.VectorStore`, once
across runs: vectors found there are not computed again, new ones are written to it.

Texts are embedded in length-sorted batches: padding to the longest text of a random batch costs
more than the model itself on short, varied inputs. What a transformer encoder costs is set by
tokens, not texts: on 2 shared cores MiniLM runs at roughly 2-3k tokens/s whatever the batch, so
11-token sentences go ~3× faster than 27-token review snippets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from distilforge.engine.api.toolkit.vector_store import VectorStore

VECTOR_CACHE_MAX = 500_000  # ~770 MB of 384-d float32; cleared wholesale when full

_ENCODERS: dict[str, SentenceEncoder] = {}
_VECTORS: dict[tuple[str, str], np.ndarray] = {}


class Embedder(Protocol):
    """Turns texts into unit-norm float32 vectors; ``id`` names everything the vectors depend on."""

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class SentenceEncoder:
    """A frozen transformers encoder and its tokenizer, shared by every user of ``path``."""

    path: str
    model: Any
    tokenizer: Any

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)


def load_encoder(path: str) -> SentenceEncoder:
    """The encoder at ``path`` (a local model directory), loaded once per process, never trained."""
    encoder = _ENCODERS.get(path)
    if encoder is None:
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(path)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        encoder = _ENCODERS[path] = SentenceEncoder(path, model, AutoTokenizer.from_pretrained(path))
    return encoder


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Mean of the token vectors the attention mask keeps (torch tensors in, tensor out)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def embedder_id(path: str, max_length: int) -> str:
    """What a cached vector depends on: the encoder, the truncation length and the pooling."""
    return f"{path}|max_length={max_length}|mean-l2"


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices into ``lengths`` in batches of similar length (shortest first)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class TransformersEmbedder:
    """The transformers encoder at ``path`` (torch, float32): the exact reference."""

    path: str
    max_length: int = 256
    batch_size: int = 64

    @property
    def id(self) -> str:
        return embedder_id(self.path, self.max_length)

    @property
    def dim(self) -> int:
        return load_encoder(self.path).dim

    def encode(self, texts: list[str]) -> np.ndarray:
        return _encode(load_encoder(self.path), texts, self.max_length, self.batch_size)


def embed_with(embedder: Embedder, texts: Sequence[str], store: VectorStore | None = None) -> np.ndarray:
    """Unit-norm float32 embeddings of ``texts`` (shape ``(len(texts), dim)``), cached per text.

    Call it inside :func:`~distilforge.engine.api.toolkit.compute_threads` to bound the threads.
    """
    key = embedder.id
    hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    missing = {h: t for h, t in zip(hashes, texts, strict=True) if (key, h) not in _VECTORS}
    if missing and len(_VECTORS) + len(missing) > VECTOR_CACHE_MAX:
        _VECTORS.clear()
    if missing and store is not None:
        for h, vector in store.get_many(key, list(missing)).items():
            _VECTORS[(key, h)] = vector
            del missing[h]
    if missing:
        computed = embedder.encode(list(missing.values()))
        for h, vector in zip(missing, computed, strict=True):
            _VECTORS[(key, h)] = vector
        if store is not None:
            store.put_many(key, zip(missing, computed, strict=True))
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([_VECTORS[(key, h)] for h in hashes])


def embed(texts: Sequence[str], *, path: str, max_length: int = 256, batch_size: int = 64) -> np.ndarray:
    """:func:`embed_with` the transformers encoder at ``path``."""
    return embed_with(TransformersEmbedder(path, max_length, batch_size), texts)


def clear_vector_cache() -> None:
    """Forget every cached vector (benchmarks use it to time embedding from cold)."""
    _VECTORS.clear()


def _encode(encoder: SentenceEncoder, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    ids = encoder.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    with torch.inference_mode():
        for chunk in length_sorted_batches([len(i) for i in ids], batch_size):
            batch = encoder.tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            hidden = encoder.model(**batch).last_hidden_state
            out[chunk] = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=1).numpy()
    return out
