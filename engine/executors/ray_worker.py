"""The code that runs inside one Ray actor: one long-lived teacher engine, plus shard-safe scorers.

This module does not import Ray; :mod:`distilforge.engine.executors.ray_executor` wraps
:class:`TeacherWorker` with ``ray.remote`` on the driver. A worker rebuilds the driver's config
from plain data with the plugins installed on its own node (install the same distilforge and
plugins everywhere), so the teacher, students and scorers are the same components as locally.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class WorkerSpec:
    """Plain data a worker is built from (picklable without the driver's dynamic config classes)."""

    slot: int
    config_data: dict[str, Any]
    run_dir: str
    cpus: float = 1.0
    env: dict[str, str] = field(default_factory=dict)


def cpu_slice(slot: int, cpus: float, cores: Sequence[int]) -> list[int]:
    """The cores worker ``slot`` binds its CPU engine to: ``cpus`` of them, disjoint between slots
    while the node has enough (Ray reserves CPUs by count but does not pin processes)."""
    cores = sorted(cores)
    per = max(1, min(len(cores), round(cpus)))
    start = (slot * per) % len(cores)
    return [cores[(start + i) % len(cores)] for i in range(per)]


def pack_dir(path: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(path), arcname=".")
    return buffer.getvalue()


def unpack_dir(data: bytes, path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(path, filter="data")


def rebuild_teacher_config(engine: Any, data: dict[str, Any]) -> Any:
    """The driver's teacher config, validated again against this node's plugins (only the teacher
    section: a dataset path that exists only on the driver does not stop a worker)."""
    teacher = data["teacher"]
    return engine.registry.get("teacher", teacher["type"]).config_cls.model_validate(teacher)


class TeacherWorker:
    """One Ray actor. The teacher engine starts on the first shard and lives as long as the actor."""

    def __init__(self, spec: WorkerSpec) -> None:
        os.environ.update(spec.env)
        self.spec = spec
        self._bind_cpus()
        from distilforge.engine.api.context import TeacherContext
        from distilforge.engine.build import Engine

        engine = Engine.load()
        self.engine = engine
        teacher = engine.registry.build("teacher", rebuild_teacher_config(engine, spec.config_data))
        seed = int(spec.config_data.get("seed", 0))
        self.ctx = TeacherContext(run_dir=Path(spec.run_dir), teacher=teacher, seed=seed)
        self._scoring: Any = None  # the RunContext scoring shards see, built on the first one
        self._scoring_token: str | None = None
        self._student_token: str | None = None
        self._pool_token: str | None = None

    def _bind_cpus(self) -> None:
        """On a CPU-only worker give vLLM its own cores, unless the user chose a binding."""
        if "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
            return
        try:
            import ray

            if ray.get_gpu_ids():
                return
        except Exception:  # pragma: no cover - not inside Ray
            pass
        try:
            cores = sorted(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = list(range(os.cpu_count() or 1))
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cpu_slice(self.spec.slot, self.spec.cpus, cores)))

    def info(self) -> dict[str, Any]:
        import ray

        context = ray.get_runtime_context()
        return {
            "pid": os.getpid(),
            "node_id": context.get_node_id(),
            "slot": self.spec.slot,
            "gpus": [str(g) for g in ray.get_gpu_ids()],
            "cpu_bind": os.environ.get("VLLM_CPU_OMP_THREADS_BIND"),
        }

    # ------------------------------------------------------------------ sampling

    def sample(self, requests: list[Any]) -> list[Any]:
        """Every completion of one shard (the teacher_sample hook, as locally)."""
        from distilforge.engine import hooks

        return list(hooks.teacher_sample(self.engine.pm, requests, self.ctx))

    # ------------------------------------------------------------------ scoring

    def score(self, records: list[Any], setup: dict[str, Any], refs: list[Any]) -> dict[str, dict[str, float]]:
        """Scores of one shard of records. ``setup`` names the scorers, the student and the round;
        ``refs`` holds object refs of the student checkpoint and the pool, fetched only when their
        token changed (once per round per worker, not once per shard)."""
        import ray

        registry = self.engine.registry
        ctx = self._scoring_context()
        if setup["scorers_token"] != self._scoring_token:
            for scorer in ctx.scorers:
                scorer.close()
            ctx.scorers = []
            for kind_name, data in setup["scorers"]:
                cfg = registry.get("scorer", kind_name).config_cls.model_validate(data)
                ctx.scorers.append(registry.build("scorer", cfg))
            self._scoring_token = setup["scorers_token"]
        student_ref, pool_ref = refs
        if setup["student"] is not None and setup["student_token"] != self._student_token:
            name, data = setup["student"]
            if ctx.student is not None:
                ctx.student.close()
            ctx.student = registry.build("student", registry.get("student", name).config_cls.model_validate(data))
            with tempfile.TemporaryDirectory(prefix="distilforge-student-") as tmp:
                unpack_dir(ray.get(student_ref), Path(tmp))
                ctx.student.load(Path(tmp))
            self._student_token = setup["student_token"]
        if setup["pool_token"] != self._pool_token:
            ctx.pool = ray.get(pool_ref)
            self._pool_token = setup["pool_token"]
        ctx.round = setup["round"]
        ctx.labels = setup["labels"]
        ctx.task = setup["task"]
        ctx.state = setup["state"]
        ctx.dataset_info = setup["dataset_info"]
        from distilforge.engine import hooks

        # the score_ood hook, as on the driver: the shipped scorers and any plugin's own scorer
        return hooks.score_ood(self.engine.pm, records, ctx)

    def _scoring_context(self) -> Any:
        if self._scoring is None:
            from distilforge.engine.api.context import RunContext
            from distilforge.schemas import RunConfig

            try:
                config = self.engine.parse(self.spec.config_data)
            except Exception as exc:  # e.g. a dataset path that exists only on the driver
                log.warning("worker: the run config did not validate here (%s); scorers see it unvalidated", exc)
                config = RunConfig.model_construct(**self.spec.config_data)
            self._scoring = RunContext(config=config, run_dir=self.ctx.run_dir, teacher=self.ctx.teacher)
        return self._scoring

    def close(self) -> None:
        if self._scoring is not None:
            for component in (self._scoring.student, *self._scoring.scorers):
                if component is not None:
                    component.close()
        self.ctx.close()
