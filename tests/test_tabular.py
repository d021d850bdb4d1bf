"""LAAT tabular student: loss and attributions by hand, alignment, scikit-learn compliance, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from distilforge.plugins.students.tabular import (
    ATTRIBUTION_KINDS,
    LAATClassifier,
    attributions,
    build_model,
    laat_loss,
    target_attribution,
)

KINDS = list(ATTRIBUTION_KINDS)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _few_shot(seed: int = 0, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Noisy few-shot data: y depends on +x0 and -x1; x2..x4 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 5))
    y = (X[:, 0] - X[:, 1] + 0.8 * rng.normal(size=n) > 0).astype(int)
    return X, y


SCORES = np.array([6, -5, 0, 0, 1])  # the "teacher": x0 raises, x1 lowers, x4 barely matters


# --------------------------------------------------------------------------- (a) loss and target by hand


def test_target_attribution_by_hand() -> None:
    np.testing.assert_allclose(target_attribution([2, -1, 0]), [math.e**2, -math.e, 0.0])
    extreme = target_attribution([10, -10, 3])  # exp(10) ~ 22026: fine in float64
    assert np.all(np.isfinite(extreme)) and extreme[0] == pytest.approx(math.exp(10))
    with pytest.raises(ValueError, match=r"\[-10, 10\]"):
        target_attribution([11, 0])
    with pytest.raises(ValueError, match="finite"):
        target_attribution([np.nan, 0])


def test_laat_loss_value_and_gradient_by_hand() -> None:
    probs = torch.tensor([0.8, 0.3], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    attr = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)  # unit: (0.6, 0.8)
    target = torch.tensor([5.0, 0.0], dtype=torch.float64)  # unit: (1, 0)
    loss = laat_loss(probs, y, attr, target, gamma=2.0)

    bce = -(math.log(0.8) + math.log(0.7)) / 2
    mse = ((0.6 - 1.0) ** 2 + (0.8 - 0.0) ** 2) / 2  # = 0.4
    assert loss.item() == pytest.approx(bce + 2.0 * mse, abs=1e-12)

    loss.backward()
    # dBCE/dp = -(y/p - (1-y)/(1-p)) / n
    np.testing.assert_allclose(probs.grad.numpy(), [-1 / 0.8 / 2, 1 / 0.7 / 2], atol=1e-12)
    # u = a/|a|; dMSE/du = 2(u - t)/d = (-0.4, 0.8); du/da = (I - u u^T)/|a| = [[.64, -.48], [-.48, .36]] / 5
    # => dMSE/da = (-0.64, 0.48) / 5 = (-0.128, 0.096); times gamma = 2
    np.testing.assert_allclose(attr.grad.numpy(), [-0.256, 0.192], atol=1e-12)

    # no target or gamma == 0: plain BCE, the attribution is ignored
    for kwargs in ({"target": None, "gamma": 2.0}, {"target": target, "gamma": 0.0}):
        plain = laat_loss(probs.detach(), y, attr.detach(), **kwargs)
        assert plain.item() == pytest.approx(bce, abs=1e-12)


def test_laat_loss_multiclass_normalises_rows() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    attr = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([[1.0, 0.0], [0.0, 7.0], [-1.0, 0.0]], dtype=torch.float64)
    ce = -(math.log(0.7) + math.log(0.8)) / 2
    mse = (0.16 + 0.64 + 0 + 0 + 4 + 0) / 6  # unit rows: (.6,.8) vs (1,0); (0,1) vs (0,1); (1,0) vs (-1,0)
    assert laat_loss(probs, y, attr, target, gamma=3.0).item() == pytest.approx(ce + 3.0 * mse, abs=1e-12)


def test_gradient_attribution_of_logreg_by_hand() -> None:
    """For p = sigmoid(w.x + b): dp/dx = p(1-p) w, so the batch attribution is mean(p(1-p)) * w."""
    net = build_model("logreg", 3, 1, hidden=0, seed=0)
    w = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    with torch.no_grad():
        net[0].weight.copy_(w)
        net[0].bias.fill_(-0.3)
    x = torch.tensor([[0.1, 0.5, 0.9], [1.0, 0.0, 0.2]], dtype=torch.float64)
    p = torch.sigmoid(x @ w[0] - 0.3)
    expected = (p * (1 - p)).mean() * w[0]
    torch.testing.assert_close(attributions(net, x, "gradient"), expected)
    expected_ixg = (x * (p * (1 - p))[:, None] * w[0]).mean(dim=0)
    torch.testing.assert_close(attributions(net, x, "input_x_gradient"), expected_ixg)


@pytest.mark.parametrize("model", ["logreg", "mlp"])
@pytest.mark.parametrize("kind", KINDS)
def test_loss_gradient_matches_finite_difference(model: str, kind: str) -> None:
    """The attribution term is differentiable w.r.t. the parameters (create_graph) and its gradient is right."""
    torch.manual_seed(0)
    x = torch.rand(6, 3, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.float64)
    target = torch.tensor(target_attribution([3, -2, 1]))
    net = build_model(model, 3, 1, hidden=5, seed=1)

    def loss() -> torch.Tensor:
        probs = torch.sigmoid(net(x))[:, 0]
        return laat_loss(probs, y, attributions(net, x, kind, steps=4), target, gamma=100.0)

    net.zero_grad()
    loss().backward()
    weight = net[0].weight
    analytic = weight.grad.clone()
    eps = 1e-6
    numeric = torch.zeros_like(weight)
    for idx in np.ndindex(*weight.shape):
        original = weight.data[idx].item()
        weight.data[idx] = original + eps
        up = loss().item()
        weight.data[idx] = original - eps
        down = loss().item()
        weight.data[idx] = original
        numeric[idx] = (up - down) / (2 * eps)
    assert analytic.abs().max() > 1e-3  # the attribution term actually contributes a gradient
    torch.testing.assert_close(analytic, numeric, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- (b) attribution variants on a linear model


def test_attribution_variants_agree_in_sign_with_logreg_weights() -> None:
    X, y = _few_shot(seed=3, n=60)
    clf = LAATClassifier(model="logreg", epochs=300).fit(X, y)
    net = clf.network_
    weights = net[0].weight.detach()[0]
    x = torch.tensor(clf._scale(X))
    for kind in KINDS:
        a = attributions(net, x, kind, steps=10, create_graph=False)
        assert a.shape == (5,)
        np.testing.assert_array_equal(torch.sign(a).numpy(), torch.sign(weights).numpy(), err_msg=kind)
    # and on a hand-set linear model with large, mixed-sign weights
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.0, -1.0, 0.5, -3.0, 0.1]]))
    signs = [torch.sign(attributions(net, x, kind, create_graph=False)).numpy() for kind in KINDS]
    for s in signs:
        np.testing.assert_array_equal(s, [1, -1, 1, -1, 1])


# --------------------------------------------------------------------------- (c) alignment with the teacher


@pytest.mark.parametrize("model", ["logreg", "mlp"])
@pytest.mark.parametrize("kind", KINDS)
def test_laat_aligns_attributions_with_target(model: str, kind: str) -> None:
    X, y = _few_shot()
    target = target_attribution(SCORES)
    plain = LAATClassifier(model=model, attribution=kind).fit(X, y)
    laat = LAATClassifier(model=model, attribution=kind, target_scores=SCORES).fit(X, y)
    cos_plain, cos_laat = _cos(plain.attributions_, target), _cos(laat.attributions_, target)
    assert cos_laat > 0.99
    assert cos_laat > cos_plain + 0.1
    np.testing.assert_allclose(laat.target_attribution_, target / np.linalg.norm(target))

    off = LAATClassifier(model=model, attribution=kind, target_scores=SCORES, gamma=0.0).fit(X, y)
    np.testing.assert_array_equal(off.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(off.attributions_, plain.attributions_)


def test_multiclass_alignment_per_class() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(30, 3))
    y = np.array(["a", "b", "c"])[np.argmax(X + 0.5 * rng.normal(size=X.shape), axis=1)]
    scores = np.array([[7, -3, -3], [-3, 7, -3], [-3, -3, 7]])
    clf = LAATClassifier(target_scores=scores).fit(X, y)
    plain = LAATClassifier().fit(X, y)
    assert clf.attributions_.shape == (3, 3)
    target = target_attribution(scores)
    # softmax attributions sum to zero over the classes and these targets do not, so the match cannot be exact
    cos_laat = [_cos(clf.attributions_[k], target[k]) for k in range(3)]
    cos_plain = [_cos(plain.attributions_[k], target[k]) for k in range(3)]
    assert min(cos_laat) > 0.8
    assert all(c_laat > c_plain for c_laat, c_plain in zip(cos_laat, cos_plain, strict=True))
    assert clf.predict_proba(X).shape == (30, 3)
    assert set(clf.predict(X)) <= {"a", "b", "c"}
    assert next(iter(clf.feature_importance("b"))) == "x1"


def test_feature_importance_and_errors() -> None:
    X, y = _few_shot()
    labels = np.where(y == 1, "yes", "no")
    clf = LAATClassifier(target_scores=SCORES).fit(X, labels)
    importance = clf.feature_importance()  # for classes_[1] == "yes"
    assert list(importance)[:2] == ["x0", "x1"]
    assert importance["x0"] > 0 > importance["x1"]
    assert sum(v * v for v in importance.values()) == pytest.approx(1.0)
    assert clf.feature_importance("no")["x0"] == pytest.approx(-importance["x0"])

    with pytest.raises(ValueError, match="shape"):
        LAATClassifier(target_scores=SCORES[:3]).fit(X, y)
    with pytest.raises(ValueError, match="attribution must be one of"):
        LAATClassifier(attribution="shap").fit(X, y)
    with pytest.raises(ValueError, match="model must be one of"):
        LAATClassifier(model="tree").fit(X, y)
    with pytest.raises(ValueError, match="1 class"):
        LAATClassifier().fit(X, np.zeros(len(y)))


def test_constant_columns_are_safe() -> None:
    X, y = _few_shot()
    X[:, 2] = 4.2
    clf = LAATClassifier(target_scores=SCORES, attribution="input_x_gradient").fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X))) and np.all(np.isfinite(clf.attributions_))
    assert clf.attributions_[2] == 0.0  # the scaled constant column is 0, so x * grad vanishes


# --------------------------------------------------------------------------- (d) scikit-learn estimator checks

# No check is expected to fail (multi-class is supported). Two are skipped by scikit-learn itself in this
# environment: check_array_api_input (SCIPY_ARRAY_API unset) and check_classifier_data_not_an_array (no pandas).
# Instances with target_scores cannot be checked generically: their shape must match each check's data.


@parametrize_with_checks(
    [LAATClassifier(), LAATClassifier(model="mlp", hidden=16, attribution="integrated_gradients", ig_steps=3)]
)
def test_sklearn_compatible(estimator: LAATClassifier, check: object) -> None:
    check(estimator)  # type: ignore[operator]


# --------------------------------------------------------------------------- (e) determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_random_state_same_predictions(kind: str) -> None:
    X, y = _few_shot()
    kwargs = {"model": "mlp", "attribution": kind, "target_scores": SCORES, "epochs": 50}
    torch.manual_seed(123)  # the global RNG must not matter
    a = LAATClassifier(random_state=7, **kwargs).fit(X, y)
    torch.manual_seed(456)
    b = LAATClassifier(random_state=7, **kwargs).fit(X, y)
    c = LAATClassifier(random_state=8, **kwargs).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.attributions_, b.attributions_)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


# --------------------------------------------------------------------------- (f) pipelines


def test_pipeline_cross_val_on_breast_cancer() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    # a crude "teacher": the sign of each feature's correlation with the label, magnitude 3
    scores = 3 * np.sign([np.corrcoef(X[:, j], y)[0, 1] for j in range(X.shape[1])])
    fast = {"epochs": 30, "lr": 0.05}
    for clf in (LAATClassifier(**fast), LAATClassifier(model="mlp", hidden=16, target_scores=scores, **fast)):
        pipe = make_pipeline(SimpleImputer(), clf)
        accuracy = cross_val_score(pipe, X, y, cv=3)
        assert accuracy.mean() > 0.85, accuracy
