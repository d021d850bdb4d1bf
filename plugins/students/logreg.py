"""Logistic regression on a fixed label order, shared by the ``tfidf-logreg`` student and the
``text-classifier`` student's frozen-embedding mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from distilforge.engine.api import Prediction, Record
from distilforge.engine.api.toolkit import predictions_from_logits

# Logit given to a configured label that the classifier never saw in training: far below any
# real decision value, so its softmax probability is 0 and it never wins, yet it stays finite
# (energy = -logsumexp(logits) is unaffected and nothing turns into NaN).
ABSENT_LABEL_LOGIT = -1.0e4


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


class TextLogitsMixin:
    """``logits`` and ``predict`` of a student whose logits are a function of the input text alone
    (put it before ``Student`` in the bases and implement ``text_logits`` and ``labels``)."""

    labels: list[str]

    def text_logits(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def logits(self, records: Sequence[Record]) -> np.ndarray:
        return self.text_logits([r.input for r in records])

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        return predictions_from_logits(self.logits(records), self.labels)
