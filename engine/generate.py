"""``distilforge generate``: push a JSONL file of prompts through a teacher, streaming to disk.

Input lines: ``{"id": ..., "messages": [...]}`` or ``{"id": ..., "prompt": "..."}``, optionally
with ``"sampling": {...}`` overrides; ``id`` defaults to the line number. Output lines: one per
sample with text, finish reason and token counts. Prompts are processed in chunks; each chunk's
results are appended (fsync'd) as soon as it completes and every completion is cached the
moment it arrives, so a crash loses at most the chunk in flight and a resume neither repeats a
finished prompt nor pays again for a sample already made. Failed samples go to
``<OUT>.rejects.jsonl`` with their reason and are retried on the next resume.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from distilforge.engine.build import Engine
from distilforge.engine.config import explain
from distilforge.engine.console import make_console
from distilforge.engine.context import RunContext
from distilforge.engine.errors import ConfigError
from distilforge.engine.executors import executor_for
from distilforge.engine.sampling import sample_with_cache
from distilforge.engine.store import JsonlAppender, TeacherCache, read_jsonl
from distilforge.schemas import ComponentConfig, ExecutorConfig, SamplingParams, TeacherRequest


class GenerateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: ComponentConfig
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    chunk_size: int = Field(1024, ge=1)
    seed: int = 0
    teacher_cache: Path = Path("runs/teacher-cache.sqlite")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)


@dataclass
class GenerateSummary:
    prompts: int = 0
    skipped: int = 0
    samples: int = 0
    cached: int = 0
    new: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


def parse_settings(engine: Engine, data: dict[str, Any]) -> GenerateSettings:
    from pydantic import ValidationError

    teacher_union = engine.config_model.model_fields["teacher"].annotation
    model: type[GenerateSettings] = create_model(
        "GenerateConfig", __base__=GenerateSettings, teacher=(teacher_union, ...)
    )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, engine.registry)) from None


def _request(line: dict[str, Any], line_no: int, defaults: SamplingParams) -> TeacherRequest:
    sampling = defaults.model_copy(update=line.get("sampling") or {})
    try:
        return TeacherRequest(
            id=str(line.get("id", line_no)),
            messages=line.get("messages"),
            prompt=line.get("prompt"),
            sampling=SamplingParams.model_validate(sampling.model_dump()),
        )
    except Exception as exc:
        raise ConfigError(f"prompt line {line_no + 1}: {exc}") from None


def done_ids(out_path: Path) -> dict[str, int]:
    """How many samples of each prompt id the output file already holds."""
    counts: dict[str, int] = {}
    for row in read_jsonl(out_path):
        counts[row["id"]] = counts.get(row["id"], 0) + 1
    return counts


def generate(
    engine: Engine, settings: GenerateSettings, prompts_path: Path, out_path: Path, console: Console | None = None
) -> GenerateSummary:
    console = console or make_console()
    summary = GenerateSummary()
    started = time.perf_counter()
    finished = done_ids(out_path)
    teacher = engine.registry.build("teacher", settings.teacher)
    ctx = RunContext(config=settings, run_dir=out_path.parent, pm=engine.pm, registry=engine.registry, teacher=teacher)
    cache = TeacherCache(settings.teacher_cache)
    rejects_path = (
        out_path.with_suffix(out_path.suffix + ".rejects.jsonl")
        if out_path.suffix
        else Path(f"{out_path}.rejects.jsonl")
    )

    def pending() -> Iterator[TeacherRequest]:
        for line_no, line in enumerate(read_jsonl(prompts_path)):
            request = _request(line, line_no, settings.sampling)
            if finished.get(request.id, 0) >= request.sampling.n:
                summary.skipped += 1
                continue
            yield request

    total = sum(1 for _ in read_jsonl(prompts_path))
    progress = Progress(
        TextColumn("generate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )
    try:
        with progress, JsonlAppender(out_path) as out, JsonlAppender(rejects_path) as rejects:
            task = progress.add_task("prompts", total=total, completed=0, rate="")
            stream = pending()
            # on Ray a chunk must hold enough shards to keep every worker busy; the output is the same
            chunk_size = max(settings.chunk_size, executor_for(ctx).chunk_hint)
            while chunk := list(itertools.islice(stream, chunk_size)):
                results, stats = sample_with_cache(ctx, chunk, cache)
                rows: list[dict[str, Any]] = []
                errors: list[dict[str, Any]] = []
                for request in chunk:
                    # a crash mid-write can leave some samples of a prompt on disk: write the rest
                    for index in range(finished.get(request.id, 0), request.sampling.n):
                        c = results[(request.id, index)]
                        row = {
                            "id": request.id,
                            "sample_index": index,
                            "text": c.text,
                            "finish_reason": c.finish_reason,
                            "prompt_tokens": c.prompt_tokens,
                            "completion_tokens": c.completion_tokens,
                            "model": c.model,
                            "cached": c.cached,
                        }
                        if c.logprobs is not None:
                            row["logprobs"] = [lp.model_dump() for lp in c.logprobs]
                        (rows if c.ok else errors).append(
                            row if c.ok else {"id": request.id, "sample_index": index, "reason": c.error}
                        )
                out.write_many(rows)
                rejects.write_many(errors)
                summary.prompts += len(chunk)
                summary.samples += stats.requested
                summary.cached += stats.cached
                summary.new += stats.new
                summary.errors += stats.errors
                summary.prompt_tokens += stats.prompt_tokens
                summary.completion_tokens += stats.completion_tokens
                elapsed = max(time.perf_counter() - started, 1e-6)
                progress.update(
                    task,
                    completed=summary.prompts + summary.skipped,
                    rate=f"{summary.prompts / elapsed:.1f} prompts/s · {summary.completion_tokens / elapsed:.0f} tok/s",
                )
            progress.update(task, completed=summary.prompts + summary.skipped)
    finally:
        ctx.close()  # the teacher, and the executor's workers if any
        cache.close()
    summary.seconds = time.perf_counter() - started
    print_generate_summary(summary, out_path, console)
    return summary


def print_generate_summary(s: GenerateSummary, out_path: Path, console: Console) -> None:
    table = Table(title=f"distilforge generate -> {out_path}")
    table.add_column("what")
    table.add_column("value", justify="right")
    rate = s.completion_tokens / s.seconds if s.seconds else 0.0
    for name, value in (
        ("prompts processed", s.prompts),
        ("prompts already done (skipped)", s.skipped),
        ("samples", s.samples),
        ("from cache", s.cached),
        ("new from teacher", s.new),
        ("errors (see .rejects.jsonl)", s.errors),
        ("prompt tokens", s.prompt_tokens),
        ("completion tokens", s.completion_tokens),
        ("seconds", f"{s.seconds:.1f}"),
        ("completion tokens/s", f"{rate:.1f}"),
    ):
        table.add_row(name, str(value))
    console.print(table)
