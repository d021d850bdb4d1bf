"""The GOLD section of a run's report: which rounds retrained the student, the energy band every feedback
round chose its samples by, the feedback samples, the noisy ones kept out, and what the filters rejected.

Each feedback round leaves ``feedback_band.json`` in its round directory (:func:`band_summary`, written
when the method selects the feedback); the section is built from those files, the accepted pool and
``rejects.jsonl``, so it can be rewritten at any point of the run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distilforge.schemas import Record, Reject, RunLayout

BAND_FILE = "feedback_band.json"
SHOWN = 3  # samples listed per round
TRAINING, VALIDATION = "training", "validation"


def band_summary(
    validation: Sequence[Record], chosen: Sequence[int], score: str, band: tuple[float, float], r: int
) -> dict[str, Any]:
    """What round ``r``'s feedback selection saw: the previous batch's scored validation samples, how many
    ranked below, inside and above the band, the energies at the band's edges, and the ids."""
    values = [v.scores[score] for v in validation]
    n = len(values)
    rank = {i: k for k, i in enumerate(sorted(range(n), key=lambda i: values[i]))}
    above = [i for i in range(n) if rank[i] >= band[1] * n]

    def span(indices: Sequence[int]) -> list[float] | None:
        return [min(values[i] for i in indices), max(values[i] for i in indices)] if indices else None

    return {
        "round": r,
        "from_batch": r - 1,
        "score": score,
        "band": list(band),
        "scored": n,
        "below": sum(1 for i in range(n) if rank[i] < band[0] * n),
        "in_band": len(chosen),
        "above": len(above),
        "band_scores": span(chosen),
        "batch_scores": span(range(n)),
        "feedback_ids": [validation[i].id for i in chosen],
        "kept_out_ids": [validation[i].id for i in sorted(above, key=lambda i: values[i])],
    }


@dataclass(frozen=True)
class GoldRun:
    """What the section reports, gathered by the method (its settings) and from the run's files."""

    settings: dict[str, Any]  # the method's config, as JSON
    retrained: list[int]
    kept: list[int]  # rounds that kept the last trained student
    feedback_rounds: list[int]
    pool: Sequence[Record]
    bands: list[dict[str, Any]]
    rejects: list[Reject]


def read_bands(layout: RunLayout) -> list[dict[str, Any]]:
    paths = (layout.round_file(r, BAND_FILE) for r in layout.rounds())
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.exists()]


def read_rejects(layout: RunLayout) -> list[Reject]:
    if not layout.rejects.exists():
        return []
    lines = layout.rejects.read_text(encoding="utf-8").splitlines()
    return [Reject.model_validate_json(line) for line in lines if line.strip()]


def _short(text: str, width: int = 120) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip().replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _rounds(rounds: Sequence[int]) -> str:
    return ", ".join(map(str, rounds)) if rounds else "none"


def _every(n: int) -> str:
    """ "every batch", "every 2nd batch", "every 3rd batch", "every 11th batch"..."""
    if n == 1:
        return "every batch"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"every {n}{suffix} batch"


def _span(values: list[float] | None) -> str:
    return "–" if not values else f"{values[0]:.3f} … {values[1]:.3f}"


def _overview(run: GoldRun) -> list[str]:
    s = run.settings
    kinds = Counter(r.meta.get("gold") for r in run.pool if r.origin == "synthetic")
    trained_on = "these and the seed examples" if s["train_on_seed"] else "these only"
    validation = f" and {s['validation_size']} OOD validation samples" if s["feedback"] else ""
    lines = [
        "## GOLD: OOD-guided generation",
        "",
        f"{s['batches']} generation batches (one per round), each asking the teacher for {s['batch_size']} training"
        f" samples{validation}. Accepted: {kinds[TRAINING]} training samples (the student trains on {trained_on}),"
        f" {kinds[VALIDATION]} validation samples (feedback candidates for the teacher, never trained on).",
        "",
        f"The student was retrained in rounds {_rounds(run.retrained)} (every {s['train_every']} batches and after"
        f" the last); rounds {_rounds(run.kept)} kept the last trained student (*not retrained* in the per-round"
        " table, whose pool accuracy would be that older student's on a pool grown since).",
        "",
    ]
    return lines


def _band_table(run: GoldRun) -> list[str]:
    s = run.settings
    if not s["feedback"]:
        return [
            "Feedback is off (`feedback: false`, the no-feedback baseline): no validation batch, no energy band.",
            "",
        ]
    low, high = s["band"]
    lines = [
        "### The energy band",
        "",
        f"In each feedback round ({_every(s['feedback_every'])}: rounds {_rounds(run.feedback_rounds)}) the"
        f" previous batch's validation samples are ranked by `{s['score']}` (the student's free energy, ascending:"
        f" higher = more out of distribution for the student) and the ranks in [{low:.0%}, {high:.0%}) are fed back"
        f" as examples: what the student has not learned yet. The bottom {low:.0%} it knows already; the top"
        f" {1 - high:.0%} are kept out as likely noise.",
        "",
    ]
    if not run.bands:
        return [*lines, "No feedback round has run yet.", ""]
    lines += [
        "| round | from batch | scored | below the band | in the band (fed back) | above the band (kept out)"
        " | band energies | batch energies |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in run.bands:
        cells = [b["round"], b["from_batch"], b["scored"], b["below"], b["in_band"], b["above"]]
        cells += [_span(b["band_scores"]), _span(b["batch_scores"])]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return [*lines, ""]


def _samples(run: GoldRun, key: str, title: str) -> list[str]:
    by_id = {r.id: r for r in run.pool}
    score = run.settings["score"]
    items = []
    for b in run.bands:
        for record_id in b[key][:SHOWN]:
            record = by_id.get(record_id)
            if record is not None:
                energy = record.scores.get(score, float("nan"))
                items.append(f"- round {b['round']}, `{record.target}`, {score} {energy:.3f}: {_short(record.input)}")
    if not items:
        return []
    return [f"{title} (at most {SHOWN} per round):", "", *items, ""]


def _filter_rejects(run: GoldRun) -> list[str]:
    filtered = [x for x in run.rejects if x.stage == "filter" and x.record is not None]
    refused = Counter(x.rejected_by for x in run.rejects if x.stage == "parse")
    lines = ["### Kept out by the filters and the duplicate check", ""]
    if refused:
        refusals = ", ".join(f"{n} by {who}" for who, n in refused.items())
        lines += [f"Answers refused before filtering ({refusals}): see the rejects table above.", ""]
    if not filtered:
        return [*lines, "The filters rejected no candidate.", ""]
    counts = Counter((x.rejected_by, x.record.meta.get("gold") if x.record else None) for x in filtered)
    lines += ["| filter | training samples | validation samples |", "|---|---|---|"]
    for who in sorted({who for who, _ in counts}):
        lines.append(f"| {who} | {counts[(who, TRAINING)]} | {counts[(who, VALIDATION)]} |")
    lines += ["", f"The first {min(SHOWN + 2, len(filtered))} of {len(filtered)}:", ""]
    for x in filtered[: SHOWN + 2]:
        assert x.record is not None
        kind = x.record.meta.get("gold", "?")
        lines.append(f"- round {x.round}, {kind}, {x.rejected_by}: {_short(x.reason, 80)} — {_short(x.record.input)}")
    return [*lines, ""]


def gold_section(run: GoldRun) -> str:
    lines = _overview(run) + _band_table(run)
    lines += _samples(run, "feedback_ids", "Feedback samples shown to the teacher")
    lines += _samples(run, "kept_out_ids", "Kept out as likely noise, above the band")
    lines += _filter_rejects(run)
    return "\n".join(lines)
