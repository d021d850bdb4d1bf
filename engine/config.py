"""Assemble, load and explain the run config.

The run config model is built at start-up from :class:`RunSettings` plus one discriminated
union per component kind, made of the config classes that installed plugins registered. So a
YAML file is validated against exactly the plugins present, ``distilforge schema`` prints all of
them, and every mistake is reported by field path with the wrong value and what is allowed,
before any work starts.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from distilforge.engine.api.errors import ConfigError
from distilforge.engine.registry import Registry
from distilforge.schemas import ComponentConfig, RunConfig, content_hash
from distilforge.schemas.validators import CONFIG_DIR

SINGLE_FIELDS = {"method": "method", "teacher": "teacher", "student": "student", "dataset": "dataset"}
LIST_FIELDS = {"scorers": "scorer", "filters": "filter"}
# Components that may be left out (None).
OPTIONAL_FIELDS = {"judge": "teacher"}
# Fields that do not change what a run produces: editing them does not block a resume.
NON_SEMANTIC = {"name", "output_dir", "teacher_cache", "executor", "teacher_baseline", "keep_checkpoints"}


def _union(registry: Registry, kind: str) -> Any:
    classes = [registry.get(kind, name).config_cls for name in registry.names(kind)]
    if not classes:
        return _none_installed(kind)
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[tuple(classes)], Field(discriminator="type")]  # noqa: UP007


def _none_installed(kind: str) -> type[ComponentConfig]:
    def refuse(cls: type, data: Any) -> Any:
        raise ValueError(f"no {kind} plugin is installed, so no {kind} can be configured here")

    validators: dict[str, Any] = {"refuse": model_validator(mode="before")(refuse)}
    return create_model(f"No{kind.title()}Installed", __base__=ComponentConfig, __validators__=validators)


def build_config_model(registry: Registry) -> type[RunConfig]:
    fields: dict[str, Any] = {}
    for field_name, kind in SINGLE_FIELDS.items():
        default: Any = ...
        if kind == "teacher" and "vllm" in registry.names("teacher"):
            default = Field(default_factory=lambda: registry.get("teacher", "vllm").config_cls())
        fields[field_name] = (_union(registry, kind), default)
    for field_name, kind in LIST_FIELDS.items():
        fields[field_name] = (list[_union(registry, kind)], Field(default_factory=list))  # type: ignore[misc]
    fields["judge"] = (
        _union(registry, "teacher") | None,
        Field(
            None,
            description="the teacher that judging filters (label-judge) ask, any teacher config; None = the run's"
            " own teacher (one engine serves both)",
        ),
    )
    model = create_model("RunConfig", __base__=RunConfig, **fields)
    return model


def _resolve(registry: Registry, loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None, str | None]:
    """Turn a pydantic error location into a user path, the config class there and its kind."""
    head = str(loc[0]) if loc else ""
    kind = SINGLE_FIELDS.get(head) or LIST_FIELDS.get(head) or OPTIONAL_FIELDS.get(head)
    if kind is None:
        return ".".join(str(x) for x in loc) or "(top level)", _walk(RunConfig, loc[:-1]), None
    path = head
    rest = list(loc[1:])
    if head in LIST_FIELDS and rest and isinstance(rest[0], int):
        path += f"[{rest.pop(0)}]"
    cls: type[BaseModel] | None = None
    names = registry.names(kind)
    if rest and isinstance(rest[0], str) and rest[0] in registry.specs[kind] and len(names) > 1:
        cls = registry.get(kind, rest.pop(0)).config_cls
    elif len(names) == 1:  # a one-member union has no tag in the error location
        cls = registry.get(kind, names[0]).config_cls
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path, _walk(cls, tuple(rest[:-1])) if cls else None, kind


def _walk(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Follow nested pydantic models along ``loc``; None where the path leaves them."""
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def explain(error: ValidationError, registry: Registry) -> str:
    lines = []
    for err in error.errors():
        loc = tuple(err["loc"])
        path, cls, kind = _resolve(registry, loc)
        kind_label = kind or "value"
        etype = err["type"]
        if etype == "extra_forbidden":
            key = str(loc[-1])
            allowed = sorted(cls.model_fields) if cls is not None else []
            hint = difflib.get_close_matches(key, allowed, n=1)
            msg = f"{path}: unknown key {key!r}"
            if hint:
                msg += f"; did you mean {hint[0]!r}?"
            if allowed:
                msg += f" Allowed keys here: {', '.join(allowed)}"
        elif etype in ("union_tag_invalid", "union_tag_not_found"):
            names = registry.names(kind) if kind else []
            given = err.get("ctx", {}).get("tag")
            if etype == "union_tag_not_found":
                msg = f"{path}.type: missing; say which {kind_label} to use: one of {', '.join(names)}"
            else:
                hint = difflib.get_close_matches(str(given), names, n=1)
                msg = f"{path}.type: {given!r} is not an installed {kind_label}; choose one of: {', '.join(names)}"
                if hint:
                    msg += f" (did you mean {hint[0]!r}?)"
        elif etype == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            msg = f"{path}: got {_short(err.get('input'))}; allowed: {expected}"
        elif etype == "missing":
            msg = f"{path}: required, but missing"
        else:
            msg = f"{path}: got {_short(err.get('input'))}: {err['msg']}"
        lines.append("  - " + msg)
    count = len(lines)
    return f"invalid config ({count} error{'s' if count > 1 else ''}):\n" + "\n".join(lines)


def parse_config(
    data: Any, registry: Registry, model: type[RunConfig] | None = None, *, config_dir: Path | None = None
) -> RunConfig:
    """Validate a config; relative ``ConfigPath`` fields resolve against ``config_dir`` when given."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: the top level must be a mapping of keys, got {type(data).__name__}")
    model = model or build_config_model(registry)
    context = {CONFIG_DIR: config_dir.resolve()} if config_dir is not None else None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(explain(exc, registry)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one mapping"
                    f" (first on line {seen[key]}); keep one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> Any:
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory; give the YAML file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path}: not UTF-8 (byte at offset {exc.start}); save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


def load_config(path: Path, registry: Registry) -> RunConfig:
    return parse_config(load_yaml(path), registry, config_dir=path.parent)


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")


def fingerprint(config: BaseModel) -> str:
    data = {k: v for k, v in config_to_dict(config).items() if k not in NON_SEMANTIC}
    return content_hash(data, length=64)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable changes between two config dicts, ignoring non-semantic fields."""
    a = _flatten({k: v for k, v in old.items() if k not in NON_SEMANTIC})
    b = _flatten({k: v for k, v in new.items() if k not in NON_SEMANTIC})
    changes = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            changes.append(f"{key}: {_short(a[key])} -> (removed)")
        elif key not in a:
            changes.append(f"{key}: (absent) -> {_short(b[key])}")
        elif a[key] != b[key]:
            changes.append(f"{key}: {_short(a[key])} -> {_short(b[key])}")
    return changes
