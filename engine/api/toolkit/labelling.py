"""Ask a teacher to label texts or to solve problems: the judge filter and the teacher baseline.

Labels are read from the answer's first-token log-probabilities under guided choice, normalised
over the task's labels, and averaged over cyclic rotations of the order the prompt lists them
in: small instruct models lean towards one position (the 1.5B Qwen scored 0.835 with one order
and 0.585 with the other on the same snippets), while their log-probabilities carry the signal
in both. A teacher that returns no log-probabilities gives its chosen label probability 1.

Solving is for math: the teacher answers greedily, and the final number is read from
``#### N``, ``\\boxed{N}`` or, failing both, the last number of the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest

LABEL_SYSTEM = "You are a careful annotator. You answer with exactly one of the allowed labels."
# the text comes last, so every request of a run shares the prefix before it (vLLM's prefix cache)
LABEL_TEMPLATE = "Task: {task}\nAllowed labels: {options}. Answer with the label only.\n\nText: {text}"
SOLVE_SYSTEM = "You solve grade-school math word problems carefully."
SOLVE_TEMPLATE = (
    "Solve this problem. Reason step by step, then give the final answer on its own last line as"
    " '#### <number>'.\n\nProblem: {text}"
)
TOP_LOGPROBS = 20


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
) -> list[TeacherRequest]:
    """One greedy guided-choice request per label order, each tagged with ``key`` in its meta."""
    requests = []
    for order in label_orders(labels, orders):
        options = ", ".join(f'"{label}"' for label in order)
        content = template.format(task=task or "Classify the text.", text=text, options=options)
        requests.append(
            TeacherRequest(
                messages=[ChatMessage(role="system", content=system), ChatMessage(role="user", content=content)],
                sampling=SamplingParams(
                    temperature=0.0, max_tokens=max_tokens, choice=list(labels), logprobs=TOP_LOGPROBS
                ),
                meta={"judge_key": key},
            )
        )
    return requests


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


def combine_votes(
    requests: Sequence[TeacherRequest], completions: dict[tuple[str, int], Completion], labels: Sequence[str]
) -> dict[str, LabelVote]:
    """Average each key's label distributions over its orders; keys with no usable answer are left out."""
    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for request in requests:
        completion = completions.get((request.id, 0))
        distribution = label_distribution(completion, labels) if completion is not None else None
        if distribution is None:
            continue
        key = str(request.meta["judge_key"])
        total = sums.setdefault(key, dict.fromkeys(labels, 0.0))
        for label, p in distribution.items():
            total[label] += p
        counts[key] = counts.get(key, 0) + 1
    return {
        key: LabelVote({label: value / counts[key] for label, value in total.items()}, counts[key])
        for key, total in sums.items()
    }


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
