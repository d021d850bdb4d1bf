"""``distilforge init --method llm2llm|gold|laat --data FILE``: a commented config that runs as written.

A built-in plugin like any other (``register_commands``). It reads the data the way the run will
(columns guessed, labels inferred), sizes the teacher's answer budget and the encoder's
``max_length`` from the longest input, picks the strongest teacher preset that is set up and fits
the machine's memory, and writes the YAML beside nothing it does not know: every value it chose
carries a comment saying why. For LAAT it also writes a feature-file skeleton when none exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import CommandParsers, hookimpl

# strongest first: (preset, RAM it needs to run beside a student, in GiB)
TEACHER_CHOICES = (("qwen2.5-coder-1.5b", 12), ("qwen2.5-coder-0.5b", 6), ("smollm2-135m", 0))


def machine_ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0


def pick_teacher() -> tuple[str, str]:
    """(preset, why): the strongest preset that is set up and fits in RAM."""
    from distilforge.plugins.models.packaged import preset_marker

    ram = machine_ram_gib()
    for name, needs in TEACHER_CHOICES:
        if ram >= needs and (name == "smollm2-135m" or preset_marker(name)):
            return name, f"the strongest preset set up here that fits {ram:.0f} GiB of RAM"
    return "smollm2-135m", "the embedded default"


def text_budget(longest_chars: int) -> tuple[int, int]:
    """(teacher max_tokens, encoder max_length) for inputs up to ``longest_chars`` characters."""
    tokens = math.ceil(longest_chars / 4)
    max_tokens = max(64, math.ceil(1.5 * tokens) + 16)
    max_length = min(256, max(32, 32 * math.ceil(1.2 * tokens / 32)))
    return max_tokens, max_length


def _relative(path: Path, config: Path) -> str:
    return os.path.relpath(path.resolve(), config.resolve().parent)


def text_config(method: str, data: Path, out: Path, task: str | None) -> str:
    from distilforge.plugins.datasets.file_dataset import FileDatasetConfig, guess_columns, infer_labels, read_rows

    rows = [row for _, row in read_rows(data, "--data")]
    if not rows:
        raise DistilforgeError(f"--data {data}: no rows")
    source, target = guess_columns(rows, FileDatasetConfig(train=data), data)
    labels = infer_labels([str(r[target]) for r in rows])
    if labels is None:
        raise DistilforgeError(
            f"--data {data}: the {target!r} column does not look like class labels; init writes classification"
            " configs (write a math config by hand from examples/gsm/llm2llm.yaml)"
        )
    longest = max(len(str(r[source])) for r in rows)
    max_tokens, max_length = text_budget(longest)
    teacher, why = pick_teacher()
    task = task or f"Classify the {target} of a {source} as {', '.join(labels[:-1])} or {labels[-1]}."
    name = f"{data.stem}-{method}"
    head = [
        f"# {method.upper()} on {data.name}: {len(rows)} rows, input column {source!r}, label column {target!r},",
        f"# {len(labels)} labels ({', '.join(labels)}). Written by `distilforge init`; check it with",
        f"#     distilforge validate {out}",
        "# and read the README's config reference for every key.",
        f"name: {name}",
        "seed: 0",
        "# validation:              # hold out 20% of the seeds to keep the best round's student (predict --best)",
        "#   fraction: 0.2          # and stop when 2 rounds bring no gain; off: with few seeds each one counts",
        "#   patience: 2",
        "",
        "dataset:",
        "  type: file",
        f"  train: {_relative(data, out)}    # relative to this file",
        "  test_fraction: 0.2       # held out, stratified, fixed by split_seed; or give `test: FILE`",
        f"  input_field: {source}",
        f"  target_field: {target}",
        f"  task: {json.dumps(task)}",
        "",
        "teacher:",
        "  type: vllm",
        f"  model: {teacher}    # {why}; `distilforge setup --list`",
        "  max_model_len: 2048",
        "",
        "student:",
        "  type: text-classifier",
        "  mode: frozen             # embeddings + logistic regression: seconds per retrain",
        f"  max_length: {max_length}          # tokens per input: the longest input has ~{math.ceil(longest / 4)}",
        "",
    ]
    sampling = [
        "  sampling:",
        "    temperature: 0.8",
        f"    max_tokens: {max_tokens}        # 1.5x the longest input's tokens: long examples are not cut off",
    ]
    if method == "llm2llm":
        body = [
            "method:",
            "  type: llm2llm",
            "  rounds: 3",
            "  k: 3                     # new examples per failure per round",
            "  min_confidence: 0.8      # seeds the student is less than 80% sure of count as failures too",
            *sampling,
            "",
            "filters:",
            "  - type: parse-validity",
            "  - type: exact-dedup",
            "  - type: label-judge      # the teacher labels each new example; a disagreement is rejected",
        ]
    else:
        body = [
            "method:",
            "  type: gold",
            "  batches: 10",
            "  batch_size: 8",
            "  validation_size: 8",
            "  train_every: 5",
            *sampling,
            "",
            "scorers:",
            "  - type: energy           # the student's free energy: the out-of-distribution score",
            "",
            "filters:",
            "  - type: parse-validity",
            "  - type: exact-dedup",
            "  - type: faiss-novelty    # near-duplicates of accepted examples are rejected",
        ]
    return "\n".join(head + body) + "\n"


def laat_config(data: Path, out: Path, target: str | None, task: str | None) -> tuple[str, dict[str, Any] | None]:
    from distilforge.plugins.datasets.table import default_feature_file, read_table

    frame = read_table(data)
    columns = [str(c) for c in frame.columns]
    target = target or columns[-1]
    if target not in columns:
        raise DistilforgeError(f"--target {target!r} is not a column of {data} (it has {columns})")
    features = None
    if not default_feature_file(data).exists():
        values = sorted(str(v) for v in frame[target].dropna().unique())
        features = {
            "task": task or f"Predict {target} from the other columns of the table.",
            "target": target,
            "positive": values[-1] if len(values) == 2 else None,
            "features": [
                {"name": c, "description": f"the {c.replace('_', ' ')} column"} for c in columns if c != target
            ],
        }
    teacher, why = pick_teacher()
    lines = [
        f"# LAAT on {data.name}: label column {target!r}. Written by `distilforge init`; the feature file",
        f"# {default_feature_file(data).name} beside the table says what each column means: better descriptions",
        "# give the teacher more to go on. Check with `distilforge validate` first.",
        f"name: {data.stem}-laat",
        "seed: 0",
        "",
        "dataset:",
        "  type: table",
        f"  path: {_relative(data, out)}    # relative to this file",
        "  shots: 5                 # training rows per class (k-shot); none = all training rows",
        "  test_fraction: 0.3",
        "",
        "teacher:",
        "  type: vllm",
        f"  model: {teacher}    # {why}",
        "  max_model_len: 2048",
        "",
        "student:",
        "  type: tabular",
        "",
        "method:",
        "  type: laat",
        "  elicitation: reasoned    # the best for the Qwen presets in the README's LAAT results",
    ]
    return "\n".join(lines) + "\n", features


def cmd_init(args: argparse.Namespace) -> int:
    data, out = Path(args.data), Path(args.output or f"{Path(args.data).stem}-{args.method}.yaml")
    if out.exists() and not args.force:
        raise DistilforgeError(f"{out} exists; pass --force to overwrite it or -o to write elsewhere")
    if not data.exists():
        raise DistilforgeError(f"--data {data}: no such file")
    if args.method == "laat":
        from distilforge.plugins.datasets.table import default_feature_file

        text, features = laat_config(data, out, args.target, args.task)
        if features is not None:
            default_feature_file(data).write_text(yaml.safe_dump(features, sort_keys=False), encoding="utf-8")
            print(f"wrote the feature file {default_feature_file(data)} (edit the descriptions)")
    else:
        text = text_config(args.method, data, out, args.task)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}; next: distilforge validate {out} && distilforge run {out}")
    return 0


@hookimpl
def register_commands(subparsers: CommandParsers) -> None:
    p = subparsers.add_parser("init", help="write a commented config for your data (llm2llm, gold or laat)")
    p.add_argument("--method", choices=["llm2llm", "gold", "laat"], required=True)
    p.add_argument("--data", required=True, help="labelled texts (llm2llm, gold) or a table (laat)")
    p.add_argument("-o", "--output", help="the config to write (default: <data stem>-<method>.yaml here)")
    p.add_argument("--task", help="one sentence describing the task (default: made from the column names)")
    p.add_argument("--target", help="laat: the label column (default: the last column)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.set_defaults(func=cmd_init)
