"""Experiment: few-shot tabular learning with LAAT, on three tables that ship in packages.

For each table (examples/tabular: breast cancer, wine made binary, penguins made binary):

1. one engine run of the ``laat`` method per teacher preset (vLLM; default: SmolLM2-135M, Qwen2.5-Coder 0.5B and
   1.5B): 5 answers under the JSON schema, invalid ones asked again up to 3 times, averaged; the tokens it spent;
2. oracle scores: the signed coefficients of a logistic regression fit on the whole training split
   (min-max scaled), mapped to scores so that the target s' = sign(s)·exp(|s|) is proportional to them —
   the ceiling of what the regulariser can give;
3. for k in {1, 5, 10} rows per class and 20 repetitions (the k rows drawn with the repetition's seed;
   the test split is fixed), logistic regression and MLP students trained plainly, with each teacher's
   scores and with the oracle scores (gamma 100, batch-mean gradient, Adam lr 1e-2, 200 epochs).

Accuracy and ROC-AUC on the fixed test split, mean ± sd over the repetitions. Nothing is tuned: the
settings are the paper's. Prints the table and writes bench/results/laat_fewshot[-TAG].md and .json.

    .venv/bin/python bench/laat_fewshot.py --tag teachers    # every preset must be set up first
    .venv/bin/python bench/laat_fewshot.py --teachers smollm2-135m --reps 5 --tag quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from experiment_runs import ROOT, mean_sd, run_config
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from distilforge.plugins.datasets.table import TableDataset, TableDatasetConfig
from distilforge.plugins.students.tabular import SCORE_LIMIT, LAATClassifier, target_attribution

TABLES = ("breast_cancer", "wine", "penguins")
SPLIT = {"test_fraction": 0.3, "split_seed": 12345}
VALIDATION_FRACTION = 0.3  # of the training split, for --holdout validation


TEACHERS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def elicit(table: str, teacher: str, style: str, out: Path) -> dict[str, Any]:
    """Run the laat method on the table with ``teacher`` asking in ``style``; its elicited scores and token counts."""
    name = f"laat-{teacher}-{table}" if style == "scores" else f"laat-{teacher}-{style}-{table}"
    config = {
        "name": name,
        "seed": 0,
        "dataset": {"type": "table", "path": str(ROOT / "examples" / "tabular" / f"{table}.csv"), "shots": 5, **SPLIT},
        "teacher": {"type": "vllm", "model": teacher, "max_model_len": 4096},
        # a table row as JSON is a long prompt: classifying the whole test split zero-shot would cost the 1.5B
        # teacher ~15 minutes on breast cancer alone on 2 cores
        "teacher_baseline": {"enabled": False},
        "student": {"type": "tabular"},
        "method": {"type": "laat", "elicitation": style, "estimates": 5, "retries": 3, "temperature": 0.7},
    }
    metrics = run_config(config, out)
    manifest = json.loads((out / name / "manifest.json").read_text())
    state = manifest["state"]["laat"]
    positive = manifest["dataset_info"]["positive"]
    features = [f["name"] for f in manifest["dataset_info"]["features"]]
    if style != "scores":
        answers = state["contrast"][positive]
        scores = [float(np.mean(answers[f])) for f in features]
        valid = sum(len(answers[f]) for f in features)
    else:
        estimates = state["estimates"].get(positive, [])
        scores = np.mean([[e[f] for f in features] for e in estimates], axis=0).tolist()
        valid = len(estimates)
    return {
        "features": features,
        "positive": positive,
        "scores": scores,
        "valid": valid,
        "answers": state["answers"],
        "prompt_tokens": state["prompt_tokens"],
        "completion_tokens": state["completion_tokens"],
        "engine_run": metrics[-1]["test_metrics"],
    }


def oracle_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Scores whose target s' is proportional to a full-data logistic regression's coefficients."""
    low, span = x.min(axis=0), np.ptp(x, axis=0)
    scaled = (x - low) / np.where(span > 0, span, 1.0)
    coef = LogisticRegression(max_iter=5000).fit(scaled, y).coef_[0]
    size = np.abs(coef) / np.abs(coef).max()
    with np.errstate(divide="ignore"):
        magnitude = np.clip(SCORE_LIMIT + np.log(size), 0.0, SCORE_LIMIT)
    return np.sign(coef) * magnitude


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def matrix(records: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray([r.meta["x"] for r in records]), np.asarray([r.target for r in records])


def k_shot(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` rows per class drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c in sorted(set(y))])
    return x[picked], y[picked]


def splits(table: str, holdout: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The positive class, the training pool and the evaluation rows: the fixed test split, or a
    validation split carved from the training split."""
    path = ROOT / "examples" / "tabular" / f"{table}.csv"
    full = TableDataset(TableDatasetConfig(path=path, **SPLIT)).load(seed=0)
    positive = str(full.extra["positive"])
    x_train, y_train = matrix(full.seed)
    if holdout == "test":
        return (positive, x_train, y_train, *matrix(full.test))
    x_fit, x_val, y_fit, y_val = train_test_split(
        x_train, y_train, test_size=VALIDATION_FRACTION, stratify=y_train, random_state=SPLIT["split_seed"]
    )
    return positive, x_fit, y_fit, x_val, y_val


def evaluate(
    table: str, elicited: dict[str, dict[str, Any]], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[str]]:
    """``elicited``: variant name -> what :func:`elicit` returned for this table. Rows, and the variant names."""
    path = ROOT / "examples" / "tabular" / f"{table}.csv"
    positive, x_pool, y_pool, x_eval, y_eval = splits(table, args.holdout)
    classes = sorted(set(y_pool.tolist()))
    sign = 1.0 if classes[1] == positive else -1.0  # the estimator's scores are about classes[1]
    oracle = oracle_scores(x_pool, y_pool == classes[1])
    scores: dict[str, Any] = {name: sign * np.asarray(e["scores"]) for name, e in elicited.items()}
    scores["oracle"] = oracle
    targets: dict[str, tuple[Any, float]] = {"plain": (None, 0.0)}
    for gamma in args.gamma:
        suffix = f" g{gamma:g}" if len(args.gamma) > 1 else ""
        targets.update({f"LAAT {name}{suffix}": (target, gamma) for name, target in scores.items()})
    rows = []
    for k in args.k:
        for rep in range(args.reps):
            if args.holdout == "test":  # the engine's own k-shot draw, as in the runs
                x, y = matrix(TableDataset(TableDatasetConfig(path=path, shots=k, **SPLIT)).load(seed=rep).seed)
            else:
                x, y = k_shot(x_pool, y_pool, k, rep)
            for model in ("logreg", "mlp"):
                for variant, (target, gamma) in targets.items():
                    clf = LAATClassifier(model=model, gamma=gamma, random_state=rep, target_scores=target).fit(x, y)
                    proba = clf.predict_proba(x_eval)[:, 1]
                    rows.append(
                        {
                            "table": table,
                            "k": k,
                            "rep": rep,
                            "model": model,
                            "variant": variant,
                            "accuracy": float(accuracy_score(y_eval, clf.predict(x_eval))),
                            "roc_auc": float(roc_auc_score(y_eval == classes[1], proba)),
                        }
                    )
    for name, e in elicited.items():
        mine = scores[name]
        e["cosine_oracle"] = cosine(target_attribution(mine), target_attribution(oracle))
        e["sign_agreement"] = float(np.mean(np.sign(mine) == np.sign(oracle)))
    return rows, list(targets)


def summary(
    rows: list[dict[str, Any]],
    tables: dict[str, dict[str, dict[str, Any]]],
    variants: list[str],
    args: argparse.Namespace,
) -> str:
    where = "the fixed test split" if args.holdout == "test" else "a validation split carved from the training split"
    lines = [
        f"# LAAT few-shot ({args.reps} repetitions, k rows per class; mean ± sd on {where})",
        "",
        "| table | k | student | "
        + " | ".join(f"acc {v}" for v in variants)
        + " | "
        + " | ".join(f"AUC {v}" for v in variants)
        + " |",
        "|---|---|---|" + "---|" * (2 * len(variants)),
    ]
    for table in tables:
        for k in args.k:
            for model in ("logreg", "mlp"):
                cells = []
                for metric in ("accuracy", "roc_auc"):
                    for variant in variants:
                        values = [
                            r[metric]
                            for r in rows
                            if (r["table"], r["k"], r["model"], r["variant"]) == (table, k, model, variant)
                        ]
                        cells.append(mean_sd(values))
                lines.append(f"| {table} | {k} | {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| table | teacher | features | answers (valid) | prompt tokens | completion tokens | cosine(s'_teacher,"
        " s'_oracle) | sign agreement with the oracle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for table, by_variant in tables.items():
        for teacher, e in by_variant.items():
            lines.append(
                f"| {table} | {teacher} | {len(e['features'])} | {e['answers']} ({e['valid']}) | {e['prompt_tokens']}"
                f" | {e['completion_tokens']} | {e['cosine_oracle']:.3f} | {e['sign_agreement']:.2f} |"
            )
    return "\n".join(lines)


def variant_name(teacher: str, style: str) -> str:
    return teacher if style == "scores" else f"{teacher} {style}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--k", nargs="+", type=int, default=[1, 5, 10])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--teachers", nargs="+", default=list(TEACHERS), help="teacher presets (set up first)")
    parser.add_argument("--elicitation", nargs="+", default=["scores"], choices=["scores", "contrast", "reasoned"])
    parser.add_argument("--gamma", nargs="+", type=float, default=[100.0], help="strength of the attribution loss")
    parser.add_argument("--holdout", choices=["test", "validation"], default="test")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    out = ROOT / "bench" / "runs" / "laat"
    started = time.perf_counter()
    elicited: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in args.tables}
    for teacher in args.teachers:  # one teacher at a time: one engine per process, runs resumable
        for style in args.elicitation:
            for table in args.tables:
                elicited[table][variant_name(teacher, style)] = elicit(table, teacher, style, out)
                print(f"{table} / {teacher} / {style}: elicited, {time.perf_counter() - started:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    variants: list[str] = []
    for table in args.tables:
        table_rows, variants = evaluate(table, elicited[table], args)
        rows += table_rows
        print(f"{table}: evaluated, {time.perf_counter() - started:.0f} s so far", flush=True)
    text = summary(rows, elicited, variants, args)
    text += f"\n\nWall time {time.perf_counter() - started:.0f} s. Command: `.venv/bin/python bench/laat_fewshot.py"
    text += f"{' --reps ' + str(args.reps) if args.reps != 20 else ''} --teachers {' '.join(args.teachers)}"
    text += f" --elicitation {' '.join(args.elicitation)} --gamma {' '.join(f'{g:g}' for g in args.gamma)}"
    text += f" --holdout {args.holdout}{' --tag ' + args.tag if args.tag else ''}`\n"
    print(text)
    suffix = f"-{args.tag}" if args.tag else ""
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"laat_fewshot{suffix}.md").write_text(text)
    scores = {
        table: {name: {k: v for k, v in e.items() if k != "engine_run"} for name, e in by.items()}
        for table, by in elicited.items()
    }
    (results / f"laat_fewshot{suffix}.json").write_text(json.dumps({"elicited": scores, "rows": rows}, indent=1))
    plain = [r for r in rows if r["variant"] == "plain"]
    for variant in variants[1:]:
        mine = [r for r in rows if r["variant"] == variant]
        paired = statistics.mean(r["accuracy"] - p["accuracy"] for r, p in zip(mine, plain, strict=True))
        at_low_k = [r["accuracy"] - p["accuracy"] for r, p in zip(mine, plain, strict=True) if r["k"] in (1, 5)]
        low = f", at k in (1, 5) {statistics.mean(at_low_k):+.3f}" if at_low_k else ""
        print(f"mean paired accuracy difference vs plain: {variant} {paired:+.3f}{low}")


if __name__ == "__main__":
    main()
