"""``distilforge generate``: push a JSONL file of prompts through a teacher, streaming to disk.

Input lines: ``{"id": ..., "messages": [...]}`` or ``{"id": ..., "prompt": "..."}``, optionally
with ``"sampling": {...}`` overrides; ``id`` defaults to the line number. A ``prompt`` is sent as
the user's turn of a chat, so an instruct model sees its chat template; ``raw_prompts`` sends it
as plain text instead (base models). Every other field of a line is copied into each of its
output rows, so results need no join back. Output lines: one per sample with text, finish reason
and token counts. Prompts are processed in chunks; each chunk's
results are appended (fsync'd) as soon as it completes and every completion is cached the
moment it arrives, so a crash loses at most the chunk in flight and a resume neither repeats a
finished prompt nor pays again for a sample already made. Failed samples go to
``<OUT>.rejects.jsonl`` with their reason and are retried on the next resume.
"""

from __future__ import annotations

import difflib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from distilforge.engine.api.context import TeacherContext
from distilforge.engine.api.errors import ConfigError
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.api.toolkit.inputs import InputFileError, read_jsonl_input
from distilforge.engine.build import Engine
from distilforge.engine.config import explain
from distilforge.engine.executors import Job, make_executor
from distilforge.engine.sampling import sample_with_cache
from distilforge.engine.store import JsonlAppender, TeacherCache, read_jsonl
from distilforge.engine.store.jsonl import drop_torn_tail, rewrite_jsonl
from distilforge.schemas import ChatMessage, ComponentConfig, ExecutorConfig, SamplingParams, TeacherRequest


class GenerateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: ComponentConfig
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    chunk_size: int = Field(1024, ge=1)
    seed: int = 0
    teacher_cache: Path = Path("runs/teacher-cache.sqlite")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    raw_prompts: bool = Field(False, description="send 'prompt' lines as plain text, without the chat template")


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
    teacher_union = engine.config_model.model_fields["teacher"].annotation
    model: type[GenerateSettings] = create_model(
        "GenerateConfig", __base__=GenerateSettings, teacher=(teacher_union, ...)
    )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, engine.registry)) from None


OUTPUT_FIELDS = frozenset(
    {
        "key",
        "sample_index",
        "text",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "model",
        "cached",
        "logprobs",
    }
)


class PromptLine(BaseModel):
    """The fields of a prompts line that the engine reads (the others are passed through)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | int | None = Field(None, description="unique per file; default: the line number")
    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    sampling: dict[str, Any] = Field(default_factory=dict)


def _refuse_misplaced(path: Path, number: int, extra: dict[str, Any]) -> None:
    """A passed-through field that is (nearly) the name of an engine field is most likely a mistake."""
    known = [*PromptLine.model_fields, *SamplingParams.model_fields]
    for name in extra:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            where = '"sampling": {...}' if close[0] in SamplingParams.model_fields else "the line's top level"
            hint = f"; {close[0]!r} goes in {where}" if close[0] == name else f"; did you mean {close[0]!r}?"
            raise InputFileError(
                f"prompts {path}:{number}: {name}: not a field the engine reads (it would be copied to the output"
                f" as data){hint}"
            )


@dataclass
class PromptFile:
    requests: list[TeacherRequest]
    passthrough: dict[str, dict[str, Any]]  # request id -> the line's other fields


def load_prompts(path: Path, defaults: SamplingParams, *, raw_prompts: bool = False) -> PromptFile:
    """Every prompt of the file, validated, before any is sent; ids must be unique."""
    requests: list[TeacherRequest] = []
    passthrough: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for number, line in read_jsonl_input(path, "prompts"):
        if line.get("id", "") is None:
            raise InputFileError(f"prompts {path}:{number}: 'id' is null; give a string or an integer, or leave it out")
        if line.get("prompt") is None and line.get("messages") is None:
            raise InputFileError(
                f"prompts {path}:{number}: a line needs 'prompt' (text) or 'messages' (a list of"
                f' {{"role": ..., "content": ...}}); it has {sorted(line) or "no fields"}'
            )
        extra = {k: v for k, v in line.items() if k not in PromptLine.model_fields}
        _refuse_misplaced(path, number, extra)
        clash = sorted(OUTPUT_FIELDS & set(extra))
        if clash:
            raise InputFileError(
                f"prompts {path}:{number}: field {clash[0]!r} would be overwritten by the output of the same name;"
                " rename it"
            )
        try:
            parsed = PromptLine.model_validate({k: v for k, v in line.items() if k in PromptLine.model_fields})
            sampling = SamplingParams.model_validate({**defaults.model_dump(), **parsed.sampling})
            as_chat = parsed.prompt is not None and parsed.messages is None and not raw_prompts
            request = TeacherRequest(
                id=str(parsed.id) if parsed.id is not None else str(number),
                messages=[ChatMessage(role="user", content=parsed.prompt)] if as_chat else parsed.messages,
                prompt=None if as_chat else parsed.prompt,
                sampling=sampling,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            raise InputFileError(f"prompts {path}:{number}: {problems}") from None
        if request.id in first_line:
            implicit = " (its line number: lines without an id get one)" if parsed.id is None else ""
            raise InputFileError(
                f"prompts {path}:{number}: id {request.id!r}{implicit} is already used on line"
                f" {first_line[request.id]}; every prompt needs its own id"
            )
        first_line[request.id] = number
        requests.append(request)
        passthrough[request.id] = extra
    return PromptFile(requests, passthrough)


def _row_key(request: TeacherRequest) -> str:
    """What an output row was made from: the id and the prompt's content and sampling."""
    return f"{request.id}:{request.prompt_hash()}"


def done_rows(out_path: Path, requests: list[TeacherRequest]) -> dict[str, set[int]]:
    """The sample indices each prompt already has in the output (by id and content). A row made from an
    earlier version of a prompt (same id, other content) stops the run: the two would be mixed."""
    wanted = {r.id: _row_key(r) for r in requests}
    lines = {r.id: i for i, r in enumerate(requests)}
    done: dict[str, set[int]] = {}
    for row in read_jsonl(out_path):
        key = row.get("key") or wanted.get(row["id"])  # rows written before keys: the id alone
        if row["id"] in wanted and key != wanted[row["id"]]:
            raise InputFileError(
                f"{out_path} holds samples of prompt id {row['id']!r} made from another prompt or sampling than the"
                f" one now in the prompts file (prompt {lines[row['id']] + 1}); write to a new output file, or"
                " remove those rows"
            )
        done.setdefault(str(key), set()).add(int(row["sample_index"]))
    return done


def _reject_path(out_path: Path) -> Path:
    return (
        out_path.with_suffix(out_path.suffix + ".rejects.jsonl")
        if out_path.suffix
        else Path(f"{out_path}.rejects.jsonl")
    )


def generate(
    engine: Engine, settings: GenerateSettings, prompts_path: Path, out_path: Path, console: Console | None = None
) -> GenerateSummary:
    console = console or make_console()
    summary = GenerateSummary()
    started = time.perf_counter()
    prompt_file = load_prompts(prompts_path, settings.sampling, raw_prompts=settings.raw_prompts)
    requests = prompt_file.requests
    if out_path.is_dir():
        raise InputFileError(f"output {out_path}: is a directory; give a file path such as {out_path / 'out.jsonl'}")
    rejects_path = _reject_path(out_path)
    for path in (out_path, rejects_path):
        cut = drop_torn_tail(path)
        if cut:
            console.print(f"{path}: dropped an unfinished last line ({cut} bytes) left by an interrupted run")
    finished = done_rows(out_path, requests)
    teacher = engine.registry.build("teacher", settings.teacher)
    ctx = TeacherContext(run_dir=out_path.parent, teacher=teacher, seed=settings.seed)
    executor = make_executor(settings.executor, engine.pm, Job(settings, out_path.parent))
    cache = TeacherCache(settings.teacher_cache)

    def pending() -> Iterator[TeacherRequest]:
        for request in requests:
            if len(finished.get(_row_key(request), ())) >= request.sampling.n:
                summary.skipped += 1
                continue
            yield request

    total = len(requests)
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
            chunk_size = max(settings.chunk_size, executor.chunk_hint)
            while chunk := list(itertools.islice(stream, chunk_size)):
                results, stats = sample_with_cache(ctx, chunk, cache, executor)
                rows: list[dict[str, Any]] = []
                errors: list[dict[str, Any]] = []
                for request in chunk:
                    # a crash mid-write can leave some samples of a prompt on disk: write the rest
                    have = finished.get(_row_key(request), set())
                    for index in (i for i in range(request.sampling.n) if i not in have):
                        c = results[(request.id, index)]
                        row = {
                            **prompt_file.passthrough[request.id],
                            "id": request.id,
                            "key": _row_key(request),
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
        executor.close()  # its workers, if any
        ctx.close()
        cache.close()
    keep_unresolved_rejects(rejects_path, out_path)
    summary.seconds = time.perf_counter() - started
    print_generate_summary(summary, out_path, console)
    return summary


def keep_unresolved_rejects(rejects_path: Path, out_path: Path) -> None:
    """Drop the errors of samples that have since succeeded: the rejects file lists what is still missing."""
    if not rejects_path.exists():
        return
    made = {(row["id"], row["sample_index"]) for row in read_jsonl(out_path)}
    rows = list(read_jsonl(rejects_path))
    still = [row for row in rows if (row["id"], row["sample_index"]) not in made]
    if len(still) != len(rows):
        rewrite_jsonl(rejects_path, still)


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
