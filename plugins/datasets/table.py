"""Dataset ``table``: a CSV or parquet table plus a small YAML that names and describes its features.

The YAML (default: ``<table stem>.features.yaml`` next to the table) is what a teacher reads when
it is asked about the features, so its descriptions matter::

    task: Predict whether a penguin is an Adelie penguin from ...
    target: species            # the label column
    positive: Adelie           # binary tasks: the class the teacher's scores are about
    features:
      - name: bill_length_mm
        description: length of the bill in millimetres
      - name: island
        description: island where the penguin was observed
        categorical: true      # default: true for non-numeric columns

Categorical features are one-hot expanded into ``feature=value`` columns (levels from the whole
table, sorted). Each record keeps the row as readable JSON in ``input`` and the expanded numeric
vector in ``meta["x"]``; the expanded feature list goes to ``DatasetSplits.extra["features"]``.
Rows with a missing value in a used column are dropped (and counted). The test split is a
stratified fraction fixed by ``split_seed``; the seed records are ``shots`` rows per class drawn
from the rest with the run seed (k-shot learning), or all of them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distilforge.engine.api.components import Dataset, DatasetSplits
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.schemas import ComponentConfig, Record
from distilforge.schemas.validators import ConfigPath

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="column name in the table")
    description: str = Field("", description="what the feature measures, in words the teacher can use")
    categorical: bool | None = Field(None, description="one-hot expand; default: true for non-numeric columns")


class FeatureFile(BaseModel):
    """The feature YAML next to a table."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(..., min_length=1, description="one or two sentences: what is predicted, from what")
    target: str = Field(..., min_length=1, description="the label column")
    positive: str | None = Field(None, description="binary tasks: the class the teacher scores features for")
    features: list[FeatureSpec] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> FeatureFile:
        names = [f.name for f in self.features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"features listed twice: {repeated}")
        if self.target in names:
            raise ValueError(f"the target column {self.target!r} is also listed as a feature")
        return self


def default_feature_file(table: Path) -> Path:
    return table.with_name(f"{table.stem}.features.yaml")


def load_feature_file(path: Path) -> FeatureFile:
    if not path.exists():
        raise DistilforgeError(
            f"feature file not found: {path}; write one next to the table (see the 'table' dataset docs) "
            "or set dataset.features"
        )
    import yaml  # only when a table is loaded: every command's start-up imports this module

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return FeatureFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise DistilforgeError(f"{path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())
        raise DistilforgeError(f"{path}: {problems}") from exc


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise DistilforgeError(
            "the 'table' dataset needs pandas: pip install 'distilforge[tabular]' (make setup installs it)"
        ) from None
    return pandas


def read_table(path: Path) -> pd.DataFrame:
    pd = _pandas()
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise DistilforgeError(f"{path}: unsupported table format {path.suffix!r}; use one of {TABLE_SUFFIXES}")


def _python(value: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value


class TableDatasetConfig(ComponentConfig):
    type: Literal["table"] = "table"
    path: ConfigPath = Field(..., description="the table: .csv or .parquet; relative to the config file")
    features: ConfigPath | None = Field(
        None, description="feature YAML; default <table stem>.features.yaml beside it; relative to the config file"
    )
    shots: int | None = Field(
        None, ge=1, description="training rows per class drawn with the run seed (k-shot); None = all training rows"
    )
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="stratified held-out fraction")
    split_seed: int = Field(12345, description="fixes the test split independently of the run seed")

    @field_validator("path")
    @classmethod
    def _table(cls, value: Path) -> Path:
        if value.suffix not in TABLE_SUFFIXES:
            raise ValueError(f"unsupported table format {value.suffix!r}; use one of {TABLE_SUFFIXES}")
        if not value.exists():
            raise ValueError(f"file not found: {value} (relative paths are read from the config file's folder)")
        return value

    @property
    def feature_path(self) -> Path:
        return self.features or default_feature_file(self.path)


class TableDataset(Dataset[TableDatasetConfig]):
    def load(self, seed: int) -> DatasetSplits:
        c = self.config
        spec = load_feature_file(c.feature_path)
        frame = read_table(c.path)
        wanted = [f.name for f in spec.features]
        absent = [name for name in [*wanted, spec.target] if name not in frame.columns]
        if absent:
            raise DistilforgeError(
                f"{c.path}: columns named in {c.feature_path} are not in the table: {absent}; "
                f"the table has {list(frame.columns)}"
            )
        before = len(frame)
        frame = frame.dropna(subset=[*wanted, spec.target]).reset_index(drop=True)
        dropped = before - len(frame)
        targets = [str(_python(v)) for v in frame[spec.target]]
        labels = sorted(set(targets))
        if len(labels) < 2:
            raise DistilforgeError(f"{c.path}: the target column {spec.target!r} has fewer than 2 classes: {labels}")
        positive = spec.positive
        if positive is not None and positive not in labels:
            raise DistilforgeError(f"{c.feature_path}: positive class {positive!r} is not among the labels {labels}")
        if positive is None and len(labels) == 2:
            positive = labels[1]

        features, columns = self._expand(spec, frame)
        rows = [
            Record(
                input=json.dumps({name: _python(frame.at[i, name]) for name in wanted}, ensure_ascii=False),
                target=targets[i],
                origin="real",
                meta={"x": [column[i] for column in columns]},
            )
            for i in range(len(frame))
        ]
        test, rest = self._split(rows, labels)
        if c.shots is None:
            seeds = rest
        else:
            rng = random.Random(seed)
            seeds = []
            for label in labels:
                pool = [r for r in rest if r.target == label]
                if len(pool) < c.shots:
                    raise DistilforgeError(
                        f"dataset.shots = {c.shots} but class {label!r} has only {len(pool)} training rows"
                    )
                seeds += rng.sample(pool, c.shots)
        seeds = [r.model_copy(update={"origin": "seed"}) for r in seeds]
        extra = {
            "features": features,
            "positive": positive,
            "table": str(c.path),
            "rows": len(frame),
            "dropped_rows": dropped,
            "train_rows": len(rest),
        }
        return DatasetSplits(seed=seeds, test=test, labels=labels, task=spec.task, extra=extra)

    @staticmethod
    def _expand(spec: FeatureFile, frame: pd.DataFrame) -> tuple[list[dict[str, str]], list[list[float]]]:
        """The expanded feature list (name, description, source column) and one numeric column per feature."""
        pd = _pandas()
        features: list[dict[str, str]] = []
        columns: list[list[float]] = []
        for feature in spec.features:
            series = frame[feature.name]
            categorical = feature.categorical
            if categorical is None:
                categorical = not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
            if categorical:
                values = [str(_python(v)) for v in series]
                for level in sorted(set(values)):
                    features.append(
                        {
                            "name": f"{feature.name}={level}",
                            "description": f"1 if {feature.name} is {level}, else 0"
                            + (f" ({feature.description})" if feature.description else ""),
                            "source": feature.name,
                        }
                    )
                    columns.append([1.0 if v == level else 0.0 for v in values])
            else:
                features.append({"name": feature.name, "description": feature.description, "source": feature.name})
                columns.append([float(v) for v in series])
        return features, columns

    def _split(self, rows: list[Record], labels: list[str]) -> tuple[list[Record], list[Record]]:
        rng = random.Random(self.config.split_seed)
        test: list[Record] = []
        rest: list[Record] = []
        for label in labels:
            members = [r for r in rows if r.target == label]
            rng.shuffle(members)
            take = max(1, round(len(members) * self.config.test_fraction))
            if take >= len(members):
                raise DistilforgeError(f"class {label!r} has {len(members)} rows: too few to split off a test set")
            test += members[:take]
            rest += members[take:]
        return test, rest


@hookimpl
def register_datasets(register: Register) -> None:
    register(TableDatasetConfig, TableDataset)
