"""From a classifier's logits to the engine's predictions, in a fixed label order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distilforge.engine.api.components import Prediction
from distilforge.schemas import Record


def resolve_labels(records: Sequence[Record], configured: Sequence[str] | None) -> list[str]:
    """The label order of a student: the configured list, else the sorted training targets.

    Raises ``ValueError`` if a training target is not among the configured labels: training on
    a label the model cannot output is a config mistake, not something to skip silently.
    """
    targets = {r.target.strip() for r in records}
    if configured is None:
        return sorted(targets)
    labels = list(configured)
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in the student config: {labels}")
    unknown = sorted(targets - set(labels))
    if unknown:
        raise ValueError(f"training targets {unknown} are not among the configured labels {labels}")
    return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predictions_from_logits(logits: np.ndarray, labels: Sequence[str]) -> list[Prediction]:
    probs = softmax(logits) if len(logits) else logits
    best = logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=int)
    return [
        Prediction(label=labels[int(k)], logits=logits[i].copy(), confidence=float(probs[i, int(k)]))
        for i, k in enumerate(best)
    ]


def free_energy(logits: np.ndarray, temperature: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-example free energy ``-T * logsumexp(logits / T)``.

    ``logits`` is ``[N, C]`` (one output per example) or ``[N, S, V]`` (one per token); for the
    latter ``mask`` (``[N, S]``, 1 = target token, 0 = padding or prompt) selects the tokens the
    mean is taken over. An example with no target token gets NaN rather than a made-up value.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    x = np.asarray(logits, dtype=np.float64)
    energy = -temperature * _logsumexp(x / temperature)
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


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """``log(sum(exp(x)))`` over the last axis, computed without overflow."""
    top = x.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(x - top).sum(axis=-1)) + top[..., 0]
