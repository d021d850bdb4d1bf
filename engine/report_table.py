"""The report's per-round table, honest about rounds that kept an older student and about runs whose
teacher wrote no training records (LAAT asks for feature scores: its answers are not records).

A round that did not retrain (GOLD between its training batches) shows which round's student it
kept and no pool accuracy: that figure would be an old student's accuracy on a pool that has grown
since, which says nothing about the round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from distilforge.schemas import RoundMetrics

NOT_SHOWN = "–"


def accuracy(m: RoundMetrics, split: str) -> float | None:
    value = (m.train_metrics if split == "train" else m.test_metrics).get("accuracy")
    return None if value is None else float(value)


def trained_round(metrics: Sequence[RoundMetrics], r: int) -> int:
    """The round whose student round ``r`` evaluates: ``r`` itself, or the last one before it that trained."""
    earlier = [m.round for m in metrics if m.round <= r and m.trained]
    return earlier[-1] if earlier else 0


def writes_records(metrics: Sequence[RoundMetrics], method: str) -> bool:
    """Whether the method turned any teacher answer into a candidate record (its own parse rejects aside)."""
    return any((m.generated or 0) - m.rejected.get(method, 0) > 0 for m in metrics)


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[RoundMetrics], Any]


def _samples(m: RoundMetrics) -> int | None:
    extra = m.model_extra or {}
    if "samples_new" not in extra:
        return None
    return int(extra.get("samples_new", 0)) + int(extra.get("samples_cached", 0))


def _extra(key: str) -> Callable[[RoundMetrics], Any]:
    return lambda m: (m.model_extra or {}).get(key)


def _rejected(m: RoundMetrics, by: str | None) -> int | None:
    """Rejects of the round by ``by`` (None: by anyone); none shown for a round that generated nothing."""
    if "rejected" not in m.model_fields_set:
        return None
    return sum(m.rejected.values()) if by is None else m.rejected.get(by, 0)


def _rejected_by(by: str | None) -> Callable[[RoundMetrics], int | None]:
    return lambda m: _rejected(m, by)


def _judge(m: RoundMetrics) -> str | None:
    judge = m.usage.get("judge")
    return f"{int(judge['samples_requested'])} ({int(judge['samples_new'])})" if judge else None


def columns(metrics: Sequence[RoundMetrics], method: str) -> list[Column]:
    """The table's columns after round / student / train size / pool acc / test acc: what the teacher was
    asked and what came of it, in the words that fit the run."""
    records = writes_records(metrics, method)
    what = "samples" if records else "answers"
    tokens = [Column(f"cached {what}", _extra("samples_cached")), Column(f"new {what}", _extra("samples_new"))]
    tokens.append(Column("completion tokens", _extra("completion_tokens")))
    if not records:
        refused = Column("refused answers", _rejected_by(None))
        return [Column("teacher requests", lambda m: m.requests), Column("teacher answers", _samples), refused, *tokens]
    filters = sorted({name for m in metrics for name in m.rejected})
    cols = [
        Column("failures", lambda m: m.failures),
        Column("requests", lambda m: m.requests),
        Column("generated", lambda m: m.generated),
        Column("accepted", lambda m: m.accepted),
    ]
    cols += [Column(f"rejected: {f}", _rejected_by(f)) for f in filters]
    cols += tokens
    if any("judge" in m.usage for m in metrics):
        cols.append(Column("judge samples (new)", _judge))
    return cols


def _cell(value: Any) -> str:
    if value is None:
        return NOT_SHOWN
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _student_cells(metrics: Sequence[RoundMetrics], m: RoundMetrics, validation: bool) -> list[str]:
    """student / train size / pool acc / test acc (/ validation acc)."""
    test = accuracy(m, "test")
    held_out = [_cell(test)]
    if validation:
        held_out.append(_cell(m.validation_metrics.get("accuracy")))
    if m.trained:
        return ["trained", _cell(m.train_size), _cell(accuracy(m, "train")), *held_out]
    kept = trained_round(metrics, m.round)
    held_out[0] = f"{held_out[0]} (round {kept}'s)"
    return [f"round {kept}'s (not retrained)", NOT_SHOWN, NOT_SHOWN, *held_out]


def table_rows(metrics: Sequence[RoundMetrics], method: str) -> tuple[list[str], list[list[str]]]:
    """The per-round table as a header and rows of cells (the report and the console summary show it)."""
    cols = columns(metrics, method)
    validation = any(m.validation_metrics for m in metrics)
    header = ["round", "student", "train size", "pool acc", "test acc", *(["validation acc"] if validation else [])]
    header += [c.title for c in cols]
    rows = [
        [str(m.round), *_student_cells(metrics, m, validation)] + [_cell(c.value(m)) for c in cols] for m in metrics
    ]
    return header, rows


def _all_purposes(m: RoundMetrics, key: str) -> int | None:
    """``key`` summed over the method's own samples and every other purpose's (a judge's, a baseline's)."""
    values = [(m.model_extra or {}).get(key), *(u.get(key) for u in m.usage.values())]
    numbers = [int(v) for v in values if v is not None]
    return sum(numbers) if numbers else None


def console_rows(metrics: Sequence[RoundMetrics], method: str) -> tuple[list[str], list[list[str]]]:
    """The same rounds in at most eight columns, for a terminal; the report keeps the full table.

    ``kept / made``: records accepted out of those generated (teacher answers and refusals for a
    method that writes none); ``samples``: the teacher samples paid for, with those served from the
    answer cache in brackets, every purpose (the judge's too) included.
    """
    records = writes_records(metrics, method)
    validation = any(m.validation_metrics for m in metrics)
    header = ["round", "student (train size)", "test acc", *(["val acc"] if validation else [])]
    header += ["kept / made", "rejected"] if records else ["answers", "refused"]
    header += ["samples new (cached)", "completion tokens"]
    rows = []
    for m in metrics:
        student = f"trained ({_cell(m.train_size)})" if m.trained else f"round {trained_round(metrics, m.round)}'s"
        cells = [str(m.round), student, _cell(accuracy(m, "test"))]
        if validation:
            cells.append(_cell(m.validation_metrics.get("accuracy")))
        if records:
            made = NOT_SHOWN if m.generated is None else f"{_cell(m.accepted)} / {m.generated}"
            cells += [made, _cell(_rejected(m, None))]
        else:
            cells += [_cell(_samples(m)), _cell(_rejected(m, None))]
        new, cached = _all_purposes(m, "samples_new"), _all_purposes(m, "samples_cached")
        cells.append(NOT_SHOWN if new is None else f"{new} ({cached or 0})")
        cells.append(_cell(_all_purposes(m, "completion_tokens")))
        rows.append(cells)
    return header, rows


def round_table(metrics: Sequence[RoundMetrics], method: str) -> list[str]:
    header, rows = table_rows(metrics, method)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def table_notes(metrics: Sequence[RoundMetrics], method: str) -> list[str]:
    """What the table's words mean for this run."""
    notes = [
        "Round 0 trains the student on the seed data only: the baseline every later round is compared with."
        " `train size`: the records the round's student trained on; `pool acc`: its accuracy on every accepted"
        " record (a method may keep some of them out of training).",
    ]
    if any(not m.trained for m in metrics):
        notes.append(
            "A round marked *not retrained* kept the student of the round named: its test accuracy is that"
            " student's, and its pool accuracy is not shown (an old student on a pool that grew since)."
        )
    if metrics and not writes_records(metrics, method):
        notes.append(
            f"The teacher wrote no training records in this run (method `{method}`): its answers are what the"
            " method asked for, and every round trains on the seed data; see the method's section below."
        )
    return notes
