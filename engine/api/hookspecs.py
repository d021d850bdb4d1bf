"""The public plugin API of distilforge: every hook a plugin may implement.

This module is the contract with plugin authors (the full reference, with a worked example per
component kind, is ``docs/plugins.md``). ``HOOKSPEC_VERSION`` (``major.minor``) changes whenever a
signature here changes: the minor number for additions existing plugins do not notice, the major
number for anything that can break one. ``tests/test_plugin_kit.py`` pins the signatures of each
version, and ``distilforge plugins --check`` validates installed plugins against these specs.

Two kinds of hooks:

* ``register_*(register)`` hooks contribute *named components* — teachers, students, methods,
  scorers, filters, datasets. ``register(ConfigClass, factory)`` takes a pydantic config class
  (a subclass of :class:`distilforge.schemas.ComponentConfig` whose ``type`` field is a
  ``Literal`` naming the component) and a callable that builds the component from a validated
  config. The config classes of all installed plugins form the discriminated unions that a
  run's YAML is validated against.
* Stage hooks are called by the round loop. The engine ships default implementations (in
  ``distilforge.engine.dispatch``) that hand each stage to the components named in the config;
  a plugin may implement a stage hook directly to add to or take over that stage.

``ctx`` is a :class:`distilforge.engine.api.context.RunContext` (the validated config, the run
directory, the current round, the accepted record pool and the built components), except in
``teacher_sample``, which also runs in ``distilforge generate`` and on Ray workers and gets a
:class:`~distilforge.engine.api.context.TeacherContext` (run directory, seed, teacher).

Version 2.0 (from 1.0): ``RunContext`` lost ``pm``, ``registry``, ``executor`` and ``cache``
(stages ask a teacher with ``ctx.ask_teacher``); ``teacher_sample`` gets a ``TeacherContext``;
``score_ood`` is called by the executor (per shard on Ray); ``register_commands`` is new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from distilforge.engine.api.components import Student, Verdict
    from distilforge.engine.api.context import RunContext, TeacherContext
    from distilforge.schemas import Completion, Evaluation, Record, TeacherRequest

PROJECT_NAME = "distilforge"
HOOKSPEC_VERSION = "2.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[type, Callable[[Any], Any]], None]
# the ``add_subparsers()`` object of the ``distilforge`` parser
CommandParsers = Any


# --------------------------------------------------------------------------- registration


@hookspec
def register_teachers(register: Register) -> None:
    """Register teacher backends: ``register(ConfigClass, factory)`` -> :class:`Teacher`."""


@hookspec
def register_students(register: Register) -> None:
    """Register students: ``register(ConfigClass, factory)`` -> :class:`Student`."""


@hookspec
def register_methods(register: Register) -> None:
    """Register methods (LLM2LLM, GOLD, ...): ``register(ConfigClass, factory)`` -> :class:`Method`."""


@hookspec
def register_scorers(register: Register) -> None:
    """Register OOD/novelty scorers: ``register(ConfigClass, factory)`` -> :class:`Scorer`."""


@hookspec
def register_filters(register: Register) -> None:
    """Register record filters: ``register(ConfigClass, factory)`` -> :class:`Filter`."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset loaders: ``register(ConfigClass, factory)`` -> :class:`Dataset`."""


@hookspec
def register_commands(subparsers: CommandParsers) -> None:
    """Add sub-commands to the ``distilforge`` command line.

    ``subparsers`` is the parser's :meth:`argparse.ArgumentParser.add_subparsers` object: call
    ``p = subparsers.add_parser(NAME, help=...)``, add arguments, and ``p.set_defaults(func=f)``
    where ``f(args: argparse.Namespace) -> int`` returns the exit code. Raise a
    :class:`~distilforge.engine.api.errors.DistilforgeError` for a message without traceback.
    Import heavy libraries inside ``f``: every command's start-up pays for what this hook imports.
    """


# --------------------------------------------------------------------------- the five stages


@hookspec(firstresult=True)
def teacher_sample(requests: Sequence[TeacherRequest], ctx: TeacherContext) -> Iterable[Completion] | None:
    """Answer a batch of teacher requests; the first plugin that returns non-None wins.

    Called once per round (or per ``generate`` chunk) with every request not already in the
    teacher cache, so a backend can batch them all. Return an iterable of
    :class:`Completion` — ``request.sampling.n`` per request, ``sample_index`` 0..n-1 — and
    yield them as they finish so the engine can cache each one at once. When some samples of a
    request are already cached, the engine asks only for the missing ones: ``n`` is their
    count and ``request.meta["sample_indices"]`` lists their absolute indices (a deterministic
    teacher can use them; ``sample_index`` in the answer stays 0..n-1). A request that fails
    for good yields a Completion with ``error`` set: it becomes a reject, never a lost prompt.
    """


@hookspec(firstresult=True)
def select_failures(records: Sequence[Record], evaluation: Evaluation, ctx: RunContext) -> list[Record] | None:
    """Choose the records the teacher should learn from this round (the method decides).

    ``records`` is the student's current training pool, ``evaluation`` its per-record results
    on that pool. First non-None answer wins.
    """


@hookspec
def score_ood(records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]] | None:
    """Score candidate records: return ``{record_id: {score_name: value}}``.

    Every implementation is called; the engine merges all answers into ``Record.scores``. The
    executor calls this hook: locally once with every candidate, on Ray once per shard on a
    worker (so a score must depend only on the record, ``ctx.pool`` and ``ctx.student``; the
    configured scorers that are not ``shardable`` then run on the driver over all candidates).
    """


@hookspec
def filter_records(records: Sequence[Record], ctx: RunContext) -> list[Verdict] | None:
    """Vote on candidate records: return a :class:`Verdict` for each record to reject.

    Every implementation is called; a record survives only if no one rejects it, and each
    reject keeps the filter's name and reason in ``rejects.jsonl``.
    """


@hookspec
def evaluate_student(student: Student, records: Sequence[Record], split: str, ctx: RunContext) -> Evaluation | None:
    """Evaluate the student on ``records`` of ``split`` ("train", "test", ...).

    Every implementation is called; the engine keeps the per-record results of the first
    answer that has them and merges the metrics of all answers.
    """


# --------------------------------------------------------------------------- method hooks


@hookspec(firstresult=True)
def train_student(student: Student, records: Sequence[Record], ctx: RunContext) -> dict[str, float] | None:
    """Train ``student`` on ``records`` and return training statistics (loss, seconds, ...)."""


@hookspec(firstresult=True)
def build_prompts(failures: Sequence[Record], ctx: RunContext) -> list[TeacherRequest] | None:
    """Turn the selected records into teacher requests. First non-None answer wins."""


@hookspec(firstresult=True)
def parse_completion(completion: Completion, request: TeacherRequest, ctx: RunContext) -> list[Record] | str | None:
    """Turn one completion into records, or return a string: the reason it was rejected.

    Teacher text is data: parse it, never evaluate it.
    """
