"""The embedded default teacher: SmolLM2-135M-Instruct converted from the packaged GGUF file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from distilforge.plugins.models import embedders, presets
from distilforge.plugins.models import packaged as models
from distilforge.plugins.models.presets import get_preset
from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

# --------------------------------------------------------------------------- conversion logic


@pytest.fixture
def fake_conversion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Point DISTILFORGE_HOME at a temp dir and replace the 45-second conversion by a stub."""
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path / "home"))
    calls: dict[str, Any] = {"convert": 0, "dtype": [], "out": []}

    def convert(gguf: Path, out: Path, **kwargs: Any) -> None:
        calls["convert"] += 1
        calls["dtype"].append(kwargs.get("dtype"))
        calls["out"].append(out)
        # the conversion is written into a temporary directory, never into the final place
        assert out != models.default_teacher_path() and out.parent.name.startswith(".smollm2-135m-instruct.tmp-")
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_gguf", convert)
    monkeypatch.setattr(models, "verify_model_dir", lambda path: "Paris")
    return calls


def test_home_and_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path))
    assert models.default_teacher_path() == tmp_path / "models" / "smollm2-135m-instruct"
    monkeypatch.delenv("DISTILFORGE_HOME")
    assert models.distilforge_home() == Path.home() / ".cache" / "distilforge"
    assert models.smollm2_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_conversion_runs_once_and_marks_the_result(
    monkeypatch: pytest.MonkeyPatch, fake_conversion: dict[str, Any]
) -> None:
    path = models.default_teacher_dir()
    assert path == models.default_teacher_path() and models.is_prepared(path)
    marker = json.loads((path / models.MARKER_FILE).read_text())
    assert marker["format"] == models.CONVERSION_FORMAT and marker["verified_answer"] == "Paris"
    preset = get_preset("smollm2-135m")
    # the packaged GGUF was checked against the pinned size and hash, and SmolLM2 stays float32
    assert marker["gguf_sha256"] == preset.gguf_sha256 and marker["gguf_bytes"] == preset.gguf_bytes
    assert marker["dtype"] == "float32" == fake_conversion["dtype"][0]
    assert marker["licence"] == preset.licence and marker["name"] == "smollm2-135m"
    # built in a temporary directory, then moved into place: nothing else is left in models_dir
    assert not fake_conversion["out"][0].exists()
    assert sorted(p.name for p in models.models_dir().iterdir()) == [
        ".smollm2-135m-instruct.lock",
        "smollm2-135m-instruct",
    ]
    assert models.default_teacher_dir() == path
    assert models.prepared_preset_dir("smollm2-135m") == path
    assert models.teacher_model_path("smollm2-135m") == str(path)
    assert fake_conversion["convert"] == 1
    derived = path.parent / "minilm-derived"  # the embedders' own set-up is tested in test_embedders.py
    monkeypatch.setattr(embedders, "prepare_embedders", lambda **_: derived)
    assert models.ensure_models() == {"default_teacher": str(path), "embedders": str(derived)}
    assert fake_conversion["convert"] == 1


def test_a_failed_conversion_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, fake_conversion: dict[str, Any]
) -> None:
    def broken(gguf: Path, out: Path, **kwargs: Any) -> None:
        (out / "model.safetensors").write_text("half written")
        raise RuntimeError("killed")

    monkeypatch.setattr(models, "convert_gguf", broken)
    with pytest.raises(RuntimeError, match="killed"):
        models.default_teacher_dir()
    assert not models.default_teacher_path().exists()
    assert [p.name for p in models.models_dir().iterdir()] == [".smollm2-135m-instruct.lock"]


def test_verification_failure_is_not_cached(monkeypatch: pytest.MonkeyPatch, fake_conversion: dict[str, Any]) -> None:
    def incoherent(path: Path) -> str:
        raise models.ModelUnavailable("answers incoherently: 'ĠTheĠ'")

    monkeypatch.setattr(models, "verify_model_dir", incoherent)
    with pytest.raises(models.ModelUnavailable):
        models.default_teacher_dir()
    assert not models.default_teacher_path().exists()
    assert [p.name for p in models.models_dir().iterdir()] == [".smollm2-135m-instruct.lock"]


def test_leftovers_of_a_killed_conversion_are_replaced(fake_conversion: dict[str, Any]) -> None:
    target = models.default_teacher_path()
    stale = models.models_dir() / ".smollm2-135m-instruct.tmp-dead"
    (stale / "model").mkdir(parents=True)
    (stale / "model" / "model.safetensors").write_text("half written")
    target.mkdir()
    (target / "config.json").write_text("{}")  # no marker: not a finished conversion
    (target / "stale.bin").write_text("from the killed run")
    path = models.default_teacher_dir()
    assert models.is_prepared(path) and not stale.exists()
    assert not (path / "stale.bin").exists(), "the unfinished directory is replaced, not merged into"
    assert sorted(p.name for p in models.models_dir().iterdir()) == [
        ".smollm2-135m-instruct.lock",
        "smollm2-135m-instruct",
    ]
    assert fake_conversion["convert"] == 1


def test_a_wrong_packaged_gguf_is_refused_before_converting(
    monkeypatch: pytest.MonkeyPatch, fake_conversion: dict[str, Any]
) -> None:
    bad = dataclasses.replace(get_preset("smollm2-135m"), gguf_sha256="0" * 64)
    monkeypatch.setitem(presets.PRESETS, "smollm2-135m", bad)
    with pytest.raises(models.ModelUnavailable, match="does not match the pinned 0000"):
        models.default_teacher_dir()
    assert fake_conversion["convert"] == 0 and not models.default_teacher_path().exists()


# --------------------------------------------------------------------------- the real thing


def test_converted_directory_is_well_formed(default_teacher_dir: Path) -> None:
    from transformers import AutoTokenizer

    assert models.is_prepared(default_teacher_dir)
    tok_config = json.loads((default_teacher_dir / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tok_config["add_bos_token"] is False
    assert "<|im_start|>" in tok_config["chat_template"]
    config = json.loads((default_teacher_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["rope_theta"] == 100000.0
    assert "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(str(default_teacher_dir))
    text = "The movie doesn't have any\nredeeming qualities. Café 42!"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert len(ids) < len(text) / 2  # real BPE merges, not characters
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_default_teacher_answers_coherently_through_vllm(default_teacher_dir: Path) -> None:
    from fixtures_models import require_vllm

    require_vllm()
    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig

    # float32: the greedy answers are those the conversion was verified with (bf16 CPUs would run bf16)
    teacher = VLLMTeacher(
        VLLMTeacherConfig(backend="vllm", max_model_len=1024, kv_cache_memory_bytes=256 << 20, dtype="float32")
    )
    assert teacher.model_id == f"vllm:{default_teacher_dir}"
    requests = [
        TeacherRequest(
            messages=[ChatMessage(role="user", content="What is the capital of France?")],
            sampling=SamplingParams(temperature=0.0, max_tokens=16),
        ),
        TeacherRequest(
            messages=[ChatMessage(role="user", content="Write a one-sentence negative movie review.")],
            sampling=SamplingParams(temperature=0.0, max_tokens=40),
        ),
        TeacherRequest(
            messages=[ChatMessage(role="user", content="Is 'I loved this film' positive or negative?")],
            sampling=SamplingParams(temperature=0.0, max_tokens=4, choice=["positive", "negative"]),
        ),
    ]
    try:
        got = {c.request_id: c for c in teacher.sample(requests)}
    finally:
        teacher.close()
    capital, review, label = (got[r.id] for r in requests)
    assert "Paris" in capital.text, capital.text
    assert capital.finish_reason == "stop"
    words = review.text.split()
    assert len(words) >= 5 and not any(ch in review.text for ch in "ĠĊ"), review.text
    assert sum(w.strip(".,!'\"").isalpha() for w in words) / len(words) > 0.8, review.text
    assert label.text in {"positive", "negative"}  # constrained; 135M is too weak to grade reliably
