"""The ``openai`` teacher: any OpenAI-compatible HTTP server (vLLM, llama.cpp, hosted APIs).

How it runs
    :meth:`OpenAITeacher.sample` is a plain generator, because the engine calls teachers from
    sync code. It starts an asyncio loop in a background thread; ``concurrency`` worker tasks
    pull calls from a shared iterator and push each finished :class:`Completion` onto a
    thread-safe queue, which the generator yields from at once. The engine caches each answer as
    it arrives, so a crash or Ctrl-C loses nothing already answered. Closing the generator early
    cancels the workers and joins the thread.

Failure policy (nothing is lost: every sample ends as a completion or as an error completion)
    * Retryable: timeouts, connection errors, HTTP 408/409/425/5xx, a 2xx body that is not the
      JSON we expect. Each costs one of ``max_retries``; the wait is exponential backoff with
      jitter (``backoff_base_s * 2**k``, capped at ``backoff_max_s``, drawn from its upper
      half), or the server's ``Retry-After`` when it sent one.
    * HTTP 429 means "the server is fine, you are too fast": it does not spend ``max_retries``.
      It starts a *shared* cooldown — no worker starts a new request until it has passed — of
      ``Retry-After`` seconds (or ``retry-after-ms``, or exponential backoff on the number of
      429s in a row when the server gave no hint). A separate budget,
      ``max_rate_limit_retries`` per call, stops a server that never stops saying 429 from
      stalling a run forever.
    * Any other 4xx (bad request, auth, unknown model) will not improve by retrying: the call
      fails at once.
    * ``Retry-After`` values are capped at ``retry_after_max_s``.

Secrets
    The API key is read from the environment variable named by ``api_key_env`` when a batch
    starts. It is never stored on the config or the teacher, only in the HTTP client's headers
    for the batch's lifetime, and it is scrubbed from every error text (a server may echo the
    header back). ``base_url`` may not carry credentials.

Requests
    Chat requests go to ``/chat/completions``, plain prompts to ``/completions`` (relative to
    ``base_url``, which includes the ``/v1``). ``n`` is sent to the server (``n_mode="server"``)
    or fanned out as ``n`` requests of one sample each (``"fan_out"``, for servers without
    ``n`` such as llama.cpp). ``json_schema`` becomes ``response_format`` of type
    ``json_schema``; ``choice`` and ``prompt_logprobs`` use vLLM's extra request fields
    (``structured_outputs: {"choice": [...]}`` since vLLM 0.11; set
    ``choice_param="guided_choice"`` for older servers). vLLM 0.32 ignores per-request
    structured-output settings such as ``disable_any_whitespace``: those are server flags
    (``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.toolkit.completions import error_completion
from distilforge.engine.api.toolkit.secrets import header_safe, scrub
from distilforge.plugins.teachers.openai_config import RETRYABLE_STATUS, OpenAITeacherConfig
from distilforge.plugins.teachers.openai_response import (
    choice_token_count,
    empty_choice,
    parse_retry_after,
    prompt_logprobs_of,
    token_logprobs,
)
from distilforge.schemas import Completion, TeacherRequest

log = logging.getLogger("distilforge.teachers.openai")


@dataclass(frozen=True)
class _Call:
    """One HTTP request's worth of work: samples ``first .. first+count-1`` of ``request``."""

    request: TeacherRequest
    first: int
    count: int


class _Failure(Exception):
    """One failed attempt. ``retry_after`` is the server's hint in seconds, if it sent one."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        rate_limited: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.rate_limited = rate_limited
        self.retry_after = retry_after


class _Batch:
    """The async state of one :meth:`OpenAITeacher.sample` call (lives in the loop thread)."""

    def __init__(self, teacher: OpenAITeacher, api_key: str | None, out: queue.Queue[Any]) -> None:
        self.teacher = teacher
        self.model_id = teacher.model_id
        self.config = teacher.config
        self.api_key = api_key
        self.secrets = [api_key, teacher.raw_api_key()]  # what is sent, and the variable as set
        self.out = out
        self.cooldown_until = 0.0  # loop.time() before which no worker starts a request
        self.consecutive_429 = 0

    # ------------------------------------------------------------------ helpers

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, drawn from the upper half of the window."""
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def cap(self, retry_after: float) -> float:
        return min(retry_after, self.config.retry_after_max_s)

    async def wait_cooldown(self) -> None:
        loop = asyncio.get_running_loop()
        while (remaining := self.cooldown_until - loop.time()) > 0:
            await asyncio.sleep(remaining)

    # ------------------------------------------------------------------ request building

    def body(self, call: _Call) -> tuple[str, dict[str, Any]]:
        request, sampling = call.request, call.request.sampling
        body: dict[str, Any] = {
            "model": self.config.model,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "n": call.count,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if request.messages is not None:
            path = "chat/completions"
            body["messages"] = [m.model_dump() for m in request.messages]
            if sampling.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = sampling.logprobs
        else:
            path = "completions"
            body["prompt"] = request.prompt
            if sampling.logprobs is not None:
                body["logprobs"] = sampling.logprobs
        if sampling.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": sampling.json_schema},
            }
        if sampling.choice is not None:
            if self.config.choice_param == "guided_choice":
                body["guided_choice"] = list(sampling.choice)
            else:
                body["structured_outputs"] = {"choice": list(sampling.choice)}
        if sampling.prompt_logprobs is not None:
            # vLLM extensions: prompt logprobs are keyed by token id, so ask for the ids too.
            body["prompt_logprobs"] = sampling.prompt_logprobs
            body["return_token_ids"] = True
        for key, value in self.config.extra_body.items():
            # One level deep: a dict here (say "structured_outputs") adds keys to the
            # request's own dict, such as its choice constraint, instead of replacing it.
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**value, **body[key]}
            else:
                body[key] = value
        return path, body

    # ------------------------------------------------------------------ one attempt

    async def attempt(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                response = await client.post(path, json=body)
        except (TimeoutError, httpx.TimeoutException):
            raise _Failure(f"timeout after {self.config.timeout_s:g}s", retryable=True) from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            # the request itself cannot be sent (an illegal header, a bad scheme): retrying cannot help
            raise _Failure(self.scrub(f"request not sent: {type(exc).__name__}: {exc}"), retryable=False) from None
        except httpx.TransportError as exc:
            raise _Failure(self.scrub(f"connection error: {type(exc).__name__}: {exc}"), retryable=True) from None
        status = response.status_code
        if status == 429:
            raise _Failure(
                "HTTP 429 (rate limited)",
                retryable=True,
                rate_limited=True,
                retry_after=parse_retry_after(response.headers),
            )
        if status >= 400:
            snippet = self.scrub(response.text[:300]).strip()
            reason = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
            retryable = status in RETRYABLE_STATUS or status >= 500
            raise _Failure(reason, retryable=retryable, retry_after=parse_retry_after(response.headers))
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Failure(f"bad JSON in HTTP {status} response: {exc}", retryable=True) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise _Failure(f"malformed response (HTTP {status}): no 'choices' list", retryable=True)
        if data["choices"] and all(empty_choice(c) for c in data["choices"]):
            # a model that stopped at once still says so with finish_reason "length" or content "";
            # no content at all in every choice is a server fault: retried, and never cached
            raise _Failure(f"empty completion (HTTP {status}): no content in any choice", retryable=True)
        return data

    # ------------------------------------------------------------------ one call, with retries

    async def run_call(self, client: httpx.AsyncClient, call: _Call) -> list[Completion]:
        path, body = self.body(call)
        loop = asyncio.get_running_loop()
        failures = 0
        rate_limited = 0
        while True:
            await self.wait_cooldown()
            try:
                data = await self.attempt(client, path, body)
            except _Failure as failure:
                attempts = failures + rate_limited + 1
                if failure.rate_limited:
                    rate_limited += 1
                    self.consecutive_429 += 1
                    if rate_limited > self.config.max_rate_limit_retries:
                        return self.errors(call, f"{failure.reason}; gave up after {attempts} attempts")
                    if failure.retry_after is not None:
                        delay = self.cap(failure.retry_after)
                    else:
                        delay = self.backoff(self.consecutive_429 - 1)
                    self.cooldown_until = max(self.cooldown_until, loop.time() + delay)
                    log.warning(
                        "request %s: %s; all workers pause %.2fs",
                        call.request.id,
                        failure.reason,
                        delay,
                    )
                    continue
                failures += 1
                if not failure.retryable or failures > self.config.max_retries:
                    return self.errors(call, f"{failure.reason} (after {attempts} attempts)")
                delay = self.backoff(failures - 1)
                if failure.retry_after is not None:
                    delay = max(delay, self.cap(failure.retry_after))
                log.warning(
                    "request %s: %s; retry %d/%d in %.2fs",
                    call.request.id,
                    failure.reason,
                    failures,
                    self.config.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.consecutive_429 = 0
            return self.parse(call, data)

    # ------------------------------------------------------------------ results

    def errors(self, call: _Call, reason: str) -> list[Completion]:
        reason = self.scrub(reason)
        log.error("request %s failed: %s", call.request.id, reason)
        indices = range(call.first, call.first + call.count)
        return error_completion(call.request, reason, model=self.model_id, indices=indices)

    def parse(self, call: _Call, data: dict[str, Any]) -> list[Completion]:
        chat = call.request.messages is not None
        choices: list[dict[str, Any]] = [c for c in data["choices"] if isinstance(c, dict)]
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        total_completion = int(usage.get("completion_tokens") or 0)
        prompt_logprobs = (
            prompt_logprobs_of(data, choices) if call.request.sampling.prompt_logprobs is not None else None
        )

        by_index: dict[int, dict[str, Any]] = {}
        for position, choice in enumerate(choices):
            index = choice.get("index", position)
            if isinstance(index, int) and 0 <= index < call.count and index not in by_index:
                by_index[index] = choice

        counted: dict[int, int] = {}
        for index, choice in by_index.items():
            n_tokens = choice_token_count(choice, chat)
            if n_tokens is not None:
                counted[index] = n_tokens
        # Servers report completion tokens summed over the n choices. When a choice does not say
        # how many tokens it has (no logprobs/token ids), the remainder is split evenly.
        uncounted = [i for i in by_index if i not in counted]
        if uncounted:
            rest = max(0, total_completion - sum(counted.values()))
            share, extra = divmod(rest, len(uncounted))
            for k, i in enumerate(sorted(uncounted)):
                counted[i] = share + (1 if k < extra else 0)

        out: list[Completion] = []
        for offset in range(call.count):
            picked = by_index.get(offset)
            if picked is None:
                out.extend(
                    self.errors(
                        _Call(call.request, call.first + offset, 1),
                        f"server returned {len(choices)} choices for n={call.count}",
                    )
                )
                continue
            choice = picked
            if chat:
                message = choice.get("message") or {}
                text = message.get("content") or ""
            else:
                text = choice.get("text") or ""
            out.append(
                Completion(
                    request_id=call.request.id,
                    sample_index=call.first + offset,
                    text=text,
                    finish_reason=choice.get("finish_reason"),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=counted.get(offset, 0),
                    logprobs=token_logprobs(choice, chat) if call.request.sampling.logprobs is not None else None,
                    prompt_logprobs=prompt_logprobs,
                    model=self.model_id,
                )
            )
        return out

    # ------------------------------------------------------------------ the batch

    async def run(self, calls: Iterator[_Call]) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        timeout = httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        limits = httpx.Limits(
            max_connections=self.config.concurrency,
            max_keepalive_connections=self.config.concurrency,
        )
        async with httpx.AsyncClient(
            base_url=self.config.base_url + "/", headers=headers, timeout=timeout, limits=limits
        ) as client:

            async def worker() -> None:
                # Workers share one iterator; next() never awaits, so no lock is needed.
                for call in calls:
                    try:
                        results = await self.run_call(client, call)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # a bug must not lose the call
                        results = self.errors(call, f"internal error: {type(exc).__name__}: {exc}")  # logs it
                    for completion in results:
                        self.out.put(completion)

            async with asyncio.TaskGroup() as group:
                for _ in range(self.config.concurrency):
                    group.create_task(worker())


_DONE = object()


class OpenAITeacher(Teacher[OpenAITeacherConfig]):
    @property
    def model_id(self) -> str:
        # Host and model name only: no scheme, port, path or anything secret. A server restarted
        # on another port still hits the same cache entries.
        return f"openai:{httpx.URL(self.config.base_url).host}/{self.config.model}"

    def __repr__(self) -> str:
        return f"OpenAITeacher(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def raw_api_key(self) -> str | None:
        """The variable's value exactly as set (for scrubbing: it may differ from what is sent)."""
        if not self.config.api_key_env:
            return None
        return os.environ.get(self.config.api_key_env) or None

    def _api_key(self) -> str | None:
        """The key to send: the variable's value without surrounding whitespace (a trailing newline from
        ``$(cat key.txt)`` is common); a key that still cannot go into a header is refused, by name only."""
        raw = self.raw_api_key()
        if raw is None:
            return None
        key = raw.strip()
        if not key or not header_safe(key):
            raise DistilforgeError(
                f"teacher.api_key_env: the value of ${self.config.api_key_env} has whitespace or control characters"
                " inside it, so no HTTP header can carry it; set the variable to the key alone"
            )
        if key != raw:
            log.warning("$%s: whitespace around the API key was removed", self.config.api_key_env)
        return key

    def _calls(self, requests: Sequence[TeacherRequest]) -> Iterator[_Call]:
        for request in requests:
            n = request.sampling.n
            if self.config.n_mode == "server":
                yield _Call(request, 0, n)
            else:
                for index in range(n):
                    yield _Call(request, index, 1)

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        """Yield every sample of every request as soon as it is answered or has failed for good."""
        if not requests:
            return
        out: queue.Queue[Any] = queue.Queue()
        state: dict[str, Any] = {}
        stop = threading.Event()
        batch = _Batch(self, self._api_key(), out)

        async def main() -> None:
            state["loop"] = asyncio.get_running_loop()
            state["task"] = asyncio.current_task()
            if stop.is_set():
                return
            await batch.run(self._calls(requests))

        def thread_main() -> None:
            try:
                asyncio.run(main())
            except asyncio.CancelledError:
                pass
            except BaseException as exc:
                out.put(exc)
            finally:
                out.put(_DONE)

        thread = threading.Thread(target=thread_main, name="distilforge-openai-teacher", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise RuntimeError(f"openai teacher failed: {batch.scrub(str(item))}") from None
                yield item
        finally:
            stop.set()
            loop, task = state.get("loop"), state.get("task")
            if thread.is_alive() and loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(timeout=30)
