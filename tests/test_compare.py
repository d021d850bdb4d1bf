"""``distilforge compare``: runs side by side with mean ± sd and paired deltas."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import plugin_majority
import pytest
from rich.console import Console

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.build import Engine
from distilforge.engine.compare import comparison_table
from distilforge.engine.runner import start_run
from tests.helpers import loop_config, run_cli, write_config


def _runs(tmp_path: Path, prefix: str, rounds: int) -> list[Path]:
    engine = Engine.load(extra_plugins=[plugin_majority])
    out = []
    for seed in (0, 1):
        name = f"{prefix}{seed}"
        config = loop_config(tmp_path, name=name, seed=seed, method={"rounds": rounds})
        start_run(engine, write_config(tmp_path / f"{name}.yaml", config), console=Console(quiet=True))
        out.append(tmp_path / "runs" / name)
    return out


def _acc(run: Path, r: int) -> float:
    return float(json.loads((run / "rounds" / str(r) / "metrics.json").read_text())["test_metrics"]["accuracy"])


def test_the_table_has_every_run_the_means_and_the_paired_deltas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _runs(tmp_path, "a", 2), _runs(tmp_path, "b", 1)
    lines = comparison_table(a, b)
    finals = [_acc(r, 2) for r in a]
    assert any(line.startswith("| a0 | ") and f"{finals[0]:.3f} (2)" in line for line in lines)
    mean = statistics.fmean(finals)
    assert any(line.startswith("| mean ± sd (n=2) |") and f"{mean:.3f} ± " in line for line in lines)
    deltas = [_acc(x, 2) - _acc(y, 1) for x, y in zip(a, b, strict=True)]
    assert lines[-1].endswith(f"{statistics.fmean(deltas):.3f} ± {statistics.stdev(deltas):.3f} |")
    code, output = run_cli(capsys, "compare", *map(str, a), "--vs", *map(str, b), "-o", str(tmp_path / "t.md"))
    assert code == 0 and "paired Δ" in output and (tmp_path / "t.md").read_text().splitlines() == lines
    with pytest.raises(DistilforgeError, match="pairs runs by position: 2 runs against 1"):
        comparison_table(a, b[:1])


def test_run_with_seeds_makes_one_run_per_seed_and_prints_them_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = loop_config(tmp_path, name="multi", student={"type": "tfidf-logreg"}, method={"rounds": 1})
    path = write_config(tmp_path / "multi.yaml", config)
    code, output = run_cli(capsys, "run", str(path), "--seeds", "0,1")
    assert code == 0, output
    assert (tmp_path / "runs" / "multi-s0").is_dir() and (tmp_path / "runs" / "multi-s1").is_dir()
    import yaml

    assert yaml.safe_load((tmp_path / "runs" / "multi-s1" / "config.yaml").read_text())["seed"] == 1
    assert "| multi-s0 |" in output and "| multi-s1 |" in output and "| mean ± sd (n=2) |" in output
