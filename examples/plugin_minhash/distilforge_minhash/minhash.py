"""MinHash signatures and a banded LSH index, in numpy (no datasketch dependency).

A text becomes a set of shingles (character or word n-grams of its normalised form); each
shingle is hashed to 64 bits, and each of ``num_perm`` hash functions keeps its minimum over the
set. Hash function ``i`` is ``mix(x XOR seed_i)`` with the SplitMix64 finaliser as ``mix`` (a
bijection of 64-bit integers that scatters every input bit over the output), so each behaves as
an independent random permutation. The share of positions where two signatures agree estimates
the Jaccard similarity of the two sets.

The LSH index cuts a signature into ``bands`` bands of ``rows`` values; two texts become
candidates when any band is identical, which happens with probability ``1 - (1 - J^rows)^bands``
(a steep S-curve). Candidates are then compared on the whole signature.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

MAX_HASH = np.uint64((1 << 64) - 1)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_WORD = re.compile(r"\w+")


def shingles(text: str, ngram: int = 5, unit: str = "char") -> set[str]:
    """The n-gram set of ``text`` lower-cased with punctuation and repeated spaces removed."""
    words = _WORD.findall(text.lower())
    if unit == "word":
        if len(words) <= ngram:
            return {" ".join(words)}
        return {" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}
    normal = " ".join(words)
    if len(normal) <= ngram:
        return {normal}
    return {normal[i : i + ngram] for i in range(len(normal) - ngram + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """The exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


class MinHasher:
    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.seeds = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)

    @property
    def num_perm(self) -> int:
        return int(self.seeds.shape[0])

    @staticmethod
    def _mix(z: np.ndarray) -> np.ndarray:
        """SplitMix64's finaliser; uint64 products wrap modulo 2^64, as the algorithm wants."""
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)

    def signature(self, items: Iterable[str]) -> np.ndarray:
        values = np.fromiter(
            (int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little") for s in items),
            dtype=np.uint64,
        )
        if values.size == 0:
            return np.full(self.num_perm, MAX_HASH, dtype=np.uint64)
        with np.errstate(over="ignore"):
            permuted = self._mix(values[:, None] ^ self.seeds[None, :])
        signature: np.ndarray = permuted.min(axis=0)
        return signature


def estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of equal signature positions."""
    return float(np.mean(sig_a == sig_b))


class LSHIndex:
    def __init__(self, num_perm: int, bands: int) -> None:
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.bands, self.rows = bands, num_perm // bands
        self.buckets: list[dict[bytes, list[str]]] = [{} for _ in range(bands)]
        self.signatures: dict[str, np.ndarray] = {}

    def _band_keys(self, signature: np.ndarray) -> Iterable[tuple[int, bytes]]:
        for band in range(self.bands):
            yield band, signature[band * self.rows : (band + 1) * self.rows].tobytes()

    def add(self, key: str, signature: np.ndarray) -> None:
        if key in self.signatures:
            return
        self.signatures[key] = signature
        for band, band_key in self._band_keys(signature):
            self.buckets[band].setdefault(band_key, []).append(key)

    def best_match(self, signature: np.ndarray) -> tuple[str, float] | None:
        """The indexed key most similar to ``signature`` among the LSH candidates, with its estimate."""
        candidates: set[str] = set()
        for band, band_key in self._band_keys(signature):
            candidates.update(self.buckets[band].get(band_key, ()))
        if not candidates:
            return None
        scored = ((estimate(signature, self.signatures[key]), key) for key in sorted(candidates))
        best_score, best_key = max(scored)
        return best_key, best_score
