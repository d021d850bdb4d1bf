"""Student ``tfidf-logreg``: TF-IDF word n-grams + logistic regression.

The fast, dependency-light baseline: trains in milliseconds, fully deterministic, and still
exposes logits (the ``decision_function`` per label) so energy scoring works with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from distilforge.engine.api.components import Student
from distilforge.engine.api.toolkit.predictions import resolve_labels
from distilforge.engine.api.toolkit.training import read_checkpoint_header, write_checkpoint_header
from distilforge.plugins.students.catalogue import TfidfLogregConfig
from distilforge.plugins.students.logreg import TextLogitsMixin, fit_logreg, sklearn_logits
from distilforge.plugins.students.sklearn_state import load_logreg, load_tfidf, save_logreg, save_tfidf
from distilforge.schemas import Record

# --------------------------------------------------------------------------- the student


class TfidfLogregStudent(TextLogitsMixin, Student[TfidfLogregConfig]):
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

    def text_logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.vectorizer is None:
            raise RuntimeError("tfidf-logreg: predict called before train or load")
        features = self.vectorizer.transform(list(texts)) if texts else None
        return sklearn_logits(self.clf, self.single_label, features, self.labels, len(texts))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.vectorizer is None:
            raise RuntimeError("tfidf-logreg: nothing to save, train first")
        save_tfidf(self.vectorizer, path)
        save_logreg(self.clf, self.single_label, path)
        write_checkpoint_header(path, self, labels=self.labels)

    def load(self, path: Path) -> None:
        path = Path(path)
        meta = read_checkpoint_header(path, self)
        self.labels = list(meta["labels"])
        self.vectorizer = load_tfidf(self._new_vectorizer(), path)
        self.clf, self.single_label = load_logreg(path)
