"""Attribution elicitation: ask the teacher how each feature should move the prediction of a class.

Two ways to ask. ``scores`` (the paper's): the teacher answers one JSON object ``{feature name:
integer score in [-10, 10]}``: the sign is the direction (a higher value makes the class more
likely, or less), the magnitude the importance.
The request carries the JSON schema of that object, so a teacher with structured output (vLLM,
an OpenAI-compatible server) can only produce well-formed answers; the answer is still validated
with pydantic, because a server may ignore the schema and an answer may be cut off. A rejected
answer names what is wrong: not JSON, missing features, unknown features, a score out of range.

``contrast``: one short question per feature, "in cases of this class, compared with the other
cases, is the feature typically lower, similar or higher?", answered under guided choice with
log-probabilities, in several rotations of the answer order. The score is 10 x (P(higher) -
P(lower)). Small instruct models answer such a factual comparison far better than they apply
an abstract sign convention: the 1.5B Qwen scored Adelie penguins' flipper length +2.2 ("a
higher value makes Adelie more likely") under the JSON rule, while it knows Adelie are the
smallest of the three species.

``reasoned``: the same question per feature, but the teacher first reasons in a sentence or
three and ends with ``Answer: lower|similar|higher``; ``estimates`` samples per feature, each
scoring -10, 0 or +10, averaged. The small Qwen models say in prose what they cannot say in one
forced word: asked for one word, the 1.5B put 0.47-0.59 on either answer of "are Adelie
flippers shorter or longer", in prose it says Gentoo are "larger in size and weight".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, create_model

from distilforge.engine.api.toolkit.labelling import TOP_LOGPROBS, label_distribution, label_orders
from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest

SCORE_MIN, SCORE_MAX = -10, 10
DEFAULT_SYSTEM = "You are a careful domain expert. You answer with a single JSON object and nothing else."
CONTRAST_SYSTEM = "You are a careful domain expert. You answer with exactly one of the allowed words."
LOWER, SIMILAR, HIGHER = "lower", "similar", "higher"
CONTRAST_CHOICES = (LOWER, SIMILAR, HIGHER)
REASONED_SYSTEM = "You are a careful domain expert."
_FINAL_ANSWER = re.compile(r"answer\W{0,4}\s*(lower|similar|higher)\b", re.IGNORECASE)
_WORD = re.compile(r"\b(lower|similar|higher)\b", re.IGNORECASE)
_DIRECTION = {LOWER: -SCORE_MAX, SIMILAR: 0, HIGHER: SCORE_MAX}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class BadScores(ValueError):
    """The teacher's answer is not a valid score per feature; the message says why."""


def score_schema(features: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the answer: every feature a required integer property in [-10, 10], nothing else."""
    return {
        "type": "object",
        "properties": {name: {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX} for name in features},
        "required": list(features),
        "additionalProperties": False,
    }


def elicitation_messages(
    task: str, features: Sequence[dict[str, str]], label: str, system: str = DEFAULT_SYSTEM
) -> list[ChatMessage]:
    """The prompt for one class: the task, each feature with its description, the scoring rule."""
    listing = "\n".join(
        f"- {f['name']}: {f['description']}" if f.get("description") else f"- {f['name']}" for f in features
    )
    example = json.dumps({f["name"]: 0 for f in features[:2]})
    user = (
        f"Task: {task}\n\n"
        f"A classifier will be trained on these features:\n{listing}\n\n"
        f'For the class "{label}", give every feature an integer score from {SCORE_MIN} to {SCORE_MAX}. '
        f'The sign is the direction: positive if a higher value of the feature makes "{label}" more likely, '
        f"negative if it makes it less likely. The size is the importance: 0 means irrelevant, "
        f"{SCORE_MAX} means decisive.\n"
        f"Answer with one JSON object that maps each feature name, exactly as written above, to its score, "
        f"like {example[:-1]}, ...}}."
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


Score = Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)]


@lru_cache(maxsize=32)
def _score_model(features: tuple[str, ...]) -> type[BaseModel]:
    """A pydantic model with one required integer field per feature (aliased: names need not be identifiers)."""
    fields: dict[str, Any] = {f"f{i}": (Score, Field(..., alias=name)) for i, name in enumerate(features)}
    model: type[BaseModel] = create_model("AttributionScores", __config__=ConfigDict(extra="forbid"), **fields)
    return model


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object in an answer: the whole text, a fenced block, or the outermost ``{...}``."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    snippet = " ".join(text.split())[:80]
    raise BadScores(f"the answer is not a JSON object: {snippet!r}" if snippet else "the answer is empty")


def _names(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def parse_scores(text: str, features: Sequence[str]) -> dict[str, int]:
    """Validate one answer; return ``{feature: score}`` in feature order, or raise :class:`BadScores`."""
    answer = _json_object(text)
    missing = [name for name in features if name not in answer]
    unknown = [key for key in answer if key not in features]
    problems = []
    if missing:
        problems.append(f"missing features: {_names(missing)}")
    if unknown:
        problems.append(f"unknown features: {_names(unknown)}")
    if problems:
        raise BadScores("; ".join(problems))
    try:
        validated = _score_model(tuple(features)).model_validate(answer)
    except ValidationError as exc:
        bad = [
            f"{e['loc'][0]!r}: {e['msg'].lower()} (got {e['input']!r})"
            for e in exc.errors()
            if e.get("loc") and e["type"] != "missing"
        ]
        raise BadScores(f"invalid scores (integers in [{SCORE_MIN}, {SCORE_MAX}]): {'; '.join(bad[:6])}") from None
    values = validated.model_dump()
    return {name: int(values[f"f{i}"]) for i, name in enumerate(features)}


def average_scores(estimates: Sequence[dict[str, int]], features: Sequence[str]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation over the estimates, per feature (feature order)."""
    matrix = np.asarray([[e[name] for name in features] for e in estimates], dtype=np.float64)
    return matrix.mean(axis=0).tolist(), matrix.std(axis=0).tolist()


def _described(feature: dict[str, str]) -> str:
    return f"{feature['name']}: {feature['description']}" if feature.get("description") else feature["name"]


def _contrast_question(task: str, feature: dict[str, str], label: str, order: Sequence[str]) -> str:
    described = _described(feature)
    options = ", ".join(f'"{word}"' for word in order)
    # the feature comes last, so the questions of one class share the prefix before it (vLLM's prefix cache)
    return (
        f"Task: {task}\n"
        f'Compare cases of "{label}" with the other cases. Allowed answers: {options}. Answer with one word only.\n\n'
        f"Feature: {described}\n"
        f'In cases of "{label}", is this feature typically {order[0]}, {order[1]} or {order[2]} than in the other'
        " cases?"
    )


def contrast_requests(
    task: str, features: Sequence[dict[str, str]], label: str, orders: int, system: str = CONTRAST_SYSTEM
) -> list[TeacherRequest]:
    """One greedy guided-choice request per feature and answer order, for one class."""
    return [
        TeacherRequest(
            messages=[
                ChatMessage(role="system", content=system),
                ChatMessage(role="user", content=_contrast_question(task, feature, label, order)),
            ],
            sampling=SamplingParams(temperature=0.0, max_tokens=8, choice=list(order), logprobs=TOP_LOGPROBS),
            meta={"class": label, "feature": feature["name"]},
        )
        for feature in features
        for order in label_orders(CONTRAST_CHOICES, orders)
    ]


def parse_contrast(completion: Completion) -> float:
    """One answer's score, 10 x (P(higher) - P(lower)); raises :class:`BadScores` for an unusable answer."""
    distribution = label_distribution(completion, CONTRAST_CHOICES)
    if distribution is None:
        snippet = " ".join(completion.text.split())[:40]
        raise BadScores(f"not one of {list(CONTRAST_CHOICES)}: {snippet!r}" if snippet else "the answer is empty")
    return SCORE_MAX * (distribution[HIGHER] - distribution[LOWER])


def reasoned_requests(
    task: str,
    features: Sequence[dict[str, str]],
    label: str,
    *,
    samples: int,
    temperature: float,
    max_tokens: int,
    system: str = REASONED_SYSTEM,
) -> list[TeacherRequest]:
    """One request per feature, ``samples`` reasoned answers each, for one class."""
    return [
        TeacherRequest(
            messages=[
                ChatMessage(role="system", content=system),
                ChatMessage(
                    role="user",
                    content=(
                        f"Task: {task}\n\n"
                        f"Feature: {_described(feature)}\n"
                        f'In cases of "{label}", compared with the other cases, is this feature typically lower,'
                        " similar or higher? (For a 0/1 feature, higher means it is more often 1.)\n"
                        "Reason about what is known of this domain in one to three sentences, then give your"
                        " conclusion on the last line as exactly one of: Answer: lower / Answer: similar /"
                        " Answer: higher"
                    ),
                ),
            ],
            sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens, n=samples),
            meta={"class": label, "feature": feature["name"]},
        )
        for feature in features
    ]


def parse_reasoned(text: str) -> float:
    """The score of one reasoned answer as -10, 0 or +10: its last ``Answer: ...``, else the last of the
    three words in its last paragraph (small models often end "... is typically lower for X than ...")."""
    found = _FINAL_ANSWER.findall(text) or _WORD.findall(text.strip().rsplit("\n\n", 1)[-1])
    if not found:
        snippet = " ".join(text.split())[-60:]
        raise BadScores(f"no final 'Answer: lower|similar|higher': {snippet!r}" if snippet else "the answer is empty")
    return float(_DIRECTION[found[-1].lower()])
