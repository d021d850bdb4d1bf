"""Every form a secret can take in an error text is scrubbed: raw, stripped, repr, percent, base64."""

from __future__ import annotations

import base64
from urllib.parse import quote

from distilforge.engine.api.toolkit.secrets import header_safe, scrub, secret_forms

KEY = "sk-live-ABCdef0123456789\n"


def test_every_form_of_the_key_is_scrubbed() -> None:
    core = KEY.strip()
    texts = [
        f"raw {KEY} end",
        f"header b'Bearer {core}\\n' rejected",  # the bytes repr httpx printed
        f"repr {KEY!r}",
        f"url ?key={quote(KEY, safe='')}",
        "basic " + base64.b64encode(f":{core}".encode()).decode(),
        "bearer64 " + base64.b64encode(f"Bearer {KEY}".encode()).decode(),
        "plain64 " + base64.b64encode(core.encode()).decode().rstrip("="),
    ]
    for text in texts:
        cleaned = scrub(text, [KEY])
        assert "***" in cleaned, text
        assert "ABCdef" not in cleaned and "QUJDZGVm" not in cleaned, cleaned


def test_scrub_leaves_other_text_alone_and_ignores_missing_or_tiny_secrets() -> None:
    assert scrub("nothing secret here", [KEY, None, ""]) == "nothing secret here"
    assert secret_forms("ab") == []  # too short to scrub without mangling ordinary words
    assert secret_forms(KEY) == sorted(secret_forms(KEY), key=len, reverse=True)


def test_header_safety() -> None:
    assert header_safe("sk-abc_DEF.123")
    assert not header_safe("sk-abc\n") and not header_safe("sk a") and not header_safe("sk-é")
