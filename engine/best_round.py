"""The validation split: carved from the seeds before round 0, it chooses the best round (whose
student is kept beside the last) and, with ``validation.patience``, ends the rounds early.

The test split is never used to choose anything; the best round is the earliest one with the
highest validation score, so a round that only ties does not displace it.
"""

from __future__ import annotations

from typing import Any

from distilforge.engine.api.errors import ConfigError, DistilforgeError
from distilforge.engine.api.toolkit.splits import carve_split
from distilforge.schemas import Record
from distilforge.schemas.config import ValidationConfig


def carve_validation(
    seeds: list[Record], settings: ValidationConfig, seed: int, *, stratified: bool
) -> tuple[list[Record], list[Record]]:
    """``(training seeds, validation)``; no validation when ``settings.fraction`` is 0."""
    if settings.fraction == 0:
        return seeds, []
    kept, held_out = carve_split(seeds, settings.fraction, seed, stratified=stratified)
    if not kept or not held_out:
        raise ConfigError(
            f"validation.fraction {settings.fraction}: {len(seeds)} seed examples are too few to hold out a"
            " validation split (it needs at least two examples of a label); give more seeds or set it to 0"
        )
    return kept, held_out


def improved_best(
    best: dict[str, Any] | None,
    *,
    round_index: int,
    checkpoint: int | None,
    metrics: dict[str, float],
    settings: ValidationConfig,
) -> dict[str, Any] | None:
    """The new best-round entry when round ``round_index`` beats ``best`` (None when it does not)."""
    if settings.metric not in metrics:
        raise DistilforgeError(
            f"validation.metric {settings.metric!r}: the student's evaluation reports {sorted(metrics)};"
            " set validation.metric to one of them"
        )
    value = float(metrics[settings.metric])
    if best is not None and value <= float(best["value"]) + settings.min_delta:
        return None
    return {"round": round_index, "checkpoint": checkpoint, "metric": settings.metric, "value": value}


def patience_exhausted(best: dict[str, Any] | None, round_index: int, settings: ValidationConfig) -> bool:
    """True when ``validation.patience`` rounds have passed since the best one."""
    return settings.patience is not None and best is not None and round_index - int(best["round"]) >= settings.patience
