"""parse-validity refuses refusals and chatter, and keeps reviews that merely start like them."""

from __future__ import annotations

import pytest

from distilforge.plugins.filters.validity import ParseValidityConfig, ParseValidityFilter
from distilforge.schemas import Record

LABELS = ["negative", "positive"]


def reason(text: str) -> str | None:
    return ParseValidityFilter(ParseValidityConfig()).check(Record(input=text, target="positive"), LABELS)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I cannot provide a review of that movie.",
        "I can’t help you execute the instruction.",  # typographic apostrophe, seen from Qwen2.5-Coder
        "Sorry, but I can't do that.",
        "I cannot write a review of a film I have not seen.",
        "As an AI, I do not have personal opinions about movies.",
    ],
)
def test_refusals_are_rejected_as_such(text: str) -> None:
    found = reason(text)
    assert found is not None and found.startswith("refusal:")


@pytest.mark.parametrize("text", ["Sure thing! Here's a new example:", "Certainly! Here is one that fits."])
def test_task_chatter_is_debris(text: str) -> None:
    found = reason(text)
    assert found is not None and found.startswith("debris:")


@pytest.mark.parametrize(
    "text",
    [
        "I can't help but smile through the whole thing.",
        "Sorry to say, the film drags in its second hour.",
        "Sure, the plot is thin, but the cast sells every scene.",
        "Of course the ending is predictable, and that is fine.",
    ],
)
def test_reviews_that_start_like_a_refusal_are_kept(text: str) -> None:
    assert reason(text) is None
