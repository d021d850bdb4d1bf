"""Ask a teacher to label texts or to solve problems: the judge filter and the teacher baseline.

Labels are read from the answer's first-token log-probabilities, normalised over the task's
labels. Small instruct models lean towards some labels whatever the text says (the 1.5B Qwen
scored 0.835 with one label order and 0.585 with the other on the same snippets), while their
log-probabilities carry the signal. Two remedies, which combine:

* **orders**: ask once per cyclic rotation of the order the prompt lists the labels in, and
  average (each order costs a full prompt);
* **calibration**: estimate the teacher's bias over the labels, per order, once per task, and
  divide it out of every answer. ``seeds`` fits it to the run's labelled seeds (the per-label
  log-odds shift that makes the teacher's answers on them most likely, a few dozen prompts once);
  ``content-free`` reads it from the answers to inputs that carry no content ("N/A", "[MASK]",
  ""; Zhao et al. 2021, "Calibrate Before Use"). Measured (``bench/label_calibration.py``), seeds
  calibration helps on every task tried; the content-free prior helps on two-label sentiment and
  hurts where "no content" looks like one of the labels (a plot summary, a neutral class).

A teacher that returns no log-probabilities gives its chosen label probability 1 (and is not
calibrated: a hard answer has no prior to divide).

Solving is for math: the teacher answers greedily, and the final number is read from
``#### N``, ``\\boxed{N}`` or, failing both, the last number of the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distilforge.schemas import ChatMessage, Completion, LabelReading, SamplingParams, TeacherRequest

if TYPE_CHECKING:
    from distilforge.engine.api.components import Teacher
    from distilforge.engine.api.context import RunContext

LABEL_SYSTEM = "You are a careful annotator. You answer with exactly one of the allowed labels."
# the text comes last, so every request of a run shares the prefix before it (vLLM's prefix cache)
LABEL_TEMPLATE = "Task: {task}\nAllowed labels: {options}. Answer with the label only.\n\nText: {text}"
SOLVE_SYSTEM = "You solve grade-school math word problems carefully."
SOLVE_TEMPLATE = (
    "Solve this problem. Reason step by step, then give the final answer on its own last line as"
    " '#### <number>'.\n\nProblem: {text}"
)
TOP_LOGPROBS = 20
# inputs that carry no content: their answers show the teacher's prior over the labels
CONTENT_FREE_TEXTS = ("N/A", "[MASK]", "")
CALIBRATION_KEY = "calibration:"
# seeds asked per label for the seeds calibration (the first by id: the same ones in every call)
SEEDS_PER_LABEL = 32
# probabilities below this are clipped before a log or a division (labels outside the top-k)
_FLOOR = 1e-6


@dataclass(frozen=True)
class LabelVote:
    """The teacher's label for one text: probabilities over the labels (summing to 1)."""

    probabilities: dict[str, float]
    answered: int  # orders that gave an answer (the rest were errors)

    @property
    def label(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    def probability(self, label: str) -> float:
        return self.probabilities.get(label, 0.0)


def label_orders(labels: Sequence[str], orders: int) -> list[list[str]]:
    """The first ``orders`` cyclic rotations of ``labels`` (at most one per label)."""
    count = max(1, min(orders, len(labels)))
    return [list(labels[i:]) + list(labels[:i]) for i in range(count)]


def label_requests(
    key: str,
    text: str,
    labels: Sequence[str],
    task: str,
    *,
    orders: int = 2,
    system: str = LABEL_SYSTEM,
    template: str = LABEL_TEMPLATE,
    max_tokens: int = 8,
    first_token: bool = False,
) -> list[TeacherRequest]:
    """One greedy request per label order, tagged with ``key`` and the order's index in its meta.

    Under guided choice by default; ``first_token`` asks for one free token instead (its
    log-probabilities are the same ones: the label is read from the first token either way,
    and the teacher skips the grammar and the label's remaining tokens)."""
    requests = []
    for index, order in enumerate(label_orders(labels, orders)):
        options = ", ".join(f'"{label}"' for label in order)
        content = template.format(task=task or "Classify the text.", text=text, options=options)
        sampling = (
            SamplingParams(temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS)
            if first_token
            else SamplingParams(temperature=0.0, max_tokens=max_tokens, choice=list(labels), logprobs=TOP_LOGPROBS)
        )
        requests.append(
            TeacherRequest(
                messages=[ChatMessage(role="system", content=system), ChatMessage(role="user", content=content)],
                sampling=sampling,
                meta={"judge_key": key, "label_order": index},
            )
        )
    return requests


def content_free_requests(labels: Sequence[str], task: str, **prompt: Any) -> list[TeacherRequest]:
    """The calibration prompts: each content-free text in each label order (``prompt`` as for
    :func:`label_requests`); their keys start with ``CALIBRATION_KEY``."""
    return [
        q
        for i, text in enumerate(CONTENT_FREE_TEXTS)
        for q in label_requests(f"{CALIBRATION_KEY}{i}", text, labels, task, **prompt)
    ]


def _first_token_scores(completion: Completion, labels: Sequence[str]) -> dict[str, float] | None:
    """Log-probability of each label's first token, from the first generated position."""
    if not completion.logprobs:
        return None
    first = completion.logprobs[0]
    candidates = dict(first.top)
    candidates.setdefault(first.token, first.logprob)
    scores: dict[str, float] = {}
    for label in labels:
        wanted = label.strip().lower()
        matches = [lp for token, lp in candidates.items() if token.strip() and wanted.startswith(token.strip().lower())]
        if matches:  # every first token that can start the label ("p", "pos", "positive"): their mass adds up
            top = max(matches)
            scores[label] = top + math.log(sum(math.exp(lp - top) for lp in matches))
    return scores or None


def label_distribution(completion: Completion, labels: Sequence[str]) -> dict[str, float] | None:
    """Probabilities over ``labels`` from one answer; None when the answer is an error or no label."""
    if not completion.ok:
        return None
    scores = _first_token_scores(completion, labels)
    if scores is None:
        chosen = completion.text.strip()
        return {label: float(label == chosen) for label in labels} if chosen in labels else None
    top = max(scores.values())
    weights = {label: math.exp(scores[label] - top) if label in scores else 0.0 for label in labels}
    total = sum(weights.values())
    return {label: weight / total for label, weight in weights.items()}


# per label order (its index in label_orders): the teacher's prior probability of each label
LabelPrior = dict[int, dict[str, float]]


def _distributions(
    requests: Sequence[TeacherRequest], completions: dict[tuple[str, int], Completion], labels: Sequence[str]
) -> Iterator[tuple[TeacherRequest, dict[str, float], bool]]:
    """Each request's label distribution, and whether it came from log-probabilities."""
    for request in requests:
        completion = completions.get((request.id, 0))
        distribution = label_distribution(completion, labels) if completion is not None else None
        if distribution is not None:
            assert completion is not None
            yield request, distribution, completion.logprobs is not None


def content_free_prior(
    requests: Sequence[TeacherRequest], completions: dict[tuple[str, int], Completion], labels: Sequence[str]
) -> LabelPrior:
    """The mean distribution of the content-free answers, per label order (orders whose answers
    carried no log-probabilities are left out: they stay uncalibrated)."""
    sums: dict[int, list[dict[str, float]]] = {}
    for request, distribution, soft in _distributions(requests, completions, labels):
        if soft and str(request.meta["judge_key"]).startswith(CALIBRATION_KEY):
            sums.setdefault(int(request.meta.get("label_order", 0)), []).append(distribution)
    return {
        order: {label: sum(d[label] for d in found) / len(found) for label in labels} for order, found in sums.items()
    }


def fitted_prior(
    distributions: Sequence[dict[str, float]], targets: Sequence[str], labels: Sequence[str], *, l2: float = 0.1
) -> dict[str, float] | None:
    """The prior that, divided out, makes the labelled answers most likely: per label a log-odds shift
    ``b`` maximising ``sum log softmax(log p + b)[y] - l2 * |b|^2`` (a concave problem; gradient ascent),
    returned as ``exp(-b)`` normalised. None without at least two labels among the targets."""
    if len(set(targets)) < 2:
        return None
    logs = [[math.log(max(d.get(label, 0.0), _FLOOR)) for label in labels] for d in distributions]
    wanted = [list(labels).index(t) for t in targets]
    bias = [0.0] * len(labels)
    for _ in range(300):
        grad = [-2.0 * l2 * b for b in bias]
        for row, y in zip(logs, wanted, strict=True):
            z = [v + b for v, b in zip(row, bias, strict=True)]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            total = sum(e)
            for k in range(len(labels)):
                grad[k] += (1.0 if k == y else 0.0) - e[k] / total
        bias = [b + g / len(logs) for b, g in zip(bias, grad, strict=True)]
    weights = [math.exp(-b) for b in bias]
    return {label: w / sum(weights) for label, w in zip(labels, weights, strict=True)}


def seeds_prior(
    requests: Sequence[TeacherRequest],
    completions: dict[tuple[str, int], Completion],
    labels: Sequence[str],
    targets: dict[str, str],
) -> LabelPrior:
    """Per label order, the :func:`fitted_prior` of the labelled calibration answers (``targets``:
    their keys, as :func:`seed_requests` made them, to their labels)."""
    by_order: dict[int, tuple[list[dict[str, float]], list[str]]] = {}
    for request, distribution, soft in _distributions(requests, completions, labels):
        key = str(request.meta["judge_key"])
        if soft and key in targets:
            found = by_order.setdefault(int(request.meta.get("label_order", 0)), ([], []))
            found[0].append(distribution)
            found[1].append(targets[key])
    priors = {order: fitted_prior(d, t, labels) for order, (d, t) in by_order.items()}
    return {order: prior for order, prior in priors.items() if prior is not None}


def seed_requests(
    seeds: Sequence[tuple[str, str, str]], labels: Sequence[str], task: str, **prompt: Any
) -> tuple[list[TeacherRequest], dict[str, str]]:
    """The calibration prompts for ``seeds`` (``(id, text, label)``, at most ``SEEDS_PER_LABEL`` per
    label, the first by id) and their keys' labels."""
    chosen: list[tuple[str, str, str]] = []
    for label in labels:
        chosen += sorted(s for s in seeds if s[2] == label)[:SEEDS_PER_LABEL]
    targets = {f"{CALIBRATION_KEY}{seed_id}": label for seed_id, _, label in chosen}
    requests = [
        q
        for seed_id, text, _ in chosen
        for q in label_requests(f"{CALIBRATION_KEY}{seed_id}", text, labels, task, **prompt)
    ]
    return requests, targets


def calibrate(distribution: dict[str, float], prior: dict[str, float] | None) -> dict[str, float]:
    """Divide the teacher's prior out of one answer's distribution and normalise again."""
    if not prior:
        return distribution
    weights = {label: p / max(prior.get(label, 0.0), _FLOOR) for label, p in distribution.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()} if total > 0 else distribution


def combine_votes(
    requests: Sequence[TeacherRequest],
    completions: dict[tuple[str, int], Completion],
    labels: Sequence[str],
    prior: LabelPrior | None = None,
) -> dict[str, LabelVote]:
    """Average each key's label distributions over its orders, each first divided by its order's
    ``prior`` when one is given; keys with no usable answer (and calibration prompts) are left out."""
    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for request, distribution, soft in _distributions(requests, completions, labels):
        key = str(request.meta["judge_key"])
        if key.startswith(CALIBRATION_KEY):
            continue
        if prior and soft:
            distribution = calibrate(distribution, prior.get(int(request.meta.get("label_order", 0))))
        total = sums.setdefault(key, dict.fromkeys(labels, 0.0))
        for label, p in distribution.items():
            total[label] += p
        counts[key] = counts.get(key, 0) + 1
    return {
        key: LabelVote({label: value / counts[key] for label, value in total.items()}, counts[key])
        for key, total in sums.items()
    }


def ask_labels(
    ctx: RunContext,
    texts: dict[str, str],
    labels: Sequence[str],
    reading: LabelReading,
    *,
    purpose: str,
    teacher: Teacher[Any] | None = None,
    system: str = LABEL_SYSTEM,
    template: str = LABEL_TEMPLATE,
    max_tokens: int = 8,
) -> dict[str, LabelVote]:
    """The teacher's label for each of ``texts`` (keyed as given), read as ``reading`` says, through
    the run's cache (the calibration prompts are asked once per task and then come from it)."""
    prompt: dict[str, Any] = {
        "orders": reading.orders,
        "first_token": reading.first_token,
        "system": system,
        "template": template,
        "max_tokens": max_tokens,
    }
    requests = [q for key, text in texts.items() for q in label_requests(key, text, labels, ctx.task, **prompt)]
    calibration: list[TeacherRequest] = []
    targets: dict[str, str] = {}
    if reading.calibration == "content-free":
        calibration = content_free_requests(labels, ctx.task, **prompt)
    elif reading.calibration == "seeds":
        seeds = [(r.id, r.input, r.target) for r in ctx.pool if r.origin != "synthetic" and r.target in labels]
        calibration, targets = seed_requests(seeds, labels, ctx.task, **prompt)
    completions = ctx.ask_teacher(calibration + requests, purpose=purpose, teacher=teacher)
    if reading.calibration == "content-free":
        prior: LabelPrior | None = content_free_prior(calibration, completions, labels)
    else:
        prior = seeds_prior(calibration, completions, labels, targets) if targets else None
    return combine_votes(requests, completions, labels, prior)


# --------------------------------------------------------------------------- math

_MARKED = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_BOXED = re.compile(r"\\boxed\{\s*\$?\s*(-?[\d,]*\.?\d+)")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*|-?\.\d+")


def final_number(text: str) -> float | None:
    """The final answer of a worked solution: ``#### N``, else ``\\boxed{N}``, else the last number."""
    for pattern in (_MARKED, _BOXED):
        found = pattern.findall(text)
        if found:
            return _to_float(found[-1])
    numbers = _NUMBER.findall(text)
    return _to_float(numbers[-1]) if numbers else None


def _to_float(token: str) -> float | None:
    try:
        return float(token.replace(",", "").rstrip("."))
    except ValueError:
        return None


def solve_request(
    key: str, problem: str, *, system: str = SOLVE_SYSTEM, template: str = SOLVE_TEMPLATE, max_tokens: int = 384
) -> TeacherRequest:
    return TeacherRequest(
        messages=[
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=template.format(text=problem)),
        ],
        sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens),
        meta={"judge_key": key},
    )


def same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
