"""The ``causal-lm`` student and the ``gsm-symbolic`` dataset, on a tiny random Llama (seconds)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from distilforge.engine.api.components import Prediction
from distilforge.plugins.datasets import gsm
from distilforge.plugins.students.causal_lm import (
    CausalLMConfig,
    CausalLMStudent,
    answers_match,
    final_answer,
    state_fingerprint,
)
from distilforge.schemas import Record


def _records(n: int = 6) -> list[Record]:
    return [
        Record(
            input=f"Tom has {i} apples and buys {i + 2} more. How many apples does he have?",
            target=f"He has {i} + {i + 2} = {2 * i + 2} apples.\n#### {2 * i + 2}",
        )
        for i in range(n)
    ]


def _student(model_dir: Path, **overrides: object) -> CausalLMStudent:
    settings: dict[str, object] = {
        "model": str(model_dir),
        "mode": "full",
        "epochs": 2,
        "batch_size": 4,
        "micro_batch_size": 2,
        "lr": 1e-3,
        "max_new_tokens": 12,
        "threads": 1,  # tiny ops: one thread is much faster than two on a busy 2-core machine
    }
    settings.update(overrides)
    return CausalLMStudent(CausalLMConfig.model_validate(settings))


# --------------------------------------------------------------------------- answers


def test_final_answer_and_numeric_matching() -> None:
    assert final_answer("so 3 + 4 = 7\n#### 1,234") == "1234"
    assert final_answer("#### 1\nthen #### -2.5") == "-2.5"
    assert final_answer("no marker 12") is None
    assert answers_match("#### 1,234", "work...\n#### 1234.0")
    assert answers_match("1234", "work\n#### 1,234")
    assert not answers_match("#### 1235", "#### 1234")
    assert not answers_match("the answer is twelve", "#### 12")
    assert not answers_match("#### 12", "a target without a final answer")

    student = CausalLMStudent(CausalLMConfig(model="unused"))
    record = Record(input="q", target="3 * 400 + 34 = 1234\n#### 1234.0")
    assert student.is_correct(Prediction(label="1,234"), record)
    assert student.is_correct(Prediction(label="#### 1,234"), record)
    assert not student.is_correct(Prediction(label="1,235"), record)
    assert not student.is_correct(Prediction(label="some raw text"), record)


# --------------------------------------------------------------------------- loss


def test_loss_masks_prompt_and_padding_and_equals_answer_nll(tiny_model_dir: Path) -> None:
    student = _student(tiny_model_dir)
    model = student._ensure_base()
    tok = student.tokenizer
    records = [_records()[0], Record(input="A much longer question " * 5 + "?", target="x = 3\n#### 3")]

    ids, labels, truncated = student.encode_example(records[0])
    prompt_len = len(tok(student.prompt_text(records[0].input), add_special_tokens=False)["input_ids"])
    answer = tok(records[0].target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert not truncated
    assert labels[:prompt_len] == [-100] * prompt_len
    assert labels[prompt_len:] == answer == ids[prompt_len:]

    batch = student.collate([student.encode_example(r)[:2] for r in records])
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()  # padding is masked

    # Hand-computed: a plain forward pass, NLL of the answer tokens only, averaged over them.
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        nll = []
        for row, record in enumerate(records):
            p_len = len(tok(student.prompt_text(record.input), add_special_tokens=False)["input_ids"])
            ans = tok(record.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            nll += [-logp[row, p_len + j - 1, token] for j, token in enumerate(ans)]
        expected = torch.stack(nll).mean()
        loss = student.batch_loss(records, model)
        total, n = student.answer_nll(model, batch)
        # The prompt positions' labels, unmasked (set to the real next tokens): a different loss.
        unmasked = dict(batch, labels=torch.where(batch["attention_mask"] == 1, batch["input_ids"], -100))
        total_unmasked, n_unmasked = student.answer_nll(model, unmasked)
    assert torch.allclose(loss, expected, atol=1e-5)
    assert n == len(nll) and torch.allclose(total / n, expected, atol=1e-5)
    assert n_unmasked > n and not torch.allclose(total_unmasked / n_unmasked, expected, atol=1e-3)


def test_symmetric_cross_entropy_over_answer_tokens(tiny_model_dir: Path) -> None:
    """loss: sce = alpha * mean CE + beta * mean RCE over the answer tokens, where per token
    RCE = -log(1e-4) * (1 - p(label)); and a student trains with it."""
    student = _student(tiny_model_dir, loss="sce", sce_alpha=0.1, sce_beta=1.0)
    model = student._ensure_base()
    records = _records(2)
    batch = student.collate([student.encode_example(r)[:2] for r in records])
    with torch.no_grad():
        total, n = student.answer_loss(model, batch)
        nll, n_ce = student.answer_nll(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"][:, 1:]
        keep = labels != -100
        p_label = torch.softmax(logits[:, :-1][keep], dim=-1).gather(1, labels[keep][:, None]).squeeze(1)
    expected = 0.1 * nll / n_ce + 1.0 * (-math.log(1e-4)) * (1 - p_label).mean()
    assert n == n_ce and torch.allclose(total / n, expected, atol=1e-4)
    assert not torch.allclose(total / n, nll / n_ce, atol=1e-3)  # a different loss from CE
    stats = student.train(records, seed=0)
    assert math.isfinite(stats["loss"]) and student.state_fingerprint() != student.base_state_fingerprint()


def test_training_learns_the_answer(tiny_model_dir: Path) -> None:
    """End to end: the answer loss collapses and greedy decoding starts writing the answer.

    (The random 2-layer model cannot count the four '#' tokens of this tokenizer, so exact
    memorisation is not asked for; answer extraction is tested on strings above.)
    """
    records = [Record(input="Ann has 5 cats and 1 dog. How many pets?", target="#### 6")]
    student = _student(tiny_model_dir, epochs=30, batch_size=1, lr=1e-2, max_new_tokens=8, max_grad_norm=100.0)
    before = student.token_logprobs(records, model=student._ensure_base())[0].sum()
    stats = student.train(records, seed=0)
    assert stats["loss"] < 0.5
    after = student.token_logprobs(records)[0].sum()
    assert after > before + 10
    prediction = student.generate(records)[0]
    assert prediction.text.startswith("####"), prediction.text


# --------------------------------------------------------------------------- retrain from base, determinism


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_train_always_starts_from_base_and_is_deterministic(tiny_model_dir: Path, mode: str) -> None:
    student = _student(tiny_model_dir, mode=mode, batch_size=2)
    base_fp = student.base_state_fingerprint()
    records = _records()

    student.train(records, seed=1)
    first_fp = student.state_fingerprint()
    assert student.last_initial_fingerprint == base_fp
    # Train again on other data: it starts from the base again, not from the first result.
    student.train(records[:3], seed=5)
    assert student.last_initial_fingerprint == base_fp
    # The base itself was never touched by training (recomputed from its tensors).
    assert state_fingerprint(student._ensure_base().state_dict()) == base_fp

    student.train(records, seed=1)
    assert student.state_fingerprint() == first_fp
    other = _student(tiny_model_dir, mode=mode, batch_size=2)
    other.train(records, seed=1)
    assert other.state_fingerprint() == first_fp
    other.train(records, seed=2)
    assert other.state_fingerprint() != first_fp
    assert first_fp != base_fp


def test_lora_changes_only_adapters(tiny_model_dir: Path) -> None:
    student = _student(tiny_model_dir, mode="lora", lora_r=4, lora_targets=["q_proj", "v_proj", "down_proj"])
    base = {k: v.clone() for k, v in student._ensure_base().state_dict().items()}
    stats = student.train(_records(), seed=0)

    params = dict(student.model.named_parameters())
    adapters = {k: v for k, v in params.items() if ".lora_" in k}
    n_layers = student.model.config.num_hidden_layers
    assert len(adapters) == 2 * 3 * n_layers
    assert stats["trainable_params"] == sum(v.numel() for v in adapters.values())
    assert any(k.endswith("lora_B") and v.abs().sum() > 0 for k, v in adapters.items())  # B left zero
    for name, tensor in student.model.state_dict().items():
        if ".lora_" in name:
            continue
        base_name = name.replace(".base.", ".")
        assert torch.equal(tensor, base[base_name]), name
    assert {k.replace(".base.", ".") for k in student.model.state_dict() if ".lora_" not in k} == set(base)


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_save_load_round_trip(tiny_model_dir: Path, tmp_path: Path, mode: str) -> None:
    records = _records()
    student = _student(tiny_model_dir, mode=mode)
    student.train(records, seed=0)
    predictions = student.predict(records)
    student.save(tmp_path / "ck")
    if mode == "lora":
        saved = sorted(p.name for p in (tmp_path / "ck").iterdir())
        assert saved == ["adapters.safetensors", "student.json"]  # adapters only, no base copy

    fresh = _student(tiny_model_dir, mode=mode)
    fresh.load(tmp_path / "ck")
    assert fresh.state_fingerprint() == student.state_fingerprint()
    again = fresh.predict(records)
    assert [p.label for p in again] == [p.label for p in predictions]
    assert [p.text for p in again] == [p.text for p in predictions]
    for a, b in zip(fresh.token_logprobs(records[:2]), student.token_logprobs(records[:2]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_lora_load_refuses_other_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    from distilforge.testing.tiny_model import build_tiny_llama

    student = _student(tiny_model_dir, mode="lora")
    student.train(_records(), seed=0)
    student.save(tmp_path / "ck")
    meta_path = tmp_path / "ck" / "student.json"
    other = build_tiny_llama(tmp_path / "other", seed=1)
    meta_path.write_text(meta_path.read_text().replace(str(tiny_model_dir), str(other)))
    with pytest.raises(ValueError, match="other base weights"):
        _student(tiny_model_dir, mode="lora").load(tmp_path / "ck")


# --------------------------------------------------------------------------- predict and token scores


def test_predict_batched_left_padding_matches_one_by_one(tiny_model_dir: Path) -> None:
    records = [*_records(3), Record(input="Short?", target="#### 1")]
    student = _student(tiny_model_dir, predict_batch_size=4)
    student.train(records, seed=0)
    batched = student.predict(records)
    single = [student.predict([r])[0] for r in records]
    assert [p.label for p in batched] == [p.label for p in single]
    assert all(p.confidence is not None and 0.0 < p.confidence <= 1.0 for p in batched)


def test_token_logprobs_and_energy(tiny_model_dir: Path) -> None:
    records = [*_records(2), Record(input="Short?", target="#### 1")]
    student = _student(tiny_model_dir)
    student.train(records, seed=0)
    tok = student.tokenizer

    logprobs = student.token_logprobs(records)
    for record, values in zip(records, logprobs, strict=True):
        n_target = len(tok(record.target, add_special_tokens=False)["input_ids"])
        assert values.shape == (n_target,)
        assert np.all(values <= 0.0) and np.all(np.isfinite(values))

    # Padding does not leak: a record scored alone gets the same values as in a padded batch.
    alone = student.token_logprobs([records[2]])[0]
    np.testing.assert_allclose(alone, logprobs[2], atol=1e-5)

    logits = student.sequence_logits(records[:1])[0]
    ids = torch.tensor(student.target_token_ids(records[0]))
    assert logits.shape == (len(ids), student.model.config.vocab_size)
    from_logits = torch.log_softmax(torch.from_numpy(logits), dim=-1).gather(1, ids[:, None]).squeeze(1)
    np.testing.assert_allclose(from_logits.numpy(), logprobs[0], atol=1e-5)

    energy = student.free_energy(records)
    expected = -torch.logsumexp(torch.from_numpy(logits), dim=-1).mean()
    assert energy.shape == (3,)
    assert energy[0] == pytest.approx(float(expected), abs=1e-4)

    # the energy scorer plugin gives the same numbers through the OOD-scoring path
    from types import SimpleNamespace

    from distilforge.engine.api.toolkit.predictions import free_energy
    from distilforge.plugins.scorers.energy import EnergyScorer, EnergyScorerConfig

    assert free_energy(logits[None])[0] == pytest.approx(energy[0], abs=1e-4)
    scores = EnergyScorer(EnergyScorerConfig()).score(records, SimpleNamespace(student=student))  # type: ignore[arg-type]
    assert [scores[r.id]["energy"] for r in records] == pytest.approx(list(energy), abs=1e-6)


# --------------------------------------------------------------------------- plugins and dataset


def test_plugins_register_and_validate() -> None:
    from distilforge.engine.build import Engine

    engine = Engine.load()  # both are built-ins
    assert "causal-lm" in engine.registry.names("student")
    assert "gsm-symbolic" in engine.registry.names("dataset")
    config = engine.parse(
        {
            "name": "gsm-test",
            "method": {"type": "llm2llm", "task_type": "math"},
            "teacher": {"type": "vllm"},
            "student": {"type": "causal-lm", "mode": "lora", "lora_r": 4},
            "dataset": {"type": "gsm-symbolic", "seed_size": 4, "test_size": 4},
        }
    )
    assert config.student.type == "causal-lm"


def test_gsm_target_format() -> None:
    assert gsm.gsm_target("a = 1\nb = 2\n#### 2", "2") == "a = 1\nb = 2\n#### 2"
    assert gsm.gsm_target("so it is 5\n\n#### 5\n", "5") == "so it is 5\n#### 5"
    assert gsm.gsm_target("no marker here", "7") == "no marker here\n#### 7"


@pytest.mark.slow
def test_gsm_split_is_deterministic_and_disjoint() -> None:
    config = gsm.GSMSymbolicConfig(seed_size=24, test_size=60, split_seed=7)
    first = gsm.GSMSymbolic(config).load(0)
    again = gsm.GSMSymbolic(config).load(0)
    other_seed = gsm.GSMSymbolic(config).load(1)
    same_as_split = gsm.GSMSymbolic(config).load(7)

    assert len(first.seed) == 24 and len(first.test) == 60
    assert [r.id for r in first.seed] == [r.id for r in again.seed]
    assert [r.id for r in first.test] == [r.id for r in again.test] == [r.id for r in other_seed.test]
    assert {r.id for r in first.seed} != {r.id for r in other_seed.seed}
    for splits in (first, other_seed, same_as_split):
        test_questions = {gsm._norm(r.input) for r in splits.test}
        seed_questions = [gsm._norm(r.input) for r in splits.seed]
        assert not test_questions & set(seed_questions)
        assert len(set(seed_questions)) == len(seed_questions)
        assert len(test_questions) == len(splits.test)
    for record in first.seed + first.test:
        assert record.target.count("####") == 1
        assert final_answer(record.target) == record.meta["answer"].replace(",", "")
        assert record.origin in ("seed", "real")
    assert first.labels is None and first.task
