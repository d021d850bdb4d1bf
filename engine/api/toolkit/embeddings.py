"""One sentence-embedding stack and one vector cache for every component that embeds text.

The novelty filters and scorers and the frozen text student all embed with a transformers
encoder, mean-pooled over the attention mask and L2-normalised (what sentence-transformers does
for all-MiniLM-L6-v2). :func:`load_encoder` loads an encoder once per process and per path;
:func:`embed` turns texts into unit vectors, embedding each distinct text once per process and
embedder (a vector is keyed by the embedder's id and the text's sha256), so a loop that re-reads
a growing pool only embeds what is new.

Texts are embedded in length-sorted batches: padding to the longest text of a random batch costs
more than the model itself on short, varied inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

VECTOR_CACHE_MAX = 500_000  # ~770 MB of 384-d float32; cleared wholesale when full

_ENCODERS: dict[str, SentenceEncoder] = {}
_VECTORS: dict[tuple[str, str], np.ndarray] = {}


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


def embed(texts: Sequence[str], *, path: str, max_length: int = 256, batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings of ``texts`` (shape ``(len(texts), dim)``), cached per text.

    Call it inside :func:`~distilforge.engine.api.toolkit.compute_threads` to bound the threads.
    """
    key = embedder_id(path, max_length)
    hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    missing = {h: t for h, t in zip(hashes, texts, strict=True) if (key, h) not in _VECTORS}
    encoder = load_encoder(path)
    if missing:
        if len(_VECTORS) + len(missing) > VECTOR_CACHE_MAX:
            _VECTORS.clear()
        for h, vector in zip(missing, _encode(encoder, list(missing.values()), max_length, batch_size), strict=True):
            _VECTORS[(key, h)] = vector
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([_VECTORS[(key, h)] for h in hashes])


def clear_vector_cache() -> None:
    """Forget every cached vector (benchmarks use it to time embedding from cold)."""
    _VECTORS.clear()


def _encode(encoder: SentenceEncoder, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    ids = encoder.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(i) for i in ids], kind="stable")
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = order[start : start + batch_size]
            batch = encoder.tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            hidden = encoder.model(**batch).last_hidden_state
            out[chunk] = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=1).numpy()
    return out
