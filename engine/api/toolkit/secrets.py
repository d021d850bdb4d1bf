"""Keeping a secret (an API key) out of every text the engine writes: logs, rejects, errors.

A secret can surface in other forms than its raw value: a library's error may show the header
``b'Bearer sk-...\\n'`` (a repr, with the newline escaped), a URL percent-encodes it, a Basic
auth header base64-encodes it. :func:`secret_forms` lists the forms worth looking for, and
:func:`scrub` replaces every one of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote

PLACEHOLDER = "***"
_MIN_LENGTH = 6  # a shorter "secret" would scrub ordinary words (and is no API key)


def secret_forms(secret: str) -> list[str]:
    """The raw secret, its stripped core, its reprs, percent- and base64-encodings; longest first."""
    forms: set[str] = set()
    if len(secret.strip()) < _MIN_LENGTH:
        return []
    for value in {secret, secret.strip()}:
        forms.update({value, repr(value)[1:-1], repr(value.encode())[2:-1], quote(value, safe="")})
        for wrapped in (value, f"Bearer {value}", f":{value}"):
            encoded = base64.b64encode(wrapped.encode()).decode()
            forms.update({encoded, encoded.rstrip("="), base64.urlsafe_b64encode(wrapped.encode()).decode()})
    return sorted((f for f in forms if len(f) >= _MIN_LENGTH), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                text = text.replace(form, PLACEHOLDER)
    return text


def header_safe(secret: str) -> bool:
    """True when ``secret`` can go into an HTTP header as is: visible ASCII only, no whitespace."""
    return secret.isascii() and secret.isprintable() and not any(ch.isspace() for ch in secret)
