"""The methods' report sections: GOLD's energy band, feedback and untrained rounds; LAAT's plain vs LAAT scores,
with no word of generated data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import PENGUIN_FEATURES, loop_config, read_lines, write_config
from rich.console import Console

from distilforge.engine.build import Engine
from distilforge.engine.report import write_report
from distilforge.engine.runner import start_run
from distilforge.schemas import RoundMetrics, RunLayout

PENGUINS = Path(__file__).resolve().parents[1] / "examples" / "tabular" / "penguins.csv"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load()


def gold_run(engine: Engine, tmp: Path) -> RunLayout:
    config = loop_config(tmp, name="gold")
    config["teacher"]["responses"] = [
        "A {hash} film that I enjoyed a lot",
        "the {hash} plot was dull and slow",
        "The very same review, word for word.",  # the same text again and again: the filters reject it
    ]
    config["student"] = {"type": "tfidf-logreg"}
    config["method"] = {"type": "gold", "batches": 4, "batch_size": 4, "validation_size": 6, "train_every": 2}
    config["scorers"] = [{"type": "energy"}]
    config["filters"] = [{"type": "exact-dedup"}]
    start_run(engine, write_config(tmp / "g.yaml", config), console=Console(quiet=True))
    return RunLayout(tmp / "runs" / "gold")


def section(report: str, title: str) -> str:
    start = report.index(title)
    end = report.find("\n## ", start + 1)
    return report[start : end if end > 0 else None]


def test_gold_report_shows_the_energy_band_feedback_and_untrained_rounds(engine: Engine, tmp_path: Path) -> None:
    layout = gold_run(engine, tmp_path)
    report = layout.report.read_text()
    gold = section(report, "## GOLD: OOD-guided generation")
    records = {r["id"]: r for r in read_lines(layout.records)}
    for r in (1, 3):  # the feedback rounds: the band of the previous batch's validation samples
        validation = [x for x in records.values() if x["meta"].get("gold") == "validation" and x["round"] == r - 1]
        energies = sorted(x["scores"]["energy"] for x in validation)
        n = len(energies)
        band = [e for k, e in enumerate(energies) if 0.5 * n <= k < 0.8 * n]
        below, above = sum(1 for k in range(n) if k < 0.5 * n), sum(1 for k in range(n) if k >= 0.8 * n)
        row = f"| {r} | {r - 1} | {n} | {below} | {len(band)} | {above} | {band[0]:.3f} … {band[-1]:.3f}"
        assert band and row + f" | {energies[0]:.3f} … {energies[-1]:.3f} |" in gold
        fed_back = json.loads(layout.round_file(r, "failures.json").read_text())
        assert {records[i]["scores"]["energy"] for i in fed_back} == set(band)
        assert all(f"round {r}, `{records[i]['target']}`, energy" in gold for i in fed_back)
        assert records[fed_back[0]]["input"] in gold
    assert "ranks in [50%, 80%)" in gold and "the top 20% are kept out as likely noise" in gold
    assert "Kept out as likely noise, above the band" in gold
    assert "retrained in rounds 0, 2, 4" in gold and "rounds 1, 3 kept the last trained student" in gold
    # the filters' rejects, by filter and kind of sample
    rejects = [x for x in read_lines(layout.rejects) if x["stage"] == "filter"]
    assert rejects
    for who in {x["rejected_by"] for x in rejects}:
        mine = [x for x in rejects if x["rejected_by"] == who]
        kinds = [sum(1 for x in mine if x["record"]["meta"]["gold"] == kind) for kind in ("training", "validation")]
        assert f"| {who} | {kinds[0]} | {kinds[1]} |" in gold
    # an untrained round names the student it kept and shows no pool accuracy of it
    kept = RoundMetrics.model_validate_json(layout.metrics(1).read_text())
    assert not kept.trained and kept.train_metrics  # on disk: the old student's accuracy on the grown pool
    test_acc = kept.test_metrics["accuracy"]
    assert f"| 1 | round 0's (not retrained) | – | – | {test_acc:.3f} (round 0's) |" in report
    assert f"| 2 | trained | {RoundMetrics.model_validate_json(layout.metrics(2).read_text()).train_size} |" in report
    # the section is saved where plugin sections live, and `distilforge report` rebuilds the same report
    assert (layout.report_sections / "gold.md").exists()
    assert write_report(layout.root).read_text() == report


def test_gold_no_feedback_baseline_says_there_is_no_band(engine: Engine, tmp_path: Path) -> None:
    config = loop_config(tmp_path, name="base")
    config["student"] = {"type": "tfidf-logreg"}
    config["method"] = {"type": "gold", "batches": 2, "batch_size": 4, "train_every": 2, "feedback": False}
    start_run(engine, write_config(tmp_path / "b.yaml", config), console=Console(quiet=True))
    gold = section((tmp_path / "runs/base/report.md").read_text(), "## GOLD")
    assert "Feedback is off (`feedback: false`" in gold and "| round | from batch |" not in gold


def laat_run(tmp: Path) -> RunLayout:
    good = dict(zip(PENGUIN_FEATURES, [-3, 1, 5, -8, 4, -6, -2, 0, 0], strict=True))
    config: dict[str, Any] = {
        "name": "laat",
        "seed": 0,
        "output_dir": str(tmp / "runs"),
        "teacher_cache": str(tmp / "laat-cache.sqlite"),
        "dataset": {"type": "table", "path": str(PENGUINS), "shots": 5},
        "teacher": {"type": "fake", "responses": [json.dumps(good), "no idea"]},
        "student": {"type": "tabular"},
        "method": {"type": "laat"},
    }
    start_run(Engine.load(), write_config(tmp / "l.yaml", config), console=Console(quiet=True))
    return RunLayout(tmp / "runs" / "laat")


def test_laat_report_compares_plain_and_laat_with_roc_auc_f1_and_the_majority_baseline(tmp_path: Path) -> None:
    layout = laat_run(tmp_path)
    report = layout.report.read_text()
    laat = section(report, "## LAAT: plain vs LAAT student")
    plain, final = (RoundMetrics.model_validate_json(layout.metrics(r).read_text()).test_metrics for r in (0, 1))
    assert "| student | accuracy | F1 (macro) | ROC-AUC |" in laat
    for name, m in (("plain (round 0)", plain), ("LAAT (round 1)", final)):
        assert f"| {name} | {m['accuracy']:.3f} | {m['f1']:.3f} | {m['roc_auc']:.3f} |" in laat
    gain = [final[k] - plain[k] for k in ("accuracy", "f1", "roc_auc")]
    assert "| LAAT − plain | " + " | ".join(f"{g:+.3f}" for g in gain) + " |" in laat
    targets = [r["target"] for r in read_lines(layout.test)]
    commonest = max(set(targets), key=targets.count)
    share = targets.count(commonest) / len(targets)
    assert f"| majority class (always `{commonest}`) | {share:.3f} | " in laat
    assert "the same 10 seed rows" in laat
    # the teacher's direction per feature: bill length lowers P(Adelie) in every answer
    assert "| bill_length_mm | lowers P(`Adelie`) | -8.0 |" in report
    # LAAT writes no rows: no word of generated data or samples anywhere in the report
    assert "generated" not in report.lower() and "sample" not in report.lower()
    assert "| teacher requests | teacher answers | refused answers |" in report
    assert "The teacher wrote no training records in this run (method `laat`)" in report


def test_llm2llm_report_keeps_its_generation_columns(tmp_path: Path) -> None:
    import plugin_majority

    config = loop_config(tmp_path, name="l2l", method={"rounds": 1})
    start_run(
        Engine.load(extra_plugins=[plugin_majority]),
        write_config(tmp_path / "c.yaml", config),
        console=Console(quiet=True),
    )
    report = (tmp_path / "runs/l2l/report.md").read_text()
    header = "| round | student | train size | pool acc | test acc | failures | requests | generated | accepted |"
    assert header in report
    assert "not retrained" not in report and "## What the teacher wrote" in report
