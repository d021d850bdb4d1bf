"""Reading an OpenAI-compatible server's answers: Retry-After hints, choices, token counts and
log-probabilities (including vLLM's prompt log-probabilities)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from distilforge.schemas.records import TokenLogprob


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def empty_choice(choice: Any) -> bool:
    """A choice that carries no answer at all: no message content or text, and no finish reason."""
    if not isinstance(choice, dict):
        return True
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("text")
    return content is None and not choice.get("finish_reason")


def choice_token_count(choice: dict[str, Any], chat: bool) -> int | None:
    token_ids = choice.get("token_ids")
    if isinstance(token_ids, list):
        return len(token_ids)
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict):
        items = logprobs.get("content") if chat else logprobs.get("tokens")
        if isinstance(items, list):
            return len(items)
    return None


def token_logprobs(choice: dict[str, Any], chat: bool) -> list[TokenLogprob] | None:
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    out: list[TokenLogprob] = []
    if chat:
        for item in logprobs.get("content") or []:
            top = {t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or []}
            out.append(TokenLogprob(token=item["token"], logprob=float(item["logprob"]), top=top))
    else:
        tokens = logprobs.get("tokens") or []
        values = logprobs.get("token_logprobs") or []
        tops = logprobs.get("top_logprobs") or []
        for k, token in enumerate(tokens):
            value = values[k] if k < len(values) and values[k] is not None else float("nan")
            top = tops[k] if k < len(tops) and isinstance(tops[k], dict) else {}
            out.append(TokenLogprob(token=token, logprob=float(value), top={t: float(v) for t, v in top.items()}))
    return out


def prompt_logprobs_of(data: dict[str, Any], choices: list[dict[str, Any]]) -> list[float | None] | None:
    """vLLM's prompt logprobs: per position a dict keyed by token id; pick the actual token's."""
    source: dict[str, Any] = choices[0] if choices and choices[0].get("prompt_logprobs") else data
    entries = source.get("prompt_logprobs")
    token_ids = source.get("prompt_token_ids") or data.get("prompt_token_ids")
    if not isinstance(entries, list) or not isinstance(token_ids, list):
        return None
    out: list[float | None] = []
    for token_id, entry in zip(token_ids, entries, strict=False):
        if not isinstance(entry, dict):
            out.append(None)
            continue
        hit = entry.get(str(token_id))
        out.append(float(hit["logprob"]) if isinstance(hit, dict) and "logprob" in hit else None)
    return out
