"""The LAAT section of a run's report: the plain and the LAAT student on the test split beside the
majority-class baseline, then the elicited scores beside the attributions the students learned.

LAAT writes no training rows: both rounds train the same student on the same seed rows, round 0 with
no target (the plain LR/MLP) and round 1 with the attribution loss towards the teacher's scores.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distilforge.schemas import RoundMetrics

SCORES = (("accuracy", "accuracy"), ("f1", "F1 (macro)"), ("roc_auc", "ROC-AUC"))


def _unit(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "class"


def majority_scores(targets: Sequence[str], labels: Sequence[str]) -> tuple[str, dict[str, float]]:
    """Always answering the commonest test label: its accuracy, macro-F1 (only that class scores) and ROC-AUC
    (a constant score ranks nothing: 0.5)."""
    label, count = Counter(targets).most_common(1)[0]
    share = count / len(targets)
    return label, {"accuracy": share, "f1": 2 * share / (1 + share) / max(len(labels), 1), "roc_auc": 0.5}


def _cells(values: dict[str, float]) -> list[str]:
    return [f"{values[key]:.3f}" if key in values else "–" for key, _ in SCORES]


def comparison_lines(metrics: Sequence[RoundMetrics], targets: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Markdown lines: plain (round 0) and LAAT (round 1) test scores, their difference, the majority baseline."""
    plain, laat = metrics[0].test_metrics, metrics[-1].test_metrics
    lines = [
        "## LAAT: plain vs LAAT student",
        "",
        f"Both rounds train the same student on the same {metrics[0].train_size} seed rows: the teacher contributes"
        " feature scores, not rows. Round 0 is the plain student (no target), round 1 the LAAT student (the"
        " attribution loss towards the teacher's scores). Test split:"
        f" {int(laat.get('n', len(targets)))} rows.",
        "",
        "| student | " + " | ".join(title for _, title in SCORES) + " |",
        "|---|" + "---|" * len(SCORES),
    ]
    if targets:
        label, baseline = majority_scores(targets, labels)
        lines.append(f"| majority class (always `{label}`) | " + " | ".join(_cells(baseline)) + " |")
    lines.append("| plain (round 0) | " + " | ".join(_cells(plain)) + " |")
    lines.append("| LAAT (round 1) | " + " | ".join(_cells(laat)) + " |")
    gain = {key: laat[key] - plain[key] for key, _ in SCORES if key in laat and key in plain}
    lines.append("| LAAT − plain | " + " | ".join(f"{gain[k]:+.3f}" if k in gain else "–" for k, _ in SCORES) + " |")
    return [*lines, ""]


def _direction(score: float, label: str) -> str:
    return f"raises P(`{label}`)" if score > 0 else f"lowers P(`{label}`)" if score < 0 else "no effect"


def plot_attributions(
    features: Sequence[str],
    label: str,
    mean: Sequence[float],
    sd: Sequence[float],
    bars: dict[str, np.ndarray],
    path: Path,
) -> None:
    """Left: the teacher's mean score per feature (± sd). Right: unit-length target and learned attributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(features)
    y = np.arange(n)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 1.2 + 0.3 * n), dpi=110, sharey=True, gridspec_kw={"width_ratios": [1, 1.4]}
    )
    left.barh(y, mean, xerr=sd, color=["#c0392b" if m < 0 else "#2e86c1" for m in mean], alpha=0.85)
    left.set_xlim(-10.5, 10.5)
    left.set_xlabel(f'teacher score for "{label}" (mean ± sd)')
    left.set_yticks(y, features, fontsize=8)
    left.invert_yaxis()
    height = 0.8 / max(len(bars), 1)
    for i, (name, values) in enumerate(bars.items()):
        right.barh(y - 0.4 + height * (i + 0.5), values, height=height, label=name)
    right.set_xlabel("attribution, normalised to unit length")
    right.legend(fontsize=8, loc="best")
    for ax in (left, right):
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def attribution_section(
    *,
    features: Sequence[str],
    elicited: dict[str, Any],
    learned: dict[str, list[float]],
    plain: dict[str, list[float]] | None,
    answers: int,
    tokens: tuple[int, int],
    out_dir: Path,
) -> str:
    """Write one chart per elicited class into ``out_dir`` and return the markdown section (links relative to
    the run directory, where report.md lives)."""
    valid = sum(v["n"] for v in elicited.values())
    lines = [
        "## LAAT: elicited feature scores and learned attributions",
        "",
        f"Teacher answers: {answers} ({valid} valid, {answers - valid} rejected; reasons in `rejects.jsonl`). "
        f"Tokens: {tokens[0]} prompt, {tokens[1]} completion.",
        "Round 0 is the plain student (no target); round 1 is trained towards the target "
        "s' = sign(s)·exp(|s|) of the mean scores s.",
        "",
    ]
    for label, scores in elicited.items():
        from distilforge.plugins.students.tabular import target_attribution  # torch: only when reporting

        target = _unit(target_attribution(scores["mean"]))
        bars = {"target s'/‖s'‖": target}
        if plain is not None and label in plain:
            bars["plain student"] = _unit(plain[label])
        bars["LAAT student"] = _unit(learned[label])
        image = f"attributions-{_slug(label)}.png"
        plot_attributions(features, label, scores["mean"], scores["sd"], bars, out_dir / image)
        cosines = ", ".join(f"{name} {float(v @ target):.3f}" for name, v in bars.items() if name != "target s'/‖s'‖")
        lines += [
            f"### class `{label}` ({scores['n']} valid answers)",
            "",
            f"Cosine with the target: {cosines}.",
            "",
            f"![elicited scores and learned attributions for {label}](report/{image})",
            "",
            "| feature | teacher: an increase of the feature … | score mean | score sd | " + " | ".join(bars) + " |",
            "|---|---|---|---|" + "---|" * len(bars),
        ]
        for i, name in enumerate(features):
            cells = [f"{scores['mean'][i]:+.1f}", f"{scores['sd'][i]:.1f}"] + [f"{v[i]:+.3f}" for v in bars.values()]
            lines.append(f"| {name} | {_direction(scores['mean'][i], label)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
