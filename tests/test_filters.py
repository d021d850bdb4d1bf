"""Filters: parse-validity, exact-dedup, rouge-novelty, faiss-novelty (+ the novelty_sim scorer)."""

from __future__ import annotations

from typing import Any

import pytest

from distilforge.engine.dispatch import filter_records
from distilforge.plugins.filters.novelty import (
    ExactDedupConfig,
    ExactDedupFilter,
    FaissNoveltyConfig,
    FaissNoveltyFilter,
    FaissNoveltyScorer,
    RougeNoveltyConfig,
    RougeNoveltyFilter,
    normalise,
)
from distilforge.plugins.filters.validity import ParseValidityConfig, ParseValidityFilter
from distilforge.schemas import Record
from tests.helpers import make_ctx


def rec(text: str, target: str = "pos", **meta: Any) -> Record:
    return Record(input=text, target=target, origin="synthetic", meta=meta)


# --------------------------------------------------------------------------- parse-validity


def test_parse_validity_rules() -> None:
    f = ParseValidityFilter(ParseValidityConfig(min_chars=5, max_chars=60))
    good = rec("A perfectly ordinary sentence.")
    cases = {
        "truncated": rec("The teacher was cut off in the mid", finish_reason="length"),
        "label": rec("A fine sentence with a bad label.", target="neutral"),
        "empty-target": rec("A fine sentence with no label.", target="  "),
        "too-short": rec(" ok  "),
        "too-long": rec("word " * 20),
        "debris": rec("Great movie.\nLabel: positive"),
    }
    debris_first_line = rec("Text: I loved it.")
    out = f.reject([good, *cases.values(), debris_first_line], make_ctx(labels=["pos", "neg"]))
    assert good.id not in out
    for rule, record in cases.items():
        assert out[record.id].startswith(rule), (rule, out.get(record.id))
    assert out[debris_first_line.id].startswith("debris")
    assert "Label: positive" in out[cases["debris"].id]
    chatter = [rec("Here's a new example with the label positive."), rec("A tale labelled as negative, sadly.")]
    assert all(out.startswith("debris") for out in f.reject(chatter, make_ctx()).values())
    assert len(f.reject(chatter, make_ctx())) == 2
    # ordinary reviews that merely use these words are kept
    fine = [rec("Where is the heart here? Nowhere."), rec("The record label should be proud.")]
    assert f.reject(fine, make_ctx()) == {}
    # without a task label set any non-empty target is fine
    assert f.reject([cases["label"]], make_ctx(labels=None)) == {}
    # a finished answer is not "truncated"
    assert f.reject([rec("A complete and finished answer.", finish_reason="stop")], make_ctx()) == {}
    # nor is a complete example a method took out of a cut answer (it says so in meta)
    salvaged = rec("A complete first paragraph.", finish_reason="length", truncated=False)
    assert f.reject([salvaged], make_ctx()) == {}
    assert f.reject([rec("Cut off in the mid", finish_reason="length", truncated=True)], make_ctx())


# --------------------------------------------------------------------------- exact-dedup


def test_normalise() -> None:
    assert normalise('  "The  Film\twas GREAT!"  ') == "the film was great"
    assert normalise("...Hello, world...") == "hello, world"


def test_exact_dedup_pool_and_batch() -> None:
    accepted = rec("The film was wonderful.")
    f = ExactDedupFilter(ExactDedupConfig())
    same_as_pool = rec("  the FILM was   wonderful!! ", target="neg")
    first = rec("A new sentence about tax rates.")
    second = rec('"A new sentence about tax rates"')
    distinct = rec("Something else entirely.")
    out = f.reject([same_as_pool, first, second, distinct], make_ctx(pool=[accepted]))
    assert out == {
        same_as_pool.id: f"exact duplicate of accepted record {accepted.id}",
        second.id: f"exact duplicate of candidate {first.id} in the same batch",
    }
    # the pool grows: the index absorbs the new record, old decisions still hold
    out2 = f.reject([second, distinct], make_ctx(pool=[accepted, first]))
    assert set(out2) == {second.id}
    assert first.id in out2[second.id]
    # a different pool (another run): the index is rebuilt, not reused
    assert f.reject([same_as_pool], make_ctx(pool=[first])) == {}


def test_same_id_in_batch_is_not_rejected() -> None:
    """Rejects are keyed by id: rejecting an identical copy would also drop the original."""
    a = rec("Exactly the same record.")
    b = rec("Exactly the same record.")
    assert a.id == b.id
    assert ExactDedupFilter(ExactDedupConfig()).reject([a, b], make_ctx()) == {}
    assert RougeNoveltyFilter(RougeNoveltyConfig()).reject([a, b], make_ctx()) == {}


# --------------------------------------------------------------------------- rouge-novelty

BASE20 = " ".join(f"w{i}" for i in range(20))  # 20 distinct tokens


def test_rouge_threshold_is_strict() -> None:
    f = RougeNoveltyFilter(RougeNoveltyConfig())
    pool = [rec(BASE20)]
    # two adjacent tokens swapped: LCS 19 of 20 while the token multisets are equal, so the
    # pair is really scored (not skipped by the bound)
    swapped = rec(" ".join([*(f"w{i}" for i in range(18)), "w19", "w18"]))
    score = f.rouge_l(BASE20, swapped.input)
    assert score == pytest.approx(0.95)
    # threshold equal to the score: not > threshold -> kept
    assert RougeNoveltyFilter(RougeNoveltyConfig(threshold=score)).reject([swapped], make_ctx(pool=pool)) == {}
    # just below the score: rejected, and the reason names the score and the match
    strict = RougeNoveltyFilter(RougeNoveltyConfig(threshold=score - 1e-6))
    reason = strict.reject([swapped], make_ctx(pool=pool))[swapped.id]
    assert "0.9500" in reason and pool[0].id in reason
    # default 0.95: 18 of 20 tokens (F = 0.90) kept, 20 of 21 (F = 40/41 = 0.976) rejected
    two_changed = rec(" ".join([*(f"w{i}" for i in range(18)), "zz", "yy"]))
    inserted = rec(BASE20 + " extra")
    assert set(f.reject([two_changed, inserted], make_ctx(pool=pool))) == {inserted.id}
    # rouge_score's own float result decides at the boundary: 19 of 20 with one token replaced
    # scores 0.9500000000000001 there, which is > 0.95, and the bound must not hide that
    one_changed = rec(" ".join([*(f"w{i}" for i in range(19)), "zz"]))
    assert (f.rouge_l(BASE20, one_changed.input) > 0.95) == (
        one_changed.id in f.reject([one_changed], make_ctx(pool=pool))
    )


def test_rouge_batch_and_distinct() -> None:
    f = RougeNoveltyFilter(RougeNoveltyConfig())
    a = rec("Natalia sold clips to 48 of her friends in April and then half as many in May.")
    a_copy = rec("Natalia sold clips to 48 of her friends in April, and then half as many in May!", target="neg")
    other = rec("Weng earns 12 dollars an hour for babysitting and worked 50 minutes yesterday.")
    out = f.reject([a, a_copy, other], make_ctx())
    assert set(out) == {a_copy.id}
    assert "candidate" in out[a_copy.id] and a.id in out[a_copy.id]


def test_rouge_bound_pruning_matches_brute_force() -> None:
    """The token-count bound only skips pairs that cannot exceed the threshold."""
    import random

    rng = random.Random(0)
    vocab = [f"t{i}" for i in range(12)]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 12))) for _ in range(60)]
    # add near-copies so some pairs do exceed the threshold
    texts += [t + " t0" for t in texts[:15]]
    for threshold in (0.6, 0.8, 0.95):
        f = RougeNoveltyFilter(RougeNoveltyConfig(threshold=threshold))
        records = [rec(t, target=str(i)) for i, t in enumerate(texts)]
        got = set(f.reject(records, make_ctx()))
        expected: set[str] = set()
        accepted: list[str] = []
        for r in records:
            if any(f.rouge_l(other, r.input) > threshold for other in accepted):
                expected.add(r.id)
            else:
                accepted.append(r.input)
        assert got == expected
        assert expected  # the check is not vacuous


# --------------------------------------------------------------------------- faiss-novelty

FILM = "The film was wonderful and moving."
MOVIE = "The movie was wonderful and moving."
TAX = "Tax rates rose sharply in March."


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_faiss_rejects_paraphrase_keeps_distinct() -> None:
    f = FaissNoveltyFilter(FaissNoveltyConfig())
    pool = [rec(FILM)]
    movie, tax = rec(MOVIE), rec(TAX)
    out = f.reject([movie, tax], make_ctx(pool=pool))
    assert set(out) == {movie.id}
    assert pool[0].id in out[movie.id] and "accepted record" in out[movie.id]
    # within one batch, against an earlier accepted candidate
    f2 = FaissNoveltyFilter(FaissNoveltyConfig())
    film = rec(FILM)
    out2 = f2.reject([film, movie, tax], make_ctx())
    assert set(out2) == {movie.id}
    assert "candidate" in out2[movie.id] and film.id in out2[movie.id]


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_faiss_pool_index_is_incremental() -> None:
    f = FaissNoveltyFilter(FaissNoveltyConfig())
    first = [rec(FILM)]
    f.reject([rec(TAX)], make_ctx(pool=first))
    index = f._pool_index
    assert len(index) == 1
    grown = [*first, rec(TAX)]
    out = f.reject([rec("Tax rates rose sharply in March!", target="neg")], make_ctx(pool=grown))
    assert len(out) == 1
    assert f._pool_index is index and len(index) == 2  # extended, not rebuilt
    f.reject([rec(MOVIE)], make_ctx(pool=[rec(TAX)]))  # not an extension: rebuilt
    assert f._pool_index is not index and len(f._pool_index) == 1


SENTENCES = [
    FILM,
    MOVIE,
    TAX,
    "Tax rates went up sharply in March.",
    "The chef grilled the salmon with lemon.",
    "The salmon was grilled by the chef with lemon.",
    "Our team lost the final in extra time.",
    "It rained all weekend in the mountains.",
    "The striker scored two goals in the second half.",
    "A quiet, tender film about growing old.",
    "The stock market fell after the announcement.",
    "Stocks dropped after the announcement.",
]


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_hnsw_matches_flat() -> None:
    records = [rec(t) for t in SENTENCES]
    pool, candidates = records[:4], records[4:]
    flat = FaissNoveltyFilter(FaissNoveltyConfig(threshold=0.8))
    hnsw = FaissNoveltyFilter(FaissNoveltyConfig(threshold=0.8, hnsw_above=0))
    out_flat = flat.reject(candidates, make_ctx(pool=pool))
    out_hnsw = hnsw.reject(candidates, make_ctx(pool=pool))
    assert flat._pool_index.kind == "IndexFlatIP"
    assert hnsw._pool_index.kind == "IndexHNSWFlat"
    assert hnsw.last_batch_index is not None and hnsw.last_batch_index.kind == "IndexHNSWFlat"
    assert out_flat == out_hnsw
    assert out_flat  # some are rejected, so the comparison means something
    # switching when the index grows past hnsw_above
    grow = FaissNoveltyFilter(FaissNoveltyConfig(hnsw_above=3))
    grow.reject([records[5]], make_ctx(pool=records[:2]))
    assert grow._pool_index.kind == "IndexFlatIP"
    grow.reject([records[5]], make_ctx(pool=records[:4]))
    assert grow._pool_index.kind == "IndexHNSWFlat" and len(grow._pool_index) == 4


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_novelty_sim_scorer() -> None:
    scorer = FaissNoveltyScorer(FaissNoveltyConfig())
    movie, tax = rec(MOVIE), rec(TAX)
    scores = scorer.score([movie, tax], make_ctx(pool=[rec(FILM)]))
    assert scores[movie.id]["novelty_sim"] > 0.92
    assert scores[tax.id]["novelty_sim"] < 0.3
    assert scorer.score([tax], make_ctx())[tax.id]["novelty_sim"] == -1.0


def test_engine_applies_filters_in_order() -> None:
    validity = ParseValidityFilter(ParseValidityConfig())
    dedup = ExactDedupFilter(ExactDedupConfig())
    a = rec("Label: leaked template")
    b = rec("A genuine sentence.")
    c = rec("a genuine sentence", target="neg")
    verdicts = filter_records([a, b, c], make_ctx(labels=["pos", "neg"], filters=[validity, dedup]))
    assert [(v.record_id, v.rejected_by) for v in verdicts] == [(a.id, "parse-validity"), (c.id, "exact-dedup")]


def test_registration() -> None:
    from distilforge.engine.plugin_manager import DEFAULT_PLUGINS, build_plugin_manager
    from distilforge.engine.registry import collect_registry
    from distilforge.plugins.filters import novelty, validity

    assert all(m.__name__ in DEFAULT_PLUGINS for m in (novelty, validity))
    registry = collect_registry(build_plugin_manager(load_entrypoints=False))
    assert {"exact-dedup", "rouge-novelty", "faiss-novelty", "parse-validity"} <= set(registry.names("filter"))
    assert "faiss-novelty" in registry.names("scorer")
    assert isinstance(registry.build("scorer", FaissNoveltyConfig()), FaissNoveltyScorer)
