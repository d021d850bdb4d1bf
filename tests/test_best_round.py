"""The validation split: carved from the seeds, it picks the best round (kept beside the last), can
stop the rounds early, and never leaks into the pool or the test split."""

from __future__ import annotations

import json
from pathlib import Path

import plugin_majority
import pytest
import yaml
from helpers import loop_config, read_lines, write_config

from distilforge.engine.api.errors import ConfigError, DistilforgeError
from distilforge.engine.build import Engine
from distilforge.engine.predict import predict_run
from distilforge.engine.runner import resume_run, start_run
from distilforge.engine.validation import validate_config


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(extra_plugins=[plugin_majority])


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_the_validation_split_is_carved_from_the_seeds_stratified_and_kept_out_of_the_pool(
    engine: Engine, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path, validation={"fraction": 0.34}))
    metrics = start_run(engine, cfg)
    run = tmp_path / "runs/run"
    validation = read_lines(run / "validation.jsonl")
    pool_ids = {r["id"] for r in read_lines(run / "records.jsonl")}
    assert sorted(r["target"] for r in validation) == ["negative", "negative", "positive", "positive"]
    assert not pool_ids & {r["id"] for r in validation}
    assert metrics[0]["train_size"] == 8  # 12 seeds, 4 held out
    assert all(m["validation_metrics"]["accuracy"] == 0.5 for m in metrics)  # the majority label: half right
    # a tie never displaces the best round: round 0 stays best, its student is kept beside the last one
    assert _manifest(run)["best"] == {"round": 0, "checkpoint": 0, "metric": "accuracy", "value": 0.5}
    kept = sorted(p.parent.name for p in run.glob("rounds/*/student"))
    assert kept == ["0", "3"]
    report = (run / "report.md").read_text()
    assert "best round on the validation split: 0 (accuracy 0.500, test 0.500)" in report
    assert "| validation acc |" in report.replace("test acc | validation acc", "| validation acc")


def test_predict_best_loads_the_best_rounds_student(engine: Engine, tmp_path: Path) -> None:
    start_run(engine, write_config(tmp_path / "c.yaml", loop_config(tmp_path, validation={"fraction": 0.34})))
    run = tmp_path / "runs/run"
    texts = tmp_path / "new.txt"
    texts.write_text("a fine film\na dull film\n")
    r, count = predict_run(engine, run, texts, tmp_path / "best.jsonl", best=True)
    assert (r, count) == (0, 2)
    # round 0 trained on 4+4 seeds: the majority student says the first label in sort order
    assert {row["prediction"] for row in read_lines(tmp_path / "best.jsonl")} == {"negative"}
    r_last, _ = predict_run(engine, run, texts, tmp_path / "last.jsonl")
    assert r_last == 3 and {row["prediction"] for row in read_lines(tmp_path / "last.jsonl")} == {"positive"}


def test_predict_best_without_a_validation_split_says_how_to_get_one(engine: Engine, tmp_path: Path) -> None:
    start_run(engine, write_config(tmp_path / "c.yaml", loop_config(tmp_path, method={"rounds": 1})))
    texts = tmp_path / "new.txt"
    texts.write_text("a fine film\n")
    with pytest.raises(DistilforgeError, match=r"validation\.fraction"):
        predict_run(engine, tmp_path / "runs/run", texts, tmp_path / "out.jsonl", best=True)


def test_patience_stops_the_rounds_and_a_resume_adds_none(engine: Engine, tmp_path: Path) -> None:
    config = loop_config(tmp_path, validation={"fraction": 0.34, "patience": 1})
    cfg = write_config(tmp_path / "c.yaml", config)
    metrics = start_run(engine, cfg)
    run = tmp_path / "runs/run"
    # round 1 brings no validation gain over round 0: the run ends there, without generating in round 1
    assert [m["round"] for m in metrics] == [0, 1]
    assert metrics[1]["stopped_early"] is True and "generated" not in metrics[1]
    manifest = _manifest(run)
    assert manifest["status"] == "completed" and manifest["stopped_early"] == 1
    assert not (run / "rounds/2").exists()
    assert "stopped early after round 1" in (run / "report.md").read_text()
    calls = len(read_lines(tmp_path / "run-calls.jsonl"))
    again = resume_run(engine, run)
    assert [m["round"] for m in again] == [0, 1]
    assert len(read_lines(tmp_path / "run-calls.jsonl")) == calls


def test_patience_without_a_validation_split_names_the_field(engine: Engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path, validation={"patience": 2}))
    with pytest.raises(ConfigError, match=r"validation\.patience needs a validation split"):
        validate_config(engine, cfg)


def test_too_few_seeds_for_the_split_fails_validation_and_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    one_each = tmp_path / "one_each.jsonl"
    one_each.write_text(
        '{"input": "a fine film", "target": "positive"}\n{"input": "a dull film", "target": "negative"}\n'
    )
    config = loop_config(tmp_path, validation={"fraction": 0.5}, dataset={"train": str(one_each)})
    cfg = write_config(tmp_path / "c.yaml", config)
    with pytest.raises(ConfigError, match=r"validation\.fraction 0\.5: 2 seed examples are too few"):
        start_run(engine, cfg)
    assert not (tmp_path / "runs/run").exists()


def test_a_large_fraction_still_leaves_every_label_a_training_example(engine: Engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path, method={"rounds": 1}, validation={"fraction": 0.99}))
    metrics = start_run(engine, cfg)
    assert metrics[0]["train_size"] == 2 and len(read_lines(tmp_path / "runs/run/validation.jsonl")) == 10


def test_an_unknown_validation_metric_names_what_the_student_reports(engine: Engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", loop_config(tmp_path, validation={"fraction": 0.34, "metric": "auroc"}))
    with pytest.raises(DistilforgeError, match=r"validation\.metric 'auroc'.*accuracy"):
        start_run(engine, cfg)


def test_a_run_started_before_a_config_field_existed_resumes(engine: Engine, tmp_path: Path) -> None:
    config = loop_config(tmp_path, method={"rounds": 1})
    cfg = write_config(tmp_path / "c.yaml", config)
    start_run(engine, cfg)
    run = tmp_path / "runs/run"
    # as an older release wrote them: no `validation` section, another fingerprint
    data = yaml.safe_load((run / "config.yaml").read_text())
    data.pop("validation")
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    manifest = _manifest(run)
    manifest["fingerprint"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    start_run(engine, cfg)  # no "config changed ... pass --force"


def test_the_time_estimate_follows_round_zero(engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rich.console import Console

    console = Console(stderr=True, width=200)
    start_run(engine, write_config(tmp_path / "c.yaml", loop_config(tmp_path)), console=console)
    err = capsys.readouterr().err
    assert "round 0 took" in err and "the other 2 generating rounds take about" in err
