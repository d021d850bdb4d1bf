"""The ``transformers`` teacher on the tiny random Llama (and the default SmolLM2, slow)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from distilforge.plugins.teachers.transformers_teacher import TransformersTeacher, TransformersTeacherConfig
from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest


def chat(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(messages=[ChatMessage(role="user", content=text)], sampling=SamplingParams(**sampling))


def plain(text: str, **sampling: Any) -> TeacherRequest:
    return TeacherRequest(prompt=text, sampling=SamplingParams(**sampling))


@pytest.fixture(scope="module")
def hf_teacher(tiny_model_dir: Path) -> TransformersTeacher:
    teacher = TransformersTeacher(TransformersTeacherConfig(model=str(tiny_model_dir), batch_size=4, device="cpu"))
    yield teacher
    teacher.close()


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, distilforge.plugins.teachers.transformers_teacher as m; "
        "m.TransformersTeacher(m.TransformersTeacherConfig(model='org/x')).model_id; "
        "bad = [n for n in ('torch', 'transformers') if n in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered() -> None:
    from distilforge.engine.plugin_manager import build_plugin_manager
    from distilforge.engine.registry import collect_registry

    registry = collect_registry(build_plugin_manager(load_entrypoints=False))
    assert registry.get("teacher", "transformers").config_cls is TransformersTeacherConfig
    assert TransformersTeacher(TransformersTeacherConfig(model="a/b")).model_id == "transformers:a/b"


def test_n_samples_chat_and_plain(hf_teacher: TransformersTeacher, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    requests = [chat(f"The cat likes story {i}", n=3, max_tokens=6, temperature=1.0) for i in range(2)]
    requests += [plain(f"A teacher reads {i}", n=2, max_tokens=5, temperature=0.0) for i in range(3)]
    completions = list(hf_teacher.sample(requests))
    got = {(c.request_id, c.sample_index): c for c in completions}
    assert len(completions) == len(got) == 2 * 3 + 3 * 2
    for r in requests:
        for i in range(r.sampling.n):
            c = got[(r.id, i)]
            assert c.ok and c.finish_reason in {"stop", "length"}
            assert 1 <= c.completion_tokens <= r.sampling.max_tokens
            if c.finish_reason == "length":
                assert c.completion_tokens == r.sampling.max_tokens
    chat_ids = tok.apply_chat_template(
        [{"role": "user", "content": "The cat likes story 0"}], add_generation_prompt=True, tokenize=True
    )
    if hasattr(chat_ids, "keys"):
        chat_ids = chat_ids["input_ids"]
    assert got[(requests[0].id, 0)].prompt_tokens == len(chat_ids)
    assert got[(requests[2].id, 0)].prompt_tokens == len(tok("A teacher reads 0")["input_ids"])
    # greedy samples of one request agree; sampled ones differ
    assert got[(requests[2].id, 0)].text == got[(requests[2].id, 1)].text
    assert len({got[(requests[0].id, i)].text for i in range(3)}) > 1


def test_left_padding_batch_size_does_not_change_greedy(tiny_model_dir: Path, hf_teacher: TransformersTeacher) -> None:
    prompts = ["Hi", "The model writes a long story about the river and the sea", "A question?"]
    requests = [plain(p, max_tokens=8, temperature=0.0) for p in prompts]
    batched = {c.request_id: c.text for c in hf_teacher.sample(requests)}
    single = TransformersTeacher(TransformersTeacherConfig(model=str(tiny_model_dir), batch_size=1, device="cpu"))
    alone = {c.request_id: c.text for c in single.sample(requests)}
    assert batched == alone


def test_logprobs(hf_teacher: TransformersTeacher) -> None:
    (c,) = hf_teacher.sample([plain("The river sees", max_tokens=6, temperature=0.0, logprobs=2, prompt_logprobs=1)])
    assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
    for lp in c.logprobs:
        assert math.isfinite(lp.logprob) and lp.logprob <= 1e-6
        assert len(lp.top) >= 1
        assert lp.logprob == pytest.approx(max(lp.top.values()), abs=1e-5)  # greedy = top-1
    assert c.prompt_logprobs is not None and len(c.prompt_logprobs) == c.prompt_tokens
    assert c.prompt_logprobs[0] is None and all(v is not None and v <= 1e-6 for v in c.prompt_logprobs[1:])


def test_choice_and_json_schema(hf_teacher: TransformersTeacher) -> None:
    choices = ["yes", "no", "maybe later"]
    out = list(hf_teacher.sample([plain("Is it?", n=4, temperature=1.0, choice=choices)]))
    assert len(out) == 4 and all(c.ok and c.text in choices for c in out)
    (greedy_a,) = hf_teacher.sample([plain("Is it?", temperature=0.0, choice=choices)])
    (greedy_b,) = hf_teacher.sample([plain("Is it?", temperature=0.0, choice=choices)])
    assert greedy_a.text == greedy_b.text
    (err,) = hf_teacher.sample([plain("json", json_schema={"type": "object"})])
    assert err.error and "vllm" in err.error


def test_stop_strings(hf_teacher: TransformersTeacher) -> None:
    (free,) = hf_teacher.sample([plain("A teacher finds good data", max_tokens=16, temperature=0.0)])
    visible = free.text.replace("\ufffd", "")
    stop = visible[3:6]
    assert len(stop) == 3
    (stopped,) = hf_teacher.sample([plain("A teacher finds good data", max_tokens=16, temperature=0.0, stop=[stop])])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]


@pytest.mark.slow
def test_default_smollm2_answers(default_teacher_dir: Path) -> None:
    teacher = TransformersTeacher(TransformersTeacherConfig(model=str(default_teacher_dir), device="cpu"))
    (c,) = teacher.sample([chat("What is the capital of France?", max_tokens=16, temperature=0.0)])
    assert "Paris" in c.text, c.text
    teacher.close()
