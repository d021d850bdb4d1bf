"""``distilforge predict RUN_DIR INPUT``: the run's trained student on new inputs.

The student is built from the run's stored config and loads the checkpoint of the latest round
that trained (or of ``--round R``, when its checkpoint was kept: ``keep_checkpoints: all``). Input:
JSONL or CSV rows (the text is the ``--input-field`` column, default ``text`` or ``input``), or a
``.txt`` file with one text per line. Output: JSONL, each input row with ``prediction`` and
``confidence`` added. Nothing in the run directory changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.toolkit.inputs import read_table_input
from distilforge.engine.build import Engine
from distilforge.engine.config import load_yaml
from distilforge.schemas import Record, RunLayout

INPUT_GUESSES = ("text", "input")


def checkpoint_round(layout: RunLayout, wanted: int | None) -> int:
    """The round whose student checkpoint to load: ``wanted``, or the latest one kept."""
    kept = [r for r in layout.rounds() if layout.student(r).exists()]
    if not kept:
        raise DistilforgeError(f"{layout.root} holds no student checkpoint (no round has trained yet)")
    if wanted is None:
        return kept[-1]
    if wanted not in kept:
        raise DistilforgeError(
            f"{layout.root}: round {wanted} has no kept checkpoint (kept: {kept}); runs keep the latest trained"
            " round's student unless the config says keep_checkpoints: all"
        )
    return wanted


def read_inputs(path: Path, field: str | None) -> list[tuple[str, dict[str, Any]]]:
    """``(text, row)`` per input; the row is what the output line starts from."""
    if path.suffix.lower() == ".txt":
        if not path.exists():
            raise DistilforgeError(f"input {path}: no such file")
        lines = path.read_text(encoding="utf-8").splitlines()
        return [(line, {"text": line}) for line in lines if line.strip()]
    rows = [row for _, row in read_table_input(path, "input")]
    if not rows:
        raise DistilforgeError(f"input {path}: no rows")
    column = field or next((c for c in INPUT_GUESSES if c in rows[0]), None)
    if column is None or column not in rows[0]:
        have = sorted(rows[0])
        raise DistilforgeError(f"input {path}: no column {field or 'text'!r} (it has {have}); pass --input-field")
    return [(str(row[column]), row) for row in rows]


def predict_run(
    engine: Engine,
    run_dir: Path,
    input_path: Path,
    out_path: Path,
    *,
    round_index: int | None = None,
    input_field: str | None = None,
) -> tuple[int, int]:
    """Predict every input with the run's student; returns (round of the checkpoint, rows written)."""
    layout = RunLayout(run_dir)
    if not layout.config.exists():
        raise DistilforgeError(f"{run_dir} is not a distilforge run directory (no config.yaml)")
    config = engine.parse(load_yaml(layout.config))
    r = checkpoint_round(layout, round_index)
    rows = read_inputs(input_path, input_field)
    student = engine.registry.build("student", config.student)
    try:
        student.load(layout.student(r))
        predictions = student.predict([Record(input=text, target="") for text, _ in rows])
    finally:
        student.close()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as out:
        for (_, row), p in zip(rows, predictions, strict=True):
            out.write(json.dumps({**row, "prediction": p.label, "confidence": p.confidence}, ensure_ascii=False) + "\n")
    return r, len(rows)
