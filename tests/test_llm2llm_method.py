"""The LLM2LLM method's own steps: failure selection, prompts, parsing (no teacher needed)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from distilforge.plugins.methods.llm2llm import DEFAULT_DEMOS, LLM2LLM, Demonstration, LLM2LLMConfig
from distilforge.schemas import Completion, Evaluation, Record, RecordResult

SEEDS = [Record(input=f"seed text {i}", target="positive" if i % 2 else "negative") for i in range(4)]
SYNTH = [Record(input=f"synthetic text {i}", target="positive", origin="synthetic") for i in range(2)]


def evaluation(correct: dict[str, tuple[bool, float]]) -> Evaluation:
    return Evaluation(
        split="train",
        results=[
            RecordResult(record_id=i, correct=ok, prediction="x", confidence=conf) for i, (ok, conf) in correct.items()
        ],
    )


def ctx(round_index: int = 0, pool: list[Record] | None = None) -> Any:
    return SimpleNamespace(
        task="Classify the sentiment.",
        labels=["negative", "positive"],
        round=round_index,
        pool=list(SEEDS + SYNTH if pool is None else pool),
    )


def test_failures_are_seed_only_and_budgeted() -> None:
    pool = SEEDS + SYNTH
    ev = evaluation({r.id: (r is SEEDS[1] or r is SEEDS[2] or r in SYNTH, 0.99) for r in pool})
    method = LLM2LLM(LLM2LLMConfig())
    assert [r.id for r in method.select_failures(pool, ev, ctx())] == [SEEDS[0].id, SEEDS[3].id]
    capped = LLM2LLM(LLM2LLMConfig(max_failures_per_round=1))
    assert len(capped.select_failures(pool, ev, ctx())) == 1
    # the synthetic budget is already spent (2 of 2): nothing more is asked for
    assert LLM2LLM(LLM2LLMConfig(max_synthetic=2)).select_failures(pool, ev, ctx()) == []


def test_min_confidence_adds_unsure_correct_seeds() -> None:
    ev = evaluation({SEEDS[0].id: (True, 0.55), SEEDS[1].id: (True, 0.95), SEEDS[2].id: (False, 0.9)})
    ev.results.append(RecordResult(record_id=SEEDS[3].id, correct=True, prediction="x", confidence=0.6))
    ev.results += [RecordResult(record_id=s.id, correct=True, prediction="x", confidence=0.1) for s in SYNTH]
    method = LLM2LLM(LLM2LLMConfig(min_confidence=0.7))
    got = {r.id for r in method.select_failures(SEEDS + SYNTH, ev, ctx())}
    assert got == {SEEDS[0].id, SEEDS[2].id, SEEDS[3].id}
    assert {r.id for r in LLM2LLM(LLM2LLMConfig()).select_failures(SEEDS + SYNTH, ev, ctx())} == {SEEDS[2].id}


def test_prompt_shows_the_wrong_example_with_its_label_after_a_demo() -> None:
    method = LLM2LLM(LLM2LLMConfig(k=3))
    (request,) = method.build_prompts([SEEDS[0]], ctx())
    assert request.sampling.n == 3 and request.sampling.max_tokens == 96
    roles = [m.role for m in request.messages or []]
    assert roles == ["system", "user", "assistant", "user"]
    last = (request.messages or [])[-1].content
    assert SEEDS[0].input in last and '"negative"' in last and "Classify the sentiment." in last
    assert (
        'A student model struggles with this example (it got it wrong or is unsure). Its correct label is "negative"'
        in (last)
    )
    assert "got this example wrong" not in last
    assert request.meta["parent_id"] == SEEDS[0].id
    override = LLM2LLM(LLM2LLMConfig(prompt_template="Another like: {input} / {label}"))
    (custom,) = override.build_prompts([SEEDS[0]], ctx())
    assert (custom.messages or [])[-1].content == "Another like: seed text 0 / negative"
    # the same failure next round is a new request: fresh samples, not the cached ones
    (again,) = method.build_prompts([SEEDS[0]], ctx(1))
    assert again.messages == request.messages and again.id != request.id
    math = LLM2LLM(LLM2LLMConfig(task_type="math"))
    (math_request,) = math.build_prompts([SEEDS[0]], ctx())
    assert math_request.sampling.max_tokens == 320
    assert (math_request.messages or [])[-1].content.startswith("A student struggles with this problem.")


NEGATIVE = [Record(input=f"a dull film, take {i}", target="negative") for i in range(5)]
POSITIVE = [Record(input=f"a lovely film, take {i}", target="positive") for i in range(3)]
SYNTH_NEGATIVE = [Record(input=f"a synthetic bore {i}", target="negative", origin="synthetic") for i in range(3)]


def _demo(method: LLM2LLM, failure: Record, pool: list[Record]) -> tuple[str, str, str]:
    """(demo user message, demo answer, failure message) of the request built for ``failure``."""
    (request,) = method.build_prompts([failure], ctx(pool=pool))
    _system, demo_user, demo_answer, last = (m.content for m in request.messages or [])
    assert failure.input in last
    return demo_user, demo_answer, last


def test_demonstration_comes_from_other_seeds_of_the_same_label() -> None:
    method = LLM2LLM(LLM2LLMConfig())
    pool = NEGATIVE + POSITIVE + SYNTH_NEGATIVE
    failure = NEGATIVE[0]
    demo_user, demo_answer, _ = _demo(method, failure, pool)
    peers = {r.input for r in NEGATIVE[1:]}
    shown = [r.input for r in NEGATIVE if r.input in demo_user]
    assert len(shown) == 1 and shown[0] in peers, demo_user
    assert demo_answer in peers and demo_answer != shown[0]
    assert failure.input not in demo_user and failure.input != demo_answer
    assert 'Its correct label is "negative"' in demo_user
    assert DEFAULT_DEMOS["classification"].input not in demo_user
    assert not any(r.input in demo_user + demo_answer for r in POSITIVE + SYNTH_NEGATIVE)
    # the same failure gets the same demonstration whatever the pool's order (a resumed round
    # builds the same prompt, so it hits the cache)
    shuffled = list(pool)
    random.Random(1).shuffle(shuffled)
    assert _demo(method, failure, shuffled)[:2] == (demo_user, demo_answer)
    # a positive failure gets positive peers
    pos_user, pos_answer, _ = _demo(method, POSITIVE[0], pool)
    assert pos_answer in {r.input for r in POSITIVE[1:]} and 'Its correct label is "positive"' in pos_user


def test_demonstration_falls_back_to_the_built_in_one() -> None:
    method = LLM2LLM(LLM2LLMConfig())
    builtin = DEFAULT_DEMOS["classification"]
    # one peer only (synthetic records of the label do not count)
    pool = [NEGATIVE[0], NEGATIVE[1], *POSITIVE, *SYNTH_NEGATIVE]
    demo_user, demo_answer, _ = _demo(method, NEGATIVE[0], pool)
    assert builtin.input in demo_user and demo_answer == builtin.new_input
    assert 'Its correct label is "negative"' in demo_user  # the built-in demo's own label
    # a configured demonstration wins over the peers
    mine = Demonstration(input="My demo input.", target="negative", new_input="My demo answer.")
    configured = LLM2LLM(LLM2LLMConfig(demonstration=mine))
    demo_user, demo_answer, _ = _demo(configured, NEGATIVE[0], NEGATIVE + POSITIVE)
    assert "My demo input." in demo_user and demo_answer == "My demo answer."
    # math keeps its built-in worked problem, seeds or not
    math = LLM2LLM(LLM2LLMConfig(task_type="math"))
    demo_user, demo_answer, _ = _demo(math, NEGATIVE[0], NEGATIVE)
    assert DEFAULT_DEMOS["math"].input in demo_user and demo_answer.startswith("Question: Maria buys")


def _complete(method: LLM2LLM, text: str, finish: str = "stop", parent: Record = SEEDS[0]) -> list[Record] | str:
    (request,) = method.build_prompts([parent], ctx())
    completion = Completion(request_id=request.id, text=text, finish_reason=finish)
    return method.parse_completion(completion, request, ctx())


def test_parse_classification() -> None:
    method = LLM2LLM(LLM2LLMConfig())
    (record,) = _complete(method, 'Example: "A dull, lifeless film with no point."\n\nLabel: negative')
    assert record.input == "A dull, lifeless film with no point." and record.target == "negative"
    assert record.parent_id == SEEDS[0].id and record.origin == "synthetic"
    assert _complete(method, "A dull film that goes on", finish="length").startswith("truncated")
    (kept,) = _complete(method, "A dull film that goes nowhere.\n\nExplanation: the", finish="length")
    assert kept.input == "A dull film that goes nowhere."
    assert _complete(method, "ok").startswith("too short")
    assert _complete(method, "Seed text 0!") == "copied the original example"


def test_parse_math_formats() -> None:
    method = LLM2LLM(LLM2LLMConfig(task_type="math"))
    parent = Record(input="Tom has 3 boxes of 4 apples. How many?", target="3 * 4 = 12\n#### 12")
    (record,) = _complete(
        method,
        "**Question:** Ann buys 2 packs of 1,000 beads.\n**Answer:** 2 * 1,000 = 2,000\n#### $2,000",
        parent=parent,
    )
    assert record.input == "Ann buys 2 packs of 1,000 beads."
    assert record.target == "2 * 1,000 = 2,000\n#### 2000"
    assert _complete(method, "Question: x?\nAnswer: it is 5", parent=parent).startswith("malformed")
    assert _complete(method, "No format at all", parent=parent).startswith("malformed")
    assert _complete(method, f"Question: {parent.input}\nAnswer: 12\n#### 12", parent=parent).startswith("copied")
