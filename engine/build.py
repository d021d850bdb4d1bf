"""From a config file to a ready run: plugin manager, registry, validated config, components."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from distilforge.engine.api.context import RunContext
from distilforge.engine.config import RunConfig, build_config_model, parse_config
from distilforge.engine.plugin_manager import build_plugin_manager
from distilforge.engine.registry import Registry, collect_registry


@dataclass
class Engine:
    pm: pluggy.PluginManager
    registry: Registry
    config_model: type[RunConfig]

    @classmethod
    def load(cls, extra_plugins: list[object] | None = None, *, pm: pluggy.PluginManager | None = None) -> Engine:
        """The engine over ``pm`` (default: a new plugin manager with the built-ins, the installed
        plugins and ``extra_plugins``)."""
        pm = pm or build_plugin_manager(extra_plugins)
        registry = collect_registry(pm)
        return cls(pm, registry, build_config_model(registry))

    def parse(self, data: Any, config_dir: Path | None = None) -> RunConfig:
        """Validate a config; relative paths in it mean "beside the config file" (``config_dir``)."""
        return parse_config(data, self.registry, self.config_model, config_dir=config_dir)

    def run_dir(self, config: RunConfig) -> Path:
        return Path(config.output_dir) / config.name

    def teacher_cache_path(self, config: RunConfig) -> Path:
        return Path(config.teacher_cache) if config.teacher_cache else Path(config.output_dir) / "teacher-cache.sqlite"

    def context(self, config: RunConfig, run_dir: Path) -> RunContext:
        """Build every configured component (cheaply: heavy models load on first use)."""
        build = self.registry.build
        return RunContext(
            config=config,
            run_dir=run_dir,
            teacher=build("teacher", config.teacher),
            student=build("student", config.student),
            method=build("method", config.method),
            dataset=build("dataset", config.dataset),
            scorers=[build("scorer", c) for c in config.scorers],
            filters=[build("filter", c) for c in config.filters],
            judge=build("teacher", config.judge) if config.judge is not None else None,
            vector_cache=self.teacher_cache_path(config),
        )
