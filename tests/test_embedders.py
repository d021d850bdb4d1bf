"""The novelty filter's embedders: ONNX fp32/int8 and static are correct, verified, and cached on disk.

These need the files `distilforge setup` derives (make setup runs it); each test takes a few seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from distilforge.engine.api.toolkit import embeddings
from distilforge.engine.api.toolkit.embeddings import TransformersEmbedder, embed_with
from distilforge.engine.api.toolkit.vector_store import VectorStore
from distilforge.plugins.filters.novelty import FaissNoveltyConfig, FaissNoveltyFilter
from distilforge.plugins.models import embedders
from distilforge.plugins.models.packaged import default_encoder_dir
from distilforge.schemas import Record
from tests.helpers import make_ctx

TEXTS = [
    "A warm, funny film.",
    "A warm, funny movie.",
    "The plot drags on and on, and the jokes land nowhere near where they were aimed at all.",
    "Bad.",
    "Quarterly revenue rose four percent on strong demand for cloud services.",
    "An unexpectedly moving portrait of a family that falls apart and slowly, painfully, finds itself again.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return embed_with(TransformersEmbedder(default_encoder_dir()), TEXTS)


def test_onnx_fp32_equals_the_torch_encoder_whatever_the_batching(reference: np.ndarray) -> None:
    onnx = embedders.embedder_for("minilm-onnx", batch_size=2)
    vectors = onnx.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference, atol=1e-4)
    np.testing.assert_allclose(dataclasses.replace(onnx, batch_size=64).encode(TEXTS), vectors, atol=1e-5)  # type: ignore[type-var]
    assert onnx.id != embedders.embedder_for("minilm-onnx-int8").id != TransformersEmbedder(default_encoder_dir()).id


def test_onnx_int8_stays_close_to_the_torch_encoder(reference: np.ndarray) -> None:
    vectors = embedders.embedder_for("minilm-onnx-int8").encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(vectors * reference, axis=1)) > 0.97
    assert vectors[0] @ vectors[1] > 0.9 > vectors[0] @ vectors[4]


def test_static_embedder_is_model2vec_normalised_and_ranks_near_duplicates_first() -> None:
    from model2vec import StaticModel

    static = embedders.embedder_for("static")
    vectors = static.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), embedders.STATIC_DIMS) and vectors.dtype == np.float32
    raw = StaticModel.from_pretrained(Path(embedders.derived_dir() / "static")).encode(TEXTS)
    raw = raw.astype(np.float32)  # the distilled weights are float16
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] == max(sims[0, 2:].max(), sims[0, 1])  # the one-word edit is the nearest text
    assert sims[0, 1] > FaissNoveltyConfig(embedder="static").cosine_threshold > sims[0, 4]


def test_a_changed_derived_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    info = embedders.marker()
    assert info is not None
    broken = {**info, "sha256": {**info["sha256"], "static": "0" * 64}}
    monkeypatch.setattr(embedders, "marker", lambda: broken)
    embedders._verified_digest.cache_clear()
    try:
        with pytest.raises(embedders.ModelUnavailable, match="distilforge setup --force"):
            embedders.embedder_for("static")
    finally:
        monkeypatch.undo()
        embedders._verified_digest.cache_clear()


def test_an_embedder_that_is_not_set_up_is_a_validation_error_naming_field_and_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path))
    assert FaissNoveltyConfig(embedder="minilm").embedder == "minilm"  # the packaged model needs no set-up
    for name in ("static", "minilm-onnx", "minilm-onnx-int8"):
        with pytest.raises(ValidationError, match=r"(?s)embedder.*not set up.*`distilforge setup`"):
            FaissNoveltyConfig(embedder=name)


def test_vectors_persist_in_the_cache_file_so_a_resumed_run_embeds_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "teacher-cache.sqlite"
    encoded: list[int] = []
    real = embeddings.embed_with

    def counting(embedder: embeddings.Embedder, texts: list[str], store: VectorStore | None = None) -> np.ndarray:
        original = embedder.encode

        class Counting:
            id, dim = embedder.id, embedder.dim

            def encode(self, batch: list[str]) -> np.ndarray:
                encoded.append(len(batch))
                return original(batch)

        return real(Counting(), texts, store)

    monkeypatch.setattr("distilforge.plugins.filters.novelty.embed_with", counting)
    pool = [Record(input=t, target="x", origin="seed") for t in TEXTS[2:]]
    candidates = [Record(input=t, target="x", origin="synthetic") for t in TEXTS[:2]]
    ctx = make_ctx(pool=pool)
    ctx.vector_cache = cache
    first = FaissNoveltyFilter(FaissNoveltyConfig(embedder="static")).reject(candidates, ctx)
    assert encoded == [4, 2] and list(first) == [candidates[1].id]
    embeddings.clear_vector_cache()  # a new process: only the cache file remembers
    again = FaissNoveltyFilter(FaissNoveltyConfig(embedder="static")).reject(candidates, ctx)
    assert again == first and encoded == [4, 2]
    assert VectorStore(cache).count(embedders.embedder_for("static").id) == 6
    # another embedder's vectors are its own
    FaissNoveltyFilter(FaissNoveltyConfig(embedder="minilm-onnx-int8")).reject(candidates, ctx)
    assert encoded == [4, 2, 4, 2]


def test_blocked_reject_decides_as_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*TEXTS, "a warm, funny film!", "Bad!", "Revenue rose four percent on strong cloud demand."]
    records = [Record(input=t, target="x", origin="synthetic") for t in texts]
    flt = FaissNoveltyFilter(FaissNoveltyConfig(embedder="static", threshold=0.8))
    whole = flt.reject(records, make_ctx())
    monkeypatch.setattr(FaissNoveltyFilter, "BLOCK", 1)
    assert FaissNoveltyFilter(flt.config).reject(records, make_ctx()) == whole
    monkeypatch.setattr(FaissNoveltyFilter, "BLOCK", 3)
    assert FaissNoveltyFilter(flt.config).reject(records, make_ctx()) == whole
    assert len(whole) >= 2
