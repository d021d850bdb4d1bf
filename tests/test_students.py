"""Students: tfidf-logreg and text-classifier (frozen and finetune modes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from distilforge.plugins.students.losses import symmetric_cross_entropy
from distilforge.plugins.students.text_classifier import TextClassifierConfig, TextClassifierStudent
from distilforge.plugins.students.tfidf import TfidfLogregConfig, TfidfLogregStudent
from distilforge.schemas import Record

SPORT = [
    "The striker scored twice in the second half.",
    "Our goalkeeper saved a penalty in the final minute.",
    "The team won the championship after extra time.",
    "She ran the marathon in under three hours.",
    "The coach substituted the tired midfielder.",
    "The tennis match went to a fifth set tiebreak.",
    "He hit a home run in the ninth inning.",
    "The referee showed a red card to the defender.",
    "The cyclists climbed the mountain stage in the rain.",
    "The boxer won the title fight by knockout.",
]
COOKING = [
    "Stir the onions until they turn golden brown.",
    "Bake the bread at two hundred degrees for forty minutes.",
    "Add a pinch of salt to the boiling pasta water.",
    "Whisk the eggs with sugar until fluffy.",
    "Simmer the tomato sauce with garlic and basil.",
    "Chop the carrots and celery into small cubes.",
    "Marinate the chicken in lemon juice overnight.",
    "Knead the dough and let it rise for an hour.",
    "Grill the fish and serve it with fresh herbs.",
    "Melt the butter and fold in the flour slowly.",
]


def toy(split: str) -> list[Record]:
    """Train: first 7 of each class; test: the last 3 of each (held out)."""
    part = slice(0, 7) if split == "train" else slice(7, 10)
    return [Record(input=t, target="sport") for t in SPORT[part]] + [
        Record(input=t, target="cooking") for t in COOKING[part]
    ]


OTHER = [
    Record(input="The stock market fell sharply today.", target="sport"),
    Record(input="Parliament passed the new budget.", target="cooking"),
    Record(input="Interest rates will rise next year.", target="sport"),
    Record(input="The central bank cut its forecast.", target="cooking"),
]


def logits_of(student: object, records: list[Record]) -> np.ndarray:
    return np.stack([p.logits for p in student.predict(records)])  # type: ignore[attr-defined]


def accuracy(student: object, records: list[Record]) -> float:
    return student.evaluate(records, "x").metrics["accuracy"]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- SCE loss


def test_sce_matches_hand_computation() -> None:
    rows = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
    targets = [0, 2]
    alpha, beta = 0.1, 1.0
    expected = 0.0
    for row, y in zip(rows, targets, strict=True):
        z = sum(math.exp(v) for v in row)
        p = [math.exp(v) / z for v in row]
        ce = -math.log(p[y])
        # reverse CE: -sum_k p_k * log(clamp(onehot_k, 1e-4, 1)); only k != y contribute
        rce = -sum(p[k] * math.log(1.0 if k == y else 1e-4) for k in range(3))
        expected += (alpha * ce + beta * rce) / len(rows)
    got = symmetric_cross_entropy(torch.tensor(rows), torch.tensor(targets), alpha, beta)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # alpha=1, beta=0 is plain cross-entropy
    ce_only = symmetric_cross_entropy(torch.tensor(rows), torch.tensor(targets), 1.0, 0.0)
    assert float(ce_only) == pytest.approx(
        float(torch.nn.functional.cross_entropy(torch.tensor(rows), torch.tensor(targets)))
    )


# --------------------------------------------------------------------------- tfidf-logreg


def test_tfidf_learns_and_shapes() -> None:
    student = TfidfLogregStudent(TfidfLogregConfig())
    student.train(toy("train"), seed=0)
    assert student.labels == ["cooking", "sport"]
    assert accuracy(student, toy("train")) == 1.0
    preds = student.predict(toy("test"))
    assert all(p.logits is not None and p.logits.shape == (2,) for p in preds)
    # binary logits are the symmetric pair (-d/2, d/2): softmax equals predict_proba
    probs = student.clf.predict_proba(student.vectorizer.transform([r.input for r in toy("test")]))  # type: ignore[union-attr]
    lg = logits_of(student, toy("test"))
    soft = np.exp(lg) / np.exp(lg).sum(axis=1, keepdims=True)
    assert np.allclose(soft, probs)
    assert all(p.confidence == pytest.approx(float(soft[i].max())) for i, p in enumerate(preds))


def test_tfidf_multiclass_configured_labels_and_roundtrip(tmp_path: Path) -> None:
    records = [*toy("train"), Record(input="Stocks and bonds fell on the exchange.", target="finance")]
    student = TfidfLogregStudent(TfidfLogregConfig(labels=["sport", "cooking", "finance", "weather"]))
    student.train(records, seed=1)
    lg = logits_of(student, toy("test"))
    assert lg.shape == (6, 4)
    assert (lg[:, 3] < -1000).all()  # a label never seen in training never wins
    student.save(tmp_path / "ckpt")
    assert_no_pickle(tmp_path / "ckpt")
    loaded = TfidfLogregStudent(TfidfLogregConfig(labels=["sport", "cooking", "finance", "weather"]))
    loaded.load(tmp_path / "ckpt")
    assert np.array_equal(logits_of(loaded, toy("test")), lg)


def assert_no_pickle(checkpoint: Path) -> None:
    """Loading a checkpoint must not be able to run code: no pickle in any of its files."""
    for path in checkpoint.rglob("*"):
        if path.is_file():
            assert path.suffix not in {".joblib", ".pkl", ".pickle", ".pt", ".bin"}, path
            assert not path.read_bytes()[:2].startswith(b"\x80"), f"{path} looks like a pickle"


def test_tfidf_binary_and_single_label_checkpoints_round_trip_without_pickle(tmp_path: Path) -> None:
    for name, records in (("binary", toy("train")), ("single", [r for r in toy("train") if r.target == "sport"])):
        student = TfidfLogregStudent(TfidfLogregConfig(labels=["cooking", "sport"]))
        student.train(records, seed=0)
        student.save(tmp_path / name)
        assert_no_pickle(tmp_path / name)
        loaded = TfidfLogregStudent(TfidfLogregConfig(labels=["cooking", "sport"]))
        loaded.load(tmp_path / name)
        assert np.array_equal(logits_of(loaded, toy("test")), logits_of(student, toy("test")))


def test_tfidf_rejects_unknown_training_label() -> None:
    student = TfidfLogregStudent(TfidfLogregConfig(labels=["sport"]))
    with pytest.raises(ValueError, match="cooking"):
        student.train(toy("train"), seed=0)


# --------------------------------------------------------------------------- text-classifier, frozen


@pytest.fixture(scope="module")
def frozen() -> TextClassifierStudent:
    student = TextClassifierStudent(TextClassifierConfig(mode="frozen"))
    student.train(toy("train"), seed=0)
    return student


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_frozen_learns_toy_set(frozen: TextClassifierStudent) -> None:
    assert accuracy(frozen, toy("train")) >= 0.9
    assert accuracy(frozen, toy("test")) >= 0.9
    preds = frozen.predict(toy("test"))
    assert all(p.logits is not None and p.logits.shape == (2,) for p in preds)
    assert all(p.confidence is not None and 0.5 <= p.confidence <= 1.0 for p in preds)


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_frozen_deterministic_and_retrains_from_scratch(frozen: TextClassifierStudent) -> None:
    reference = logits_of(frozen, toy("test"))
    other = TextClassifierStudent(TextClassifierConfig(mode="frozen"))
    other.train(OTHER, seed=0)  # a different "round" first ...
    other.train(toy("train"), seed=0)  # ... must not influence this one
    assert np.array_equal(logits_of(other, toy("test")), reference)


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_frozen_save_load_roundtrip(frozen: TextClassifierStudent, tmp_path: Path) -> None:
    frozen.save(tmp_path / "ckpt")
    assert_no_pickle(tmp_path / "ckpt")
    loaded = TextClassifierStudent(TextClassifierConfig(mode="frozen"))
    loaded.load(tmp_path / "ckpt")
    assert loaded.labels == frozen.labels
    assert np.array_equal(logits_of(loaded, toy("test")), logits_of(frozen, toy("test")))


@pytest.mark.slow  # loads all-MiniLM-L6-v2
def test_frozen_sce_head(tmp_path: Path) -> None:
    student = TextClassifierStudent(TextClassifierConfig(mode="frozen", loss="sce"))
    student.train(toy("train"), seed=3)
    assert accuracy(student, toy("test")) >= 0.9
    student.save(tmp_path / "ckpt")
    loaded = TextClassifierStudent(TextClassifierConfig(mode="frozen", loss="sce"))
    loaded.load(tmp_path / "ckpt")
    assert np.array_equal(logits_of(loaded, toy("test")), logits_of(student, toy("test")))


# --------------------------------------------------------------------------- text-classifier, finetune

FT = {"mode": "finetune", "epochs": 4, "batch_size": 7, "lr": 2e-4, "head_lr": 5e-3}


@pytest.fixture(scope="module")
def finetuned() -> tuple[TextClassifierStudent, np.ndarray]:
    student = TextClassifierStudent(TextClassifierConfig(**FT))
    student.train(toy("train"), seed=0)
    return student, logits_of(student, toy("test"))


@pytest.mark.slow
def test_finetune_learns_toy_set(finetuned: tuple[TextClassifierStudent, np.ndarray]) -> None:
    student, lg = finetuned
    assert lg.shape == (6, 2)
    assert accuracy(student, toy("train")) >= 0.9
    assert accuracy(student, toy("test")) >= 0.9


@pytest.mark.slow
def test_finetune_starts_from_base_and_is_deterministic(
    finetuned: tuple[TextClassifierStudent, np.ndarray],
) -> None:
    student, reference = finetuned
    base = student.base_state_fingerprint()
    assert student.last_initial_fingerprint == base
    assert student.state_fingerprint() != base  # training changed the (copied) encoder
    student.train(OTHER, seed=5)  # another round on other data ...
    assert student.last_initial_fingerprint == base  # ... started from the base weights too
    student.train(toy("train"), seed=0)  # same data and seed again: bit-identical
    assert student.last_initial_fingerprint == base
    assert student.base_state_fingerprint() == base  # the base copy is never trained
    assert np.array_equal(logits_of(student, toy("test")), reference)


@pytest.mark.slow
def test_finetune_seed_changes_result_and_save_load(
    finetuned: tuple[TextClassifierStudent, np.ndarray], tmp_path: Path
) -> None:
    student, reference = finetuned
    student.save(tmp_path / "ckpt")
    loaded = TextClassifierStudent(TextClassifierConfig(**FT))
    loaded.load(tmp_path / "ckpt")
    assert np.array_equal(logits_of(loaded, toy("test")), logits_of(student, toy("test")))
    other = TextClassifierStudent(TextClassifierConfig(**FT))
    other.train(toy("train"), seed=1)
    assert not np.array_equal(logits_of(other, toy("test")), reference)


@pytest.mark.slow
def test_finetune_sce_loss_trains() -> None:
    student = TextClassifierStudent(TextClassifierConfig(**FT, loss="sce", sce_alpha=0.1))
    stats = student.train(toy("train"), seed=0)
    assert stats["steps"] == 8
    assert accuracy(student, toy("train")) >= 0.9


def test_plugin_registration() -> None:
    from distilforge.engine.plugin_manager import DEFAULT_PLUGINS, build_plugin_manager
    from distilforge.engine.registry import collect_registry
    from distilforge.plugins.students import catalogue, text_classifier, tfidf

    assert catalogue.__name__ in DEFAULT_PLUGINS
    registry = collect_registry(build_plugin_manager(load_entrypoints=False))
    assert {"tfidf-logreg", "text-classifier", "causal-lm", "tabular"} <= set(registry.names("student"))
    assert isinstance(registry.build("student", tfidf.TfidfLogregConfig()), tfidf.TfidfLogregStudent)
    student = registry.build("student", text_classifier.TextClassifierConfig())
    assert isinstance(student, text_classifier.TextClassifierStudent)
    student = registry.build("student", TextClassifierConfig(mode="frozen"))
    assert isinstance(student, TextClassifierStudent)


def test_an_old_pickled_checkpoint_is_refused_with_a_message_not_loaded(tmp_path: Path) -> None:
    student = TfidfLogregStudent(TfidfLogregConfig())
    student.train(toy("train"), seed=0)
    student.save(tmp_path / "ckpt")
    for name in ("tfidf.json", "tfidf.safetensors", "logreg.json", "logreg.safetensors"):
        (tmp_path / "ckpt" / name).unlink()
    (tmp_path / "ckpt" / "tfidf_logreg.joblib").write_bytes(b"\x80\x04 a pickle that must never be loaded")
    with pytest.raises(ValueError, match=r"older distilforge .*no longer loaded"):
        TfidfLogregStudent(TfidfLogregConfig()).load(tmp_path / "ckpt")
