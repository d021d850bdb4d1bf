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

from distilforge.plugins.datasets.table import TableDataset, TableDatasetConfig
from distilforge.plugins.students.tabular import SCORE_LIMIT, LAATClassifier, target_attribution

TABLES = ("breast_cancer", "wine", "penguins")
SPLIT = {"test_fraction": 0.3, "split_seed": 12345}


TEACHERS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def elicit(table: str, teacher: str, out: Path) -> dict[str, Any]:
    """Run the laat method on the table with ``teacher`` and return its elicited scores and token counts."""
    name = f"laat-{teacher}-{table}"
    config = {
        "name": name,
        "seed": 0,
        "dataset": {"type": "table", "path": str(ROOT / "examples" / "tabular" / f"{table}.csv"), "shots": 5, **SPLIT},
        "teacher": {"type": "vllm", "model": teacher, "max_model_len": 4096},
        # a table row as JSON is a long prompt: classifying the whole test split zero-shot would cost the 1.5B
        # teacher ~15 minutes on breast cancer alone on 2 cores
        "teacher_baseline": {"enabled": False},
        "student": {"type": "tabular"},
        "method": {"type": "laat", "estimates": 5, "retries": 3, "temperature": 0.7},
    }
    metrics = run_config(config, out)
    manifest = json.loads((out / name / "manifest.json").read_text())
    state = manifest["state"]["laat"]
    positive = manifest["dataset_info"]["positive"]
    estimates = state["estimates"].get(positive, [])
    features = [f["name"] for f in manifest["dataset_info"]["features"]]
    return {
        "features": features,
        "positive": positive,
        "scores": np.mean([[e[f] for f in features] for e in estimates], axis=0).tolist(),
        "valid": len(estimates),
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


def evaluate(table: str, elicited: dict[str, dict[str, Any]], ks: list[int], reps: int) -> list[dict[str, Any]]:
    """``elicited``: teacher -> what :func:`elicit` returned for this table."""
    path = ROOT / "examples" / "tabular" / f"{table}.csv"
    full = TableDataset(TableDatasetConfig(path=path, **SPLIT)).load(seed=0)
    positive = full.extra["positive"]
    x_train, y_train = matrix(full.seed)
    x_test, y_test = matrix(full.test)
    classes = sorted(set(y_train.tolist()))
    sign = 1.0 if classes[1] == positive else -1.0  # the estimator's scores are about classes[1]
    oracle = oracle_scores(x_train, y_train == classes[1])
    targets: dict[str, Any] = {"plain": None}
    targets.update({f"LAAT {teacher}": sign * np.asarray(e["scores"]) for teacher, e in elicited.items()})
    targets["LAAT oracle"] = oracle
    rows = []
    for k in ks:
        for rep in range(reps):
            seeds = TableDataset(TableDatasetConfig(path=path, shots=k, **SPLIT)).load(seed=rep).seed
            x, y = matrix(seeds)
            for model in ("logreg", "mlp"):
                for variant, target in targets.items():
                    clf = LAATClassifier(model=model, gamma=100.0, random_state=rep, target_scores=target).fit(x, y)
                    proba = clf.predict_proba(x_test)[:, 1]
                    rows.append(
                        {
                            "table": table,
                            "k": k,
                            "rep": rep,
                            "model": model,
                            "variant": variant,
                            "accuracy": float(accuracy_score(y_test, clf.predict(x_test))),
                            "roc_auc": float(roc_auc_score(y_test == classes[1], proba)),
                        }
                    )
    for teacher, e in elicited.items():
        mine = targets[f"LAAT {teacher}"]
        e["cosine_oracle"] = cosine(target_attribution(mine), target_attribution(oracle))
        e["sign_agreement"] = float(np.mean(np.sign(mine) == np.sign(oracle)))
    return rows


def summary(rows: list[dict[str, Any]], tables: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace) -> str:
    variants = ["plain", *(f"LAAT {t}" for t in args.teachers), "LAAT oracle"]
    lines = [
        f"# LAAT few-shot ({args.reps} repetitions, k rows per class; mean ± sd on the fixed test split)",
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
    for table, by_teacher in tables.items():
        for teacher, e in by_teacher.items():
            lines.append(
                f"| {table} | {teacher} | {len(e['features'])} | {e['answers']} ({e['valid']}) | {e['prompt_tokens']}"
                f" | {e['completion_tokens']} | {e['cosine_oracle']:.3f} | {e['sign_agreement']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--k", nargs="+", type=int, default=[1, 5, 10])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--teachers", nargs="+", default=list(TEACHERS), help="teacher presets (set up first)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    out = ROOT / "bench" / "runs" / "laat"
    started = time.perf_counter()
    elicited: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in args.tables}
    for teacher in args.teachers:  # one teacher at a time: one engine per process, runs resumable
        for table in args.tables:
            elicited[table][teacher] = elicit(table, teacher, out)
            print(f"{table} / {teacher}: elicited, {time.perf_counter() - started:.0f} s so far", flush=True)
    rows: list[dict[str, Any]] = []
    for table in args.tables:
        rows += evaluate(table, elicited[table], args.k, args.reps)
        print(f"{table}: evaluated, {time.perf_counter() - started:.0f} s so far", flush=True)
    text = summary(rows, elicited, args)
    text += f"\n\nWall time {time.perf_counter() - started:.0f} s. Command: `.venv/bin/python bench/laat_fewshot.py"
    text += f"{' --reps ' + str(args.reps) if args.reps != 20 else ''} --teachers {' '.join(args.teachers)}"
    text += f"{' --tag ' + args.tag if args.tag else ''}`\n"
    print(text)
    suffix = f"-{args.tag}" if args.tag else ""
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"laat_fewshot{suffix}.md").write_text(text)
    scores = {
        table: {teacher: {k: v for k, v in e.items() if k != "engine_run"} for teacher, e in by.items()}
        for table, by in elicited.items()
    }
    (results / f"laat_fewshot{suffix}.json").write_text(json.dumps({"elicited": scores, "rows": rows}, indent=1))
    plain = [r for r in rows if r["variant"] == "plain"]
    for variant in [*(f"LAAT {t}" for t in args.teachers), "LAAT oracle"]:
        mine = [r for r in rows if r["variant"] == variant]
        paired = statistics.mean(r["accuracy"] - p["accuracy"] for r, p in zip(mine, plain, strict=True))
        print(f"mean paired accuracy difference vs plain: {variant} {paired:+.3f}")


if __name__ == "__main__":
    main()
