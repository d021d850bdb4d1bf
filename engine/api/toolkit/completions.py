"""Failed samples: every sample a teacher cannot deliver still comes back, as an error completion.

The engine turns an error completion into a reject (with the reason) instead of losing the
prompt, and never caches it, so a later run asks again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from distilforge.schemas import Completion, TeacherRequest


def error_completion(
    request: TeacherRequest | str, reason: str, *, model: str, indices: Iterable[int] | None = None
) -> list[Completion]:
    """One failed :class:`Completion` per sample: ``indices`` (default ``0..request.sampling.n-1``)
    of ``request`` (a request, or just its id when ``indices`` is given)."""
    request_id = request if isinstance(request, str) else request.id
    if indices is None:
        if isinstance(request, str):
            raise ValueError("error_completion needs the request (or explicit indices) to know its samples")
        indices = range(request.sampling.n)
    return [Completion(request_id=request_id, sample_index=i, error=reason, model=model) for i in indices]


def finite_logprob(value: float) -> float:
    """A log-probability JSON can carry: ``-inf`` (an impossible token) and NaN become -1e9, ``+inf`` 1e9."""
    if math.isnan(value):
        return -1e9
    return value if math.isfinite(value) else (-1e9 if value < 0 else 1e9)


def request_seed(seed: int, request_id: str) -> int:
    """A 31-bit sampling seed fixed by the engine seed and the request's content id (with a sample
    index appended where each sample is its own call), so an answer does not depend on its batch."""
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
