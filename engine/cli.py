"""The ``distilforge`` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import pluggy
from rich.text import Text

from distilforge.engine import __version__
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.toolkit.console import make_console
from distilforge.engine.plugin_manager import build_plugin_manager


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from distilforge.engine.build import Engine

    return Engine.load(pm=args.plugin_manager)


def cmd_validate(args: argparse.Namespace) -> int:
    from distilforge.engine.validation import validate_config

    report = validate_config(_engine(args), Path(args.config))
    console = make_console()
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from distilforge.engine.runner import start_run

    if args.dry_run:
        return cmd_validate(args)
    if not args.seeds:
        start_run(_engine(args), Path(args.config), force=args.force)
        return 0
    from distilforge.engine.compare import comparison_table
    from distilforge.engine.config import load_yaml

    engine, path = _engine(args), Path(args.config)
    config = engine.parse(load_yaml(path), path.parent)
    runs = []
    for seed in args.seeds:
        name = f"{config.name}-s{seed}"
        start_run(engine, path, force=args.force, overrides={"seed": seed, "name": name})
        runs.append(engine.run_dir(config.model_copy(update={"name": name})))
    print("\n".join(comparison_table(runs)))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from distilforge.engine.runner import resume_run

    resume_run(
        _engine(args), Path(args.run_dir), config_path=Path(args.config) if args.config else None, force=args.force
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from distilforge.engine.config import load_yaml
    from distilforge.engine.generate import generate, parse_settings

    data = load_yaml(Path(args.config)) if args.config else {}
    if not isinstance(data, dict):
        raise DistilforgeError(f"{args.config}: the top level must be a mapping")
    data.setdefault("teacher", {"type": args.teacher})
    if args.model:
        data["teacher"]["model"] = args.model
    sampling = data.setdefault("sampling", {})
    for key in ("temperature", "max_tokens", "n"):
        value = getattr(args, key)
        if value is not None:
            sampling[key] = value
    if args.chunk_size:
        data["chunk_size"] = args.chunk_size
    if args.cache:
        data["teacher_cache"] = args.cache
    if args.raw_prompts:
        data["raw_prompts"] = True
    engine = _engine(args)
    summary = generate(engine, parse_settings(engine, data), Path(args.prompts), Path(args.output))
    return 1 if summary.errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    from distilforge.engine.export import export_run

    path, count = export_run(
        Path(args.run_dir),
        args.format,
        Path(args.output) if args.output else None,
        include=[part.strip() for part in args.include.split(",") if part.strip()],
        provenance=args.provenance,
        hub_repo=args.push_to_hub,
    )
    pushed = f"; pushed to the Hub as {args.push_to_hub}" if args.push_to_hub else ""
    make_console().print(f"exported {count} rows ({args.format}) to {path}{pushed}", highlight=False, markup=False)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from distilforge.engine.predict import predict_run

    out = Path(args.output)
    r, count = predict_run(
        _engine(args),
        Path(args.run_dir),
        Path(args.input),
        out,
        round_index=args.round,
        best=args.best,
        input_field=args.input_field,
    )
    make_console().print(f"predicted {count} rows with round {r}'s student -> {out}", highlight=False, markup=False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from distilforge.engine.compare import comparison_table

    lines = comparison_table([Path(r) for r in args.runs], [Path(r) for r in args.vs or []])
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.check:
        return cmd_plugins_check(args)
    from distilforge.engine.plugin_manager import describe_plugins

    engine = _engine(args)
    components = engine.registry.by_plugin()
    rows = describe_plugins(engine.pm)
    for row in rows:
        row["components"] = components.get(row["name"], [])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="distilforge plugins")
    for column in ("plugin", "version", "origin", "components", "hooks"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["version"], row["origin"], ", ".join(row["components"]), ", ".join(row["hooks"]))
    make_console(stderr=False).print(table)
    return 0


def cmd_plugins_check(args: argparse.Namespace) -> int:
    """Validate every installed plugin against the hookspecs; exit 1 when any has a problem."""
    from distilforge.engine.api.hookspecs import HOOKSPEC_VERSION
    from distilforge.engine.plugin_check import check_plugins

    reports = check_plugins()
    bad = [r for r in reports if not r.ok]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
        return 1 if bad else 0
    console = make_console(stderr=False)
    for report in reports:
        state = "" if report.loaded else "  (not loaded: DISTILFORGE_PLUGINS)"
        mark = "[green]ok[/green]  " if report.ok else "[bold red]FAIL[/bold red]"
        console.print(f"{mark} {report.name}  [dim]{report.origin}{state}[/dim]", highlight=False)
        for problem in report.problems:
            console.print(Text(f"       hook {problem.hook!r}: {problem.message}"), highlight=False)
    summary = f"{len(reports)} plugins checked against hookspec {HOOKSPEC_VERSION}: "
    console.print(summary + (f"{len(bad)} with problems" if bad else "all ok"), highlight=False)
    return 1 if bad else 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from distilforge.engine.scaffold import new_plugin

    root = new_plugin(args.name, Path(args.dir), kind=args.kind, force=args.force)
    print(root)
    print(f"next: pip install -e '{root}[test]' && pytest {root}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(_engine(args).config_model.model_json_schema(), indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from distilforge.engine.report import write_report

    path = write_report(Path(args.run_dir))
    print(path)
    return 0


def build_parser(pm: pluggy.PluginManager) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilforge", description="A teacher LLM makes training data and knowledge for small students."
    )
    parser.add_argument("--version", action="version", version=f"distilforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error message")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a config (resumes it if its run directory exists)")
    p.add_argument("config")
    p.add_argument("--force", action="store_true", help="continue an existing run even though the config changed")
    p.add_argument("--dry-run", action="store_true", help="check everything (as `validate` does) and stop")
    p.add_argument(
        "--seeds",
        type=lambda text: [int(x) for x in text.split(",") if x.strip()],
        help="run once per seed (e.g. 0,1,2) as NAME-s<seed>, then print them side by side with mean ± sd",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "validate",
        help="check a config without running it: fields, templates, regexes, data files and columns, the"
        " dataset's splits, the teacher preset; creates nothing",
    )
    p.add_argument("config")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("resume", help="resume an interrupted run")
    p.add_argument("run_dir")
    p.add_argument("--config", help="continue with this config instead of the stored one (needs --force if it differs)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "generate",
        help="batch-generate completions for a JSONL file of prompts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Push a JSON Lines file of prompts through a teacher; output: one line per sample.",
        epilog="""input lines (JSON objects):
  {"prompt": "Write a haiku about rain."}                       sent as the user's chat turn
  {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]}
  optional: "id" (default: the line number), "sampling": {"temperature": 0.2, "n": 3, ...}
  any other field ("topic": ...) is copied into each output row of that line

output lines: id, sample_index, text, finish_reason, prompt_tokens, completion_tokens, model,
cached, plus the line's own fields; failed samples go to OUTPUT.rejects.jsonl with the reason and
are retried when the same command runs again (finished prompts are skipped, cached samples reused).""",
    )
    p.add_argument("prompts")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-c", "--config", help="YAML with 'teacher', 'sampling', 'chunk_size', 'teacher_cache'")
    p.add_argument("--teacher", default="vllm", help="teacher type when the config names none (default: vllm)")
    p.add_argument("--model", help="teacher model (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", dest="max_tokens", type=int)
    p.add_argument("--n", type=int)
    p.add_argument("--chunk-size", dest="chunk_size", type=int)
    p.add_argument("--cache", help="teacher cache file (default runs/teacher-cache.sqlite)")
    p.add_argument(
        "--raw-prompts", action="store_true", help="send 'prompt' lines as plain text, without the chat template"
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "export", help="export a run's records (and rejects) as JSONL, CSV, Parquet, a datasets folder or chat JSONL"
    )
    p.add_argument("run_dir")
    p.add_argument("--format", default="jsonl", help="jsonl (default), csv, parquet, datasets or chat")
    p.add_argument("-o", "--output", help="file (folder for datasets); default RUN_DIR/export/data.<format>")
    p.add_argument("--include", default="seeds,synthetic", help="comma-separated: seeds, synthetic, rejects")
    p.add_argument("--provenance", action="store_true", help="add id, parent_id, provenance and scores columns")
    p.add_argument("--push-to-hub", metavar="REPO", help="also upload as a private HF dataset (token: $HF_TOKEN)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="label new inputs with a run's trained student")
    p.add_argument("run_dir")
    p.add_argument("input", help="JSONL or CSV rows, or a .txt file with one text per line")
    p.add_argument("-o", "--output", required=True, help="JSONL: each input row plus prediction and confidence")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--round", type=int, help="the round whose student to use (default: the latest kept)")
    which.add_argument("--best", action="store_true", help="the best round's student on the validation split")
    p.add_argument("--input-field", help="the column holding the text (default: text or input)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("compare", help="several runs in one table: seed-only, final, Δ, mean ± sd, paired deltas")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--vs", nargs="+", metavar="RUN_DIR", help="baseline runs, paired with RUN_DIR... by position")
    p.add_argument("-o", "--output", help="also write the table (markdown) to this file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("plugins", help="list plugins, their versions, components and hooks")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--check",
        action="store_true",
        help="validate installed plugins against the hookspecs (hook names, argument names, register_* configs);"
        " exit 1 on any mismatch",
    )
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("new-plugin", help="scaffold a plugin package (entry point, component, config, tests)")
    p.add_argument("name", help="the component's type and the entry point's name, e.g. keyword-filter")
    p.add_argument("--kind", choices=["filter", "scorer"], default="filter", help="component to start from")
    p.add_argument("--dir", default=".", help="parent directory of the new package (default: here)")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty directory")
    p.set_defaults(func=cmd_new_plugin)

    p = sub.add_parser("schema", help="print the JSON Schema of the run config (all installed plugins)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("report", help="regenerate report.md and plots of a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)

    pm.hook.register_commands(subparsers=sub)  # plugins add their own (the built-ins: setup)
    return parser


STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP stop a run like Ctrl-C does (status "interrupted", resumable). Once stopping,
    further signals are noted, not raised: a second Ctrl-C must not tear the clean shutdown apart."""

    def later(signum: int, frame: object) -> None:
        print("still stopping cleanly, the run stays resumable; kill -9 stops at once", file=sys.stderr)

    def first(signum: int, frame: object) -> None:
        for stop in STOP_SIGNALS:
            signal.signal(stop, later)
        # said at once: releasing a teacher engine can take a few seconds more
        print("interrupted: stopping cleanly (what is finished is kept) ...", file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for stop in STOP_SIGNALS:
            signal.signal(stop, first)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    broken: Exception | None = None
    try:
        pm = build_plugin_manager()
    except Exception as exc:  # an installed plugin that does not load: `plugins --check` says why
        broken = exc
        pm = build_plugin_manager(load_entrypoints=False)
    args = build_parser(pm).parse_args(argv)
    args.plugin_manager = pm
    if broken is not None and args.func is not cmd_plugins:
        message = (
            f"an installed plugin does not load ({type(broken).__name__}: {broken}); run `distilforge plugins --check`"
        )
        make_console().print(Text.assemble(("error: ", "bold red"), message), highlight=False)
        return 2
    _stop_on_signals()
    try:
        return int(args.func(args))
    except DistilforgeError as exc:
        if args.debug:
            traceback.print_exc()
        make_console().print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again (or `distilforge resume RUN_DIR`) to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
