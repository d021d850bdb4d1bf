"""Failed samples: every sample a teacher cannot deliver still comes back, as an error completion.

The engine turns an error completion into a reject (with the reason) instead of losing the
prompt, and never caches it, so a later run asks again.
"""

from __future__ import annotations

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
