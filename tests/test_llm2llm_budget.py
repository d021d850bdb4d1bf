"""The text methods' default answer budget grows with the seeds: news-length examples are not cut off."""

from __future__ import annotations

from distilforge.plugins.methods.gold import Gold, GoldConfig
from distilforge.plugins.methods.llm2llm import LLM2LLM, LLM2LLMConfig
from distilforge.plugins.methods.text_examples import answer_budget
from distilforge.schemas import Record, SamplingParams
from tests.helpers import make_ctx


def _requests(pool: list[Record], **config: object) -> list[int]:
    ctx = make_ctx(pool, labels=["a", "b"])
    method = LLM2LLM(LLM2LLMConfig.model_validate(config))
    return [r.sampling.max_tokens for r in method.build_prompts(pool[:1], ctx)]


def test_the_default_budget_is_sized_from_the_longest_seed() -> None:
    assert answer_budget(["short"], 96) == 96
    assert answer_budget(["x" * 800], 96) == 316  # 1.5 x 200 tokens + 16
    news = [Record(input="word " * 160, target="a"), Record(input="short one", target="b")]
    synthetic = Record(input="w " * 2000, target="a", origin="synthetic")
    assert _requests([*news, synthetic]) == [316]  # synthetic records do not move the budget
    assert _requests(news, sampling=SamplingParams(max_tokens=50).model_dump()) == [50]  # a given budget wins


def test_gold_sizes_its_default_budget_the_same_way() -> None:
    news = [Record(input="word " * 160, target="a"), Record(input="short one", target="b")]
    ctx = make_ctx(news, labels=["a", "b"])
    requests = Gold(GoldConfig(examples_per_label=1)).build_prompts([], ctx)
    assert {r.sampling.max_tokens for r in requests} == {316}
    assert {tuple(r.sampling.stop or ()) for r in requests} == {("\n\n",)}
    given = Gold(GoldConfig(examples_per_label=1, sampling=SamplingParams(max_tokens=40))).build_prompts([], ctx)
    assert {r.sampling.max_tokens for r in given} == {40}
