"""Thread control for components that run torch (and FAISS) in the driver process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def compute_threads(threads: int | None, *, faiss: bool = False) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (and FAISS OpenMP threads if asked),
    restoring the previous settings afterwards; ``None`` leaves everything as it is."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    previous_faiss = None
    if faiss:
        import faiss as faiss_lib

        previous_faiss = faiss_lib.omp_get_max_threads()
        faiss_lib.omp_set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        if previous_faiss is not None:
            faiss_lib.omp_set_num_threads(previous_faiss)
