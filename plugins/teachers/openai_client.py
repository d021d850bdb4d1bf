"""One batch of the ``openai`` teacher on the official ``openai`` SDK (``AsyncOpenAI``).

Imported only when a batch starts (the SDK takes about a second to import), never at start-up.

What the SDK does
    The HTTP client and its connection pool (``DefaultAsyncHttpx2Client``, sized to
    ``concurrency``), the request: endpoints, parameters, JSON, headers; the connect and read
    timeouts; the status-code-to-exception mapping (``APIStatusError`` and its subclasses,
    ``APIConnectionError``, ``APITimeoutError``); and the response models (``ChatCompletion``,
    ``Completion``), read through ``with_raw_response`` so that a body that is not JSON is told
    apart from a failed request.

What stays here, and why
    * Retries: the client has ``max_retries=0`` and :meth:`Batch.run_call` retries. The SDK's own
      loop counts 429s against the same budget as real failures, has fixed backoff constants
      (the config has ``backoff_base_s``/``backoff_max_s``), refuses a ``Retry-After`` over two
      minutes (the config caps it at ``retry_after_max_s``), does not retry 425 and cannot retry a
      2xx whose body is bad JSON or holds no content at all.
    * The shared 429 cool-down (:class:`~.openai_retry.SharedCooldown`): the SDK has none.
    * Bounded concurrency: ``concurrency`` worker tasks, so at most that many requests in flight
      (the pool has as many connections); the SDK has no bound of its own.
    * A total time limit per attempt (``timeout_s``, with ``asyncio.timeout``): the SDK's timeouts
      are per phase, so a server trickling bytes could hold a request forever.
    * Who decides the ``Authorization`` header: every request sets it (``Bearer <key>``, or
      omitted when there is no key). Left to itself the SDK would read ``$OPENAI_API_KEY`` when
      given no key (and send it to whatever server ``base_url`` names), refuse to start without
      one, and let ``$OPENAI_CUSTOM_HEADERS`` replace it. It gets a placeholder key that is never
      sent. ``OpenAI-Organization``/``OpenAI-Project`` are omitted too: only the config decides
      what is sent.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from distilforge.engine.api.toolkit.completions import error_completion
from distilforge.engine.api.toolkit.secrets import scrub
from distilforge.plugins.teachers.openai_config import RETRYABLE_STATUS, OpenAITeacherConfig
from distilforge.plugins.teachers.openai_response import (
    Answer,
    choice_text,
    choice_token_count,
    choices_of,
    empty_choice,
    parse_retry_after,
    prompt_logprobs_of,
    token_logprobs,
    usage_of,
)
from distilforge.plugins.teachers.openai_retry import Backoff, Failure, SharedCooldown
from distilforge.schemas import Completion, TeacherRequest

log = logging.getLogger("distilforge.teachers.openai")

# The SDK will not start without a key; this one is never sent (each request sets Authorization).
_UNSENT_KEY = "unused-each-request-sets-its-own-authorization"
_NOT_SENT_BY_US = ("OpenAI-Organization", "OpenAI-Project")


@dataclass(frozen=True)
class Call:
    """One HTTP request's worth of work: samples ``first .. first+count-1`` of ``request``."""

    request: TeacherRequest
    first: int
    count: int


def calls_of(requests: Sequence[TeacherRequest], n_mode: str) -> Iterator[Call]:
    """``n`` samples as one request (``"server"``) or as ``n`` requests of one (``"fan_out"``)."""
    for request in requests:
        n = request.sampling.n
        if n_mode == "server":
            yield Call(request, 0, n)
        else:
            for index in range(n):
                yield Call(request, index, 1)


class Batch:
    """The async state of one ``OpenAITeacher.sample`` call (lives in the loop thread)."""

    def __init__(
        self,
        config: OpenAITeacherConfig,
        model_id: str,
        api_key: str | None,
        secrets: Sequence[str | None],
        out: queue.Queue[Any],
    ) -> None:
        self.config = config
        self.model_id = model_id
        self.secrets = list(secrets)
        self.out = out
        self.backoff = Backoff(config.backoff_base_s, config.backoff_max_s, config.retry_after_max_s)
        self.cooldown = SharedCooldown(self.backoff)
        # sent with every request, over anything the SDK would add from the environment
        headers: dict[str, str | openai.Omit] = {name: openai.omit for name in _NOT_SENT_BY_US}
        headers["Authorization"] = f"Bearer {api_key}" if api_key else openai.omit
        self.headers = headers

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    # ------------------------------------------------------------------ request building

    def arguments(self, call: Call) -> dict[str, Any]:
        """Keyword arguments for ``create``: the standard fields, the rest in ``extra_body``."""
        request, sampling = call.request, call.request.sampling
        chat = request.messages is not None
        fields: dict[str, Any] = {
            "model": self.config.model,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "n": call.count,
        }
        if sampling.stop:
            fields["stop"] = list(sampling.stop)
        if chat:
            fields["messages"] = [m.model_dump() for m in request.messages]
            if sampling.logprobs is not None:
                fields["logprobs"] = True
                fields["top_logprobs"] = sampling.logprobs
        else:
            fields["prompt"] = request.prompt
            if sampling.logprobs is not None:
                fields["logprobs"] = sampling.logprobs
        extensions: dict[str, Any] = {}
        if sampling.json_schema is not None:
            # a parameter of the SDK's chat completions; for plain prompts a vLLM extension
            (fields if chat else extensions)["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": sampling.json_schema},
            }
        if sampling.choice is not None:
            if self.config.choice_param == "guided_choice":
                extensions["guided_choice"] = list(sampling.choice)
            else:
                extensions["structured_outputs"] = {"choice": list(sampling.choice)}
        if sampling.prompt_logprobs is not None:
            # vLLM extensions: prompt logprobs are keyed by token id, so ask for the ids too.
            extensions["prompt_logprobs"] = sampling.prompt_logprobs
            extensions["return_token_ids"] = True
        for key, value in self.config.extra_body.items():
            # One level deep: a dict here (say "structured_outputs") adds keys to the
            # request's own dict, such as its choice constraint, instead of replacing it.
            own = extensions.get(key, fields.get(key))
            extensions[key] = {**value, **own} if isinstance(value, dict) and isinstance(own, dict) else value
        return {**fields, "extra_body": extensions, "extra_headers": self.headers}

    # ------------------------------------------------------------------ one attempt

    async def attempt(self, client: openai.AsyncOpenAI, chat: bool, arguments: dict[str, Any]) -> Answer:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                if chat:
                    raw: Any = await client.chat.completions.with_raw_response.create(**arguments)
                else:
                    raw = await client.completions.with_raw_response.create(**arguments)
        except (TimeoutError, openai.APITimeoutError):
            raise Failure(f"timeout after {self.config.timeout_s:g}s", retryable=True) from None
        except openai.APIStatusError as exc:
            raise self.status_failure(exc.response) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            detail = f"{type(cause).__name__}: {cause}"
            if isinstance(cause, (httpx2.LocalProtocolError, httpx2.UnsupportedProtocol)):
                # the request itself cannot be sent (an illegal header, a bad scheme): retrying cannot help
                raise Failure(self.scrub(f"request not sent: {detail}"), retryable=False) from None
            raise Failure(self.scrub(f"connection error: {detail}"), retryable=True) from None
        status = raw.status_code
        try:
            answer = raw.parse()
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            raise Failure(f"bad JSON in HTTP {status} response: {exc}", retryable=True) from None
        choices = choices_of(answer, chat)
        if choices is None:
            raise Failure(f"malformed response (HTTP {status}): no 'choices' list", retryable=True)
        if choices and all(empty_choice(c) for c in choices):
            # a model that stopped at once still says so with finish_reason "length" or content "";
            # no content at all in every choice is a server fault: retried, and never cached
            raise Failure(f"empty completion (HTTP {status}): no content in any choice", retryable=True)
        return answer

    def status_failure(self, response: httpx2.Response) -> Failure:
        status = response.status_code
        retry_after = parse_retry_after(response.headers)
        if status == 429:
            return Failure("HTTP 429 (rate limited)", retryable=True, rate_limited=True, retry_after=retry_after)
        snippet = self.scrub(response.text[:300]).strip()
        reason = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
        retryable = status in RETRYABLE_STATUS or status >= 500
        return Failure(reason, retryable=retryable, retry_after=retry_after)

    # ------------------------------------------------------------------ one call, with retries

    async def run_call(self, client: openai.AsyncOpenAI, call: Call) -> list[Completion]:
        chat = call.request.messages is not None
        arguments = self.arguments(call)
        failures = 0
        rate_limited = 0
        while True:
            await self.cooldown.wait()
            try:
                answer = await self.attempt(client, chat, arguments)
            except Failure as failure:
                attempts = failures + rate_limited + 1
                if failure.rate_limited:
                    # a 429 does not spend max_retries: it has its own budget and pauses every worker
                    rate_limited += 1
                    if rate_limited > self.config.max_rate_limit_retries:
                        return self.errors(call, f"{failure.reason}; gave up after {attempts} attempts")
                    delay = self.cooldown.start(failure.retry_after)
                    log.warning("request %s: %s; all workers pause %.2fs", call.request.id, failure.reason, delay)
                    continue
                failures += 1
                if not failure.retryable or failures > self.config.max_retries:
                    return self.errors(call, f"{failure.reason} (after {attempts} attempts)")
                delay = self.backoff.delay(failures - 1)
                if failure.retry_after is not None:
                    delay = max(delay, self.backoff.cap(failure.retry_after))
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
            self.cooldown.answered()
            return self.completions(call, answer)

    # ------------------------------------------------------------------ results

    def errors(self, call: Call, reason: str) -> list[Completion]:
        reason = self.scrub(reason)
        log.error("request %s failed: %s", call.request.id, reason)
        indices = range(call.first, call.first + call.count)
        return error_completion(call.request, reason, model=self.model_id, indices=indices)

    def completions(self, call: Call, answer: Answer) -> list[Completion]:
        sampling = call.request.sampling
        choices = choices_of(answer, call.request.messages is not None) or []
        prompt_tokens, total_completion = usage_of(answer)
        prompt_logprobs = prompt_logprobs_of(answer, choices) if sampling.prompt_logprobs is not None else None

        by_index: dict[int, Any] = {}
        for position, choice in enumerate(choices):
            index = choice.index if isinstance(choice.index, int) else position
            if 0 <= index < call.count and index not in by_index:
                by_index[index] = choice

        counted: dict[int, int] = {}
        for index, choice in by_index.items():
            n_tokens = choice_token_count(choice)
            if n_tokens is not None:
                counted[index] = n_tokens
        # Servers report completion tokens summed over the n choices. When a choice does not say
        # how many tokens it has (no logprobs/token ids), the remainder is split evenly.
        uncounted = sorted(i for i in by_index if i not in counted)
        if uncounted:
            share, extra = divmod(max(0, total_completion - sum(counted.values())), len(uncounted))
            for k, i in enumerate(uncounted):
                counted[i] = share + (1 if k < extra else 0)

        out: list[Completion] = []
        for offset in range(call.count):
            choice = by_index.get(offset)
            if choice is None:
                missing = Call(call.request, call.first + offset, 1)
                out.extend(self.errors(missing, f"server returned {len(choices)} choices for n={call.count}"))
                continue
            out.append(
                Completion(
                    request_id=call.request.id,
                    sample_index=call.first + offset,
                    text=choice_text(choice) or "",
                    finish_reason=choice.finish_reason,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=counted.get(offset, 0),
                    logprobs=token_logprobs(choice) if sampling.logprobs is not None else None,
                    prompt_logprobs=prompt_logprobs,
                    model=self.model_id,
                )
            )
        return out

    # ------------------------------------------------------------------ the batch

    async def run(self, calls: Iterator[Call]) -> None:
        timeout = httpx2.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        limits = httpx2.Limits(
            max_connections=self.config.concurrency,
            max_keepalive_connections=self.config.concurrency,
        )
        async with openai.AsyncOpenAI(
            api_key=_UNSENT_KEY,
            base_url=self.config.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpx2Client(timeout=timeout, limits=limits),
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
