"""Final answers of GSM-style worked solutions: the number after the last ``####``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_FINAL = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_NUMBER = re.compile(r"^\s*\$?\s*(-?[\d,]*\.?\d+)\s*$")
FINAL_LINE = re.compile(r"####\s*\$?\s*-?[\d,]*\.?\d+[^\n]*\n")


def final_answer(text: str) -> str | None:
    """The number after the last ``####`` in ``text``, commas removed; None if there is none."""
    matches = _FINAL.findall(text)
    return matches[-1].replace(",", "") if matches else None


def _number(text: str) -> Decimal | None:
    """The final ``#### N`` of ``text``, or ``text`` itself if it is a bare number."""
    raw = final_answer(text)
    if raw is None:
        bare = _NUMBER.match(text)
        raw = bare.group(1).replace(",", "") if bare else None
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def answers_match(prediction: str, target: str) -> bool:
    """Numeric comparison of the final answers (``1,234`` == ``1234.0``); False if either is missing."""
    a, b = _number(prediction), _number(target)
    return a is not None and b is not None and a == b
