"""The import layers, checked from the source with ``ast`` (the same rules as the import-linter
contracts in pyproject.toml, but written as rules, so a module added later is covered too).

* ``plugins`` import ``distilforge.engine.api``, ``distilforge.schemas`` and their own support
  modules — never the private engine, never ``distilforge.testing``;
* the private engine never imports ``plugins`` (it loads the built-ins by name) nor ``testing``;
* ``engine.api`` imports only ``distilforge.schemas`` (and itself);
* ``schemas`` imports nothing of distilforge;
* no import circle between modules, except through imports made only for type checking
  (under ``if TYPE_CHECKING:``) or inside a function (deferred until called).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOTS = ("engine", "plugins", "schemas", "testing")


@dataclass(frozen=True)
class Import:
    source: str  # module that imports
    target: str  # what it imports (a module, or a module.name)
    line: int
    deferred: bool  # under TYPE_CHECKING or inside a function


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["distilforge", *parts])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(root: Path, path: Path) -> list[Import]:
    source = module_name(root, path)
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for grandchild in child.body:
                    visit_one(grandchild, True)
                for grandchild in child.orelse:
                    visit_one(grandchild, deferred)
                continue
            visit_one(child, deferred)

    def visit_one(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(source, a.name, node.lineno, deferred) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.extend(Import(source, f"{node.module}.{a.name}", node.lineno, deferred) for a in node.names)
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        visit(node, inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return [i for i in found if i.target.startswith("distilforge.")]


def all_imports(root: Path) -> list[Import]:
    out: list[Import] = []
    for folder in ROOTS:
        for path in sorted((root / folder).rglob("*.py")):
            out.extend(imports_of(root, path))
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _allowed(source: str, target: str) -> str | None:
    """None when ``source`` may import ``target``, else the rule it breaks."""
    api, engine = "distilforge.engine.api", "distilforge.engine"
    schemas, plugins, testing = "distilforge.schemas", "distilforge.plugins", "distilforge.testing"
    if _within(source, schemas):
        return None if _within(target, schemas) else "schemas import nothing of distilforge"
    if _within(source, api):
        if _within(target, api) or _within(target, schemas):
            return None
        return "engine.api imports only distilforge.schemas"
    if _within(source, plugins):
        if _within(target, api) or _within(target, schemas) or _within(target, plugins):
            return None
        return "plugins import only distilforge.engine.api and distilforge.schemas"
    if _within(source, engine) and (_within(target, plugins) or _within(target, testing)):
        return "the private engine never imports plugins or testing"
    return None


def layer_violations(root: Path) -> list[str]:
    """One line per import that breaks a layer rule, ``module:line imports target (rule)``."""
    problems = []
    for imp in all_imports(root):
        rule = _allowed(imp.source, imp.target)
        if rule is not None:
            problems.append(f"{imp.source}:{imp.line} imports {imp.target} ({rule})")
    return problems


def import_cycles(root: Path) -> list[list[str]]:
    """Circles of module-level runtime imports (strongly connected components of two or more)."""
    modules = {module_name(root, p) for folder in ROOTS for p in (root / folder).rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in all_imports(root):
        if imp.deferred:
            continue
        target = imp.target if imp.target in modules else imp.target.rpartition(".")[0]
        if target in modules and target != imp.source:
            edges[imp.source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            connect(module)
    return cycles
