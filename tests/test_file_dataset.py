"""The ``file`` dataset: the user's own data in every format, columns guessed, labels inferred, split carved."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.build import Engine
from distilforge.engine.config import load_yaml
from distilforge.plugins.datasets.file_dataset import FileDataset, FileDatasetConfig
from distilforge.schemas.validators import CONFIG_DIR
from tests.helpers import loop_config, write_config

TOPICS = ["business", "science", "sport", "tech", "world"]
ROWS = [{"Headline": f"story number {i} about {TOPICS[i % 5]} and more", "Topic": TOPICS[i % 5]} for i in range(30)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif suffix == "":
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _load(tmp_path: Path, **config: Any) -> Any:
    cfg = FileDatasetConfig.model_validate({"type": "file", **config}, context={CONFIG_DIR: tmp_path})
    return FileDataset(cfg).load(seed=0)


@pytest.mark.parametrize("name", ["news.jsonl", "news.csv", "news.tsv", "news.parquet", "news_saved"])
def test_every_format_gives_the_same_records(tmp_path: Path, name: str) -> None:
    reference = _load(tmp_path, train=str(_write(tmp_path / "ref.jsonl", ROWS)))
    splits = _load(tmp_path, train=str(_write(tmp_path / name, ROWS)))
    assert [r.id for r in splits.seed] == [r.id for r in reference.seed]
    assert [r.id for r in splits.test] == [r.id for r in reference.test]
    assert splits.labels == TOPICS  # inferred, sorted


def test_relative_paths_are_read_beside_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _write(project / "default.csv", ROWS)
    config = loop_config(
        tmp_path,
        student={"type": "tfidf-logreg"},
        dataset={"type": "file", "train": "default.csv", "test": None, "labels": "auto"},
    )
    config_path = write_config(project / "run.yaml", config)
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert not Path("default.csv").exists()
    parsed = Engine.load().parse(load_yaml(config_path), config_path.parent)
    assert parsed.dataset.train == project / "default.csv"  # type: ignore[attr-defined]
    with pytest.raises(DistilforgeError, match=r"file not found.*config file's folder"):
        Engine.load().parse(load_yaml(config_path), tmp_path)
    assert os.path.isabs(str(parsed.dataset.train))  # type: ignore[attr-defined]


def test_the_carved_test_split_is_stratified_seeded_and_disjoint(tmp_path: Path) -> None:
    train = str(_write(tmp_path / "news.csv", ROWS))
    one = _load(tmp_path, train=train, test_fraction=0.2, split_seed=7)
    again = _load(tmp_path, train=train, test_fraction=0.2, split_seed=7)
    other = _load(tmp_path, train=train, test_fraction=0.2, split_seed=8)
    assert Counter(r.target for r in one.test) == {t: 1 for t in TOPICS}  # 20% of 6 per topic, rounded
    assert len(one.seed) == 25 and not {r.id for r in one.seed} & {r.id for r in one.test}
    assert {r.origin for r in one.test} == {"real"} and {r.origin for r in one.seed} == {"seed"}
    assert [r.id for r in again.test] == [r.id for r in one.test]
    assert [r.id for r in other.test] != [r.id for r in one.test]


def test_columns_are_guessed_or_named_in_the_error(tmp_path: Path) -> None:
    # two columns with unusual names: the longer texts are the input
    odd = [{"tag": r["Topic"], "body": r["Headline"]} for r in ROWS]
    splits = _load(tmp_path, train=str(_write(tmp_path / "odd.jsonl", odd)))
    assert splits.seed[0].input.startswith("story number") and splits.labels == TOPICS
    three = [{**r, "extra": "x"} for r in odd]
    with pytest.raises(
        DistilforgeError, match=r"\['tag', 'body', 'extra'\].*set dataset.input_field and dataset.target_field"
    ):
        _load(tmp_path, train=str(_write(tmp_path / "three.jsonl", three)))
    with pytest.raises(
        DistilforgeError, match=r"no column 'txt' \(it has \['tag', 'body', 'extra'\]\).*dataset.input_field"
    ):
        _load(tmp_path, train=str(tmp_path / "three.jsonl"), input_field="txt", target_field="tag")
    chosen = _load(tmp_path, train=str(tmp_path / "three.jsonl"), input_field="body", target_field="tag")
    assert chosen.seed[0].target in TOPICS


def test_free_form_targets_are_not_taken_for_labels(tmp_path: Path) -> None:
    answers = [{"question": f"what is {i} + {i}?", "answer": str(2 * i)} for i in range(20)]
    splits = _load(tmp_path, train=str(_write(tmp_path / "math.jsonl", answers)), test_fraction=0.25)
    assert splits.labels is None
    explicit = _load(tmp_path, train=str(tmp_path / "math.jsonl"), labels=None, test=str(tmp_path / "math.jsonl"))
    assert explicit.labels is None and len(explicit.seed) == 20
    with pytest.raises(DistilforgeError, match=r"labels not in dataset.labels: \['world'\]"):
        _load(tmp_path, train=str(_write(tmp_path / "n.csv", ROWS)), labels=TOPICS[:4])
