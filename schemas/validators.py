"""Config-time checks for the strings a user writes into a config: prompt templates and regexes.

A template with a field the code does not fill (``{foo}``) or a regex that does not compile
would otherwise fail deep inside a hook, after a round's work was done. Used as pydantic
``AfterValidator`` s, they fail at config validation, naming the field, the problem and what is
allowed. Plugin authors use them the same way: ``Annotated[str, template_with("task", "input")]``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ValidationInfo, model_validator


def template_fields(template: str) -> list[str]:
    """The ``{names}`` a ``str.format`` template uses; raises ValueError for a malformed one."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not base or base.isdigit():
            raise ValueError(f"positional field {{{name}}} is not allowed; use a named field")
        names.append(base)
    return names


def template_with(*allowed: str) -> AfterValidator:
    """A validator: the template may use only ``allowed`` fields."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        unknown = sorted(set(template_fields(value)) - set(allowed))
        if unknown:
            shown = ", ".join(f"{{{n}}}" for n in allowed) or "none"
            raise ValueError(f"unknown template field {{{unknown[0]}}}; the fields this template gets: {shown}")
        return value

    return AfterValidator(check)


def _compile_all(values: list[str] | None) -> list[str] | None:
    for i, pattern in enumerate(values or []):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {i} ({pattern!r}) is not a valid regular expression: {exc}") from None
    return values


regex_list: AfterValidator = AfterValidator(_compile_all)
"""A validator for ``list[str]`` of regular expressions: each must compile."""


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return bool(get_args(annotation)) and all(a in (int, float, type(None)) for a in get_args(annotation))


class NoBoolNumbers(BaseModel):
    """A base for config models: ``k: true`` is refused where a number is wanted (pydantic's lax mode
    would read it as 1), and the error names the field."""

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(field.alias or name)
                if isinstance(value, bool) and _numeric(field.annotation):
                    raise ValueError(f"{name}: got {value!r}, a boolean, where a number is wanted; write the number")
        return data


CONFIG_DIR = "config_dir"  # the validation-context key the engine sets to the config file's folder


def _resolve_against_config(value: Path, info: ValidationInfo) -> Path:
    """A relative path means "beside the config file" when the config came from a file."""
    value = value.expanduser()
    base = (info.context or {}).get(CONFIG_DIR)
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


ConfigPath = Annotated[Path, AfterValidator(_resolve_against_config)]
"""A path in a config file: ``~`` expanded; relative paths resolved against the config file's folder."""
