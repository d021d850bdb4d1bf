"""``distilforge new-plugin NAME``: scaffold a plugin package that installs and passes its tests.

The generated package has a ``pyproject.toml`` with the ``distilforge`` entry point, one module
with a component, its pydantic config class and the ``register_*`` hookimpl, a README and a test
suite that uses :mod:`distilforge.testing`. The templates are the ``*.txt`` files beside this
module; ``{{placeholder}}`` marks what is filled in.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from distilforge.engine import __version__
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import HOOKSPEC_VERSION

KINDS = {"filter": ("Filter", "filters"), "scorer": ("Scorer", "scorers")}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _template(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{\w+\}\}", text)
    if leftover:
        raise AssertionError(f"template placeholder {leftover.group(0)} was not filled")
    return text


def plugin_names(name: str, kind: str) -> dict[str, str]:
    """Every name derived from NAME: distribution, module, entry point, component and class."""
    if not NAME_PATTERN.match(name):
        raise DistilforgeError(
            f"plugin name {name!r}: use lower-case letters, digits and single dashes, starting with a letter"
            " (e.g. 'keyword-filter'); it becomes the component's type and the entry point's name"
        )
    if kind not in KINDS:
        raise DistilforgeError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    base, yaml_key = KINDS[kind]
    snake = name.replace("-", "_")
    camel = "".join(part.title() for part in name.split("-"))
    return {
        "name": name,
        "snake": snake,
        "kind": kind,
        "dist": f"distilforge-{name}",
        "module": f"distilforge_{snake}",
        "Class": camel if camel.endswith(base) else camel + base,
        "base": base,
        "yaml_key": yaml_key,
        "hookspec_version": HOOKSPEC_VERSION,
        "distilforge_version": __version__,
    }


def new_plugin(name: str, parent: Path, kind: str = "filter", *, force: bool = False) -> Path:
    """Write the package ``<parent>/distilforge-<name>/``; return its directory."""
    values = plugin_names(name, kind)
    root = parent / values["dist"]
    if root.exists() and any(root.iterdir()) and not force:
        raise DistilforgeError(f"{root} exists and is not empty; choose another directory or pass --force")
    files = {
        "pyproject.toml": "pyproject.toml.txt",
        "README.md": "README.md.txt",
        f"{values['module']}/__init__.py": f"plugin_{kind}.py.txt",
        f"tests/test_{values['snake']}.py": f"test_{kind}.py.txt",
    }
    for target, template in files.items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(_template(template), values), encoding="utf-8")
    (root / values["module"] / "py.typed").write_text("", encoding="utf-8")
    return root
