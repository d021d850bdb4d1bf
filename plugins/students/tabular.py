"""Tabular students trained with LAAT, "LLMs as attribution regularizers" (Vukadin et al., 2025).

The teacher contributes knowledge, not data: an integer score in [-10, 10] per feature saying in which direction
(sign) and how strongly (magnitude) the feature should move the probability of the positive class. The student
(logistic regression or a one-hidden-layer MLP) is trained with

    L = BCE + gamma * MSE(a / ||a||, s' / ||s'||),    s' = sign(s) * exp(|s|),

where ``a`` is the student's own attribution vector on the training batch. Because ``a`` is itself a gradient of the
model's output with respect to its input, it is built with ``create_graph=True`` so the loss can be differentiated
with respect to the parameters (a double backward pass).

Only the estimator and its pure helpers live here: records in this engine are text, so there is no ``Student``
plugin wrapping it yet. Binary classification is the published scope; multi-class follows the paper's suggestion
(one score vector per class, softmax output, one attribution vector per class).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

AttributionKind = Literal["gradient", "input_x_gradient", "integrated_gradients"]
ATTRIBUTION_KINDS: tuple[str, ...] = ("gradient", "input_x_gradient", "integrated_gradients")
MODELS: tuple[str, ...] = ("logreg", "mlp")
SCORE_LIMIT = 10.0  # teacher scores are integers in [-10, 10]; averages of repeated elicitations stay inside
_DTYPE = torch.float64  # tabular data is small; float64 keeps exp(10)-sized targets and gradient checks exact


# --------------------------------------------------------------------------- pure helpers


def target_attribution(scores: Any) -> np.ndarray:
    """The target attribution ``s' = sign(s) * exp(|s|)`` (float64, not normalised).

    ``exp(10) ~ 2.2e4`` is harmless in float64; the loss normalises by ``||s'||`` anyway. Works row-wise on a
    ``(n_classes, n_features)`` array as well. Raises ``ValueError`` for non-finite or out-of-range scores.
    """
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("target scores must be finite")
    if np.any(np.abs(s) > SCORE_LIMIT):
        raise ValueError(f"target scores must lie in [-{SCORE_LIMIT:g}, {SCORE_LIMIT:g}]")
    return np.sign(s) * np.exp(np.abs(s))


def _unit(v: torch.Tensor) -> torch.Tensor:
    """``v / ||v||`` along the last axis; a zero vector stays zero instead of turning into NaN."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def laat_loss(
    probs: torch.Tensor,
    y: torch.Tensor,
    attribution: torch.Tensor | None,
    target: torch.Tensor | None,
    gamma: float,
) -> torch.Tensor:
    """``CE(probs, y) + gamma * MSE(a / ||a||, t / ||t||)``.

    Binary: ``probs`` is ``(n,)`` P(positive), ``y`` is 0/1, ``attribution`` and ``target`` are ``(n_features,)``.
    Multi-class: ``probs`` is ``(n, K)``, ``y`` holds class indices, ``attribution``/``target`` are ``(K, d)`` and
    are normalised row by row. ``target`` is the unnormalised ``s'`` of :func:`target_attribution`. With
    ``gamma == 0`` or no target the attribution term is skipped entirely (not multiplied by 0), so training is
    bit-identical to plain training.
    """
    if probs.ndim == 1:
        ce = F.binary_cross_entropy(probs, y.to(probs.dtype))
    else:
        ce = F.nll_loss(probs.clamp_min(1e-300).log(), y.long())
    if gamma == 0 or target is None or attribution is None:
        return ce
    return ce + gamma * F.mse_loss(_unit(attribution), _unit(target.to(attribution.dtype)))


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    """A ``(n, 1)`` logit column means binary (sigmoid, P(positive)); wider outputs are softmaxed."""
    return torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, dim=-1)


def attributions(
    model: nn.Module,
    x: torch.Tensor,
    kind: str = "gradient",
    steps: int = 10,
    create_graph: bool = True,
) -> torch.Tensor:
    """The student's batch attribution: one value per feature (binary) or a ``(K, d)`` array (multi-class).

    * ``gradient``: mean over the batch of ``dp_i/dx_i`` (the gradient of the batch-mean prediction, rescaled by
      the batch size; the scale cancels in the normalised loss);
    * ``input_x_gradient``: mean over the batch of ``x_i * dp_i/dx_i``;
    * ``integrated_gradients``: zero baseline, right Riemann sum with ``steps`` points, mean over the batch.

    ``create_graph=True`` keeps the result differentiable w.r.t. the model parameters (needed in training).
    """
    if kind not in ATTRIBUTION_KINDS:
        raise ValueError(f"attribution must be one of {ATTRIBUTION_KINDS}, got {kind!r}")
    if kind == "integrated_gradients":
        if steps < 1:
            raise ValueError("ig_steps must be >= 1")
        alphas = torch.arange(1, steps + 1, dtype=x.dtype) / steps
        inputs = (alphas[:, None, None] * x[None]).reshape(-1, x.shape[1])  # (steps * n, d)
    else:
        inputs = x
    inputs = inputs.detach().requires_grad_(True)
    probs = _probabilities(model(inputs))
    rows = []
    for c in range(probs.shape[1]):
        last = c == probs.shape[1] - 1  # several classes: keep the graph for the next autograd.grad call
        (grad,) = torch.autograd.grad(
            probs[:, c].sum(), inputs, create_graph=create_graph, retain_graph=create_graph or not last
        )
        if kind == "integrated_gradients":
            grad = x * grad.reshape(steps, *x.shape).mean(dim=0)
        elif kind == "input_x_gradient":
            grad = x * grad
        rows.append(grad.mean(dim=0))
    out = torch.stack(rows)
    return out[0] if out.shape[0] == 1 else out


def build_model(model: str, n_features: int, n_outputs: int, hidden: int, seed: int) -> nn.Module:
    """Logistic regression (one linear layer) or a 1-hidden-layer ReLU MLP, initialised from ``seed`` only.

    The initialisation mirrors ``nn.Linear``'s default (uniform in +-1/sqrt(fan_in)) but draws from a private
    generator, so fitting never touches (or depends on) torch's global RNG.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    gen = torch.Generator().manual_seed(seed)
    sizes = [n_features, n_outputs] if model == "logreg" else [n_features, hidden, n_outputs]
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(sizes):
        linear = nn.Linear(fan_in, fan_out, dtype=_DTYPE)
        bound = 1.0 / max(fan_in, 1) ** 0.5
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=gen)
            linear.bias.uniform_(-bound, bound, generator=gen)
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU after the output layer


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Cap torch's intra-op threads while fitting (small problems; the machine is shared), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- estimator


class LAATClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression / MLP trained with the LAAT attribution-alignment loss (scikit-learn API).

    ``target_scores``: teacher scores in [-10, 10], shape ``(n_features,)`` for binary problems (for the class
    ``classes_[1]``) or ``(n_classes, n_features)`` in ``classes_`` order; ``None`` means plain training (``gamma``
    is then ignored). Inputs are min-max scaled with ranges learned on the training data (constant columns map
    to 0) and the attributions refer to the scaled inputs. Full-batch Adam, float64, CPU, deterministic for a
    given ``random_state``.

    Multi-class caveat: softmax probabilities sum to one, so the per-class attributions always sum to zero over the
    classes; per-class targets that do not can only be approached, not matched exactly.
    """

    def __init__(
        self,
        model: str = "logreg",
        hidden: int = 100,
        gamma: float = 100.0,
        attribution: str = "gradient",
        ig_steps: int = 10,
        lr: float = 1e-2,
        epochs: int = 200,
        random_state: Any = 0,
        target_scores: Any = None,
    ) -> None:
        self.model = model
        self.hidden = hidden
        self.gamma = gamma
        self.attribution = attribution
        self.ig_steps = ig_steps
        self.lr = lr
        self.epochs = epochs
        self.random_state = random_state
        self.target_scores = target_scores

    # ----------------------------------------------------------------- fitting

    def fit(self, X: Any, y: Any) -> LAATClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"LAATClassifier needs at least 2 classes in y; got 1 class ({self.classes_[0]!r})")
        if self.attribution not in ATTRIBUTION_KINDS:
            raise ValueError(f"attribution must be one of {ATTRIBUTION_KINDS}, got {self.attribution!r}")
        if self.gamma < 0:
            raise ValueError("gamma must be >= 0")
        if self.attribution == "integrated_gradients" and self.ig_steps < 1:
            raise ValueError("ig_steps must be >= 1")
        binary = n_classes == 2
        target = self._target(X.shape[1], n_classes)

        self.data_min_ = X.min(axis=0)
        span = X.max(axis=0) - self.data_min_
        self.data_range_ = np.where(span > 0, span, 1.0)
        xt = torch.tensor(self._scale(X), dtype=_DTYPE)
        yt = torch.tensor(y_index, dtype=_DTYPE if binary else torch.long)
        tt = None if target is None else torch.tensor(target, dtype=_DTYPE)
        use_attr = tt is not None and self.gamma != 0

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        with _torch_threads(1):
            net = build_model(self.model, X.shape[1], 1 if binary else n_classes, self.hidden, seed)
            optimiser = torch.optim.Adam(net.parameters(), lr=self.lr)
            losses = []
            for _ in range(self.epochs):
                optimiser.zero_grad()
                probs = _probabilities(net(xt))
                attr = attributions(net, xt, self.attribution, self.ig_steps) if use_attr else None
                loss = laat_loss(probs[:, 0] if binary else probs, yt, attr, tt, self.gamma)
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
            net.eval()
            self.network_ = net
            self.loss_curve_ = losses
            self.attributions_ = (
                attributions(net, xt, self.attribution, self.ig_steps, create_graph=False).detach().numpy()
            )
        self.target_attribution_ = None if target is None else _unit(torch.tensor(target)).numpy()  # s' / ||s'||
        return self

    def _target(self, n_features: int, n_classes: int) -> np.ndarray | None:
        if self.target_scores is None:
            return None
        target = target_attribution(self.target_scores)
        expected = (n_features,) if n_classes == 2 else (n_classes, n_features)
        if target.shape != expected:
            raise ValueError(
                f"target_scores must have shape {expected} for {n_classes} classes and {n_features} features, "
                f"got {target.shape}"
            )
        return target

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.data_min_) / self.data_range_  # always a fresh, writable array

    # ----------------------------------------------------------------- prediction

    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        with torch.no_grad():
            return self.network_(torch.tensor(self._scale(X), dtype=_DTYPE))

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit of ``classes_[1]`` (binary, shape ``(n,)``) or per-class logits ``(n, K)``."""
        logits = self._logits(X).numpy()
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        probs = _probabilities(self._logits(X)).numpy()
        return np.column_stack([1.0 - probs[:, 0], probs[:, 0]]) if probs.shape[1] == 1 else probs

    def predict(self, X: Any) -> np.ndarray:
        decision = self.decision_function(X)
        index = (decision > 0).astype(int) if decision.ndim == 1 else decision.argmax(axis=1)
        return self.classes_[index]

    # ----------------------------------------------------------------- reporting

    def feature_importance(self, label: Any = None) -> dict[str, float]:
        """Normalised learned attribution per feature (for ``label``; binary default ``classes_[1]``), largest first.

        Keys are the column names seen in ``fit`` (DataFrame input) or ``x0``, ``x1``, ...
        """
        check_is_fitted(self)
        attr = np.asarray(self.attributions_)
        if attr.ndim == 2:
            if label is None:
                raise ValueError("multi-class model: pass the label whose attribution you want")
            attr = attr[list(self.classes_).index(label)]
        elif label is not None and label != self.classes_[1]:
            attr = -attr  # binary: P(classes_[0]) = 1 - P(classes_[1])
        attr = attr / max(float(np.linalg.norm(attr)), 1e-12)
        names = getattr(self, "feature_names_in_", None)
        names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(len(attr))]
        order = np.argsort(-np.abs(attr), kind="stable")
        return {names[i]: float(attr[i]) for i in order}
