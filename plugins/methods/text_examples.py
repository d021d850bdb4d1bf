"""Reading one new text example out of a teacher's answer, and the budget for writing one
(shared by the text methods).

Small teachers wrap the example in chatter ("Example 2: ...", quotes, a trailing
"Label: positive", a second paragraph of explanation). The example is the first paragraph with
such a prefix and quotes removed; anything that cannot be a complete, new example is refused
with a reason, which lands in ``rejects.jsonl``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_PREFIX = re.compile(r"^\s*(new example|example|text|review|sentence|question)\s*\d*\s*[:\-]\s*", re.I)


class BadAnswer(ValueError):
    """The answer holds no usable example; ``str(error)`` is the reject reason."""


def normalise(text: str) -> str:
    """Casefolded words only: two texts that differ in punctuation and spacing compare equal."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def echoes(candidate: str, instruction: str, words: int = 5) -> bool:
    """Whether ``candidate`` repeats ``words`` consecutive words of ``instruction``."""
    said = normalise(instruction).split()
    grams = {tuple(said[i : i + words]) for i in range(len(said) - words + 1)}
    got = normalise(candidate).split()
    return any(tuple(got[i : i + words]) in grams for i in range(len(got) - words + 1))


def extract_example(text: str, *, truncated: bool, min_chars: int, original: str = "", instruction: str = "") -> str:
    """The example in ``text``, or :class:`BadAnswer` saying why there is none.

    ``truncated`` (the answer hit ``max_tokens``) refuses only an answer whose example itself was
    cut: chatter after a complete first paragraph does not matter. ``original`` is the example the
    teacher was shown; a copy of it is refused. An answer that repeats five words in a row of
    ``instruction`` (the request it was given) talks about the task instead of doing it.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n|\n(?=label\s*:)", text.strip(), flags=re.I) if p.strip()]
    if not paragraphs:
        raise BadAnswer("empty answer")
    if truncated and len(paragraphs) == 1:
        raise BadAnswer("truncated: the answer hit max_tokens")
    candidate = _PREFIX.sub("", paragraphs[0]).strip().strip('"“”').strip()
    candidate = " ".join(candidate.split())
    if len(candidate) < min_chars:
        raise BadAnswer(f"too short ({len(candidate)} chars)")
    if original and normalise(candidate) == normalise(original):
        raise BadAnswer("copied the original example")
    if instruction and echoes(candidate, instruction):
        raise BadAnswer("echoes the instruction instead of writing an example")
    return candidate


def answer_budget(seed_inputs: Sequence[str], floor: int) -> int:
    """Tokens for one new example: 1.5x the longest seed's (at ~4 characters a token), at least
    ``floor``. A fixed budget cut most news-length examples off mid-sentence."""
    longest = max((len(t) for t in seed_inputs), default=0)
    return max(floor, math.ceil(1.5 * longest / 4) + 16)
