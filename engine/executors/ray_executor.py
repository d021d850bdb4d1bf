"""The ``ray`` executor: teacher sampling and scoring sharded over Ray actors.

Each actor (:class:`~distilforge.engine.executors.ray_worker.TeacherWorker`) holds one
long-lived teacher engine: one vLLM per GPU, or one per ``tensor_parallel_size`` GPUs. The
driver cuts the requests it still needs (the cache has already been consulted) into shards of
``shard_size`` requests and keeps at most ``max_inflight`` shards queued or running per worker:
memory stays bounded however many prompts there are, and no worker idles between shards.

Completions come back shard by shard, in whatever order the shards finish; the driver caches each
one at once and is the only writer of the cache and the run store. When a worker dies (a crash,
``kill -9``, a lost node) its unfinished shards are re-run on a replacement worker at most
``retries`` times; shards that already came back were cached and are never asked for again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distilforge.engine.api.errors import ConfigError, DistilforgeError
from distilforge.engine.api.toolkit.completions import error_completion
from distilforge.engine.executors.base import Executor, Job, score_with
from distilforge.engine.executors.ray_worker import TeacherWorker, WorkerSpec, pack_dir
from distilforge.schemas import Completion, Record, TeacherRequest, content_hash

if TYPE_CHECKING:
    import pluggy

    from distilforge.engine.api.context import RunContext, TeacherContext

log = logging.getLogger(__name__)

START_TIMEOUT_S = 900.0
# Environment the workers need to behave like the driver (a fresh Ray cluster does not inherit it).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "DO_NOT_TRACK", "VLLM_NO_USAGE_STATS")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor.type is 'ray' but Ray is not installed: pip install 'distilforge[ray]'") from None
    return ray


@dataclass
class _Worker:
    slot: int
    handle: Any
    info: dict[str, Any]
    inflight: int = 0
    dead: bool = False


@dataclass
class _Shard:
    items: list[Any]
    attempt: int = 0


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, config: Any, pm: pluggy.PluginManager, job: Job) -> None:
        super().__init__(config, pm, job)
        self._ray: Any = None
        self._started_ray = False
        self._actor_cls: Any = None
        self._spec: WorkerSpec | None = None
        self._workers: list[_Worker] = []
        self.stats: dict[str, Any] = {"worker_deaths": 0, "shards": 0, "rerun_requests": [], "rerun_shards": 0}

    # ------------------------------------------------------------------ cluster and workers

    def _ensure_ray(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing phones home
        if not ray.is_initialized():
            if self.config.address is None:
                ray.init(include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)
                self._started_ray = True
            else:
                ray.init(address=self.config.address, logging_level=logging.WARNING, configure_logging=False)
        self._ray = ray
        return ray

    def _make_spec(self) -> WorkerSpec:
        job = self.job
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        env.update({k: v for k, v in os.environ.items() if k.startswith("DISTILFORGE_")})
        env.update(self.config.env)
        # secrets travel from the driver's environment to the actors in memory, never through the config
        passed = {*self.config.pass_env, getattr(getattr(job.settings, "teacher", None), "api_key_env", None)}
        env.update({k: os.environ[k] for k in passed if k and k in os.environ})
        return WorkerSpec(
            slot=0,
            config_data=job.settings.model_dump(mode="json"),
            run_dir=str(job.run_dir),
            cpus=self.config.resources.num_cpus,
            env=env,
        )

    def _actor_options(self, ctx: TeacherContext) -> dict[str, Any]:
        ray = self._ray
        res = self.config.resources
        gpus = res.num_gpus
        if gpus is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpus = float(getattr(ctx.teacher.config, "tensor_parallel_size", 1)) if has_gpus else 0.0
        options: dict[str, Any] = {
            "num_cpus": res.num_cpus,
            "num_gpus": gpus,
            "max_restarts": 0,  # the executor replaces dead workers itself: it knows what they owed
            "max_task_retries": 0,
            "max_concurrency": 1,  # one shard at a time: an engine is not thread-safe
        }
        if res.memory:
            options["memory"] = res.memory
        if res.custom:
            options["resources"] = dict(res.custom)
        return options

    def _spawn(self, slots: Sequence[int], ctx: TeacherContext) -> list[_Worker]:
        ray = self._ensure_ray()
        if self._actor_cls is None:
            self._actor_cls = ray.remote(TeacherWorker)
        if self._spec is None:
            self._spec = self._make_spec()
        options = self._actor_options(ctx)
        handles = [
            self._actor_cls.options(**options).remote(WorkerSpec(**{**self._spec.__dict__, "slot": slot}))
            for slot in slots
        ]
        try:
            infos = ray.get([h.info.remote() for h in handles], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            for handle in handles:
                ray.kill(handle, no_restart=True)
            raise DistilforgeError(
                f"Ray could not place {len(handles)} worker(s) within {START_TIMEOUT_S:.0f} s: each asks for"
                f" {options['num_cpus']} CPU and {options['num_gpus']} GPU (executor.resources); the cluster"
                f" has {ray.available_resources()} free"
            ) from None
        except ray.exceptions.RayError as exc:
            raise DistilforgeError(f"a Ray worker failed to start: {exc}") from exc
        workers = [_Worker(slot, h, info) for slot, h, info in zip(slots, handles, infos, strict=True)]
        for w in workers:
            log.info("ray worker %s ready: %s", w.slot, w.info)
        return workers

    def _ensure_workers(self, ctx: TeacherContext) -> None:
        live = [w for w in self._workers if not w.dead]
        missing = [s for s in range(self.config.workers) if s not in {w.slot for w in live}]
        if missing:
            self._workers = live + self._spawn(missing, ctx)

    def _replace(self, worker: _Worker, ctx: TeacherContext, cause: BaseException) -> None:
        if worker.dead:
            return
        worker.dead = True
        self.stats["worker_deaths"] += 1
        log.warning(
            "ray worker %s (pid %s) died: %s; starting a replacement", worker.slot, worker.info.get("pid"), cause
        )
        with contextlib.suppress(Exception):  # already gone
            self._ray.kill(worker.handle, no_restart=True)
        self._ensure_workers(ctx)

    def worker_info(self) -> list[dict[str, Any]]:
        """pid, node, slot and CPU binding of each live worker (for tests and diagnostics)."""
        return [dict(w.info) for w in self._workers if not w.dead]

    @property
    def chunk_hint(self) -> int:
        return self.config.workers * self.config.max_inflight * self.config.shard_size

    # ------------------------------------------------------------------ the shard loop

    def _run_shards(
        self, items: Sequence[Any], ctx: TeacherContext, submit: Any, on_error: Any
    ) -> Iterator[tuple[_Shard, Any]]:
        """Push ``items`` through the workers in shards; yield ``(shard, result)`` as each finishes.

        ``submit(worker, shard)`` starts a remote call; ``on_error(shard, exc)`` handles a shard
        that failed for good (its retries spent, or an error raised by the component itself).
        """
        ray = self._ensure_ray()
        self._ensure_workers(ctx)
        size = self.config.shard_size
        pending = deque(_Shard(list(items[i : i + size])) for i in range(0, len(items), size))
        inflight: dict[Any, tuple[_Worker, _Shard]] = {}
        try:
            while pending or inflight:
                for worker in self._workers:
                    while not worker.dead and pending and worker.inflight < self.config.max_inflight:
                        shard = pending.popleft()
                        inflight[submit(worker, shard)] = (worker, shard)
                        worker.inflight += 1
                        self.stats["shards"] += 1
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    worker, shard = inflight.pop(ref)
                    worker.inflight -= 1
                    try:
                        result = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                        self._replace(worker, ctx, exc)
                        if shard.attempt < self.config.retries:
                            shard.attempt += 1
                            self.stats["rerun_shards"] += 1
                            self.stats["rerun_requests"].extend(getattr(x, "id", None) for x in shard.items)
                            pending.appendleft(shard)
                        else:
                            on_error(shard, exc)
                        continue
                    except ray.exceptions.RayError as exc:  # the component raised: not a worker death
                        on_error(shard, exc)
                        continue
                    yield shard, result
        finally:
            for ref in inflight:  # the consumer stopped early: do not leave work queued
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            for worker, _ in inflight.values():
                worker.inflight = max(0, worker.inflight - 1)

    # ------------------------------------------------------------------ sampling

    def sample(self, requests: Sequence[TeacherRequest], ctx: TeacherContext) -> Iterator[Completion]:
        if not requests:
            return
        failed: list[Completion] = []
        model_id = ctx.teacher.model_id

        def submit(worker: _Worker, shard: _Shard) -> Any:
            return worker.handle.sample.remote(shard.items)

        def on_error(shard: _Shard, exc: BaseException) -> None:
            message = f"ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            for request in shard.items:
                failed.extend(error_completion(request, message, model=model_id))

        for _, completions in self._run_shards(requests, ctx, submit, on_error):
            yield from completions
            if failed:
                yield from failed
                failed.clear()
        yield from failed

    # ------------------------------------------------------------------ scoring

    def score(self, records: Sequence[Record], ctx: RunContext) -> dict[str, dict[str, float]]:
        shardable = [s for s in ctx.scorers if s.shardable]
        if not records or not shardable or not self.config.shard_scoring:
            return super().score(records, ctx)
        ray = self._ensure_ray()
        student_blob: bytes | None = None
        if ctx.student is not None:
            import tempfile
            from pathlib import Path

            with tempfile.TemporaryDirectory(prefix="distilforge-student-") as tmp:
                try:
                    ctx.student.save(Path(tmp))
                except Exception as exc:  # nothing to ship (e.g. an untrained student): score here
                    log.info("scoring on the driver: the student could not be saved (%s)", exc)
                    return super().score(records, ctx)
                student_blob = pack_dir(Path(tmp))
        pool = list(ctx.pool)
        setup = {
            "scorers": [(s.config.type, s.config.model_dump(mode="json")) for s in shardable],
            "student": (ctx.student.config.type, ctx.student.config.model_dump(mode="json"))
            if ctx.student is not None
            else None,
            "round": ctx.round,
            "labels": ctx.labels,
            "task": ctx.task,
            "state": ctx.state,
            "dataset_info": ctx.dataset_info,
        }
        setup["scorers_token"] = content_hash(setup["scorers"])
        setup["student_token"] = content_hash([setup["student"], len(student_blob or b""), time.time_ns()])
        setup["pool_token"] = content_hash([r.id for r in pool])
        refs = [ray.put(student_blob), ray.put(pool)]
        merged: dict[str, dict[str, float]] = {}
        errors: list[BaseException] = []

        def submit(worker: _Worker, shard: _Shard) -> Any:
            return worker.handle.score.remote(shard.items, setup, refs)

        def on_error(shard: _Shard, exc: BaseException) -> None:
            errors.append(exc)

        for _, scores in self._run_shards(records, ctx, submit, on_error):
            for record_id, values in scores.items():
                merged.setdefault(record_id, {}).update(values)
        if errors:
            raise DistilforgeError(f"scoring on Ray failed: {errors[0]}") from errors[0]
        rest = [s for s in ctx.scorers if not s.shardable]
        for record_id, values in score_with(rest, records, ctx).items():
            merged.setdefault(record_id, {}).update(values)
        return merged

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        ray, workers = self._ray, self._workers
        self._workers = []
        if ray is None:
            return
        live = [w for w in workers if not w.dead]
        if live:
            try:
                ray.get([w.handle.close.remote() for w in live], timeout=60)
            except Exception:  # best effort: the processes are killed next
                log.debug("ray worker close failed", exc_info=True)
            for worker in live:
                with contextlib.suppress(Exception):
                    ray.kill(worker.handle, no_restart=True)
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        self._ray = None
