"""Texts labelled per second: the engine's label path against the best raw path, and against today's.

The same Rotten Tomatoes snippets (the fixed test split, ``--texts`` of them) are labelled by:

- ``engine``: what the teacher baseline and the label judge run: ``ask_labels`` with the default
  label reading (one order, calibrated on the 16 seeds, one free token), through a run context, the
  teacher cache (empty: every answer is paid for) and the local executor's ``teacher_sample`` hook,
  on the ``vllm`` teacher with ``backend: auto``;
- ``raw``: the same prompts, already rendered, straight into the same backend with no engine at
  all (llama.cpp: the server's ``handle_chat_completions`` on as many threads as slots; vLLM: one
  ``LLM.chat`` call), with the same engine settings;
- ``guided``: the engine path with guided choice instead of one free token (``--guided-texts`` of
  the texts): the label is read from the same first-token log-probabilities either way, so this
  is the price of the grammar and the label's other tokens;
- ``before``: the previous default on this machine: two label orders under guided choice, on
  ``backend: vllm`` (``--before-texts`` of the texts: it is the slow one).

Each path's labels/s, the ratios engine/raw (floor 0.95) and engine/before (floor 2), and every
path's accuracy on the texts it labelled are printed and, with ``--out``, written to PATH.md/.json.

    HF_HUB_OFFLINE=1 python bench/label_cost.py --texts 1000 --before-texts 100 --out bench/results/label_cost
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from result_files import save_results
from teacher_throughput import cpu_model  # noqa: F401  (also sets the offline environment)

from distilforge.engine.api.context import RunContext
from distilforge.engine.api.toolkit.labelling import (
    ask_labels,
    combine_votes,
    label_requests,
    seed_requests,
    seeds_prior,
)
from distilforge.engine.executors.base import Job, LocalExecutor
from distilforge.engine.plugin_manager import build_plugin_manager
from distilforge.engine.sampling import CachedTeacherAccess
from distilforge.engine.store.cache import TeacherCache
from distilforge.plugins.datasets.builtin import RottenTomatoes, RottenTomatoesConfig
from distilforge.plugins.teachers.cpu_kind import describe_cpu
from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig
from distilforge.schemas import ExecutorConfig, LabelReading, Record


def accuracy(votes: dict[str, Any], texts: list[Record]) -> float:
    return sum(1 for r in texts if r.id in votes and votes[r.id].label == r.target) / len(texts)


def engine_path(
    teacher: VLLMTeacher,
    texts: list[Record],
    labels: list[str],
    task: str,
    reading: LabelReading,
    workdir: Path,
    seeds: list[Record],
) -> tuple[float, float]:
    pm = build_plugin_manager()
    workdir.mkdir(parents=True, exist_ok=True)
    cache = TeacherCache(workdir / "engine-cache.sqlite")
    executor = LocalExecutor(ExecutorConfig(), pm, Job(None, workdir))  # type: ignore[arg-type]
    ctx = RunContext(config=None, run_dir=workdir, teacher=teacher, labels=labels, task=task)  # type: ignore[arg-type]
    ctx.teacher_access = CachedTeacherAccess(cache, executor)
    ctx.pool = list(seeds)  # what a run's label stages calibrate on
    started = time.perf_counter()
    votes = ask_labels(ctx, {r.id: r.input for r in texts}, labels, reading, purpose="label-cost")
    seconds = time.perf_counter() - started
    cache.close()
    return seconds, accuracy(votes, texts)


def raw_path(
    teacher: VLLMTeacher, texts: list[Record], labels: list[str], task: str, reading: LabelReading, seeds: list[Record]
) -> tuple[float, float]:
    """The same requests, rendered once, answered by the backend with nothing of the engine between."""
    prompt: dict[str, Any] = {"orders": reading.orders, "first_token": reading.first_token}
    requests = [q for r in texts for q in label_requests(r.id, r.input, labels, task, **prompt)]
    calibration, targets = seed_requests([(r.id, r.input, r.target) for r in seeds], labels, task, **prompt)
    if teacher.backend == "llamacpp":
        inner = teacher._llamacpp
        assert inner is not None
        server = inner.server
        bodies = [inner.body(q, 0) for q in calibration + requests]
        started = time.perf_counter()
        with ThreadPoolExecutor(inner.config.parallel) as pool:
            answers = list(pool.map(server.handle_chat_completions, bodies))
        seconds = time.perf_counter() - started
        completions = {
            (q.id, 0): inner.completion(q, 0, a) for q, a in zip(calibration + requests, answers, strict=True)
        }
    else:
        llm = teacher.llm
        params = [teacher.sampling_params(q) for q in calibration + requests]
        chats = [[m.model_dump() for m in (q.messages or [])] for q in calibration + requests]
        started = time.perf_counter()
        outputs = llm.chat(chats, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        completions = {}
        for q, output in zip(calibration + requests, outputs, strict=True):
            completions.update({(c.request_id, c.sample_index): c for c in teacher._completions(q, output)})
    prior = seeds_prior(calibration, completions, labels, targets)
    return seconds, accuracy(combine_votes(requests, completions, labels, prior), texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--before-texts", type=int, default=100, help="texts for the slow previous default; 0 = skip")
    parser.add_argument("--guided-texts", type=int, default=200, help="texts for the guided-choice path; 0 = skip")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    rt = RottenTomatoes(RottenTomatoesConfig(seed_per_class=8)).load(0)  # the demo's 16 seeds calibrate
    labels, task = list(rt.labels or []), rt.task
    texts = rt.test[: args.texts]
    spare = rt.test[-16:]  # warm-up texts, outside the timed ones
    reading = LabelReading()
    rows: list[dict[str, Any]] = []

    def record(name: str, backend: str, orders: int, done: list[Record], seconds: float, acc: float) -> None:
        rows.append(
            {
                "path": name,
                "backend": backend,
                "orders": orders,
                "texts": len(done),
                "seconds": round(seconds, 1),
                "labels_per_s": len(done) / seconds,
                "accuracy": acc,
            }
        )
        print(f"{name}: {len(done)} texts in {seconds:.1f} s ({len(done) / seconds:.2f}/s), acc {acc:.3f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        teacher = VLLMTeacher(VLLMTeacherConfig(model=args.model, max_model_len=1024))
        guided = reading.model_copy(update={"first_token": False})
        subset = texts[: args.guided_texts]
        try:
            # start the engine and put the shared prompt prefix in every slot, untimed
            list(teacher.sample([q for r in spare for q in label_requests(r.id, r.input, labels, task)]))
            record("raw", teacher.backend, 1, texts, *raw_path(teacher, texts, labels, task, reading, rt.seed))
            seconds, acc = engine_path(teacher, texts, labels, task, reading, Path(tmp) / "engine", rt.seed)
            record("engine", teacher.backend, 1, texts, seconds, acc)
            if subset:
                seconds, acc = engine_path(teacher, subset, labels, task, guided, Path(tmp) / "guided", rt.seed)
                record("guided", teacher.backend, 1, subset, seconds, acc)
        finally:
            teacher.close()
        if args.before_texts:
            before = VLLMTeacher(VLLMTeacherConfig(model=args.model, max_model_len=1024, backend="vllm"))
            subset = texts[: args.before_texts]
            old = LabelReading(orders=2, calibration="none", first_token=False)
            try:
                list(before.sample([q for r in spare for q in label_requests(r.id, r.input, labels, task)]))
                seconds, acc = engine_path(before, subset, labels, task, old, Path(tmp) / "before", rt.seed)
            finally:
                before.close()
            record("before", "vllm", 2, subset, seconds, acc)

    rate = {row["path"]: row["labels_per_s"] for row in rows}
    lines = [
        f"{describe_cpu()}; teacher {args.model}",
        "",
        "| path | backend | orders | texts | seconds | labels/s | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['backend']} | {row['orders']} | {row['texts']} | {row['seconds']}"
            f" | {row['labels_per_s']:.2f} | {row['accuracy']:.3f} |"
        )
    lines.append("")
    lines.append(f"engine / raw: {rate['engine'] / rate['raw']:.3f} (floor 0.95)")
    if "guided" in rate:
        lines.append(f"first token / guided choice: {rate['engine'] / rate['guided']:.2f}x")
    if "before" in rate:
        lines.append(f"engine / before: {rate['engine'] / rate['before']:.2f}x (floor 2)")
    print("\n".join(lines))
    if args.out:
        save_results(args.out, "Labelling cost", lines, {"rows": rows})


if __name__ == "__main__":
    main()
