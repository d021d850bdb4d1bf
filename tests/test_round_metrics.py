"""Every round's metrics.json follows RoundMetrics, and a stage that writes a wrong type is stopped."""

from __future__ import annotations

import json
from pathlib import Path

import plugin_majority
import pytest
from helpers import loop_config, write_config
from pydantic import ValidationError

from distilforge.engine.build import Engine
from distilforge.engine.runner import start_run
from distilforge.engine.stages import write_round_metrics
from distilforge.engine.store import RunStore
from distilforge.schemas import RoundMetrics, RunLayout


def test_each_rounds_metrics_validate_and_keep_their_keys(tmp_path: Path) -> None:
    start_run(Engine.load(extra_plugins=[plugin_majority]), write_config(tmp_path / "c.yaml", loop_config(tmp_path)))
    layout = RunLayout(tmp_path / "runs/run")
    assert layout.rounds() == [0, 1, 2, 3]
    for r in layout.rounds():
        raw = json.loads(layout.metrics(r).read_text())
        metrics = RoundMetrics.model_validate(raw)
        assert metrics.round == r and metrics.test_metrics["accuracy"] >= 0.0
        assert metrics.model_dump(mode="json", exclude_unset=True).keys() == raw.keys()
    assert RoundMetrics.model_validate(json.loads(layout.metrics(0).read_text())).accepted is not None


def test_a_wrong_type_is_refused_before_it_is_written(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    with pytest.raises(ValidationError, match="train_size"):
        write_round_metrics(store, 0, {"round": 0, "train_size": "many", "pool_size": 3})
    assert not store.layout.metrics(0).exists()
