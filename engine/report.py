"""The run report: ``report.md`` with a headline, a per-round table and a PNG of accuracy per round.

A plugin adds its own section by writing a markdown file (and its images) into ``<run>/report/``;
every ``*.md`` there is appended in name order, so ``distilforge report`` regenerates it too.
Per-round metrics are read as :class:`~distilforge.schemas.RoundMetrics` and every path comes from
the run's :class:`~distilforge.schemas.RunLayout`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from distilforge.engine.api.toolkit.files import atomic_write_text
from distilforge.engine.report_details import classification_section, rejects_section
from distilforge.engine.report_table import accuracy, round_table, table_notes, writes_records
from distilforge.schemas import RoundMetrics, RunLayout


def load_round_metrics(run_dir: Path) -> list[RoundMetrics]:
    layout = RunLayout(run_dir)
    paths = (layout.metrics(r) for r in layout.rounds())
    return [RoundMetrics.model_validate_json(path.read_text()) for path in paths if path.exists()]


def method_name(layout: RunLayout) -> str:
    """The run's method (``method.type`` of the resolved config), or "" when the config is not there."""
    if not layout.config.exists():
        return ""
    config = yaml.safe_load(layout.config.read_text(encoding="utf-8")) or {}
    return str((config.get("method") or {}).get("type", ""))


def _trained_points(metrics: list[RoundMetrics], split: str) -> tuple[list[int], list[float]]:
    """Rounds whose own student was evaluated (a kept student's figures are not new points), and their accuracy."""
    points = [(m.round, accuracy(m, split)) for m in metrics if m.trained]
    return [r for r, v in points if v is not None], [v for _, v in points if v is not None]


def plot_accuracy(metrics: list[RoundMetrics], path: Path, baseline: dict[str, Any] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    rounds = [m.round for m in metrics]
    for split, style, name in (("test", "o-", "test"), ("train", "s--", "pool")):
        xs, ys = _trained_points(metrics, split)
        if xs:
            ax.plot(xs, ys, style, label=f"{name} accuracy")
    seed_only = accuracy(metrics[0], "test") if metrics and metrics[0].round == 0 else None
    if seed_only is not None:
        ax.axhline(seed_only, color="tab:blue", linestyle="--", linewidth=0.8, label="seed-only student (round 0)")
    if baseline is not None:
        label = f"teacher zero-shot (n={baseline['n']})"
        ax.axhline(baseline["accuracy"], color="tab:green", linestyle=":", label=label)
    ax.set_xlabel("round (points: rounds that trained the student)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)  # the whole scale: a small change must not look big
    if len(rounds) <= 15:
        ax.set_xticks(rounds)
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize="small", frameon=False)
    ax2 = ax.twinx()
    trained = [m for m in metrics if m.trained]
    ax2.bar([m.round for m in trained], [m.train_size for m in trained], alpha=0.15, color="gray")
    ax2.set_ylabel("records the student trained on", color="gray")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _worse_advice(records: bool) -> str:
    if records:
        return (
            "the final student is worse than seed-only: check the teacher's zero-shot accuracy (does it know the"
            " task?), read rejects.jsonl and the accepted samples below, try a stronger teacher preset, the"
            " label-judge filter, or fewer rounds"
        )
    return (
        "the final student is worse than seed-only: read what the teacher answered in the method's section below"
        " and rejects.jsonl, and try a stronger teacher preset"
    )


def headline(
    metrics: list[RoundMetrics],
    baseline: dict[str, Any] | None,
    records: bool = True,
    manifest: dict[str, Any] | None = None,
) -> list[str]:
    """What a user wants first: did the student gain over seed-only, and does the teacher know the task?
    ``records``: whether the teacher wrote training records (the advice differs when it did not);
    ``manifest``: the run's, for the best round on the validation split and an early stop."""
    tested = [m for m in metrics if m.trained and accuracy(m, "test") is not None]
    lines = []
    if tested:
        first, last = accuracy(tested[0], "test"), accuracy(tested[-1], "test")
        assert first is not None and last is not None
        lines.append(
            f"student test accuracy: seed-only (round 0) {first:.3f} -> final (round {tested[-1].round}) {last:.3f}"
            f" ({last - first:+.3f})"
        )
        chosen = (manifest or {}).get("best")
        if chosen is not None:
            lines.append(_chosen_line(metrics, chosen))
        best = max(tested, key=lambda m: accuracy(m, "test") or 0.0)
        if chosen is None and best is not tested[-1] and best is not tested[0]:
            lines.append(
                f"best round on the test split: {best.round} ({accuracy(best, 'test'):.3f}; not a choice made on it)"
            )
        if last < first:
            lines.append(_worse_advice(records))
        stopped = (manifest or {}).get("stopped_early")
        if stopped is not None and chosen is not None:
            lines.append(
                f"stopped early after round {stopped}: no validation gain in the {stopped - chosen['round']} rounds"
                f" since round {chosen['round']} (validation.patience)"
            )
    if baseline is not None:
        lines.append(
            f"teacher zero-shot accuracy: {baseline['accuracy']:.3f} on {baseline['n']} of {baseline['test_size']}"
            f" test examples ({baseline['teacher']}; {label_reading(baseline)})"
        )
    return lines


def label_reading(baseline: dict[str, Any]) -> str:
    """How the baseline's labels were read (files written before calibration existed: raw)."""
    orders = int(baseline.get("orders", 2))
    averaged = f"{orders} label orders averaged" if orders > 1 else "1 label order"
    on = {"seeds": "the seeds", "content-free": "content-free inputs"}.get(baseline.get("calibration", "none"))
    return f"{averaged}, calibrated on {on}" if on else averaged


def _chosen_line(metrics: list[RoundMetrics], chosen: dict[str, Any]) -> str:
    """The best round on the validation split, with its test accuracy (read, never used to choose)."""
    test = next((accuracy(m, "test") for m in metrics if m.round == chosen["round"]), None)
    tested = f", test {test:.3f}" if test is not None else ""
    return (
        f"best round on the validation split: {chosen['round']} ({chosen['metric']} {chosen['value']:.3f}{tested});"
        " its student is kept: `distilforge predict RUN_DIR INPUT --best`"
    )


@dataclass(frozen=True)
class RunFacts:
    """What every part of the report reads once."""

    layout: RunLayout
    manifest: dict[str, Any]
    metrics: list[RoundMetrics]
    method: str

    @classmethod
    def read(cls, run_dir: Path) -> RunFacts:
        layout = RunLayout(run_dir)
        manifest = json.loads(layout.manifest.read_text())
        return cls(layout, manifest, load_round_metrics(run_dir), method_name(layout))

    @property
    def records(self) -> bool:
        return writes_records(self.metrics, self.method)


def _files_note(layout: RunLayout) -> str:
    rounds = f"{layout.rounds_dir.relative_to(layout.root).as_posix()}/<r>/"
    return (
        f"Files: `{layout.records.name}` (accepted records), `{layout.rejects.name}` (every reject with its reason),"
        f" `{rounds}` (each round's `{layout.metrics(0).name}`, evaluations, requests)."
    )


def write_report(run_dir: Path) -> Path:
    from distilforge.engine.teacher_baseline import load_teacher_baseline

    facts = RunFacts.read(Path(run_dir))
    layout, manifest, metrics = facts.layout, facts.manifest, facts.metrics
    lines = [
        f"# distilforge run `{layout.root.name}`",
        "",
        f"status: **{manifest.get('status')}** · method `{facts.method}` · config fingerprint"
        f" `{manifest.get('fingerprint', '')[:12]}` · distilforge {manifest.get('distilforge_version')}",
        "",
    ]
    baseline = load_teacher_baseline(layout.root)
    lines += [f"- {line}" for line in headline(metrics, baseline, facts.records, manifest)]
    lines += ["", "## Per round", "", *round_table(metrics, facts.method), ""]
    lines += table_notes(metrics, facts.method)
    if metrics:
        plot_accuracy(metrics, layout.accuracy_plot, baseline)
        lines += ["", f"![accuracy per round]({layout.accuracy_plot.name})", ""]
    tested = [m for m in metrics if m.trained and accuracy(m, "test") is not None]
    first, final = (tested[0], tested[-1]) if tested else (None, None)
    lines += classification_section(layout, manifest.get("labels"), first, final)
    lines += rejects_section(layout, facts.records)
    lines += ["", _files_note(layout), ""]
    # sections that plugins wrote into <run>/report/ (markdown, links relative to the run directory)
    for section in sorted(layout.report_sections.glob("*.md")):
        lines += [section.read_text(encoding="utf-8").rstrip(), ""]
    path = layout.report
    atomic_write_text(path, "\n".join(lines))
    return path
