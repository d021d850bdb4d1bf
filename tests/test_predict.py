"""``distilforge predict``: a run's trained student on new texts; ``keep_checkpoints: all`` keeps every round's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from distilforge.engine.api.errors import DistilforgeError
from distilforge.engine.build import Engine
from distilforge.engine.cli import main as cli_main
from distilforge.engine.predict import predict_run
from distilforge.engine.runner import start_run
from tests.helpers import DATA, loop_config, read_lines, write_config


def _run(tmp_path: Path, name: str, **changes: object) -> Path:
    config = loop_config(tmp_path, name=name, student={"type": "tfidf-logreg"}, method={"rounds": 2}, **changes)
    start_run(Engine.load(), write_config(tmp_path / f"{name}.yaml", config), console=Console(quiet=True))
    return tmp_path / "runs" / name


def test_predict_labels_new_texts_like_the_run_scored_its_test_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, "last")
    assert sorted(p.parent.name for p in run.glob("rounds/*/student")) == ["2"]  # only the latest kept
    test = read_lines(DATA / "tiny_sentiment_test.jsonl")
    (tmp_path / "new.jsonl").write_text(
        "".join(json.dumps({"text": r["text"], "row": i}) + "\n" for i, r in enumerate(test))
    )
    out = tmp_path / "pred.jsonl"
    assert cli_main(["predict", str(run), str(tmp_path / "new.jsonl"), "-o", str(out)]) == 0
    assert "round 2's student" in capsys.readouterr().err
    rows = read_lines(out)
    assert [r["row"] for r in rows] == list(range(len(test)))  # input fields kept, order kept
    evaluated = json.loads((run / "rounds" / "2" / "evaluation_test.json").read_text())["results"]
    assert [r["prediction"] for r in rows] == [e["prediction"] for e in evaluated]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)
    with pytest.raises(DistilforgeError, match=r"round 0 has no kept checkpoint \(kept: \[2\]\)"):
        predict_run(Engine.load(), run, tmp_path / "new.jsonl", out, round_index=0)
    with pytest.raises(DistilforgeError, match=r"no column 'body'.*--input-field"):
        predict_run(Engine.load(), run, tmp_path / "new.jsonl", out, input_field="body")


def test_keep_checkpoints_all_keeps_the_seed_only_student(tmp_path: Path) -> None:
    run = _run(tmp_path, "all", keep_checkpoints="all")
    kept = sorted(p.parent.name for p in run.glob("rounds/*/student"))
    assert kept[0] == "0" and kept[-1] == "2"
    texts = tmp_path / "texts.txt"
    texts.write_text("a wonderful film\n\nthe worst thing I have seen\n")
    r, count = predict_run(Engine.load(), run, texts, tmp_path / "p0.jsonl", round_index=0)
    assert (r, count) == (0, 2)
    assert [row["text"] for row in read_lines(tmp_path / "p0.jsonl")] == [
        "a wonderful film",
        "the worst thing I have seen",
    ]
