"""pytest fixtures for plugin authors, loaded automatically through the ``pytest11`` entry point.

* ``tiny_dataset``: a ``dataset:`` config (type ``file``) of the tiny sentiment set, in ``tmp_path``.
* ``scripted_teacher``: a function building a ``teacher:`` config for the scripted teacher,
  e.g. ``scripted_teacher("First answer", "Second answer", rules={"loved": "..."})``.
* ``distilforge_run``: :func:`distilforge.testing.run_round` bound to ``tmp_path``:
  ``run_dir = distilforge_run(my_plugin, filters=[{"type": "my-filter"}])``.

The module imports nothing heavy, so loading it costs nothing in suites that do not use it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> dict[str, Any]:
    from distilforge.testing.data import write_tiny_dataset

    return write_tiny_dataset(tmp_path / "tiny-data")


@pytest.fixture
def scripted_teacher() -> Callable[..., dict[str, Any]]:
    def make(*answers: str, rules: dict[str, str] | None = None, errors: list[str] | None = None) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "scripted"}
        if answers:
            config["answers"] = list(answers)
        if rules:
            config["rules"] = dict(rules)
        if errors:
            config["errors"] = list(errors)
        return config

    return make


@pytest.fixture
def distilforge_run(tmp_path: Path) -> Callable[..., Path]:
    from distilforge.testing.runner import run_round

    counter = iter(range(1_000_000))

    def run(*plugins: object, **overrides: Any) -> Path:
        overrides.setdefault("workdir", tmp_path / f"distilforge-run-{next(counter)}")
        return run_round(*plugins, **overrides)

    return run
