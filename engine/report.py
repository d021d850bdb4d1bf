"""The run report: ``report.md`` with a per-round table and a PNG of accuracy per round.

A plugin adds its own section by writing a markdown file (and its images) into ``<run>/report/``;
every ``*.md`` there is appended in name order, so ``distilforge report`` regenerates it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distilforge.engine.api.toolkit.files import atomic_write_text
from distilforge.engine.report_details import classification_section, rejects_section
from distilforge.schemas import RunLayout


def load_round_metrics(run_dir: Path) -> list[dict[str, Any]]:
    layout = RunLayout(run_dir)
    paths = (layout.metrics(r) for r in layout.rounds())
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def _acc(m: dict[str, Any], split: str) -> float | None:
    value = (m.get(f"{split}_metrics") or {}).get("accuracy")
    return None if value is None else float(value)


def plot_accuracy(metrics: list[dict[str, Any]], path: Path, baseline: dict[str, Any] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    rounds = [m["round"] for m in metrics]
    for split, style in (("test", "o-"), ("train", "s--")):
        values = [_acc(m, split) for m in metrics]
        if any(v is not None for v in values):
            ax.plot(rounds, [float("nan") if v is None else v for v in values], style, label=f"{split} accuracy")
    seed_only = _acc(metrics[0], "test") if metrics and metrics[0].get("round") == 0 else None
    if seed_only is not None:
        ax.axhline(seed_only, color="tab:blue", linestyle="--", linewidth=0.8, label="seed-only student (round 0)")
    if baseline is not None:
        label = f"teacher zero-shot (n={baseline['n']})"
        ax.axhline(baseline["accuracy"], color="tab:green", linestyle=":", label=label)
    ax.set_xlabel("round")
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
    ax2.bar(rounds, [m.get("train_size", 0) for m in metrics], alpha=0.15, color="gray")
    ax2.set_ylabel("training records", color="gray")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def headline(metrics: list[dict[str, Any]], baseline: dict[str, Any] | None) -> list[str]:
    """What a user wants first: did the student gain over seed-only, and does the teacher know the task?"""
    tested = [m for m in metrics if _acc(m, "test") is not None]
    lines = []
    if tested:
        first, last = _acc(tested[0], "test"), _acc(tested[-1], "test")
        assert first is not None and last is not None
        lines.append(
            f"student test accuracy: seed-only (round 0) {first:.3f} -> final (round {tested[-1]['round']}) {last:.3f}"
            f" ({last - first:+.3f})"
        )
        best = max(tested, key=lambda m: _acc(m, "test") or 0.0)
        if best is not tested[-1] and best is not tested[0]:
            lines.append(
                f"best round on the test split: {best['round']} ({_acc(best, 'test'):.3f}; not a choice made on it)"
            )
        if last < first:
            lines.append(
                "the final student is worse than seed-only: check the teacher's zero-shot accuracy (does it know the"
                " task?), read rejects.jsonl and the accepted samples below, try a stronger teacher preset, the"
                " label-judge filter, or fewer rounds"
            )
    if baseline is not None:
        lines.append(
            f"teacher zero-shot accuracy: {baseline['accuracy']:.3f} on {baseline['n']} of {baseline['test_size']}"
            f" test examples ({baseline['teacher']})"
        )
    return lines


def write_report(run_dir: Path) -> Path:
    from distilforge.engine.teacher_baseline import load_teacher_baseline

    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    metrics = load_round_metrics(run_dir)
    manifest = json.loads(layout.manifest.read_text())
    filters = sorted({name for m in metrics for name in (m.get("rejected") or {})})
    judged = any("judge" in (m.get("usage") or {}) for m in metrics)
    lines = [
        f"# distilforge run `{run_dir.name}`",
        "",
        f"status: **{manifest.get('status')}** · config fingerprint `{manifest.get('fingerprint', '')[:12]}` · "
        f"distilforge {manifest.get('distilforge_version')}",
        "",
    ]
    baseline = load_teacher_baseline(run_dir)
    lines += [f"- {line}" for line in headline(metrics, baseline)]
    lines += ["", "## Per round", ""]
    header = ["round", "train size", "train acc", "test acc", "failures", "requests", "generated", "accepted"]
    header += [f"rejected: {f}" for f in filters] + ["cached samples", "new samples", "completion tokens"]
    header += ["judge samples (new)"] if judged else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))

    def cell(value: Any) -> str:
        if value is None:
            return "–"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    for m in metrics:
        rejected = m.get("rejected") or {}
        row = [
            m.get("round"),
            m.get("train_size"),
            _acc(m, "train"),
            _acc(m, "test"),
            m.get("failures"),
            m.get("requests"),
            m.get("generated"),
            m.get("accepted"),
        ]
        row += [rejected.get(f, 0) if "rejected" in m else None for f in filters]
        row += [m.get("samples_cached"), m.get("samples_new"), m.get("completion_tokens")]
        if judged:
            judge = (m.get("usage") or {}).get("judge")
            row.append(f"{int(judge['samples_requested'])} ({int(judge['samples_new'])})" if judge else None)
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if metrics:
        plot_accuracy(metrics, layout.accuracy_plot, baseline)
        lines += ["", "![accuracy per round](accuracy.png)", ""]
    tested = [m["round"] for m in metrics if _acc(m, "test") is not None]
    lines += classification_section(layout, manifest.get("labels"), tested[-1] if tested else None)
    lines += rejects_section(layout)
    lines += [
        "",
        "Round 0 is the student trained on the seed data only; what later rounds train on is the method's choice"
        " (its section below, or `rounds/<r>/metrics.json`).",
        "Files: `records.jsonl` (accepted records), `rejects.jsonl` (every reject with its reason), `rounds/<r>/`.",
        "",
    ]
    # sections that plugins wrote into <run>/report/ (markdown, links relative to the run directory)
    for section in sorted(layout.report_sections.glob("*.md")):
        lines += [section.read_text(encoding="utf-8").rstrip(), ""]
    path = layout.report
    atomic_write_text(path, "\n".join(lines))
    return path
