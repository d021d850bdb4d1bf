"""The console's compact per-round table: few columns, totals over every purpose."""

from __future__ import annotations

from distilforge.engine.report_table import console_rows, table_rows
from distilforge.schemas import RoundMetrics


def _rounds() -> list[RoundMetrics]:
    seed_only = RoundMetrics(round=0, train_size=16, pool_size=16, test_metrics={"accuracy": 0.6})
    generating = RoundMetrics(
        round=1,
        train_size=40,
        pool_size=40,
        test_metrics={"accuracy": 0.7},
        validation_metrics={"accuracy": 0.75},
        generated=30,
        accepted=24,
        rejected={"faiss-novelty": 4, "llm2llm": 2},
        samples_new=28,
        samples_cached=2,
        completion_tokens=900,
        usage={"judge": {"samples_requested": 24, "samples_new": 20, "samples_cached": 4, "completion_tokens": 60}},
    )
    kept = RoundMetrics(round=2, train_size=40, pool_size=40, trained=False, test_metrics={"accuracy": 0.7})
    return [seed_only, generating, kept]


def test_console_rows_fit_a_terminal_and_add_up_every_purpose() -> None:
    header, rows = console_rows(_rounds(), "llm2llm")
    assert header == [
        "round",
        "student (train size)",
        "test acc",
        "val acc",
        "kept / made",
        "rejected",
        "samples new (cached)",
        "completion tokens",
    ]
    assert len(header) < len(table_rows(_rounds(), "llm2llm")[0])
    assert rows[0] == ["0", "trained (16)", "0.600", "–", "–", "–", "–", "–"]
    # the method's 28 new + the judge's 20; cached 2 + 4; tokens 900 + 60
    assert rows[1] == ["1", "trained (40)", "0.700", "0.750", "24 / 30", "6", "48 (6)", "960"]
    assert rows[2][:2] == ["2", "round 1's"]
