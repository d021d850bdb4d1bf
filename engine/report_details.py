"""The report's detail sections: how the student does per class, and what was rejected and why.

Classification runs get, for the seed-only student (round 0) and the final one: accuracy,
macro-F1, the evaluator's own test metrics (ROC-AUC, F1...), per-class recall, beside the
majority-class baseline (always answering the commonest test label), and a confusion-matrix PNG
of the final student. Every run gets its rejects grouped by
filter and kind (the text before the first colon of the reason: ``truncated``, ``duplicate``...),
with five accepted synthetic records and five rejects to read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distilforge.engine.store.jsonl import read_jsonl
from distilforge.schemas import Evaluation, RoundMetrics, RunLayout

SAMPLES = 5


def _short(text: str, width: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def class_scores(targets: list[str], predictions: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class recall and the confusion counts (rows: truth, columns: prediction)."""
    confusion: dict[str, Counter[str]] = {t: Counter() for t in labels}
    for truth, guess in zip(targets, predictions, strict=True):
        confusion.setdefault(truth, Counter())[guess] += 1
    recall, f1 = {}, []
    for label in labels:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted = sum(row[label] for row in confusion.values())
        recall[label] = tp / support if support else 0.0
        precision = tp / predicted if predicted else 0.0
        f1.append(2 * precision * recall[label] / (precision + recall[label]) if precision + recall[label] else 0.0)
    n = len(targets)
    return {
        "accuracy": sum(t == p for t, p in zip(targets, predictions, strict=True)) / n if n else 0.0,
        "macro_f1": sum(f1) / len(f1) if f1 else 0.0,
        "recall": recall,
        "confusion": confusion,
    }


def _scores_of(layout: RunLayout, r: int, targets: dict[str, str], labels: list[str]) -> dict[str, Any] | None:
    path = layout.round_file(r, "evaluation_test.json")
    if not path.exists():
        return None
    results = [x for x in Evaluation.model_validate_json(path.read_text()).results if x.record_id in targets]
    return class_scores([targets[x.record_id] for x in results], [x.prediction for x in results], labels)


def plot_confusion(scores: dict[str, Any], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [[scores["confusion"][t][p] for p in labels] for t in labels]
    size = 2.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size), dpi=120)
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    darkest = max((max(row) for row in grid), default=0)
    for i, row in enumerate(grid):
        for j, count in enumerate(row):
            colour = "white" if darkest and count > darkest / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


EVALUATOR_METRICS = {"roc_auc": "ROC-AUC", "f1": "F1 (student's evaluator)"}


def evaluator_metrics(rounds: Sequence[RoundMetrics]) -> list[str]:
    """Test metrics a student's evaluator reported beyond accuracy (e.g. the tabular student's ROC-AUC, F1)."""
    keys = {k for m in rounds for k in m.test_metrics} - {"accuracy", "n"}
    return sorted(keys, key=lambda k: (k not in EVALUATOR_METRICS, k))


def _row(name: str, scores: dict[str, Any], labels: list[str], extra: list[str], m: RoundMetrics | None) -> str:
    recall = [f"{scores['recall'][label]:.3f}" for label in labels]
    reported = [f"{m.test_metrics[k]:.3f}" if m is not None and k in m.test_metrics else "–" for k in extra]
    return (
        "| " + " | ".join([name, f"{scores['accuracy']:.3f}", f"{scores['macro_f1']:.3f}", *reported, *recall]) + " |"
    )


def classification_section(
    layout: RunLayout, labels: list[str] | None, seed_only: RoundMetrics | None, final: RoundMetrics | None
) -> list[str]:
    """Seed-only (round 0) and final student on the test split beside the majority-class baseline."""
    if not labels or seed_only is None or final is None or not layout.test.exists():
        return []
    targets = {row["id"]: str(row["target"]) for row in read_jsonl(layout.test)}
    final_scores = _scores_of(layout, final.round, targets, labels)
    if final_scores is None:
        return []
    commonest, _ = Counter(targets.values()).most_common(1)[0]
    majority = class_scores(list(targets.values()), [commonest] * len(targets), labels)
    extra = evaluator_metrics([seed_only, final])
    header = ["student", "accuracy", "macro-F1", *(EVALUATOR_METRICS.get(k, k) for k in extra)]
    header += [f"recall `{label}`" for label in labels]
    lines = [
        "## Test split by class",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        _row(f"majority class (always `{commonest}`)", majority, labels, extra, None),
    ]
    seed_scores = _scores_of(layout, seed_only.round, targets, labels)
    if seed_scores is not None and seed_only.round != final.round:
        lines.append(_row(f"seed-only (round {seed_only.round})", seed_scores, labels, extra, seed_only))
    lines.append(_row(f"final (round {final.round})", final_scores, labels, extra, final))
    title = f"final student (round {final.round}), test split"
    plot_confusion(final_scores, labels, layout.confusion_plot, title)
    return [*lines, "", f"![confusion matrix of the final student]({layout.confusion_plot.name})", ""]


def rejects_section(layout: RunLayout, records: bool = True) -> list[str]:
    """Rejects by filter and kind, and a few accepted and rejected samples; ``records``: whether the teacher
    wrote training records at all (if not, what it answered is the method's and only the refusals are here)."""
    rejects = list(read_jsonl(layout.rejects)) if layout.rejects.exists() else []
    synthetic = (
        [r for r in read_jsonl(layout.records) if r.get("origin") == "synthetic"] if layout.records.exists() else []
    )
    lines = ["## What the teacher wrote" if records else "## Teacher answers the method refused", ""]
    if rejects:
        kinds = Counter((r["rejected_by"], str(r["reason"]).split(":", 1)[0].strip()[:60]) for r in rejects)
        lines += ["| rejected by | kind | count |", "|---|---|---|"]
        lines += [f"| {who} | {_short(kind, 60)} | {n} |" for (who, kind), n in kinds.most_common()]
        lines.append("")
    if synthetic:
        lines += [f"Accepted ({len(synthetic)} in all), the first {min(SAMPLES, len(synthetic))}:", ""]
        lines += [f"- `{_short(r['target'], 40)}` — {_short(r['input'])}" for r in synthetic[:SAMPLES]]
        lines.append("")
    if rejects:
        lines += [f"Rejected ({len(rejects)} in all), the first {min(SAMPLES, len(rejects))}:", ""]
        for r in rejects[:SAMPLES]:
            text = (r.get("record") or {}).get("input") or r.get("text") or ""
            lines.append(f"- {_short(r['reason'], 80)} — {_short(text)}")
        lines.append("")
    return lines if len(lines) > 2 else []
