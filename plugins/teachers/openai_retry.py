"""The ``openai`` teacher's waiting rules: backoff between retries and the shared 429 cool-down.

Plain asyncio and arithmetic, no HTTP: the SDK client itself runs with ``max_retries=0`` (see
``openai_client``), because its retry loop cannot express these rules — it spends one budget on
429s and failures alike, uses fixed backoff constants instead of the config's, gives up on a
``Retry-After`` above two minutes, and lets each concurrent request wait for its own 429 alone.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


class Failure(Exception):
    """One failed attempt. ``retry_after`` is the server's hint in seconds, if it sent one."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        rate_limited: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.rate_limited = rate_limited
        self.retry_after = retry_after


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, and the cap on a server's ``Retry-After``."""

    base_s: float
    max_s: float
    retry_after_max_s: float

    def delay(self, attempt: int) -> float:
        """``base_s * 2**attempt`` capped at ``max_s``, drawn from the upper half of that window."""
        ceiling = min(self.max_s, self.base_s * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def cap(self, retry_after: float) -> float:
        return min(retry_after, self.retry_after_max_s)


class SharedCooldown:
    """A 429 pauses the whole batch: no worker starts a request before the cool-down has passed.

    A 429 says "the server is fine, you are too fast", so every worker slowing down (not only the
    one that was told) is what helps. The pause lasts the server's ``Retry-After`` (capped) or,
    without a hint, a backoff on the number of 429s in a row; an answered request resets that count.
    Lives in the batch's event loop thread: no lock is needed.
    """

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.until = 0.0  # loop.time() before which no worker starts a request
        self.consecutive = 0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        while (remaining := self.until - loop.time()) > 0:
            await asyncio.sleep(remaining)

    def start(self, retry_after: float | None) -> float:
        """Extend the cool-down after a 429; returns its length in seconds from now."""
        self.consecutive += 1
        delay = self.backoff.cap(retry_after) if retry_after is not None else self.backoff.delay(self.consecutive - 1)
        self.until = max(self.until, asyncio.get_running_loop().time() + delay)
        return delay

    def answered(self) -> None:
        self.consecutive = 0
