"""Named components contributed by plugins through the ``register_*`` hooks."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from distilforge.engine.api.errors import PluginError
from distilforge.schemas import ComponentConfig

KINDS = ("teacher", "student", "method", "scorer", "filter", "dataset")


@dataclass(frozen=True)
class ComponentSpec:
    kind: str
    name: str
    config_cls: type[ComponentConfig]
    factory: Callable[[Any], Any]
    plugin: str


@dataclass
class Registry:
    specs: dict[str, dict[str, ComponentSpec]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> ComponentSpec:
        return self.specs[kind][name]

    def build(self, kind: str, config: ComponentConfig) -> Any:
        spec = self.get(kind, config.type)
        try:
            return spec.factory(config)
        except Exception as exc:
            raise PluginError(spec.plugin, f"register_{kind}s factory for {config.type!r}", exc) from exc

    def by_plugin(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for kind in KINDS:
            for spec in self.specs[kind].values():
                out.setdefault(spec.plugin, []).append(f"{kind}:{spec.name}")
        return out


def _type_name(plugin: str, kind: str, config_cls: type) -> str:
    if not isinstance(config_cls, type) or not issubclass(config_cls, ComponentConfig):
        raise TypeError(f"plugin {plugin!r} registered a {kind} whose config is not a ComponentConfig subclass")
    annotation = typing.cast(type[ComponentConfig], config_cls).model_fields["type"].annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is not typing.Literal or len(args) != 1:
        raise TypeError(
            f"plugin {plugin!r}: {config_cls.__name__}.type must be a Literal of one name,"
            f" e.g. type: Literal['my-{kind}']"
        )
    return str(args[0])


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every ``register_*`` hook implementation, remembering which plugin gave what."""
    registry = Registry()
    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}s")
        for impl in caller.get_hookimpls():

            def register(
                config_cls: type, factory: Callable[[Any], Any], *, _kind: str = kind, _plugin: str = impl.plugin_name
            ) -> None:
                name = _type_name(_plugin, _kind, config_cls)
                existing = registry.specs[_kind].get(name)
                if existing is not None:
                    raise PluginError(
                        _plugin,
                        f"register_{_kind}s",
                        ValueError(f"{_kind} {name!r} is already registered by {existing.plugin!r}"),
                    )
                registry.specs[_kind][name] = ComponentSpec(_kind, name, config_cls, factory, _plugin)

            impl.function(register=register)
    return registry
