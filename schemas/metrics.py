"""What ``rounds/<r>/metrics.json`` holds: the round's sizes, training, evaluation and generation counts.

The loop validates every round's metrics against :class:`RoundMetrics` before writing them, so the
report, the testing kit and the benchmarks can rely on these fields and their types. Sampling
counts (``samples_requested``, ``samples_cached``, ``samples_new``, ``sample_errors``,
``prompt_tokens``, ``completion_tokens``, ``sample_seconds``) and anything a method adds are kept
as extra fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RoundMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    round: int
    train_size: int
    pool_size: int
    trained: bool = True  # False: the method kept the last checkpoint (its test evaluation reused)
    train_stats: dict[str, Any] | None = None
    train_seconds: float | None = None
    train_metrics: dict[str, float] = {}
    test_metrics: dict[str, float] = {}
    validation_metrics: dict[str, float] = {}  # with a validation split (config ``validation``)
    stopped_early: bool = False  # no validation gain for ``validation.patience`` rounds: the run ended here
    failures: int | None = None  # records the method chose to learn from
    failures_by_origin: dict[str, int] = {}
    requests: int | None = None  # teacher requests built from them
    retried: int | None = None  # samples asked again after the method could not parse an answer
    generated: int | None = None  # candidates parsed plus answers refused by the parser
    accepted: int | None = None
    rejected: dict[str, int] = {}  # rejects by who rejected them (a filter, the method, the teacher)
    usage: dict[str, dict[str, float]] = {}  # samples stages asked for themselves, by purpose
