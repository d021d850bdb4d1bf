"""``distilforge export``: each format read back with its own library; only committed rows; secrets never stored."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import plugin_majority
import pytest
from rich.console import Console

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.build import Engine
from distilforge.engine.cli import main as cli_main
from distilforge.engine.export import export_rows, export_run
from distilforge.engine.runner import start_run
from tests.helpers import loop_config, read_lines, write_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    config = loop_config(tmp, name="exported", method={"rounds": 1})
    start_run(
        Engine.load(extra_plugins=[plugin_majority]),
        write_config(tmp / "run.yaml", config),
        console=Console(quiet=True),
    )
    return tmp / "runs" / "exported"


def _expected(run_dir: Path) -> list[tuple[str, str, str]]:
    return [(r["input"], r["target"], r["origin"]) for r in read_lines(run_dir / "records.jsonl")]


def test_every_format_reads_back_with_its_own_library(run_dir: Path, tmp_path: Path) -> None:
    import datasets
    import pyarrow.parquet as pq

    expected = _expected(run_dir)
    assert {o for _, _, o in expected} == {"seed", "synthetic"}
    path, count = export_run(run_dir, "jsonl", tmp_path / "d.jsonl")
    assert count == len(expected)
    assert [(r["input"], r["target"], r["origin"]) for r in read_lines(path)] == expected
    path, _ = export_run(run_dir, "csv", tmp_path / "d.csv")
    with path.open(newline="") as handle:
        assert [(r["input"], r["target"], r["origin"]) for r in csv.DictReader(handle)] == expected
    path, _ = export_run(run_dir, "parquet", tmp_path / "d.parquet")
    table = pq.read_table(path).to_pylist()
    assert [(r["input"], r["target"], r["origin"]) for r in table] == expected
    path, _ = export_run(run_dir, "datasets", tmp_path / "d_saved")
    loaded = datasets.load_from_disk(str(path))
    assert [(r["input"], r["target"], r["origin"]) for r in loaded] == expected
    path, _ = export_run(run_dir, "chat", tmp_path / "chat.jsonl")
    first = read_lines(path)[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == "Classify the sentiment of a movie review."
    assert (first[1]["content"], first[2]["content"]) == expected[0][:2]


def test_parts_and_provenance_are_selectable(run_dir: Path) -> None:
    synthetic = export_rows(run_dir, ["synthetic"], provenance=True)
    assert synthetic and {r["origin"] for r in synthetic} == {"synthetic"}
    assert all(r["parent_id"] and r["id"] for r in synthetic)
    assert json.loads(synthetic[0]["provenance"])["teacher"]
    seeds = export_rows(run_dir, ["seeds"], provenance=False)
    assert {r["origin"] for r in seeds} == {"seed"} and "provenance" not in seeds[0]
    rejects = export_rows(run_dir, ["rejects"], provenance=False)
    assert len(rejects) == len(read_lines(run_dir / "rejects.jsonl")) > 0
    assert all(r["origin"] == "rejected" and r["reason"] and r["rejected_by"] for r in rejects)
    with pytest.raises(DistilforgeError, match="--include takes seeds, synthetic, rejects"):
        export_rows(run_dir, ["seed"], provenance=False)


def test_only_committed_rows_are_exported(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "torn"
    shutil.copytree(run_dir, copy)
    with (copy / "records.jsonl").open("a") as handle:  # written after the last commit, then a crash
        handle.write(json.dumps({"input": "uncommitted", "target": "positive", "origin": "synthetic"}) + "\n")
    rows = export_rows(copy, ["seeds", "synthetic"], provenance=False)
    assert "uncommitted" not in {r["input"] for r in rows} and len(rows) == len(_expected(run_dir))


def test_the_cli_exports_and_push_needs_a_token_from_the_environment(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cli.csv"
    assert cli_main(["export", str(run_dir), "--format", "csv", "-o", str(out)]) == 0
    assert f"rows (csv) to {out}" in capsys.readouterr().err and out.exists()
    monkeypatch.delenv("HF_TOKEN", raising=False)
    code = cli_main(["export", str(run_dir), "-o", str(tmp_path / "x.jsonl"), "--push-to-hub", "me/data"])
    assert code == 2 and "$HF_TOKEN" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "x.jsonl").exists()  # refused before anything was written
