"""Zero-shot labelling and solving by a teacher (engine/zero_shot.py): label orders, label
probabilities from first-token log-probabilities, averaging over orders, final numbers."""

from __future__ import annotations

import math

import pytest

from distilforge.engine.api.toolkit.labelling import (
    CALIBRATION_KEY,
    LABEL_SYSTEM,
    SEEDS_PER_LABEL,
    TOP_LOGPROBS,
    LabelVote,
    calibrate,
    combine_votes,
    content_free_prior,
    content_free_requests,
    final_number,
    fitted_prior,
    label_distribution,
    label_orders,
    label_requests,
    same_number,
    seed_requests,
    solve_request,
)
from distilforge.schemas import Completion
from distilforge.schemas.records import TokenLogprob

LABELS = ["positive", "negative"]


def answer(text: str, top: dict[str, float] | None = None, *, request_id: str = "r", **kw: object) -> Completion:
    """A completion whose first generated token is ``text``'s, with ``top`` as its top logprobs."""
    logprobs = None
    if top is not None:
        chosen = max(top, key=lambda t: top[t])
        logprobs = [TokenLogprob(token=chosen, logprob=top[chosen], top=top)]
    return Completion(request_id=request_id, text=text, logprobs=logprobs, **kw)  # type: ignore[arg-type]


def test_label_orders_are_cyclic_rotations() -> None:
    assert label_orders(["a", "b", "c"], 1) == [["a", "b", "c"]]
    assert label_orders(["a", "b", "c"], 2) == [["a", "b", "c"], ["b", "c", "a"]]
    assert label_orders(["a", "b", "c"], 3) == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert label_orders(["a", "b"], 5) == [["a", "b"], ["b", "a"]]  # at most one per label
    assert label_orders(["a", "b"], 0) == [["a", "b"]]  # at least one


def test_label_requests_list_the_labels_in_each_order_under_guided_choice() -> None:
    requests = label_requests("rec-1", "A gorgeous film.", LABELS, "Classify the sentiment.", orders=2)
    assert len(requests) == 2 and requests[0].id != requests[1].id
    first, second = ((q.messages or [])[-1].content for q in requests)
    assert 'Allowed labels: "positive", "negative".' in first
    assert 'Allowed labels: "negative", "positive".' in second
    assert first.startswith("Task: Classify the sentiment.") and first.endswith("Text: A gorgeous film.")
    for index, request in enumerate(requests):
        assert (request.messages or [])[0].content == LABEL_SYSTEM
        assert request.meta == {"judge_key": "rec-1", "label_order": index}
        s = request.sampling
        # the choice itself keeps the task's order: only the prompt's listing rotates
        assert s.choice == LABELS and s.temperature == 0.0 and s.logprobs == TOP_LOGPROBS and s.max_tokens == 8
    # no task: a generic instruction, never an empty "Task:"
    (plain,) = label_requests("k", "x", LABELS, "", orders=1)
    assert (plain.messages or [])[-1].content.startswith("Task: Classify the text.")


def test_label_distribution_from_first_token_logprobs() -> None:
    top = {"positive": math.log(0.7), "negative": math.log(0.2), "pos": math.log(0.05), "Ġthe": math.log(0.05)}
    dist = label_distribution(answer("positive", top), LABELS)
    assert dist is not None and set(dist) == set(LABELS)
    # every token that can start a label counts for it ("positive" and its prefix "pos" add up: 0.75),
    # renormalised over the labels
    assert dist["positive"] == pytest.approx(0.75 / 0.95)
    assert dist["negative"] == pytest.approx(0.2 / 0.95)
    assert sum(dist.values()) == pytest.approx(1.0)


def test_label_distribution_reads_prefix_tokens_with_spaces_and_case() -> None:
    # a tokenizer that splits the labels: the first pieces, with a leading space and capitals
    top = {" Pos": math.log(0.3), " neg": math.log(0.6), "\n": math.log(0.1)}
    dist = label_distribution(answer("negative", top), LABELS)
    assert dist == pytest.approx({"positive": 1 / 3, "negative": 2 / 3})
    # only one label among the top tokens: the other gets 0, not an error
    only = label_distribution(answer("positive", {"positive": math.log(0.9), "the": math.log(0.1)}), LABELS)
    assert only == {"positive": 1.0, "negative": 0.0}


def test_label_distribution_falls_back_to_the_text_without_logprobs() -> None:
    assert label_distribution(answer("negative"), LABELS) == {"positive": 0.0, "negative": 1.0}
    assert label_distribution(answer("  positive\n"), LABELS) == {"positive": 1.0, "negative": 0.0}
    assert label_distribution(answer("I think it is positive"), LABELS) is None
    # logprobs with no token of any label: the text decides
    assert label_distribution(answer("positive", {"the": -0.1, "a": -3.0}), LABELS) == {
        "positive": 1.0,
        "negative": 0.0,
    }


def test_an_error_completion_gives_no_distribution() -> None:
    failed = Completion(request_id="r", error="the teacher returned no completion", text="positive")
    assert label_distribution(failed, LABELS) is None


def test_combine_votes_averages_orders_so_position_bias_cancels() -> None:
    """A judge that says whatever is listed first with p=0.9 learns nothing about the text."""
    requests = label_requests("biased", "An ambiguous film.", LABELS, "Sentiment?", orders=2)
    first_listed = [["positive", "negative"], ["negative", "positive"]]
    completions = {}
    for request, order in zip(requests, first_listed, strict=True):
        top = {order[0]: math.log(0.9), order[1]: math.log(0.1)}
        completions[(request.id, 0)] = answer(order[0], top, request_id=request.id)
    votes = combine_votes(requests, completions, LABELS)
    vote = votes["biased"]
    assert vote.answered == 2
    assert vote.probability("positive") == pytest.approx(0.5) and vote.probability("negative") == pytest.approx(0.5)
    # with one order only, the same judge would look sure
    single = combine_votes(requests[:1], completions, LABELS)["biased"]
    assert single.label == "positive" and single.probability("positive") == pytest.approx(0.9)


def test_content_free_calibration_removes_a_label_prior_with_one_order() -> None:
    """A teacher that adds the same lean towards "positive" to every answer: one order, calibrated by
    its answers to content-free inputs, ranks the texts as the unbiased teacher would."""
    lean = 4.0  # the prior multiplies "positive" by 4 whatever the text says
    truth = {"good": 0.7, "bad": 0.3, "meh": 0.45}  # the unbiased P(positive) of each text

    def biased(p_positive: float, request_id: str) -> Completion:
        weight = lean * p_positive
        pos = weight / (weight + 1 - p_positive)
        return answer("positive", {"positive": math.log(pos), "negative": math.log(1 - pos)}, request_id=request_id)

    calibration = content_free_requests(LABELS, "Sentiment?", orders=1)
    assert [q.meta["judge_key"] for q in calibration] == [f"{CALIBRATION_KEY}{i}" for i in range(3)]
    assert [(q.messages or [])[-1].content.rsplit("Text: ", 1)[1] for q in calibration] == ["N/A", "[MASK]", ""]
    requests = [q for key in truth for q in label_requests(key, key, LABELS, "Sentiment?", orders=1)]
    completions = {(q.id, 0): biased(0.5, q.id) for q in calibration}
    completions.update({(q.id, 0): biased(truth[q.meta["judge_key"]], q.id) for q in requests})

    raw = combine_votes(requests, completions, LABELS)
    assert [raw[k].label for k in truth] == ["positive", "positive", "positive"]  # the lean wins every text
    prior = content_free_prior(calibration, completions, LABELS)
    assert prior[0]["positive"] == pytest.approx(0.8)  # 4 : 1
    calibrated = combine_votes(calibration + requests, completions, LABELS, prior)
    assert set(calibrated) == set(truth)  # calibration prompts are not votes
    assert [calibrated[k].label for k in truth] == ["positive", "negative", "negative"]
    for key, p in truth.items():
        assert calibrated[key].probability("positive") == pytest.approx(p)


def test_the_prior_fitted_on_seeds_removes_a_lean_that_content_free_inputs_would_miss() -> None:
    """Three labels; the teacher thinks every text with no content is a "plot" (0.8) but its real lean,
    on labelled texts, is towards "positive": the seeds see it, the content-free prior would not."""
    labels = ["negative", "positive", "plot"]

    def leaning(truth: str, strength: float = 0.6) -> dict[str, float]:
        base = {label: (strength if label == truth else (1 - strength) / 2) for label in labels}
        weights = {label: p * (3.0 if label == "positive" else 1.0) for label, p in base.items()}
        return {label: w / sum(weights.values()) for label, w in weights.items()}

    targets = [label for label in labels for _ in range(6)]
    prior = fitted_prior([leaning(t) for t in targets], targets, labels)
    assert prior is not None and max(prior, key=lambda k: prior[k]) == "positive"
    fixed = [calibrate(leaning(t), prior) for t in targets]
    assert all(max(d, key=lambda k: d[k]) == t for d, t in zip(fixed, targets, strict=True))
    raw_negative = leaning("negative")
    assert max(raw_negative, key=lambda k: raw_negative[k]) == "positive"  # the lean wins without the prior
    assert fitted_prior([leaning("plot")], ["plot"], labels) is None  # one label: nothing to fit


def test_seed_requests_take_the_first_seeds_per_label_by_id_and_key_them_for_calibration() -> None:
    seeds = [(f"id{i:02d}", f"text {i}", "positive" if i % 2 else "negative") for i in range(80)]
    requests, targets = seed_requests(seeds, LABELS, "Sentiment?", orders=1, first_token=True)
    assert len(requests) == 2 * SEEDS_PER_LABEL and len(targets) == 2 * SEEDS_PER_LABEL
    assert all(key.startswith(CALIBRATION_KEY) for key in targets)
    assert targets[f"{CALIBRATION_KEY}id00"] == "negative" and f"{CALIBRATION_KEY}id79" not in targets


def test_calibration_leaves_hard_answers_and_orders_without_a_prior_alone() -> None:
    assert calibrate({"positive": 1.0, "negative": 0.0}, None) == {"positive": 1.0, "negative": 0.0}
    (request,) = label_requests("k", "x", LABELS, "Sentiment?", orders=1)
    completions = {(request.id, 0): answer("negative")}  # no log-probabilities: nothing to divide
    votes = combine_votes([request], completions, LABELS, {0: {"positive": 0.01, "negative": 0.99}})
    assert votes["k"].probability("negative") == 1.0


def test_first_token_requests_ask_one_free_token_with_logprobs() -> None:
    (guided,) = label_requests("k", "x", LABELS, "Sentiment?", orders=1)
    (free,) = label_requests("k", "x", LABELS, "Sentiment?", orders=1, first_token=True)
    assert free.messages == guided.messages and free.id != guided.id  # other sampling: another cache entry
    assert free.sampling.max_tokens == 1 and free.sampling.choice is None and free.sampling.logprobs == TOP_LOGPROBS
    assert guided.sampling.choice == LABELS


def test_combine_votes_per_key_skips_errors_and_unusable_answers() -> None:
    texts = {"a": "A gorgeous film.", "b": "A dreadful film.", "c": "Something else."}
    requests = [q for key, text in texts.items() for q in label_requests(key, text, LABELS, "Sentiment?")]
    by_key = {key: [q for q in requests if q.meta["judge_key"] == key] for key in texts}
    completions = {
        # a: two confident orders
        (by_key["a"][0].id, 0): answer("positive", {"positive": math.log(0.8), "negative": math.log(0.2)}),
        (by_key["a"][1].id, 0): answer("positive", {"positive": math.log(0.6), "negative": math.log(0.4)}),
        # b: one order failed, the other answered by text only
        (by_key["b"][0].id, 0): Completion(request_id=by_key["b"][0].id, error="boom"),
        (by_key["b"][1].id, 0): answer("negative"),
        # c: nothing usable (and one order missing altogether)
        (by_key["c"][0].id, 0): answer("no idea"),
    }
    votes = combine_votes(requests, completions, LABELS)
    assert set(votes) == {"a", "b"}
    assert votes["a"].label == "positive" and votes["a"].probability("positive") == pytest.approx(0.7)
    assert votes["a"].answered == 2
    assert votes["b"] == LabelVote({"positive": 0.0, "negative": 1.0}, 1)
    assert votes["b"].probability("neutral") == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She pays 1,000 + 234 = 1,234 dollars.\n#### 1,234", 1234.0),
        ("#### $56", 56.0),
        ("#### -3.5", -3.5),
        ("12 apples and 30 pears.\n#### 42\nLet me know if you need anything else, e.g. 7 more.", 42.0),
        ("So 6 * 7 = 42, and the answer is \\boxed{42}.", 42.0),
        ("First 3, then 4: \\boxed{ 1,500 } apples in 2 boxes", 1500.0),
        ("Adding 3 and 4, so the answer is 7.", 7.0),
        ("It costs 2.50 dollars, so 10 cost 25.", 25.0),
        ("I cannot solve this problem.", None),
        ("", None),
    ],
)
def test_final_number(text: str, expected: float | None) -> None:
    assert final_number(text) == expected


def test_marker_beats_boxed_beats_last_number() -> None:
    assert final_number("\\boxed{5} ... #### 6 ... 7") == 6.0
    assert final_number("\\boxed{5} ... 7") == 5.0


def test_solve_request_and_same_number() -> None:
    request = solve_request("rec-9", "Tom has 3 boxes of 4 apples. How many?")
    assert request.meta == {"judge_key": "rec-9"}
    assert request.sampling.temperature == 0.0 and request.sampling.max_tokens == 384
    last = (request.messages or [])[-1].content
    assert last.endswith("Problem: Tom has 3 boxes of 4 apples. How many?") and "'#### <number>'" in last
    assert same_number(12.0, 12.0000000001) and same_number(0.0, 1e-9)
    assert not same_number(12.0, 12.5) and not same_number(1234.0, 123.4)
