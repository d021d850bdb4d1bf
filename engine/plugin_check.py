"""Validate plugins against the hookspecs without running anything (``distilforge plugins --check``).

The ordinary start-up (:func:`distilforge.engine.plugin_manager.build_plugin_manager`) stops at
the first bad plugin with pluggy's message. The check instead loads every installed plugin on
its own and reports, by plugin and hook name, everything that would break a run:

* a hook implementation whose name is not a distilforge hook (typo, or a hook of a newer API);
* an argument that the hook's spec does not have (implementations may take a subset, not others);
* a plugin that declares ``DISTILFORGE_HOOKSPEC_VERSION`` with another major version;
* ``register_*`` calls with a config class that is not a ``ComponentConfig`` subclass, has no
  single-name ``Literal`` ``type``, accepts unknown keys, has no JSON Schema, or a name another
  plugin already registered; a factory that is not callable; a register hook that raises;
* an entry point that cannot be imported.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pluggy._hooks import varnames

from distilforge.engine.api import hookspecs
from distilforge.engine.plugin_manager import DEFAULT_PLUGINS, allowed_external_plugins
from distilforge.engine.registry import KINDS
from distilforge.schemas import ComponentConfig

VERSION_ATTRIBUTE = "DISTILFORGE_HOOKSPEC_VERSION"


def hookspec_signatures() -> dict[str, dict[str, Any]]:
    """Every hook's public signature: argument names and annotations, return annotation, options.

    A test pins this per ``HOOKSPEC_VERSION``: changing a signature without a new version fails.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, function in sorted(vars(hookspecs).items()):
        opts = getattr(function, f"{hookspecs.PROJECT_NAME}_spec", None)
        if opts is None or not callable(function):
            continue
        signature = inspect.signature(function)
        out[name] = {
            "args": [f"{p.name}: {p.annotation}" for p in signature.parameters.values()],
            "returns": str(signature.return_annotation),
            "firstresult": bool(opts.get("firstresult")),
            "historic": bool(opts.get("historic")),
        }
    return out


@dataclass
class Problem:
    plugin: str
    hook: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r}, hook {self.hook!r}: {self.message}"


@dataclass
class PluginReport:
    name: str
    origin: str
    loaded: bool = True
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "loaded": self.loaded,
            "ok": self.ok,
            "problems": [{"hook": p.hook, "message": p.message} for p in self.problems],
        }


def _spec_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _literal_name(config_cls: type[ComponentConfig]) -> str | None:
    annotation = config_cls.model_fields["type"].annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal and len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return None


class _Checker:
    def __init__(self) -> None:
        self.pm = _spec_manager()
        self.specs = {name: getattr(self.pm.hook, name).spec for name in hookspec_signatures()}
        self.owners: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin that registered it

    def check(self, name: str, plugin: object) -> list[Problem]:
        problems: list[Problem] = []
        declared = getattr(plugin, VERSION_ATTRIBUTE, None)
        if declared is not None and str(declared).split(".")[0] != hookspecs.HOOKSPEC_VERSION.split(".")[0]:
            problems.append(
                Problem(
                    name,
                    "-",
                    f"written for hookspec version {declared}, this distilforge has {hookspecs.HOOKSPEC_VERSION}",
                )
            )
        for attr in dir(plugin):
            opts = self.pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            function = getattr(plugin, attr)
            spec = self.specs.get(hook)
            if spec is None:
                if not opts.get("optionalhook"):
                    hint = difflib.get_close_matches(hook, list(self.specs), n=1)
                    problems.append(
                        Problem(
                            name,
                            hook,
                            "not a distilforge hook" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                        )
                    )
                continue
            args, _ = varnames(function)
            for arg in args:
                if arg not in spec.argnames:
                    problems.append(
                        Problem(
                            name,
                            hook,
                            f"argument {arg!r} is not in the spec; the hook passes: {', '.join(spec.argnames)}",
                        )
                    )
            if hook.startswith("register_") and hook[len("register_") : -1] in KINDS:
                problems.extend(self._check_register(name, hook, function))
        return problems

    def _check_register(self, plugin: str, hook: str, function: Callable[..., Any]) -> list[Problem]:
        kind = hook[len("register_") : -1]
        problems: list[Problem] = []

        def register(config_cls: Any, factory: Any) -> None:
            label = getattr(config_cls, "__name__", repr(config_cls))
            if not (isinstance(config_cls, type) and issubclass(config_cls, ComponentConfig)):
                problems.append(Problem(plugin, hook, f"{label} is not a ComponentConfig subclass"))
                return
            config_cls = typing.cast(type[ComponentConfig], config_cls)
            type_name = _literal_name(config_cls)
            if type_name is None:
                problems.append(
                    Problem(plugin, hook, f"{label}.type must be a Literal of one name, e.g. Literal['my-{kind}']")
                )
                return
            if config_cls.model_config.get("extra") != "forbid":
                problems.append(
                    Problem(plugin, hook, f"{label} accepts unknown keys; keep ComponentConfig's extra='forbid'")
                )
            try:
                config_cls.model_json_schema()
            except Exception as exc:
                problems.append(Problem(plugin, hook, f"{label} has no JSON Schema: {type(exc).__name__}: {exc}"))
            if not callable(factory):
                problems.append(Problem(plugin, hook, f"the factory for {kind} {type_name!r} is not callable"))
            owner = self.owners.setdefault((kind, type_name), plugin)
            if owner != plugin:
                problems.append(Problem(plugin, hook, f"{kind} {type_name!r} is already registered by {owner!r}"))

        try:
            function(register=register)
        except Exception as exc:
            problems.append(Problem(plugin, hook, f"raised {type(exc).__name__}: {exc}"))
        return problems


def check_plugins(extra_plugins: Iterable[object] = (), *, entrypoints: bool = True) -> list[PluginReport]:
    """Check the built-ins, every installed entry-point plugin (whatever the allow-list says;
    ``loaded`` tells whether a run would load it) and ``extra_plugins``."""
    checker = _Checker()
    reports: list[PluginReport] = []
    for module_name in DEFAULT_PLUGINS:
        report = PluginReport(module_name, "built-in")
        report.problems = checker.check(module_name, importlib.import_module(module_name))
        reports.append(report)
    if entrypoints:
        allowed = allowed_external_plugins()
        seen: set[str] = set()
        for ep in sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: e.name):
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist is not None else "?"
            report = PluginReport(ep.name, f"entry point ({dist})", loaded=allowed is None or ep.name in allowed)
            try:
                plugin = ep.load()
            except Exception as exc:
                report.problems.append(
                    Problem(ep.name, "-", f"cannot import {ep.value!r}: {type(exc).__name__}: {exc}")
                )
            else:
                report.problems = checker.check(ep.name, plugin)
            reports.append(report)
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        report = PluginReport(name, "extra")
        report.problems = checker.check(name, plugin)
        reports.append(report)
    return reports
