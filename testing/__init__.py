"""A test kit for distilforge plugin authors (``distilforge.testing``).

Everything a plugin's own test suite needs, with no model, GPU or network:

* :class:`ScriptedTeacher` (``type: scripted``) answers teacher requests from a script you
  write: fixed answers in order, answers chosen by a substring of the prompt, and errors.
* :class:`MajorityLabelStudent` (``type: majority-label``) predicts the most common training
  label, so a tiny balanced dataset always has failures for a method to work on.
* :func:`tiny_sentiment` / :func:`write_tiny_dataset`: a 12 + 20 record sentiment set.
* :func:`run_round` runs the round loop with *your* plugin registered next to the built-ins
  and returns the run directory; :func:`read_records`, :func:`read_rejects`,
  :func:`read_metrics` and :func:`read_requests` read what the run left there.

Installed with distilforge as a pytest plugin (entry point ``pytest11``), so the fixtures
``scripted_teacher``, ``tiny_dataset`` and ``distilforge_run`` are available in any test suite
without imports; see :mod:`distilforge.testing.pytest_plugin`.
"""

from distilforge.testing.components import (
    MajorityLabelConfig,
    MajorityLabelStudent,
    ScriptedTeacher,
    ScriptedTeacherConfig,
)
from distilforge.testing.data import TINY_LABELS, TINY_TASK, tiny_sentiment, write_tiny_dataset
from distilforge.testing.runner import (
    base_config,
    build_engine,
    read_metrics,
    read_records,
    read_rejects,
    read_requests,
    run_round,
)

__all__ = [
    "TINY_LABELS",
    "TINY_TASK",
    "MajorityLabelConfig",
    "MajorityLabelStudent",
    "ScriptedTeacher",
    "ScriptedTeacherConfig",
    "base_config",
    "build_engine",
    "read_metrics",
    "read_records",
    "read_rejects",
    "read_requests",
    "run_round",
    "tiny_sentiment",
    "write_tiny_dataset",
]
