"""The import layers hold, and the check would catch a plugin reaching into the private engine."""

from __future__ import annotations

import shutil
from pathlib import Path

from layer_rules import ROOTS, import_cycles, layer_violations

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_keeps_its_layers() -> None:
    assert layer_violations(ROOT) == []


def test_no_import_circle_outside_type_checking_and_functions() -> None:
    assert import_cycles(ROOT) == []


def test_the_check_fails_when_a_plugin_imports_a_private_engine_module(tmp_path: Path) -> None:
    for folder in ROOTS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    bad = tmp_path / "plugins" / "filters" / "sneaky.py"
    bad.write_text(
        "from distilforge.engine.api import hookimpl\n"
        "from distilforge.engine.store.cache import TeacherCache\n"
        "import distilforge.engine.loop\n"
    )
    (tmp_path / "engine" / "api" / "leak.py").write_text("from distilforge.engine.runner import start_run\n")
    (tmp_path / "engine" / "reach.py").write_text("from distilforge.plugins.filters import validity\n")
    problems = layer_violations(tmp_path)
    assert problems == [
        "distilforge.engine.api.leak:1 imports distilforge.engine.runner.start_run"
        " (engine.api imports only distilforge.schemas)",
        "distilforge.engine.reach:1 imports distilforge.plugins.filters.validity"
        " (the private engine never imports plugins or testing)",
        "distilforge.plugins.filters.sneaky:2 imports distilforge.engine.store.cache.TeacherCache"
        " (plugins import only distilforge.engine.api and distilforge.schemas)",
        "distilforge.plugins.filters.sneaky:3 imports distilforge.engine.loop"
        " (plugins import only distilforge.engine.api and distilforge.schemas)",
    ]


def test_a_circle_is_found_unless_one_side_is_typed_only(tmp_path: Path) -> None:
    for folder in ROOTS:
        (tmp_path / folder).mkdir()
    (tmp_path / "plugins" / "a.py").write_text("from distilforge.plugins.b import B\n")
    (tmp_path / "plugins" / "b.py").write_text("from distilforge.plugins import a\nB = 1\n")
    assert import_cycles(tmp_path) == [["distilforge.plugins.a", "distilforge.plugins.b"]]
    (tmp_path / "plugins" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from distilforge.plugins import a\nB = 1\n"
    )
    assert import_cycles(tmp_path) == []
