"""The ``llamacpp`` teacher on a real GGUF (the embedded SmolLM2's, from its package), the CPU kinds,
and the backend the ``vllm`` teacher, ``setup`` and ``serve`` choose from them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from distilforge.plugins.models import packaged
from distilforge.plugins.teachers import backend as backend_module
from distilforge.plugins.teachers import cpu_kind as cpu
from distilforge.plugins.teachers.llamacpp_teacher import LlamaCppTeacher, LlamaCppTeacherConfig, choice_grammar
from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest

AMX = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
ZEN4 = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"})
SKYLAKE = frozenset({"avx2", "fma", "avx512f"})
ZEN3 = frozenset({"avx2", "fma"})


def chat(text: str, **sampling: object) -> TeacherRequest:
    return TeacherRequest(
        messages=[ChatMessage(role="system", content="You are brief."), ChatMessage(role="user", content=text)],
        sampling=SamplingParams(**sampling),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- CPU kinds and the backend


def test_cpu_kinds_from_flags_and_the_onednn_cap() -> None:
    assert [cpu.cpu_kind(f, {}) for f in (AMX, ZEN4, SKYLAKE, ZEN3, frozenset())] == [
        "amx",
        "avx512-bf16",
        "avx512",
        "avx2",
        "other",
    ]
    # a cap below the hardware lowers the kind (measuring what users without AMX get); above it, nothing
    assert cpu.cpu_kind(AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}) == "avx512-bf16"
    assert cpu.cpu_kind(AMX, {"ONEDNN_MAX_CPU_ISA": "avx2"}) == "avx2"
    assert cpu.cpu_kind(ZEN3, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}) == "avx2"
    assert cpu.has_native_bf16(ZEN4) and not cpu.has_native_bf16(ZEN3)
    assert "kind" in cpu.describe_cpu() and "CPUs" in cpu.describe_cpu()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("amx", "vllm"), ("avx512-bf16", "vllm"), ("avx512", "llamacpp"), ("avx2", "llamacpp"), ("other", "llamacpp")],
)
def test_auto_backend_follows_the_cpu_kind(monkeypatch: pytest.MonkeyPatch, kind: str, expected: str) -> None:
    monkeypatch.setattr(backend_module, "cpu_kind", lambda: kind)
    monkeypatch.setattr(backend_module, "vllm_gpu_build", lambda: False)
    assert backend_module.choose_backend("auto", "qwen2.5-coder-1.5b") == expected
    assert backend_module.choose_backend("auto", None) == expected  # the embedded SmolLM2 has a GGUF too
    # what the user asks for wins; a model without a GGUF runs on vLLM whatever the CPU
    assert backend_module.choose_backend("vllm", "qwen2.5-coder-1.5b") == "vllm"
    assert backend_module.choose_backend("llamacpp", None) == "llamacpp"
    assert backend_module.choose_backend("auto", "Qwen/Qwen2.5-1.5B-Instruct") == "vllm"
    monkeypatch.setattr(backend_module, "vllm_gpu_build", lambda: True)
    assert backend_module.choose_backend("auto", "qwen2.5-coder-1.5b") == "vllm"


def test_the_vllm_teacher_delegates_to_llamacpp_when_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "cpu_kind", lambda: "avx2")
    monkeypatch.setattr(backend_module, "vllm_gpu_build", lambda: False)
    teacher = VLLMTeacher(VLLMTeacherConfig(seed=3, max_model_len=512))
    assert teacher.backend == "llamacpp" and teacher.model_id.startswith("llamacpp:")
    assert teacher.model_id.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert teacher._llamacpp is not None and teacher._llamacpp.config.seed == 3
    forced = VLLMTeacher(VLLMTeacherConfig(backend="vllm"))
    assert forced.backend == "vllm" and forced.model_id.startswith("vllm:")


def test_gguf_paths_and_their_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path / "home"))
    assert packaged.teacher_gguf_path(None) == packaged.smollm2_gguf_path()
    with pytest.raises(packaged.ModelUnavailable, match=re.escape("distilforge setup --teacher qwen2.5-coder-0.5b")):
        packaged.teacher_gguf_path("qwen2.5-coder-0.5b")
    one = tmp_path / "one"
    one.mkdir()
    (one / "m.gguf").write_bytes(b"GGUF")
    assert packaged.teacher_gguf_path(str(one)) == one / "m.gguf"
    (one / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(packaged.ModelUnavailable, match=re.escape("one .gguf file there, found 2")):
        packaged.teacher_gguf_path(str(one))
    with pytest.raises(packaged.ModelUnavailable, match="hub ids are not downloaded"):
        packaged.teacher_gguf_path("org/some-model")


def test_choice_grammar_quotes_every_choice() -> None:
    assert choice_grammar(["positive", 'say "no"']) == 'root ::= "positive" | "say \\"no\\""'


# --------------------------------------------------------------------------- the real engine


@pytest.fixture(scope="module")
def smol() -> LlamaCppTeacher:
    teacher = LlamaCppTeacher(LlamaCppTeacherConfig(max_model_len=512, parallel=4, seed=7))
    yield teacher
    teacher.close()


@pytest.mark.slow
def test_llamacpp_samples_are_seeded_per_index_and_carry_logprobs(smol: LlamaCppTeacher) -> None:
    story = chat("Write one short sentence about a lighthouse.", temperature=1.0, max_tokens=16, n=3)
    label = chat(
        "Is 'a gorgeous, moving film' positive or negative?",
        temperature=0.0,
        max_tokens=4,
        choice=["positive", "negative"],
        logprobs=5,
    )
    out = {(c.request_id, c.sample_index): c for c in smol.sample([story, label])}
    assert sorted(out) == sorted([(story.id, 0), (story.id, 1), (story.id, 2), (label.id, 0)])
    texts = [out[(story.id, i)].text for i in range(3)]
    assert all(t.strip() for t in texts) and len(set(texts)) == 3  # three samples, each drawn with its own seed
    first = out[(story.id, 0)]
    assert first.ok and first.prompt_tokens > 10 and 0 < first.completion_tokens <= 16
    assert first.finish_reason in ("stop", "length") and first.model == smol.model_id
    answer = out[(label.id, 0)]
    assert answer.text in ("positive", "negative")  # the grammar holds the answer to the choices
    assert answer.logprobs and len(answer.logprobs[0].top) == 5
    assert all(math.isfinite(v) and v <= 0 for v in answer.logprobs[0].top.values())
    # only the samples still missing (the engine's sample_indices): index 2 alone is the same draw as before
    again = story.model_copy(
        update={"sampling": story.sampling.model_copy(update={"n": 1}), "meta": {"sample_indices": [2]}}
    )
    (redrawn,) = list(smol.sample([again]))
    assert redrawn.sample_index == 0 and redrawn.text == texts[2]


@pytest.mark.slow
def test_llamacpp_gives_bad_requests_an_error_completion_and_goes_on(smol: LlamaCppTeacher) -> None:
    too_long = chat("word " * 2000, max_tokens=4)
    prompt_lp = chat("Hello", max_tokens=2, prompt_logprobs=1)
    fine = TeacherRequest(prompt="Once upon a time", sampling=SamplingParams(temperature=0.0, max_tokens=4, logprobs=2))
    out = {c.request_id: c for c in smol.sample([too_long, prompt_lp, fine])}
    assert not out[too_long.id].ok and "context" in (out[too_long.id].error or "")
    assert not out[prompt_lp.id].ok and "no prompt log-probabilities" in (out[prompt_lp.id].error or "")
    assert out[fine.id].ok and out[fine.id].text and out[fine.id].logprobs and len(out[fine.id].logprobs[0].top) == 2
