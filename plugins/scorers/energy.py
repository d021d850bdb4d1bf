"""Energy scorer: how out-of-distribution a record looks to the current student.

Free energy (Liu et al., 2020) of one output with logits ``f``: ``E = -T * logsumexp(f / T)``.
A confident, in-distribution input has one large logit and so a low (very negative) energy;
higher energy = more out-of-distribution. For a sequence output (a causal-LM student scoring a
record's target under teacher forcing) the energy is the mean of the per-token energies over
the target tokens, padding masked out.

The scorer works with any student that exposes either ``free_energy(records, temperature)``
(sequence students, see the causal-LM student) or ``logits(texts)`` (classifiers). The score is
stored on each record as ``scores["energy"]`` (or the configured name); GOLD ranks its
validation samples by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.special import logsumexp

from distilforge.engine.components import Scorer
from distilforge.engine.context import RunContext
from distilforge.engine.errors import DistilforgeError
from distilforge.engine.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record


def free_energy(logits: np.ndarray, temperature: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-example free energy ``-T * logsumexp(logits / T)``.

    ``logits`` is ``[N, C]`` (one output per example) or ``[N, S, V]`` (one per token); for the
    latter ``mask`` (``[N, S]``, 1 = target token, 0 = padding or prompt) selects the tokens the
    mean is taken over. An example with no target token gets NaN rather than a made-up value.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    x = np.asarray(logits, dtype=np.float64)
    energy = -temperature * logsumexp(x / temperature, axis=-1)
    if x.ndim == 2:
        if mask is not None:
            raise ValueError("mask applies to per-token logits [N, S, V] only")
        return energy
    if x.ndim != 3:
        raise ValueError(f"logits must be [N, C] or [N, S, V], got shape {x.shape}")
    weights = np.ones(energy.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    if weights.shape != energy.shape:
        raise ValueError(f"mask shape {weights.shape} does not match logits {x.shape[:2]}")
    counts = weights.sum(axis=1)
    total = np.where(weights > 0, energy, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / counts, np.nan)


def rank_band(scores: Sequence[float], low: float, high: float) -> list[int]:
    """Indices of the items whose rank ``r`` (0-based, ascending by score, ties in input order)
    satisfies ``low <= r / n < high`` — GOLD's band of "out of distribution, but not noise"."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"band must satisfy 0 <= low < high <= 1, got [{low}, {high})")
    n = len(scores)
    order = sorted(range(n), key=lambda i: scores[i])
    return [order[r] for r in range(n) if low * n <= r < high * n]


class EnergyScorerConfig(ComponentConfig):
    type: Literal["energy"] = "energy"
    temperature: float = Field(1.0, gt=0.0, description="T in -T*logsumexp(logits/T)")
    name: str = Field("energy", min_length=1, description="the key under Record.scores")
    batch_size: int = Field(32, ge=1, description="records per forward pass (sequence students)")


class EnergyScorer(Scorer[EnergyScorerConfig]):
    shardable = True  # per record, from the student alone: the ray executor may split the records

    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        if not records:
            return {}
        student, c = ctx.student, self.config
        sequence_energy = getattr(student, "free_energy", None)
        if callable(sequence_energy):
            values = np.asarray(sequence_energy(records, temperature=c.temperature, batch_size=c.batch_size))
        elif callable(getattr(student, "logits", None)):
            values = free_energy(np.asarray(student.logits([r.input for r in records])), c.temperature)  # type: ignore[attr-defined]
        else:
            raise DistilforgeError(
                f"scorer 'energy' needs a student with logits; student {student.name!r} exposes neither"
                " logits(texts) nor free_energy(records)"
            )
        return {r.id: {c.name: float(v)} for r, v in zip(records, values, strict=True)}


@hookimpl
def register_scorers(register: Register) -> None:
    register(EnergyScorerConfig, EnergyScorer)
