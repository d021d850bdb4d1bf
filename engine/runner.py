"""Start, resume and summarise runs (what ``distilforge run`` and ``resume`` do)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from distilforge.engine.api.context import RunContext
from distilforge.engine.api.errors import DistilforgeError, ResumeRefused
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.build import Engine
from distilforge.engine.config import RunConfig, config_diff, config_to_dict, fingerprint, load_yaml
from distilforge.engine.executors import Job, make_executor
from distilforge.engine.library_output import library_output_to
from distilforge.engine.loop import RoundLoop
from distilforge.engine.report import RunFacts, headline, write_report
from distilforge.engine.report_table import console_rows
from distilforge.engine.store import RunStore, TeacherCache, atomic_write_text
from distilforge.engine.teacher_baseline import load_teacher_baseline
from distilforge.engine.validation import validate_parsed


def _execute(
    engine: Engine, config: RunConfig, store: RunStore, console: Console, ctx: RunContext | None = None
) -> list[dict[str, Any]]:
    """Run the rounds (with ``ctx``'s components when the caller built them already)."""
    cache: TeacherCache | None = None
    executor = make_executor(config.executor, engine.pm, Job(config, store.run_dir))
    try:
        cache = TeacherCache(engine.teacher_cache_path(config))
        with library_output_to(store.layout.engine_log):
            ctx = ctx if ctx is not None else engine.context(config, store.run_dir)
            metrics = RoundLoop(ctx, store, cache, executor, engine.pm, console).run()
        write_report(store.run_dir)
    except BaseException as exc:
        if store.manifest:  # resumable either way; "failed" keeps the reason for `distilforge status`
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            store.manifest["error"] = None if interrupted else f"{type(exc).__name__}: {exc}"[:2000]
            store.set_status("interrupted" if interrupted else "failed")
        raise
    finally:
        executor.close()
        if ctx is not None:
            ctx.close()
        if cache is not None:
            cache.close()
        store.close()
    facts = RunFacts.read(store.run_dir)
    print_summary(facts, console)
    for line in headline(facts.metrics, load_teacher_baseline(store.run_dir), facts.records, facts.manifest):
        console.print(line, highlight=False)
    console.print(f"run directory: [bold]{store.run_dir}[/bold]  (report: {store.run_dir / 'report.md'})")
    return metrics


def _check_same(engine: Engine, store: RunStore, config: RunConfig, force: bool) -> None:
    if store.manifest.get("fingerprint") == fingerprint(config):
        return
    stored = store.stored_config()
    with contextlib.suppress(DistilforgeError):  # through today's model: a field added since, at its default,
        stored = config_to_dict(engine.parse(stored))  # is no change
    changes = config_diff(stored, config_to_dict(config))
    if not changes:
        return
    if not force:
        listing = "\n".join(f"  - {c}" for c in changes)
        raise ResumeRefused(
            f"the config of {store.run_dir} has changed since the run started:\n{listing}\n"
            "Resume with the original config, start a run under a new name,"
            " or pass --force to continue with the new config."
        )


def _never_generated(store: RunStore) -> bool:
    """True when the run committed no teacher generation (only seeds, maybe a trained round 0)."""
    done = any(stages.get("generate") == "done" for stages in store.manifest["rounds"].values())
    return not done and store.manifest.get("status") in ("failed", "interrupted") and not store.manifest["state"]


def start_run(
    engine: Engine,
    config_path: Path,
    *,
    force: bool = False,
    console: Console | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the config at ``config_path``, with top-level ``overrides`` applied (``--seeds``)."""
    console = console or make_console()
    data = load_yaml(config_path)
    if overrides and isinstance(data, dict):
        data = {**data, **overrides}
    config = engine.parse(data, config_path.parent)
    run_dir = engine.run_dir(config)
    store = RunStore(run_dir)
    if RunStore.exists(run_dir):
        store.open()
        try:
            if _never_generated(store) and store.manifest.get("fingerprint") != fingerprint(config):
                # it stopped before any teacher work was committed (a config error found late): nothing to keep
                console.print(f"{run_dir} stopped before any teacher work was committed; starting it again")
                store.close()
                store.discard()
                return start_run(engine, config_path, force=force, console=console, overrides=overrides)
            _check_same(engine, store, config, force)
        except BaseException:
            store.close()
            raise
        if store.manifest.get("status") == "completed":
            console.print(f"{run_dir} is already complete; nothing to do (delete it or change 'name' to run again)")
        else:
            console.print(f"resuming {run_dir}")
        _adopt(store, config)
    else:
        ctx = engine.context(config, run_dir)
        try:
            validate_parsed(engine, config, ctx)  # a config that cannot run leaves no run directory behind
        except BaseException:
            ctx.close()
            raise
        store.create(config_to_dict(config), fingerprint(config))
        return _execute(engine, config, store, console, ctx)
    return _execute(engine, config, store, console)


def resume_run(
    engine: Engine,
    run_dir: Path,
    *,
    config_path: Path | None = None,
    force: bool = False,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    console = console or make_console()
    store = RunStore(run_dir)
    if not RunStore.exists(run_dir):
        raise ResumeRefused(f"{run_dir} is not a distilforge run directory (no manifest.json)")
    store.open()
    try:
        config = (
            engine.parse(load_yaml(config_path), config_path.parent)
            if config_path
            else engine.parse(store.stored_config())
        )
        _check_same(engine, store, config, force)
    except BaseException:
        store.close()
        raise
    _adopt(store, config)
    return _execute(engine, config, store, console)


def _adopt(store: RunStore, config: RunConfig) -> None:
    """Record the config a resumed run continues with (only differs under --force)."""
    new_print = fingerprint(config)
    if store.manifest.get("fingerprint") != new_print:
        atomic_write_text(store.config_path, yaml.safe_dump(config_to_dict(config), sort_keys=False))
        store.manifest.setdefault("forced_changes", []).append(store.manifest["fingerprint"])
        store.manifest["fingerprint"] = new_print
    store.set_status("running")


def print_summary(facts: RunFacts, console: Console) -> None:
    table = Table(title="distilforge: per-round summary (every column: report.md)")
    header, rows = console_rows(facts.metrics, facts.method)
    for column in header:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
