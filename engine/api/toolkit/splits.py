"""Carve a held-out split from a list of records: the file dataset's test split and the run's
validation split use the same rule, so a class is never left out of either side."""

from __future__ import annotations

import random
from collections import defaultdict

from distilforge.schemas import Record


def carve_split(
    records: list[Record], fraction: float, seed: int, *, stratified: bool
) -> tuple[list[Record], list[Record]]:
    """``(kept, held_out)``: ``fraction`` of the records held out, of each target when ``stratified``
    (at least one of every target seen twice, never all of one: a target seen once stays in
    ``kept``), else of all.
    Either side may come back empty when there are too few records: the caller names the fix."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.target if stratified else ""].append(record)
    rng = random.Random(seed)
    kept: list[Record] = []
    held_out: list[Record] = []
    for target in sorted(groups):
        members = list(groups[target])
        rng.shuffle(members)
        take = min(len(members) - 1, max(1, round(fraction * len(members))))  # one always stays
        held_out += members[:take]
        kept += members[take:]
    return kept, held_out
