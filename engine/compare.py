"""``distilforge compare RUN_DIR... [--vs RUN_DIR...]``: several runs in one table, mean ± sd.

Each run contributes its seed-only (round 0) and final test accuracy, their difference, and the
teacher's zero-shot accuracy when it was measured. With ``--vs``, the two lists are paired by
position (seed 0 with seed 0, ...) and the table adds the paired difference of the final
accuracies, e.g. GOLD against its no-feedback baseline over the same seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.report import load_round_metrics
from distilforge.engine.teacher_baseline import load_teacher_baseline
from distilforge.schemas import RunLayout


@dataclass(frozen=True)
class RunScores:
    name: str
    seed_only: float
    final: float
    final_round: int
    teacher: float | None

    @property
    def gain(self) -> float:
        return self.final - self.seed_only


def run_scores(run_dir: Path) -> RunScores:
    if not RunLayout(run_dir).manifest.exists():
        raise DistilforgeError(f"{run_dir} is not a distilforge run directory (no manifest.json)")
    tested = [m for m in load_round_metrics(run_dir) if m.test_metrics.get("accuracy") is not None]
    if not tested:
        raise DistilforgeError(f"{run_dir}: no round has a test accuracy yet")
    baseline = load_teacher_baseline(run_dir)
    return RunScores(
        name=run_dir.name,
        seed_only=float(tested[0].test_metrics["accuracy"]),
        final=float(tested[-1].test_metrics["accuracy"]),
        final_round=tested[-1].round,
        teacher=float(baseline["accuracy"]) if baseline is not None else None,
    )


def mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def comparison_table(runs: Sequence[Path], versus: Sequence[Path] = ()) -> list[str]:
    """Markdown lines: one row per run, a mean ± sd row, and the paired differences with ``versus``."""
    if versus and len(versus) != len(runs):
        raise DistilforgeError(f"--vs pairs runs by position: {len(runs)} runs against {len(versus)}")
    scores = [run_scores(Path(r)) for r in runs]
    lines = [
        "| run | seed-only | final (round) | Δ | teacher zero-shot |",
        "|---|---|---|---|---|",
    ]
    for s in scores:
        teacher = f"{s.teacher:.3f}" if s.teacher is not None else "–"
        lines.append(f"| {s.name} | {s.seed_only:.3f} | {s.final:.3f} ({s.final_round}) | {s.gain:+.3f} | {teacher} |")
    teachers = [s.teacher for s in scores if s.teacher is not None]
    columns = [[s.seed_only for s in scores], [s.final for s in scores], [s.gain for s in scores], teachers]
    lines.append(f"| mean ± sd (n={len(scores)}) | " + " | ".join(mean_sd(c) for c in columns) + " |")
    if versus:
        others = [run_scores(Path(r)) for r in versus]
        lines += ["", "| run | vs | final | vs final | paired Δ |", "|---|---|---|---|---|"]
        for a, b in zip(scores, others, strict=True):
            lines.append(f"| {a.name} | {b.name} | {a.final:.3f} | {b.final:.3f} | {a.final - b.final:+.3f} |")
        deltas = [a.final - b.final for a, b in zip(scores, others, strict=True)]
        lines.append(f"| paired Δ, mean ± sd (n={len(deltas)}) | | | | {mean_sd(deltas)} |")
    return lines
