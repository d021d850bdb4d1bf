"""The hookspecs are the one full contract: the README hook table and docs/plugins.md must name
every hook with the spec's own argument names, and nothing that is not a hook."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from distilforge.engine.api import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def spec_arguments() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(fn).parameters)
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "distilforge_spec")
    }


def documented(text: str) -> dict[str, list[str]]:
    """``name(args)`` forms in ``text``, with ``register_a/b/c(register)`` expanded."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"`((?:register_\w+ ?/ ?)*[a-z_]+(?:/[a-z_]+)*)\(([a-z_, ]*)\)", text):
        names, args = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
        parts = [n.strip() for n in names.split("/")]
        first = parts[0]
        for part in parts:
            name = part if part.startswith("register_") or part == first else f"register_{part}"
            found.setdefault(name, args)
    return found


def test_the_readme_hook_table_matches_the_hookspecs() -> None:
    readme = ROOT.joinpath("README.md").read_text()
    table = readme[readme.index("| hook | kind | called |") :]
    table = table[: table.index("\n\n")]
    rows = documented(table)
    specs = spec_arguments()
    assert set(rows) == set(specs), (
        f"README hook table: missing {set(specs) - set(rows)}, extra {set(rows) - set(specs)}"
    )
    for name, args in rows.items():
        assert args == specs[name], f"README: {name}({', '.join(args)}) but the spec says {specs[name]}"


def test_docs_plugins_has_a_reference_entry_per_hook_with_the_specs_arguments() -> None:
    text = ROOT.joinpath("docs/plugins.md").read_text()
    reference = text[text.index("## Hook reference") : text.index("## Component base classes")]
    headings = "\n".join(line for line in reference.splitlines() if line.startswith("### "))
    entries = documented(headings)
    specs = spec_arguments()
    assert set(entries) == set(specs), f"docs/plugins.md: missing {set(specs) - set(entries)}"
    for name, args in entries.items():
        assert args == specs[name], f"docs/plugins.md: {name}({', '.join(args)}) but the spec says {specs[name]}"
    assert f'DISTILFORGE_HOOKSPEC_VERSION = "{hookspecs.HOOKSPEC_VERSION}"' in text
