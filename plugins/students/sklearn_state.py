"""Checkpoints of the scikit-learn parts of students without pickle.

``joblib.load`` runs whatever code a pickle names, so a run directory from someone else could
run code on load. A fitted logistic regression is only its classes, coefficients and
intercepts; a fitted TF-IDF vectorizer is its vocabulary and idf weights (its settings come
from the student's config). Those go to JSON and safetensors, and are rebuilt on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def save_logreg(clf: LogisticRegression | None, single_label: str | None, path: Path) -> None:
    """``clf`` (or the single class a one-class training set had) as ``logreg.json`` + ``logreg.safetensors``."""
    meta: dict[str, Any] = {"single_label": single_label}
    if clf is not None:
        meta["classes"] = [str(c) for c in clf.classes_]
        save_file(
            {"coef": np.ascontiguousarray(clf.coef_), "intercept": np.ascontiguousarray(clf.intercept_)},
            str(path / "logreg.safetensors"),
        )
    (path / "logreg.json").write_text(json.dumps(meta), encoding="utf-8")


def refuse_pickled(path: Path, wanted: str) -> None:
    """A checkpoint written before this format (a pickle) gets a message, not a FileNotFoundError."""
    if not (path / wanted).exists() and any(path.glob("*.joblib")):
        raise ValueError(
            f"{path} holds a checkpoint of an older distilforge (a .joblib pickle), which is no longer loaded"
            " because a pickle can run code; delete that round's student directory and run again to retrain it"
        )


def load_logreg(path: Path) -> tuple[LogisticRegression | None, str | None]:
    refuse_pickled(path, "logreg.json")
    meta = json.loads((path / "logreg.json").read_text(encoding="utf-8"))
    if "classes" not in meta:
        return None, meta["single_label"]
    arrays = load_file(str(path / "logreg.safetensors"))
    clf = LogisticRegression()
    clf.classes_ = np.asarray(meta["classes"], dtype=object)
    clf.coef_, clf.intercept_ = arrays["coef"], arrays["intercept"]
    clf.n_features_in_ = clf.coef_.shape[1]
    return clf, None


def save_tfidf(vectorizer: TfidfVectorizer, path: Path) -> None:
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    (path / "tfidf.json").write_text(json.dumps({"vocabulary": vocabulary}), encoding="utf-8")
    save_file({"idf": np.ascontiguousarray(vectorizer.idf_)}, str(path / "tfidf.safetensors"))


def load_tfidf(vectorizer: TfidfVectorizer, path: Path) -> TfidfVectorizer:
    """Fill an unfitted ``vectorizer`` (built with the student's settings) with the saved state."""
    refuse_pickled(path, "tfidf.json")
    vectorizer.vocabulary_ = json.loads((path / "tfidf.json").read_text(encoding="utf-8"))["vocabulary"]
    vectorizer.idf_ = load_file(str(path / "tfidf.safetensors"))["idf"]
    return vectorizer
