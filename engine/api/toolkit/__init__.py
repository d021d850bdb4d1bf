"""Helpers for component authors: the mechanics every teacher, student or filter needs once.

* :func:`compute_threads` — run torch (and FAISS) on a given number of threads, then restore.
* :func:`lazy_factory` — register a component whose heavy imports wait until it is built.
* :func:`error_completion` — the one way to say "this sample failed" (it becomes a reject).
* :func:`write_artifact` — an atomic file write for anything a component leaves in the run.
* :func:`read_jsonl_input`, :func:`read_table_input` — user files with errors that name file:line.
* :func:`make_console` — the console the engine prints with (stderr, wide when not a terminal).
* :func:`scrub`, :func:`header_safe` — keep secrets out of messages and off the wire.
* :mod:`~distilforge.engine.api.toolkit.embeddings` — one sentence-embedding stack
  (:func:`load_encoder`, :func:`embed`) with one per-text vector cache for every component.
* :func:`carve_split` — a seeded, stratified held-out split (test or validation).
* :func:`predictions_from_logits`, :func:`resolve_labels`, :func:`softmax` — classifier output.
* :mod:`~distilforge.engine.api.toolkit.labelling` — ask a teacher for a label or an answer with
  guided choice and read the label distribution from its log-probabilities.
"""

from distilforge.engine.api.toolkit.completions import error_completion
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.api.toolkit.files import write_artifact
from distilforge.engine.api.toolkit.inputs import InputFileError, read_jsonl_input, read_table_input
from distilforge.engine.api.toolkit.lazy import lazy_factory
from distilforge.engine.api.toolkit.predictions import predictions_from_logits, resolve_labels, softmax
from distilforge.engine.api.toolkit.secrets import header_safe, scrub, secret_forms
from distilforge.engine.api.toolkit.splits import carve_split
from distilforge.engine.api.toolkit.threads import compute_threads

__all__ = [
    "InputFileError",
    "carve_split",
    "compute_threads",
    "error_completion",
    "header_safe",
    "lazy_factory",
    "make_console",
    "predictions_from_logits",
    "read_jsonl_input",
    "read_table_input",
    "resolve_labels",
    "scrub",
    "secret_forms",
    "softmax",
    "write_artifact",
]
