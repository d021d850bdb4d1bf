"""Student ``tabular``: the LAAT logistic regression / MLP (:mod:`.tabular`) as an engine component.

It reads the numeric feature vector that the ``table`` dataset puts in ``record.meta["x"]``. Without
target scores it trains plainly; a method that has elicited per-class feature scores (``laat``)
hands them over with :meth:`TabularStudent.set_target_scores` before training, and the student
is then trained to align its attributions with them. Checkpoints are JSON plus a torch
``state_dict`` (loaded with ``weights_only=True``): no pickles in the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score

from distilforge.engine.api.components import Prediction, Student
from distilforge.engine.api.toolkit.predictions import predictions_from_logits
from distilforge.plugins.students.catalogue import TabularStudentConfig
from distilforge.plugins.students.tabular import LAATClassifier, build_model
from distilforge.schemas import Evaluation, Record


def feature_matrix(records: Sequence[Record]) -> np.ndarray:
    try:
        return np.asarray([r.meta["x"] for r in records], dtype=np.float64).reshape(len(records), -1)
    except KeyError:
        raise ValueError(
            "the tabular student needs records with a numeric feature vector in meta['x'] "
            "(the 'table' dataset makes them)"
        ) from None


class TabularStudent(Student[TabularStudentConfig]):
    def __init__(self, config: TabularStudentConfig) -> None:
        super().__init__(config)
        self.target_scores: dict[str, list[float]] | None = None
        self.estimator: LAATClassifier | None = None

    def set_target_scores(self, scores: Mapping[str, Sequence[float]] | None) -> None:
        """Per-class feature scores in [-10, 10] (feature order of ``meta['x']``) for the next :meth:`train`."""
        self.target_scores = None if scores is None else {k: [float(x) for x in v] for k, v in scores.items()}

    def _target(self, classes: list[str]) -> np.ndarray | None:
        """The estimator's ``target_scores``: binary = the vector of ``classes[1]``, else one row per class."""
        scores = self.target_scores
        if scores is None:
            return None
        if len(classes) == 2:
            if classes[1] in scores:
                return np.asarray(scores[classes[1]])
            if classes[0] in scores:  # P(classes[0]) = 1 - P(classes[1]): opposite attribution
                return -np.asarray(scores[classes[0]])
            raise ValueError(f"target scores are for {sorted(scores)}, not for either class {classes}")
        missing = [c for c in classes if c not in scores]
        if missing:
            raise ValueError(f"multi-class student: no target scores for classes {missing}")
        return np.asarray([scores[c] for c in classes])

    def _estimator(self, seed: int, target: np.ndarray | None) -> LAATClassifier:
        c = self.config
        return LAATClassifier(
            model=c.model,
            hidden=c.hidden,
            gamma=c.gamma,
            attribution=c.attribution,
            ig_steps=c.ig_steps,
            lr=c.lr,
            epochs=c.epochs,
            random_state=seed,
            target_scores=target,
        )

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        if not records:
            raise ValueError("tabular: no training records")
        x = feature_matrix(records)
        y = np.asarray([r.target for r in records])
        classes = sorted(set(y.tolist()))
        target = self._target(classes)
        estimator = self._estimator(seed, target).fit(x, y)
        self.estimator = estimator
        stats = {"loss": float(estimator.loss_curve_[-1]), "targeted": float(target is not None)}
        if estimator.target_attribution_ is not None:
            learned = np.atleast_2d(estimator.attributions_)
            wanted = np.atleast_2d(estimator.target_attribution_)
            cosine = (learned * wanted).sum(1) / np.maximum(np.linalg.norm(learned, axis=1), 1e-12)
            stats["attribution_cosine"] = float(cosine.mean())  # the targets are unit vectors
        return stats

    def _fitted(self) -> LAATClassifier:
        if self.estimator is None:
            raise RuntimeError("tabular student: train or load it first")
        return self.estimator

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self._fitted().classes_]

    def logits(self, records: Sequence[Record]) -> np.ndarray:
        """Per-class logits in :attr:`labels` order (binary: the symmetric pair ``(-d/2, d/2)``)."""
        decision = self._fitted().decision_function(feature_matrix(records))
        return np.column_stack([-decision / 2, decision / 2]) if decision.ndim == 1 else decision

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        if not records:
            return []
        return predictions_from_logits(self.logits(records), self.labels)

    def evaluate(self, records: Sequence[Record], split: str) -> Evaluation:
        evaluation = super().evaluate(records, split)
        targets = [r.target for r in records]
        if not records or len(set(targets)) < 2 or not set(targets) <= set(self.labels):
            return evaluation
        probs = self._fitted().predict_proba(feature_matrix(records))
        predicted = [x.prediction for x in evaluation.results]
        if len(self.labels) == 2:
            evaluation.metrics["roc_auc"] = float(roc_auc_score([t == self.labels[1] for t in targets], probs[:, 1]))
        else:
            evaluation.metrics["roc_auc"] = float(
                roc_auc_score(targets, probs, multi_class="ovr", average="macro", labels=self.labels)
            )
        evaluation.metrics["f1"] = float(f1_score(targets, predicted, average="macro", labels=self.labels))
        return evaluation

    def learned_attributions(self) -> dict[str, list[float]]:
        """The trained student's attribution per class, normalised to unit length (feature order of meta['x'])."""
        estimator = self._fitted()
        attr = np.atleast_2d(np.asarray(estimator.attributions_, dtype=np.float64))
        if attr.shape[0] == 1:  # binary: the vector is about classes_[1]
            attr = np.vstack([-attr, attr])
        unit = attr / np.maximum(np.linalg.norm(attr, axis=1, keepdims=True), 1e-12)
        return {label: unit[i].tolist() for i, label in enumerate(self.labels)}

    def save(self, path: Path) -> None:
        estimator = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "params": estimator.get_params(),
            "classes": self.labels,
            "n_features": int(estimator.n_features_in_),
            "data_min": estimator.data_min_.tolist(),
            "data_range": estimator.data_range_.tolist(),
            "attributions": np.asarray(estimator.attributions_).tolist(),
            "target_attribution": None
            if estimator.target_attribution_ is None
            else np.asarray(estimator.target_attribution_).tolist(),
            "loss_curve": list(estimator.loss_curve_),
        }
        state["params"]["target_scores"] = (
            None if estimator.target_scores is None else np.asarray(estimator.target_scores).tolist()
        )
        (path / "tabular.json").write_text(json.dumps(state), encoding="utf-8")
        torch.save(estimator.network_.state_dict(), path / "network.pt")

    def load(self, path: Path) -> None:
        state = json.loads((path / "tabular.json").read_text(encoding="utf-8"))
        estimator = LAATClassifier(**state["params"])
        classes = state["classes"]
        outputs = 1 if len(classes) == 2 else len(classes)
        network = build_model(estimator.model, state["n_features"], outputs, estimator.hidden, 0)
        network.load_state_dict(torch.load(path / "network.pt", weights_only=True))
        network.eval()
        estimator.network_ = network
        estimator.classes_ = np.asarray(classes)
        estimator.n_features_in_ = state["n_features"]
        estimator.data_min_ = np.asarray(state["data_min"])
        estimator.data_range_ = np.asarray(state["data_range"])
        estimator.attributions_ = np.asarray(state["attributions"])
        target = state["target_attribution"]
        estimator.target_attribution_ = None if target is None else np.asarray(target)
        estimator.loss_curve_ = state["loss_curve"]
        self.estimator = estimator
