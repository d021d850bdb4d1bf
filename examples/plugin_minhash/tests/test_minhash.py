"""The MinHash filter alone, then in a round (fixtures from distilforge's pytest plugin)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import distilforge_minhash as plugin
import pytest
from distilforge_minhash.minhash import MinHasher, estimate, jaccard, shingles
from pydantic import ValidationError

from distilforge.schemas import Record
from distilforge.testing import read_records, read_rejects

PAIRS = [
    ("a wonderful, moving film with a great cast", "a wonderful moving film with a great cast!"),
    ("a wonderful, moving film with a great cast", "a wonderful, moving movie with a fine cast"),
    ("a wonderful, moving film with a great cast", "the plot is thin and the jokes fall flat"),
]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_signature_agreement_estimates_jaccard(a: str, b: str) -> None:
    hasher = MinHasher(num_perm=256, seed=3)
    sa, sb = shingles(a), shingles(b)
    assert estimate(hasher.signature(sa), hasher.signature(sb)) == pytest.approx(jaccard(sa, sb), abs=0.1)


def test_rejects_near_copies_and_keeps_the_rest() -> None:
    component = plugin.MinHashDedup(plugin.MinHashDedupConfig(threshold=0.6))
    first = Record(input="A wonderful, moving film with a great cast.", target="positive")
    copy = Record(input="a wonderful moving film, with a great cast!!", target="positive")
    other = Record(input="The plot is thin and the jokes fall flat.", target="negative")
    rejected = component.reject([first, copy, other], ctx=None)
    assert list(rejected) == [copy.id]
    assert rejected[copy.id].startswith(f"near-duplicate of {first.id} (estimated Jaccard 1.00")


def test_bands_must_divide_num_perm() -> None:
    with pytest.raises(ValidationError, match="multiple of bands"):
        plugin.MinHashDedupConfig(num_perm=100, bands=32)


def test_keeps_one_of_many_near_copies_in_a_round(
    distilforge_run: Callable[..., Path], scripted_teacher: Callable[..., Any]
) -> None:
    teacher = scripted_teacher("A wonderful film that moved me to tears, truly one of a kind ({n}).")
    run_dir = distilforge_run(plugin, teacher=teacher, filters=[{"type": "minhash-dedup"}])
    synthetic = [r for r in read_records(run_dir) if r["origin"] == "synthetic"]
    rejected = [r for r in read_rejects(run_dir) if r["rejected_by"] == "minhash-dedup"]
    assert len(synthetic) == 1 and len(rejected) == 11
    assert all(r["reason"].startswith(f"near-duplicate of {synthetic[0]['id']}") for r in rejected)
