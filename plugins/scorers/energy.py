"""Energy scorer: how out-of-distribution a record looks to the current student.

Free energy (Liu et al., 2020) of one output with logits ``f``: ``E = -T * logsumexp(f / T)``.
A confident, in-distribution input has one large logit and so a low (very negative) energy;
higher energy = more out-of-distribution. For a sequence output (a causal-LM student scoring a
record's target under teacher forcing) the energy is the mean of the per-token energies over
the target tokens, padding masked out.

The scorer works with any student that declares logits (:attr:`Student.provides_energy`): a
classifier's energy comes from its ``logits(records)``, a sequence student's from its own
``free_energy(records, temperature)`` (see the causal-LM student). The score is
stored on each record as ``scores["energy"]`` (or the configured name); GOLD ranks its
validation samples by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from distilforge.engine.api.components import Scorer
from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record


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
        if student is None or not student.provides_energy:
            name = student.name if student is not None else None
            raise DistilforgeError(
                f"scorer 'energy' needs a student with logits; student {name!r} implements neither"
                " logits(records) nor free_energy(records)"
            )
        values = np.asarray(student.free_energy(records, temperature=c.temperature, batch_size=c.batch_size))
        return {r.id: {c.name: float(v)} for r, v in zip(records, values, strict=True)}


@hookimpl
def register_scorers(register: Register) -> None:
    register(EnergyScorerConfig, EnergyScorer)
