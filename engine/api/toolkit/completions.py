"""Failed samples: every sample a teacher cannot deliver still comes back, as an error completion.

The engine turns an error completion into a reject (with the reason) instead of losing the
prompt, and never caches it, so a later run asks again.
"""

from __future__ import annotations

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
