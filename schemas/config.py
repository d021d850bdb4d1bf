"""The static part of the run configuration.

The full ``RunConfig`` is assembled at start-up by ``distilforge.engine.config`` from this base
plus every installed plugin's component config classes, each a member of a discriminated union
on its ``type`` field. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from distilforge.schemas.validators import NoBoolNumbers


class ComponentConfig(NoBoolNumbers):
    """Base class of every plugin component's config.

    Subclasses narrow ``type`` to a ``Literal`` naming the component, e.g.
    ``type: Literal["vllm"] = "vllm"``; that literal is the value users write in YAML.
    """

    model_config = ConfigDict(extra="forbid")

    type: str


class WorkerResources(BaseModel):
    """What Ray reserves for each worker (one long-lived teacher engine per worker)."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(1.0, ge=0.0, description="CPU cores per worker; on CPU-only nodes vLLM runs on this many")
    num_gpus: float | None = Field(
        None,
        ge=0.0,
        description="GPUs per worker; None = the teacher's tensor_parallel_size when the cluster has GPUs, else 0",
    )
    memory: int | None = Field(None, ge=0, description="bytes of RAM Ray reserves per worker")
    custom: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources per worker, e.g. {accelerator_type:A100: 0.01}"
    )


class ExecutorConfig(NoBoolNumbers):
    """Where teacher sampling and scoring run: in this process, or on actors of a Ray cluster.

    Changing the executor never changes what a run produces (it is not part of the config
    fingerprint), so a run started locally may be resumed on Ray and the other way round.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["local", "ray"] = "local"
    address: str | None = Field(
        None,
        description="ray: 'auto' (the cluster this machine belongs to), 'ray://host:10001' (Ray Client),"
        " or None = start a private local Ray instance (or use the one already initialised in-process)",
    )
    workers: int = Field(1, ge=1, description="ray: teacher actors, each holding one long-lived teacher engine")
    resources: WorkerResources = Field(default_factory=WorkerResources)
    shard_size: int = Field(
        128, ge=1, description="ray: requests per shard, the unit of work sent to a worker (and re-run if it dies)"
    )
    max_inflight: int = Field(
        2,
        ge=1,
        description="ray: shards queued or running per worker; bounds driver memory and keeps workers busy",
    )
    retries: int = Field(
        1, ge=0, description="ray: times a dead worker's unfinished shard is re-run on a replacement worker"
    )
    shard_scoring: bool = Field(
        True, description="ray: run shard-safe scorers (energy, faiss-novelty) on the workers too"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="ray: extra environment variables for the workers; stored with the run's config, so never"
        " secrets (use pass_env)",
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="ray: names of the driver's environment variables to hand to the workers, values never stored"
        " (the teacher's api_key_env is always passed)",
    )


class LabelReading(BaseModel):
    """How a teacher's label is read (the teacher baseline, the label judge): from the first answer
    token's log-probabilities, in how many label orders, with which correction of its label bias."""

    orders: int = Field(
        1,
        ge=1,
        description="label orders the prompt lists (cyclic rotations), probabilities averaged; each order is a"
        " full prompt, so 2 costs twice 1",
    )
    calibration: Literal["seeds", "content-free", "none"] = Field(
        "seeds",
        description="divide the teacher's bias over the labels out of its answers, per label order: 'seeds' fits"
        " it to the run's labelled seeds (up to 32 per label, asked once per task; no seeds: raw), 'content-free'"
        " reads it from the answers to 'N/A', '[MASK]' and '' (3 prompts; it hurts where 'no content' looks like"
        " a label), 'none' keeps the raw probabilities",
    )
    first_token: bool = Field(
        True,
        description="ask for one free token and read the labels from its log-probabilities; false = guided choice"
        " over the labels (the same log-probabilities, plus a grammar and the label's other tokens)",
    )


class TeacherBaselineConfig(LabelReading):
    """The teacher's own zero-shot accuracy on the test split, beside the student's, in every report."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="classify the test split with the teacher (tasks with labels only)")
    max_examples: int | None = Field(
        300,
        ge=1,
        description="classify at most this many test examples (a fixed random subset, the same in every run"
        " on the same test split); None = all",
    )


class ValidationConfig(BaseModel):
    """A validation split carved from the seed examples: it chooses the best round (kept beside the
    last) and can stop the rounds early. The test split is never used to choose anything."""

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the seed examples held out (stratified by label, seeded by the run's seed) to pick"
        " the best round on; 0 = off, every seed trains",
    )
    metric: str = Field(
        "accuracy", description="the student's evaluation metric compared across rounds (higher is better)"
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="stop after this many rounds without a validation gain over the best round; None = every round",
    )
    min_delta: float = Field(0.0, ge=0.0, description="a gain smaller than this does not count as one")

    @model_validator(mode="after")
    def _patience_needs_a_split(self) -> ValidationConfig:
        if self.patience is not None and self.fraction == 0:
            raise ValueError("validation.patience needs a validation split: set validation.fraction (e.g. 0.2)")
        return self


class RunSettings(NoBoolNumbers):
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
    teacher_baseline: TeacherBaselineConfig = Field(default_factory=TeacherBaselineConfig)
    keep_checkpoints: Literal["last", "all"] = Field(
        "last",
        description="'last' keeps the latest trained round's student (and the best round's, with a validation"
        " split); 'all' keeps every round's (e.g. round 0's, the seed-only student), for `distilforge predict"
        " --round R`",
    )
    validation: ValidationConfig = Field(default_factory=ValidationConfig)


class RunConfig(RunSettings):
    """A validated run config. The engine builds the real model at start-up from the config classes
    the installed plugins registered, so each component field is a discriminated union at runtime;
    this is its typed view."""

    method: ComponentConfig
    teacher: ComponentConfig
    student: ComponentConfig
    dataset: ComponentConfig
    scorers: list[ComponentConfig] = []
    filters: list[ComponentConfig] = []
    judge: ComponentConfig | None = None
