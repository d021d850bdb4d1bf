"""The ``openai`` teacher: any OpenAI-compatible HTTP server (vLLM, llama.cpp, hosted APIs).

How it runs
    :meth:`OpenAITeacher.sample` is a plain generator, because the engine calls teachers from
    sync code. It starts an asyncio loop in a background thread; ``concurrency`` worker tasks
    pull calls from a shared iterator and push each finished :class:`Completion` onto a
    thread-safe queue, which the generator yields from at once. The engine caches each answer as
    it arrives, so a crash or Ctrl-C loses nothing already answered. Closing the generator early
    cancels the workers and joins the thread.

    The requests go through the official ``openai`` SDK (``AsyncOpenAI``), imported at the first
    batch (``openai_client``: what the SDK does there and what stays ours). This module, and so
    building the teacher and its ``model_id``, imports no HTTP stack.

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
    These rules live in ``openai_retry``; the SDK's own retries are off (``max_retries=0``).

Secrets
    The API key is read from the environment variable named by ``api_key_env`` when a batch
    starts. It is never stored on the config or the teacher, only in the ``Authorization``
    header each request of the batch sets, and it is scrubbed from every error text (a server may
    echo the header back). The SDK never reads a key itself: without one no ``Authorization``
    header is sent, even when ``$OPENAI_API_KEY`` is set. ``base_url`` may not carry credentials.

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
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from distilforge.engine.api.components import Teacher
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.toolkit.secrets import header_safe, scrub
from distilforge.plugins.teachers.openai_config import OpenAITeacherConfig
from distilforge.schemas import Completion, TeacherRequest

log = logging.getLogger("distilforge.teachers.openai")


_DONE = object()


class OpenAITeacher(Teacher[OpenAITeacherConfig]):
    @property
    def model_id(self) -> str:
        # Host and model name only: no scheme, port, path or anything secret. A server restarted
        # on another port still hits the same cache entries.
        return f"openai:{urlsplit(self.config.base_url).hostname}/{self.config.model}"

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

    def sample(self, requests: Sequence[TeacherRequest]) -> Iterator[Completion]:
        """Yield every sample of every request as soon as it is answered or has failed for good."""
        if not requests:
            return
        out: queue.Queue[Any] = queue.Queue()
        state: dict[str, Any] = {}
        stop = threading.Event()
        api_key = self._api_key()  # refuses a key no header can carry before anything is imported or sent
        secrets = [api_key, self.raw_api_key()]  # what is sent, and the variable as set

        # The SDK is imported here, at the first batch: every other command starts without it.
        from distilforge.plugins.teachers.openai_client import Batch, calls_of

        batch = Batch(self.config, self.model_id, api_key, secrets, out)

        async def main() -> None:
            state["loop"] = asyncio.get_running_loop()
            state["task"] = asyncio.current_task()
            if stop.is_set():
                return
            await batch.run(calls_of(requests, self.config.n_mode))

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
                    raise RuntimeError(f"openai teacher failed: {scrub(str(item), secrets)}") from None
                yield item
        finally:
            stop.set()
            loop, task = state.get("loop"), state.get("task")
            if thread.is_alive() and loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(timeout=30)
