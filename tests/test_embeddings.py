"""The toolkit's one embedding stack: sentence-transformers' vectors, one cache for every component."""

from __future__ import annotations

import numpy as np
import pytest

from distilforge.engine.api.toolkit import embeddings
from distilforge.plugins.filters.novelty import FaissNoveltyConfig, FaissNoveltyFilter
from distilforge.plugins.models.packaged import default_encoder_dir
from distilforge.plugins.students.catalogue import TextClassifierConfig
from distilforge.plugins.students.text_classifier import TextClassifierStudent

TEXTS = [
    "A warm, funny film.",
    "The plot drags on and on, and the jokes land nowhere near where they were aimed at all.",
    "Bad.",
    "An unexpectedly moving portrait of a family that falls apart and slowly, painfully, finds itself again.",
    "A warm, funny film.",
]

pytestmark = pytest.mark.slow


def test_vectors_match_sentence_transformers_and_do_not_depend_on_batching() -> None:
    from sentence_transformers import SentenceTransformer

    path = default_encoder_dir()
    embeddings.clear_vector_cache()
    ours = embeddings.embed(TEXTS, path=path, max_length=256, batch_size=2)
    reference = SentenceTransformer(path, device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    embeddings.clear_vector_cache()
    one_by_one = np.stack([embeddings.embed([t], path=path, max_length=256)[0] for t in TEXTS])
    np.testing.assert_allclose(one_by_one, ours, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_the_filter_and_the_text_student_share_one_encoder_and_one_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings.clear_vector_cache()
    encoded: list[int] = []
    real = embeddings._encode

    def counting(encoder: embeddings.SentenceEncoder, texts: list[str], max_length: int, batch: int) -> np.ndarray:
        encoded.append(len(texts))
        return real(encoder, texts, max_length, batch)

    monkeypatch.setattr(embeddings, "_encode", counting)
    flt = FaissNoveltyFilter(FaissNoveltyConfig(max_length=64))
    student = TextClassifierStudent(TextClassifierConfig(mode="frozen", max_length=64))
    from_filter = flt.embed(TEXTS)
    from_student = student.embed(list(reversed(TEXTS)))
    assert encoded == [4]  # four distinct texts, embedded once for both components
    np.testing.assert_array_equal(from_student, from_filter[::-1])
    assert student._ensure_base() is embeddings.load_encoder(flt.embedder.path).model
    # another truncation length is another embedder: embedded again, never served stale vectors
    FaissNoveltyFilter(FaissNoveltyConfig(max_length=8)).embed(TEXTS[:2])
    assert encoded == [4, 2]
    assert embeddings.embed([], path=flt.embedder.path).shape == (0, 384)
