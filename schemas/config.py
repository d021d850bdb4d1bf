"""The static part of the run configuration.

The full ``RunConfig`` is assembled at start-up by ``distilforge.engine.config`` from this base
plus every installed plugin's component config classes, each a member of a discriminated union
on its ``type`` field. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ComponentConfig(BaseModel):
    """Base class of every plugin component's config.

    Subclasses narrow ``type`` to a ``Literal`` naming the component, e.g.
    ``type: Literal["vllm"] = "vllm"``; that literal is the value users write in YAML.
    """

    model_config = ConfigDict(extra="forbid")

    type: str


class ExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description="ray: 'auto' or 'ray://host:port'")
    workers: int = Field(1, ge=1)


class RunSettings(BaseModel):
    """Settings that do not depend on installed plugins."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run directory name")
    seed: int = 0
    output_dir: Path = Field(Path("runs"), description="parent folder of the run directory")
    teacher_cache: Path | None = Field(
        None,
        description="SQLite file of cached teacher completions; default <output_dir>/teacher-cache.sqlite,"
        " shared by the runs in that folder so a re-run never pays twice",
    )
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
