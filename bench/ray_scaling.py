"""Teacher throughput on the ``ray`` executor (1 and 2 workers) against the ``local`` executor.

The same chat prompts go through three paths in one process, several repetitions, the order
rotated every repetition so no path always runs on a warmer machine:

* ``local``  - the default executor: the vLLM teacher in this process, one call for all prompts;
* ``ray x1`` - one Ray actor holding one vLLM engine bound to all the cores the local one uses;
* ``ray x2`` - two actors, each bound to its own half of the cores.

Engines start before timing (each path warms up once), and only the sampling is timed, through
``Executor.sample`` exactly as the engine calls it. Every request carries a seed derived from its
id, so all paths make the same tokens. The local Ray cluster declares twice the machine's cores
as logical CPUs so the 1- and 2-worker pools can both stay alive; only one path runs at a time
and idle engines use no CPU.

    HF_HUB_OFFLINE=1 python bench/ray_scaling.py --prompts 256 --reps 3 --max-tokens 48

On a 2-core machine ``ray x2`` cannot scale (the cores are the same ones); the figure that
matters there is the overhead ratio ``ray x1 / local``, which is what one engine per GPU costs
on a cluster. Results are printed and written as JSON beside ``--out``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from teacher_throughput import make_prompts, throughput_parser  # also sets the offline environment

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def main(argv: list[str] | None = None) -> int:
    parser = throughput_parser(__doc__)
    parser.add_argument("--shard-size", type=int, default=None, help="default: the executor's default")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray_scaling.json")
    args = parser.parse_args(argv)

    import ray

    from distilforge.engine.api.context import TeacherContext
    from distilforge.engine.build import Engine
    from distilforge.engine.executors import Executor, Job, LocalExecutor
    from distilforge.engine.executors.ray_executor import RayExecutor
    from distilforge.engine.generate import parse_settings
    from distilforge.plugins.models.packaged import default_teacher_dir
    from distilforge.schemas import ChatMessage, SamplingParams, TeacherRequest
    from distilforge.schemas.config import ExecutorConfig

    model = args.model or str(default_teacher_dir())
    cores = len(os.sched_getaffinity(0))
    engine = Engine.load()
    settings = parse_settings(
        engine,
        {
            "teacher": {
                "type": "vllm",
                "model": model,
                "max_model_len": 1024,
                "kv_cache_memory_bytes": int(args.kv_cache_gib * (1 << 30)),
            }
        },
    )
    teacher = engine.registry.build("teacher", settings.teacher)
    ctx = TeacherContext(run_dir=Path("."), teacher=teacher)
    ray.init(num_cpus=2 * cores, include_dashboard=False, configure_logging=False, log_to_driver=False)

    def ray_config(workers: int) -> ExecutorConfig:
        extra = {"shard_size": args.shard_size} if args.shard_size else {}
        return ExecutorConfig.model_validate(
            {"type": "ray", "workers": workers, "resources": {"num_cpus": cores // workers}, **extra}
        )

    job = Job(settings, Path("."))
    paths: dict[str, Executor] = {
        "local": LocalExecutor(ExecutorConfig(), engine.pm, job),
        "ray x1": RayExecutor(ray_config(1), engine.pm, job),
        "ray x2": RayExecutor(ray_config(2), engine.pm, job),
    }
    texts = make_prompts(args.prompts)
    requests = [
        TeacherRequest(
            messages=[ChatMessage(role="user", content=t)],
            sampling=SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens),
        )
        for t in texts
    ]

    def run(executor: Executor, batch: list[TeacherRequest]) -> tuple[float, int]:
        t0 = time.perf_counter()
        completions = list(executor.sample(batch, ctx))
        elapsed = time.perf_counter() - t0
        assert len(completions) == len(batch) and all(c.ok for c in completions), completions[:1]
        return elapsed, sum(c.completion_tokens for c in completions)

    for name, executor in paths.items():  # start every engine, compile, allocate
        t0 = time.perf_counter()
        run(executor, requests[:16])
        print(f"warm-up {name:7s}: {time.perf_counter() - t0:5.1f} s (engine start included)", flush=True)
    for name in ("ray x1", "ray x2"):
        for info in paths[name].worker_info():  # type: ignore[attr-defined]
            print(f"  {name} worker {info['slot']}: pid {info['pid']} cores {info['cpu_bind']}", flush=True)

    results: dict[str, list[tuple[float, int]]] = {name: [] for name in paths}
    names = list(paths)
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            elapsed, tokens = run(paths[name], requests)
            results[name].append((elapsed, tokens))
            print(
                f"rep {rep + 1} {name:7s}: {elapsed:6.2f} s  {tokens / elapsed:7.1f} tok/s  "
                f"{len(requests) / elapsed:6.2f} prompts/s  ({tokens} tokens)",
                flush=True,
            )

    def tok_s(name: str, rep: int) -> float:
        elapsed, tokens = results[name][rep]
        return tokens / elapsed

    summary: dict[str, Any] = {
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "reps": args.reps,
        "cores": cores,
        "model": model,
        "shard_size": paths["ray x1"].config.shard_size,
        "median_tok_s": {n: statistics.median(tok_s(n, r) for r in range(args.reps)) for n in names},
        "median_prompts_s": {
            n: statistics.median(len(requests) / results[n][r][0] for r in range(args.reps)) for n in names
        },
        "overhead_ratio_ray1_over_local": statistics.median(
            tok_s("ray x1", r) / tok_s("local", r) for r in range(args.reps)
        ),
        "scaling_ray2_over_ray1": statistics.median(tok_s("ray x2", r) / tok_s("ray x1", r) for r in range(args.reps)),
        "runs": {n: [{"seconds": round(e, 3), "tokens": t} for e, t in results[n]] for n in names},
    }
    print(f"\n{args.prompts} chat prompts x {args.max_tokens} max tokens, {args.reps} reps, {cores} cores, {model}")
    for name in names:
        print(
            f"{name:7s}: {summary['median_tok_s'][name]:7.1f} tok/s  "
            f"{summary['median_prompts_s'][name]:6.2f} prompts/s (median)"
        )
    overhead = summary["overhead_ratio_ray1_over_local"]
    print(f"overhead ratio ray x1 / local (tok/s, median of per-rep ratios): {overhead:.3f}")
    print(f"scaling ray x2 / ray x1 (tok/s, median of per-rep ratios): {summary['scaling_ray2_over_ray1']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {args.out}")

    for executor in paths.values():
        executor.close()
    teacher.close()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
