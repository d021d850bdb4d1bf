"""Dataset ``file``: the user's own labelled examples from JSONL, CSV, TSV, Parquet or a saved HF dataset.

What a practitioner has is usually one file of a few dozen labelled texts with their own column
names. So: the input and target columns are guessed when the names are the usual ones (and
named in the error when they are not), the label set is inferred when the targets look like
classes, and when no ``test`` file is given a stratified test split is carved from ``train``
with its own seed (``split_seed``), so it never moves between runs. Paths are relative to the
config file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from distilforge.engine.api.components import Dataset, DatasetSplits
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.toolkit.inputs import InputFileError, read_jsonl_input, read_table_input
from distilforge.engine.api.toolkit.splits import carve_split
from distilforge.schemas import ComponentConfig, Record
from distilforge.schemas.validators import ConfigPath

FORMATS = ".jsonl, .json (JSON Lines), .csv, .tsv, .parquet, or a folder saved with datasets' save_to_disk"
INPUT_NAMES = (
    "text",
    "input",
    "sentence",
    "review",
    "content",
    "document",
    "question",
    "prompt",
    "utterance",
    "headline",
    "title",
)
TARGET_NAMES = ("label", "target", "category", "class", "sentiment", "answer", "output", "topic", "intent")
MAX_INFERRED_LABELS = 50


class FileDatasetConfig(ComponentConfig):
    type: Literal["file"] = "file"
    train: ConfigPath = Field(..., description=f"labelled examples: {FORMATS}; relative to the config file")
    test: ConfigPath | None = Field(
        None, description="held-out test examples (same formats); none = carve a stratified split from train"
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of train held out when no test file")
    split_seed: int = Field(0, description="fixes the carved test split, independently of the run seed")
    input_field: str | None = Field(None, description=f"input column; none = the first of {', '.join(INPUT_NAMES)}")
    target_field: str | None = Field(None, description=f"target column; none = the first of {', '.join(TARGET_NAMES)}")
    labels: list[str] | Literal["auto"] | None = Field(
        "auto",
        description="label set for classification; 'auto' = the distinct targets when they look like classes"
        f" (at most {MAX_INFERRED_LABELS}, each seen twice on average); null = free-form targets",
    )
    task: str = Field("", description="one sentence describing the task, used in teacher prompts")

    @field_validator("train", "test")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.exists():
            raise ValueError(f"file not found: {value} (relative paths are read from the config file's folder)")
        if value.is_dir() and not (value / "dataset_info.json").exists() and not (value / "dataset_dict.json").exists():
            raise ValueError(f"{value} is a folder but not one saved with datasets' save_to_disk; give a file")
        return value


def read_rows(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for every row of a data file in any of the :data:`FORMATS`."""
    suffix = path.suffix.lower()
    if path.is_dir():
        return _hf_rows(path, what)
    if suffix == ".csv":
        return read_table_input(path, what)
    if suffix == ".tsv":
        text = path.read_bytes().decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t")
        try:
            return [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise InputFileError(f"{what} {path}:{reader.line_num}: {exc}") from None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    if suffix in (".jsonl", ".json", ".ndjson"):
        return list(read_jsonl_input(path, what))
    raise InputFileError(f"{what} {path}: unknown format {suffix or '(no suffix)'}; use {FORMATS}")


def _hf_rows(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        import datasets
    except ImportError:
        raise InputFileError(f"{what} {path}: reading a saved dataset needs `pip install datasets`") from None
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputFileError(f"{what} {path}: a DatasetDict without a 'train' split (has {sorted(loaded)})")
        loaded = loaded["train"]
    return list(enumerate(loaded.to_list(), start=1))


def _pick(columns: list[str], given: str | None, names: tuple[str, ...], key: str, path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise DistilforgeError(f"{path}: no column {given!r} (it has {columns}); set dataset.{key} to one of those")
        return given
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def guess_columns(rows: list[dict[str, Any]], config: FileDatasetConfig, path: Path) -> tuple[str, str]:
    """The (input, target) columns: as configured, by their usual names, or the only two there are."""
    columns = list(rows[0]) if rows else []
    source = _pick(columns, config.input_field, INPUT_NAMES, "input_field", path)
    target = _pick(columns, config.target_field, TARGET_NAMES, "target_field", path)
    if source is None or target is None:
        rest = [c for c in columns if c not in (source, target)]
        if len(columns) == 2 and len(rest) in (1, 2):
            # two columns with unusual names: the longer texts are the input
            def mean_len(c: str) -> float:
                return sum(len(str(r.get(c, ""))) for r in rows) / len(rows)

            if source is None and target is None:
                source, target = sorted(columns, key=mean_len, reverse=True)
            elif source is None:
                source = rest[0]
            else:
                target = rest[0]
    if source is None or target is None or source == target:
        raise DistilforgeError(
            f"{path}: cannot tell which columns hold the input and the target (it has {columns});"
            " set dataset.input_field and dataset.target_field"
        )
    return source, target


def infer_labels(targets: list[str]) -> list[str] | None:
    """The sorted distinct targets when they look like classes, else None (free-form targets)."""
    distinct = sorted(set(targets))
    if len(distinct) <= MAX_INFERRED_LABELS and len(distinct) * 2 <= len(targets):
        return distinct
    return None


class FileDataset(Dataset[FileDatasetConfig]):
    def _records(self, path: Path, what: str) -> list[Record]:
        numbered = read_rows(path, what)
        if not numbered:
            return []  # the engine names the empty split
        source, target = guess_columns([row for _, row in numbered], self.config, path)
        out = []
        for line, row in numbered:
            for column in (source, target):
                value = row.get(column)
                if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
                    raise DistilforgeError(f"{path}:{line}: column {column!r} must be non-empty text, got {value!r}")
            out.append(Record(input=str(row[source]).strip(), target=str(row[target]).strip(), origin="seed"))
        return out

    def load(self, seed: int) -> DatasetSplits:
        c = self.config
        train = self._records(c.train, "dataset.train")
        test = self._records(c.test, "dataset.test") if c.test is not None else []
        labels = infer_labels([r.target for r in train + test]) if c.labels == "auto" else c.labels
        if c.test is None:
            train, test = carve_split(train, c.test_fraction, c.split_seed, stratified=labels is not None)
            if not test or not train:
                raise DistilforgeError(
                    f"dataset.train has {len(train) + len(test)} rows: too few to carve a test split; give dataset.test"
                )
        test = [r.model_copy(update={"origin": "real"}) for r in test]
        if labels is not None:
            bad = sorted({r.target for r in train + test} - set(labels))
            if bad:
                raise DistilforgeError(f"the data has labels not in dataset.labels: {bad}; add them or fix the rows")
        return DatasetSplits(seed=train, test=test, labels=labels, task=c.task)
