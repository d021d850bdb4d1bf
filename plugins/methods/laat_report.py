"""The LAAT section of a run's report: the elicited scores beside the attributions the students learned."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _unit(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "class"


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
            "| feature | score mean | score sd | " + " | ".join(bars) + " |",
            "|---|---|---|" + "---|" * len(bars),
        ]
        for i, name in enumerate(features):
            cells = [f"{scores['mean'][i]:+.1f}", f"{scores['sd'][i]:.1f}"] + [f"{v[i]:+.3f}" for v in bars.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
