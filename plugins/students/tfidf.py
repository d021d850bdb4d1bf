"""Student ``tfidf-logreg``: TF-IDF word n-grams + logistic regression.

The fast, dependency-light baseline: trains in milliseconds, fully deterministic, and still
exposes logits (the ``decision_function`` per label) so energy scoring works with it.

The helpers at the top (label resolution, mapping scikit-learn decision values onto a fixed
label order, building :class:`Prediction` objects) are shared with the ``text-classifier``
student's frozen-embedding mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from distilforge.engine.components import Prediction, Student
from distilforge.engine.hookspecs import Register, hookimpl
from distilforge.plugins.students.sklearn_state import load_logreg, load_tfidf, save_logreg, save_tfidf
from distilforge.schemas import ComponentConfig, Record

# Logit given to a configured label that the classifier never saw in training: far below any
# real decision value, so its softmax probability is 0 and it never wins, yet it stays finite
# (energy = -logsumexp(logits) is unaffected and nothing turns into NaN).
ABSENT_LABEL_LOGIT = -1.0e4


# --------------------------------------------------------------------------- shared helpers


def resolve_labels(records: Sequence[Record], configured: Sequence[str] | None) -> list[str]:
    """The label order of a student: the configured list, else the sorted training targets.

    Raises ``ValueError`` if a training target is not among the configured labels: training on
    a label the model cannot output is a config mistake, not something to skip silently.
    """
    targets = {r.target.strip() for r in records}
    if configured is None:
        return sorted(targets)
    labels = list(configured)
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in the student config: {labels}")
    unknown = sorted(targets - set(labels))
    if unknown:
        raise ValueError(f"training targets {unknown} are not among the configured labels {labels}")
    return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sklearn_logits(
    clf: LogisticRegression | None, single_label: str | None, features: Any, labels: Sequence[str], n_rows: int
) -> np.ndarray:
    """Decision values of ``clf`` as an ``(n_rows, len(labels))`` matrix in ``labels`` order.

    Binary scikit-learn models return one decision value ``d`` (the log-odds of ``classes_[1]``);
    we return the symmetric pair ``(-d/2, +d/2)``, which has exactly the model's probabilities
    under softmax and is what a two-class multinomial model with an L2 penalty produces.
    ``clf is None`` means training saw the single class ``single_label``: it gets logit 0.
    Labels the model never saw get :data:`ABSENT_LABEL_LOGIT`.
    """
    out = np.full((n_rows, len(labels)), ABSENT_LABEL_LOGIT, dtype=np.float64)
    index = {label: i for i, label in enumerate(labels)}
    if clf is None:
        out[:, index[str(single_label)]] = 0.0
        return out
    if n_rows == 0:
        return out
    decision = np.asarray(clf.decision_function(features), dtype=np.float64)
    classes = [str(c) for c in clf.classes_]
    if decision.ndim == 1:
        out[:, index[classes[0]]] = -decision / 2.0
        out[:, index[classes[1]]] = decision / 2.0
    else:
        for j, cls in enumerate(classes):
            out[:, index[cls]] = decision[:, j]
    return out


def predictions_from_logits(logits: np.ndarray, labels: Sequence[str]) -> list[Prediction]:
    probs = softmax(logits) if len(logits) else logits
    best = logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=int)
    return [
        Prediction(label=labels[int(k)], logits=logits[i].copy(), confidence=float(probs[i, int(k)]))
        for i, k in enumerate(best)
    ]


def fit_logreg(
    features: Any, targets: Sequence[str], *, c: float, max_iter: int, class_weight: str | None, seed: int
) -> tuple[LogisticRegression | None, str | None]:
    """Fit a logistic regression; with a single class in ``targets`` return ``(None, that_class)``."""
    classes = sorted(set(targets))
    if len(classes) == 1:
        return None, classes[0]
    clf = LogisticRegression(C=c, max_iter=max_iter, class_weight=class_weight, random_state=seed)
    clf.fit(features, list(targets))
    return clf, None


# --------------------------------------------------------------------------- the student


class TfidfLogregConfig(ComponentConfig):
    type: Literal["tfidf-logreg"] = "tfidf-logreg"
    labels: list[str] | None = Field(None, description="label order; default: sorted training targets")
    ngram_max: int = Field(2, ge=1, le=5, description="word n-grams 1..ngram_max")
    min_df: int = Field(1, ge=1)
    sublinear_tf: bool = True
    C: float = Field(10.0, gt=0.0, description="inverse L2 strength; small data wants weak regularisation")
    max_iter: int = Field(2000, ge=10)
    class_weight: Literal["balanced"] | None = None


class TfidfLogregStudent(Student[TfidfLogregConfig]):
    def __init__(self, config: TfidfLogregConfig) -> None:
        super().__init__(config)
        self.labels: list[str] = []
        self.vectorizer: TfidfVectorizer | None = None
        self.clf: LogisticRegression | None = None
        self.single_label: str | None = None

    def _new_vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=(1, self.config.ngram_max),
            min_df=self.config.min_df,
            sublinear_tf=self.config.sublinear_tf,
            lowercase=True,
        )

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        if not records:
            raise ValueError("tfidf-logreg: no training records")
        self.labels = resolve_labels(records, self.config.labels)
        self.vectorizer = self._new_vectorizer()
        features = self.vectorizer.fit_transform([r.input for r in records])
        targets = [r.target.strip() for r in records]
        self.clf, self.single_label = fit_logreg(
            features,
            targets,
            c=self.config.C,
            max_iter=self.config.max_iter,
            class_weight=self.config.class_weight,
            seed=seed,
        )
        correct = sum(p.label == t for p, t in zip(self.predict(records), targets, strict=True))
        return {"n": float(len(records)), "train_accuracy": correct / len(records)}

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.vectorizer is None:
            raise RuntimeError("tfidf-logreg: predict called before train or load")
        features = self.vectorizer.transform(list(texts)) if texts else None
        return sklearn_logits(self.clf, self.single_label, features, self.labels, len(texts))

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        return predictions_from_logits(self.logits([r.input for r in records]), self.labels)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.vectorizer is None:
            raise RuntimeError("tfidf-logreg: nothing to save, train first")
        save_tfidf(self.vectorizer, path)
        save_logreg(self.clf, self.single_label, path)
        meta = {"type": self.config.type, "labels": self.labels, "config": self.config.model_dump(mode="json")}
        (path / "student.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def load(self, path: Path) -> None:
        path = Path(path)
        meta = json.loads((path / "student.json").read_text(encoding="utf-8"))
        if meta.get("type") != self.config.type:
            raise ValueError(f"{path} holds a {meta.get('type')!r} checkpoint, not {self.config.type!r}")
        self.labels = list(meta["labels"])
        self.vectorizer = load_tfidf(self._new_vectorizer(), path)
        self.clf, self.single_label = load_logreg(path)


@hookimpl
def register_students(register: Register) -> None:
    register(TfidfLogregConfig, TfidfLogregStudent)
