"""Reading an OpenAI-compatible server's answers: Retry-After hints, and the SDK's response models
(choices, token counts, log-probabilities, vLLM's prompt log-probabilities).

The SDK builds its models without validation, so a server's odd answer arrives as it was sent:
fields may be ``None`` or of another type, and vLLM's extensions (``token_ids``,
``prompt_logprobs``, ``prompt_token_ids``) sit in ``model_extra``. Everything here checks types.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from openai import BaseModel as SDKModel
from openai.types import Completion as TextCompletion
from openai.types import CompletionChoice as TextChoice
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice as ChatChoice

from distilforge.schemas.records import TokenLogprob

Answer = ChatCompletion | TextCompletion
AnswerChoice = ChatChoice | TextChoice


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date.

    ``headers`` must look names up case-insensitively, as ``httpx``/``httpx2`` headers do."""
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


def extra(model: SDKModel, name: str) -> Any:
    """A field the SDK does not know (a vLLM extension), or ``None``."""
    return (model.model_extra or {}).get(name)


def choices_of(answer: object, chat: bool) -> list[AnswerChoice] | None:
    """The answer's choices, or ``None`` when the body is not a completion with a ``choices`` list.
    Entries that are not choice objects (a server fault) are dropped."""
    expected = ChatCompletion if chat else TextCompletion
    if not isinstance(answer, expected) or not isinstance(answer.choices, list):
        return None
    kind = ChatChoice if chat else TextChoice
    return [c for c in answer.choices if isinstance(c, kind)]


def choice_text(choice: AnswerChoice) -> str | None:
    if isinstance(choice, ChatChoice):
        message = choice.message
        content = message.content if isinstance(message, SDKModel) else None
    else:
        content = choice.text
    return content if isinstance(content, str) else None


def empty_choice(choice: AnswerChoice) -> bool:
    """A choice that carries no answer at all: no message content or text, and no finish reason."""
    return choice_text(choice) is None and not choice.finish_reason


def choice_token_count(choice: AnswerChoice) -> int | None:
    token_ids = extra(choice, "token_ids")
    if isinstance(token_ids, list):
        return len(token_ids)
    logprobs = choice.logprobs
    if logprobs is None:
        return None
    items = getattr(logprobs, "content" if isinstance(choice, ChatChoice) else "tokens", None)
    return len(items) if isinstance(items, list) else None


def token_logprobs(choice: AnswerChoice) -> list[TokenLogprob] | None:
    logprobs = choice.logprobs
    if logprobs is None:
        return None
    out: list[TokenLogprob] = []
    if isinstance(choice, ChatChoice):
        for item in getattr(logprobs, "content", None) or []:
            top = {t.token: float(t.logprob) for t in item.top_logprobs or []}
            out.append(TokenLogprob(token=item.token, logprob=float(item.logprob), top=top))
        return out
    tokens = getattr(logprobs, "tokens", None) or []
    values = getattr(logprobs, "token_logprobs", None) or []
    tops = getattr(logprobs, "top_logprobs", None) or []
    for k, token in enumerate(tokens):
        value = values[k] if k < len(values) and values[k] is not None else float("nan")
        top = tops[k] if k < len(tops) and isinstance(tops[k], dict) else {}
        out.append(TokenLogprob(token=token, logprob=float(value), top={t: float(v) for t, v in top.items()}))
    return out


def prompt_logprobs_of(answer: Answer, choices: list[AnswerChoice]) -> list[float | None] | None:
    """vLLM's prompt logprobs: per position a dict keyed by token id; pick the actual token's.
    They are on the first choice (completions) or on the answer itself (chat)."""
    source: SDKModel = choices[0] if choices and extra(choices[0], "prompt_logprobs") else answer
    entries = extra(source, "prompt_logprobs")
    token_ids = extra(source, "prompt_token_ids") or extra(answer, "prompt_token_ids")
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


def usage_of(answer: Answer) -> tuple[int, int]:
    """(prompt tokens, completion tokens summed over the choices); 0 where the server said nothing."""
    usage = answer.usage
    if usage is None:
        return 0, 0
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
