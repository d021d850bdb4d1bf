"""Build the pluggy plugin manager: built-ins first, then installed entry points.

* ``DEFAULT_PLUGINS`` are registered exactly like third-party plugins (by module, by name).
* Third-party plugins come from the entry-point group ``distilforge``. The environment
  variable ``DISTILFORGE_PLUGINS`` is an allow-list of their names (comma separated; empty
  means none); unset means all installed plugins load.
* ``DISTILFORGE_TRACE_HOOKS=1`` logs every hook call, its implementations and its duration.
* Every hook implementation is wrapped so that an exception surfaces as :class:`PluginError`
  naming the plugin and the hook. When the engine's own default (``distilforge.engine.dispatch``)
  was only delegating to a component, the error names the plugin whose code raised instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import pluggy

from distilforge.engine.api import hookspecs
from distilforge.engine.api.errors import PluginError

log = logging.getLogger("distilforge.plugins")

DEFAULT_PLUGINS: tuple[str, ...] = (
    "distilforge.engine.dispatch",
    "distilforge.plugins.teachers.fake",
    "distilforge.plugins.teachers.vllm_teacher",
    "distilforge.plugins.teachers.llamacpp_teacher",
    "distilforge.plugins.teachers.openai_config",
    "distilforge.plugins.teachers.transformers_teacher",
    "distilforge.plugins.students.catalogue",
    "distilforge.plugins.filters.validity",
    "distilforge.plugins.filters.novelty",
    "distilforge.plugins.filters.label_judge",
    "distilforge.plugins.scorers.energy",
    "distilforge.plugins.datasets.builtin",
    "distilforge.plugins.datasets.gsm",
    "distilforge.plugins.datasets.table",
    "distilforge.plugins.methods.llm2llm",
    "distilforge.plugins.methods.gold",
    "distilforge.plugins.methods.laat",
    "distilforge.plugins.models.commands",
    "distilforge.plugins.teachers.serve_command",
    "distilforge.plugins.datasets.init_command",
)

DISPATCH_PLUGIN = "distilforge.engine.dispatch"
ALLOW_ENV = "DISTILFORGE_PLUGINS"
TRACE_ENV = "DISTILFORGE_TRACE_HOOKS"


def allowed_external_plugins() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _blame(pm: pluggy.PluginManager, plugin_name: str, exc: BaseException) -> str:
    """The plugin to name for ``exc``. The dispatch defaults only call the configured components,
    so for them the culprit is the innermost traceback frame in another registered plugin's module
    (or a submodule of it): the plugin that registered the component that raised."""
    if plugin_name != DISPATCH_PLUGIN:
        return plugin_name
    modules: dict[str, str] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is not None and name != DISPATCH_PLUGIN:
            modules.setdefault(plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__, name)
    culprit = plugin_name
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        owner = modules.get(module) or next((n for m, n in modules.items() if module.startswith(m + ".")), None)
        if owner is not None:
            culprit = owner
        tb = tb.tb_next
    return culprit


def _wrap_errors(
    pm: pluggy.PluginManager, plugin_name: str, hook_name: str, function: Callable[..., Any]
) -> Callable[..., Any]:
    """Re-raise anything a hook implementation raises — also while its result is iterated."""

    def guard_iter(it: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from it
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(_blame(pm, plugin_name, exc), hook_name, exc) from exc

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(_blame(pm, plugin_name, exc), hook_name, exc) from exc
        if inspect.isgenerator(result):
            return guard_iter(result)
        return result

    return wrapper


def _install_error_wrappers(pm: pluggy.PluginManager) -> None:
    for hook_name in dir(pm.hook):
        if hook_name.startswith("_"):
            continue
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if not getattr(impl.function, "__distilforge_wrapped__", False):
                impl.function = _wrap_errors(pm, impl.plugin_name, hook_name, impl.function)
                impl.function.__distilforge_wrapped__ = True


def _enable_tracing(pm: pluggy.PluginManager) -> None:
    starts: list[float] = []

    def before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        starts.append(time.perf_counter())
        shown = {
            k: (f"<{len(v)} items>" if isinstance(v, list | tuple) else type(v).__name__) for k, v in kwargs.items()
        }
        print(f"[hook] {hook_name}({shown}) -> {[i.plugin_name for i in impls]}", file=sys.stderr)

    def after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        elapsed = time.perf_counter() - starts.pop()
        status = "raised" if outcome.exception is not None else "ok"
        print(f"[hook] {hook_name} {status} in {elapsed * 1000:.1f} ms", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def build_plugin_manager(
    extra_plugins: list[object] | None = None, *, load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """The plugin manager for one process: hookspecs, built-ins, entry points, extras."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entrypoints:
        allowed = allowed_external_plugins()
        if allowed is None:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        else:
            for name in sorted(allowed):
                pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME, name=name)
    for plugin in extra_plugins or []:
        pm.register(plugin, name=getattr(plugin, "__name__", None) or type(plugin).__name__)
    pm.check_pending()
    _install_error_wrappers(pm)
    if os.environ.get(TRACE_ENV, "") not in ("", "0"):
        _enable_tracing(pm)
    return pm


def plugin_version(pm: pluggy.PluginManager, plugin: object) -> str:
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return str(dist.version)
    from distilforge.engine import __version__

    return __version__


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Name, version, hooks and origin (built-in or entry point) of every registered plugin."""
    external = {id(p): dist.project_name for p, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: (id(item[1]) in external, item[0])):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "version": plugin_version(pm, plugin),
                "origin": f"entry point ({external[id(plugin)]})" if id(plugin) in external else "built-in",
                "hooks": hooks,
            }
        )
    return rows
