"""LAAT: the table dataset, attribution elicitation (prompt, schema, validation, retries), the tabular student
component, the two-round method on the loop, its report, crash and resume, and elicitation with a real vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fixtures_models import require_vllm
from helpers import PENGUIN_FEATURES, read_lines, write_config

from distilforge.engine.api.errors import ConfigError, DistilforgeError, PluginError
from distilforge.engine.api.hookspecs import hookimpl
from distilforge.engine.build import Engine
from distilforge.engine.generation import retry_request
from distilforge.engine.runner import resume_run, start_run
from distilforge.plugins.datasets.table import TableDataset, TableDatasetConfig
from distilforge.plugins.methods.elicitation import (
    CONTRAST_CHOICES,
    BadScores,
    average_scores,
    contrast_requests,
    elicitation_messages,
    parse_contrast,
    parse_reasoned,
    parse_scores,
    reasoned_requests,
    score_schema,
)
from distilforge.plugins.students.tabular import target_attribution
from distilforge.plugins.students.tabular_student import TabularStudent, TabularStudentConfig
from distilforge.schemas import ChatMessage, Completion, SamplingParams, TeacherRequest
from distilforge.schemas.records import TokenLogprob

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "examples" / "tabular" / "penguins.csv"
CLI = str(Path(sys.executable).with_name("distilforge"))
GOOD = dict(zip(PENGUIN_FEATURES, [-3, 1, 5, -8, 4, -6, -2, 0, 0], strict=True))
OTHER = dict(zip(PENGUIN_FEATURES, [-1, 3, 5, -6, 2, -4, 0, 1, -1], strict=True))


# --------------------------------------------------------------------------- validation of answers


def test_a_valid_answer_parses_in_feature_order_even_inside_prose_or_a_fence() -> None:
    text = json.dumps(dict(reversed(GOOD.items())))
    assert list(parse_scores(text, PENGUIN_FEATURES).items()) == list(GOOD.items())
    assert parse_scores(f"Sure! Here it is:\n```json\n{text}\n```\nHope that helps.", PENGUIN_FEATURES) == GOOD
    assert parse_scores(f"Scores: {text} (done)", PENGUIN_FEATURES) == GOOD


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({k: v for k, v in GOOD.items() if k != "body_mass_g"}, r"missing features: 'body_mass_g'$"),
        ({**GOOD, "beak colour": 2}, r"unknown features: 'beak colour'"),
        ({**GOOD, "sex=male": 12}, r"'sex=male': input should be less than or equal to 10 \(got 12\)"),
        ({**GOOD, "bill_depth_mm": 2.5}, r"'bill_depth_mm': input should be a valid integer \(got 2.5\)"),
        ({**GOOD, "island=Dream": "3"}, r"'island=Dream': input should be a valid integer"),
        ({**GOOD, "island=Dream": True}, r"'island=Dream': input should be a valid integer"),
    ],
)
def test_an_invalid_answer_names_what_is_wrong(answer: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadScores, match=reason):
        parse_scores(json.dumps(answer), PENGUIN_FEATURES)


def test_non_json_and_truncated_answers_are_refused_with_a_snippet() -> None:
    with pytest.raises(BadScores, match="not a JSON object: 'I think bill length matters most'"):
        parse_scores("I think bill length matters most", PENGUIN_FEATURES)
    with pytest.raises(BadScores, match="not a JSON object"):
        parse_scores(json.dumps(GOOD)[:40], PENGUIN_FEATURES)  # cut off by max_tokens
    with pytest.raises(BadScores, match="not a JSON object"):
        parse_scores("[1, 2, 3]", PENGUIN_FEATURES)
    with pytest.raises(BadScores, match="empty"):
        parse_scores("  ", PENGUIN_FEATURES)


def test_many_missing_features_are_summarised() -> None:
    with pytest.raises(BadScores, match=r"missing features: 'island=Dream', .* and 2 more"):
        parse_scores(json.dumps({"island=Biscoe": 1}), PENGUIN_FEATURES)


def test_the_schema_accepts_exactly_the_valid_answers() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = score_schema(PENGUIN_FEATURES)
    jsonschema.validate(GOOD, schema)
    for bad in ({**GOOD, "x": 1}, {**GOOD, "sex=male": -11}, {k: v for k, v in GOOD.items() if k != "sex=male"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_prompt_lists_every_feature_with_its_description_and_names_the_class() -> None:
    features = [{"name": "age", "description": "age in years"}, {"name": "smoker=yes", "description": "1 if smoker"}]
    system, user = elicitation_messages("Predict heart disease.", features, "disease")
    assert system.role == "system" and "JSON" in system.content
    assert "Predict heart disease." in user.content
    assert "- age: age in years\n- smoker=yes: 1 if smoker" in user.content
    assert 'For the class "disease"' in user.content and "-10 to 10" in user.content


def test_estimates_are_averaged_per_feature() -> None:
    mean, sd = average_scores([GOOD, OTHER], PENGUIN_FEATURES)
    assert mean == [(GOOD[f] + OTHER[f]) / 2 for f in PENGUIN_FEATURES]
    assert sd[0] == pytest.approx(1.0) and sd[2] == 0.0


def test_a_retry_is_the_same_prompt_under_a_new_salt() -> None:
    original = TeacherRequest(prompt="scores?", sampling=SamplingParams(n=5, temperature=0.7), meta={"class": "A"})
    first = retry_request(original, 2, 1)
    second = retry_request(first, 1, 2)
    assert first.prompt == original.prompt and first.sampling.n == 2 and second.sampling.n == 1
    assert len({original.id, first.id, second.id}) == 3
    assert first.meta == {"class": "A", "retry_of": original.id, "attempt": 1}
    assert second.meta["retry_of"] == original.id and second.meta["attempt"] == 2


# --------------------------------------------------------------------------- the table dataset


def test_penguins_table_is_one_hot_expanded_split_and_sampled() -> None:
    dataset = TableDataset(TableDatasetConfig(path=PENGUINS, shots=5))
    splits = dataset.load(seed=0)
    assert [f["name"] for f in splits.extra["features"]] == PENGUIN_FEATURES
    assert splits.extra["features"][0]["description"].startswith("1 if island is Biscoe, else 0 (island in the")
    assert splits.extra["dropped_rows"] == 11 and splits.extra["rows"] == 333  # rows with a missing value
    assert splits.labels == ["Adelie", "other"] and splits.extra["positive"] == "Adelie"
    assert sorted(r.target for r in splits.seed) == ["Adelie"] * 5 + ["other"] * 5
    assert {r.origin for r in splits.seed} == {"seed"} and {r.origin for r in splits.test} == {"real"}
    assert len(splits.test) == 100 and not {r.id for r in splits.test} & {r.id for r in splits.seed}
    row = splits.seed[0]
    values = json.loads(row.input)
    x = dict(zip(PENGUIN_FEATURES, row.meta["x"], strict=True))
    assert x[f"island={values['island']}"] == 1.0 and sum(x[f] for f in PENGUIN_FEATURES[:3]) == 1.0
    assert x["bill_length_mm"] == values["bill_length_mm"]
    again = dataset.load(seed=0)
    other = dataset.load(seed=1)
    assert [r.id for r in again.seed] == [r.id for r in splits.seed]
    assert [r.id for r in other.test] == [r.id for r in splits.test]  # split_seed fixes the test split
    assert [r.id for r in other.seed] != [r.id for r in splits.seed]


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    import pandas as pd

    table = tmp_path / "penguins.parquet"
    pd.read_csv(PENGUINS).to_parquet(table)
    (tmp_path / "penguins.features.yaml").write_text((PENGUINS.with_name("penguins.features.yaml")).read_text())
    from_parquet = TableDataset(TableDatasetConfig(path=table, shots=3)).load(seed=2)
    from_csv = TableDataset(TableDatasetConfig(path=PENGUINS, shots=3)).load(seed=2)
    assert [r.id for r in from_parquet.seed + from_parquet.test] == [r.id for r in from_csv.seed + from_csv.test]


def _table(tmp_path: Path, spec: dict[str, Any]) -> Path:
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(20)))
    (tmp_path / "t.features.yaml").write_text(yaml.safe_dump(spec))
    return table


def test_feature_file_problems_name_the_field_or_column(tmp_path: Path) -> None:
    base = {"task": "t", "target": "label", "features": [{"name": "a"}, {"name": "b"}]}
    table = _table(tmp_path, {**base, "features": [{"name": "a"}, {"name": "height"}]})
    with pytest.raises(DistilforgeError, match=r"not in the table: \['height'\]; the table has \['a', 'b', 'label'\]"):
        TableDataset(TableDatasetConfig(path=table)).load(0)
    _table(tmp_path, {**base, "positive": "maybe"})
    with pytest.raises(DistilforgeError, match="positive class 'maybe' is not among the labels"):
        TableDataset(TableDatasetConfig(path=table)).load(0)
    _table(tmp_path, {**base, "features": [{"name": "a", "unit": "cm"}]})
    with pytest.raises(DistilforgeError, match=r"features\.0\.unit: Extra inputs are not permitted"):
        TableDataset(TableDatasetConfig(path=table)).load(0)
    _table(tmp_path, {**base, "features": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(DistilforgeError, match=r"features listed twice: \['a'\]"):
        TableDataset(TableDatasetConfig(path=table)).load(0)
    with pytest.raises(DistilforgeError, match="feature file not found"):
        TableDataset(TableDatasetConfig(path=table, features=tmp_path / "nope.yaml")).load(0)
    _table(tmp_path, base)
    with pytest.raises(DistilforgeError, match="shots = 50 but class 'no' has only 7 training rows"):
        TableDataset(TableDatasetConfig(path=table, shots=50)).load(0)


def test_a_numeric_column_marked_categorical_is_one_hot_expanded(tmp_path: Path) -> None:
    spec = {"task": "t", "target": "label", "features": [{"name": "a"}, {"name": "b", "categorical": True}]}
    splits = TableDataset(TableDatasetConfig(path=_table(tmp_path, spec))).load(0)
    assert [f["name"] for f in splits.extra["features"]] == ["a", "b=0", "b=1", "b=2"]


def test_config_errors_for_the_table_path_name_the_field(tmp_path: Path) -> None:
    engine = Engine.load()
    config = laat_config(tmp_path)
    config["dataset"]["path"] = str(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match=r"dataset\.path.*file not found"):
        engine.parse(config)
    config["dataset"]["path"] = str(tmp_path / "table.xlsx")
    with pytest.raises(ConfigError, match=r"dataset\.path.*unsupported table format '\.xlsx'"):
        engine.parse(config)


# --------------------------------------------------------------------------- the student component


def test_tabular_student_checkpoint_round_trips_and_reports_roc_auc(tmp_path: Path) -> None:
    splits = TableDataset(TableDatasetConfig(path=PENGUINS, shots=5)).load(seed=0)
    student = TabularStudent(TabularStudentConfig(model="mlp", epochs=50))
    student.set_target_scores({"Adelie": list(GOOD.values())})
    stats = student.train(splits.seed, seed=0)
    assert stats["targeted"] == 1.0 and stats["attribution_cosine"] > 0.95
    before = student.predict(splits.test)
    evaluation = student.evaluate(splits.test, "test")
    assert 0.0 <= evaluation.metrics["roc_auc"] <= 1.0 and "f1" in evaluation.metrics
    student.save(tmp_path / "ckpt")
    assert not list((tmp_path / "ckpt").glob("*.pkl"))
    loaded = TabularStudent(TabularStudentConfig(model="mlp", epochs=50))
    loaded.load(tmp_path / "ckpt")
    after = loaded.predict(splits.test)
    assert [p.label for p in after] == [p.label for p in before]
    assert np.allclose([p.logits for p in after], [p.logits for p in before])
    assert loaded.learned_attributions() == student.learned_attributions()


def test_binary_scores_for_the_first_class_are_negated_for_the_estimator() -> None:
    student = TabularStudent(TabularStudentConfig())
    student.set_target_scores({"Adelie": [1.0, -2.0]})
    assert student._target(["Adelie", "other"]).tolist() == [-1.0, 2.0]
    student.set_target_scores({"other": [1.0, -2.0]})
    assert student._target(["Adelie", "other"]).tolist() == [1.0, -2.0]


# --------------------------------------------------------------------------- the method on the loop


def laat_config(tmp: Path, name: str = "laat", responses: list[str] | None = None, **method: Any) -> dict[str, Any]:
    return {
        "name": name,
        "seed": 0,
        "output_dir": str(tmp / "runs"),
        "teacher_cache": str(tmp / f"{name}-cache.sqlite"),
        "dataset": {"type": "table", "path": str(PENGUINS), "shots": 5},
        "teacher": {
            "type": "fake",
            "responses": responses or [json.dumps(GOOD), json.dumps(OTHER), "no idea", json.dumps({"island=Dream": 2})],
            "call_log": str(tmp / f"{name}-calls.jsonl"),
        },
        "student": {"type": "tabular"},
        "method": {"type": "laat", **method},
    }


def test_laat_asks_validates_retries_averages_and_trains_towards_the_scores(tmp_path: Path) -> None:
    config = laat_config(tmp_path)
    config["teacher_baseline"] = {"enabled": False}  # the call log must hold LAAT's own calls only
    metrics = start_run(Engine.load(), write_config(tmp_path / "l.yaml", config))
    run = tmp_path / "runs" / "laat"
    rejects = read_lines(run / "rejects.jsonl")
    calls = read_lines(tmp_path / "laat-calls.jsonl")
    reasons = {x["reason"] for x in rejects}
    assert reasons <= {"the answer is not a JSON object: 'no idea'"} | {
        x for x in reasons if x.startswith("missing features: 'island=Biscoe'")
    }
    assert rejects and all(x["stage"] == "parse" and x["rejected_by"] == "laat" for x in rejects)
    requests = json.loads((run / "rounds/0/requests.json").read_text())
    assert requests[0]["sampling"]["n"] == 5 and requests[0]["sampling"]["json_schema"] == score_schema(
        PENGUIN_FEATURES
    )
    attempt = {q["id"]: q["meta"].get("attempt", 0) for q in requests}
    assert sorted(attempt.values()) == list(range(len(requests)))
    # every invalid answer of attempts 0..2 was asked for again (retries: 3), nothing else was
    again = [x for x in rejects if attempt[x["request_id"]] < 3]
    assert metrics[0]["retried"] == len(again) == len(calls) - 5
    assert [q["sampling"]["n"] for q in requests[1:]] == [
        sum(1 for x in rejects if attempt[x["request_id"]] == a) for a in range(len(requests) - 1)
    ]

    state = json.loads((run / "manifest.json").read_text())["state"]["laat"]
    estimates = state["estimates"]["Adelie"]
    assert len(estimates) == len(calls) - len(rejects) >= 3 and all(e in (GOOD, OTHER) for e in estimates)
    assert state["answers"] == len(calls)
    saved = json.loads((run / "rounds/1/attributions.json").read_text())
    expected_mean = np.mean([[e[f] for f in PENGUIN_FEATURES] for e in estimates], axis=0)
    assert np.allclose(saved["elicited"]["Adelie"]["mean"], expected_mean)
    assert json.loads((run / "rounds/0/attributions.json").read_text())["elicited"] is None

    # round 0 = plain student, round 1 = aligned with s' of the mean scores
    target = target_attribution(expected_mean)
    target /= np.linalg.norm(target)
    plain = json.loads((run / "rounds/0/attributions.json").read_text())["learned"]["Adelie"]
    laat = saved["learned"]["Adelie"]
    assert np.dot(laat, target) > 0.99 > np.dot(plain, target)
    assert metrics[0]["train_stats"]["targeted"] == 0.0 and metrics[1]["train_stats"]["targeted"] == 1.0
    assert {"accuracy", "roc_auc", "f1"} <= set(metrics[1]["test_metrics"])

    report = (run / "report.md").read_text()
    assert "## LAAT: elicited feature scores and learned attributions" in report
    assert f"Teacher answers: {len(calls)} ({len(estimates)} valid, {len(rejects)} rejected" in report
    assert "![elicited scores and learned attributions for Adelie](report/attributions-Adelie.png)" in report
    assert (run / "report/attributions-Adelie.png").stat().st_size > 10_000
    assert "| bill_length_mm |" in report


def test_no_valid_answer_after_the_retries_stops_with_a_clear_error(tmp_path: Path) -> None:
    config = laat_config(tmp_path, responses=["no idea {hash}"], retries=2)
    with pytest.raises(PluginError, match=r"no valid feature scores for class 'Adelie' in 15 answers"):
        start_run(Engine.load(), write_config(tmp_path / "l.yaml", config))
    assert len(read_lines(tmp_path / "runs/laat/rejects.jsonl")) == 15  # 5 + 5 + 5 retries, all kept


def test_laat_refuses_a_student_that_cannot_take_scores(tmp_path: Path) -> None:
    config = laat_config(tmp_path)
    config["student"] = {"type": "majority"}
    engine = Engine.load(extra_plugins=[__import__("plugin_majority")])
    with pytest.raises(ConfigError, match=r"student\.type: method 'laat' needs a student that takes feature scores"):
        start_run(engine, write_config(tmp_path / "l.yaml", config))


class CrashOnAnswer:
    """Raises while the method parses the ``n``-th teacher answer (during the retries)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    @hookimpl(tryfirst=True)
    def parse_completion(self, completion: Any, request: Any, ctx: Any) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise RuntimeError("simulated crash")


def test_a_crash_during_the_retries_resumes_without_paying_again_or_counting_twice(tmp_path: Path) -> None:
    start_run(Engine.load(), write_config(tmp_path / "ref.yaml", laat_config(tmp_path, "ref")))
    path = write_config(tmp_path / "cut.yaml", laat_config(tmp_path, "cut"))
    with pytest.raises(PluginError, match="simulated crash"):
        start_run(Engine.load(extra_plugins=[CrashOnAnswer(7)]), path)
    paid = len(read_lines(tmp_path / "cut-calls.jsonl"))
    assert paid >= 6
    resume_run(Engine.load(), tmp_path / "runs" / "cut")
    ref, cut = tmp_path / "runs" / "ref", tmp_path / "runs" / "cut"
    assert len(read_lines(tmp_path / "cut-calls.jsonl")) == len(read_lines(tmp_path / "ref-calls.jsonl"))
    state = json.loads((cut / "manifest.json").read_text())["state"]
    assert state == json.loads((ref / "manifest.json").read_text())["state"]
    assert len(state["laat"]["estimates"]["Adelie"]) >= 3
    assert read_lines(cut / "rejects.jsonl") == read_lines(ref / "rejects.jsonl")
    for name in ("rounds/1/evaluation_test.json", "rounds/1/attributions.json"):
        assert json.loads((cut / name).read_text()) == json.loads((ref / name).read_text())


def test_multiclass_elicits_one_vector_per_class(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    frame["species"] = [str(iris.target_names[t]) for t in iris.target]
    frame.to_csv(tmp_path / "iris.csv", index=False)
    names = [str(c) for c in iris.feature_names]
    spec = {"task": "Name the iris species.", "target": "species", "features": [{"name": n} for n in names]}
    (tmp_path / "iris.features.yaml").write_text(yaml.safe_dump(spec))
    answer = json.dumps(dict(zip(names, [1, -2, 6, 5], strict=True)))
    config = laat_config(tmp_path, responses=[answer])
    config["dataset"] = {"type": "table", "path": str(tmp_path / "iris.csv"), "shots": 3}
    metrics = start_run(Engine.load(), write_config(tmp_path / "l.yaml", config))
    run = tmp_path / "runs" / "laat"
    requests = json.loads((run / "rounds/0/requests.json").read_text())
    assert sorted(q["meta"]["class"] for q in requests) == ["setosa", "versicolor", "virginica"]
    assert all(f'For the class "{q["meta"]["class"]}"' in q["messages"][1]["content"] for q in requests)
    saved = json.loads((run / "rounds/1/attributions.json").read_text())
    assert sorted(saved["elicited"]) == ["setosa", "versicolor", "virginica"]
    assert metrics[1]["train_stats"]["targeted"] == 1.0
    assert len(list((run / "report").glob("attributions-*.png"))) == 3


def test_contrast_asks_one_rotated_guided_choice_question_per_feature() -> None:
    features = [{"name": "bill_length_mm", "description": "length of the bill"}, {"name": "island=Dream"}]
    requests = contrast_requests("Predict the species.", features, "Adelie", orders=3)
    assert len(requests) == 6 and [r.meta["feature"] for r in requests] == ["bill_length_mm"] * 3 + ["island=Dream"] * 3
    first = requests[0].messages[-1].content
    assert 'cases of "Adelie"' in first and first.index("Task: Predict the species.") < first.index("Feature:")
    assert "Feature: bill_length_mm: length of the bill" in first
    orders = [r.sampling.choice for r in requests[:3]]
    assert orders == [["lower", "similar", "higher"], ["similar", "higher", "lower"], ["higher", "lower", "similar"]]
    assert all(r.sampling.temperature == 0.0 and r.sampling.logprobs for r in requests)
    assert 'Allowed answers: "similar", "higher", "lower".' in requests[1].messages[-1].content
    assert "typically similar, higher or lower than" in requests[1].messages[-1].content


def _choice(text: str, probabilities: dict[str, float] | None) -> Completion:
    logprobs = None
    if probabilities:
        top = {word: float(np.log(p)) for word, p in probabilities.items()}
        logprobs = [TokenLogprob(token=text, logprob=top[text], top=top)]
    return Completion(request_id="r", text=text, logprobs=logprobs, finish_reason="stop")


def test_a_contrast_answer_scores_ten_times_higher_minus_lower() -> None:
    assert parse_contrast(_choice("lower", {"lower": 0.7, "similar": 0.2, "higher": 0.1})) == pytest.approx(-6.0)
    assert parse_contrast(_choice("higher", None)) == 10.0  # no log-probabilities: the chosen word counts fully
    assert parse_contrast(_choice("similar", None)) == 0.0
    with pytest.raises(BadScores, match=r"not one of \['lower', 'similar', 'higher'\]: 'maybe'"):
        parse_contrast(_choice("maybe", None))
    with pytest.raises(BadScores):
        parse_contrast(Completion(request_id="r", error="server down"))


def test_laat_contrast_mode_on_the_loop_averages_orders_and_retries_bad_answers(tmp_path: Path) -> None:
    config = laat_config(tmp_path, responses=["higher", "lower", "similar", "dunno {hash}"], elicitation="contrast")
    config["teacher_baseline"] = {"enabled": False}
    metrics = start_run(Engine.load(), write_config(tmp_path / "c.yaml", config))
    run = tmp_path / "runs" / "laat"
    requests = json.loads((run / "rounds/0/requests.json").read_text())
    first = [q for q in requests if not q["meta"].get("attempt")]
    assert len(first) == 3 * len(PENGUIN_FEATURES) and all(q["sampling"]["choice"] for q in first)
    rejects = read_lines(run / "rejects.jsonl")
    assert rejects and all(x["reason"].startswith("not one of") for x in rejects)
    state = json.loads((run / "manifest.json").read_text())["state"]["laat"]
    answers = state["contrast"]["Adelie"]
    assert sorted(answers) == sorted(PENGUIN_FEATURES)
    assert all(set(v) <= {-10.0, 0.0, 10.0} for v in answers.values())
    saved = json.loads((run / "rounds/1/attributions.json").read_text())["elicited"]["Adelie"]
    assert saved["mean"] == pytest.approx([float(np.mean(answers[f])) for f in PENGUIN_FEATURES])
    assert saved["n"] == sum(len(v) for v in answers.values()) == state["answers"] - len(rejects)
    assert metrics[1]["train_stats"]["targeted"] == 1.0


def test_a_reasoned_answer_scores_its_last_answer_line() -> None:
    assert parse_reasoned("Adelie are the smallest of the three.\nAnswer: lower") == -10.0
    assert parse_reasoned("Higher? No.\n**Answer:** Higher.") == 10.0
    assert parse_reasoned("Answer: lower at first sight, but\nAnswer: similar") == 0.0
    assert parse_reasoned("Adelie are small.\n\nSo the feature is typically lower for Adelie.") == -10.0
    assert parse_reasoned("Higher for Gentoo.\n\nAdelie: similar, I think.") == 0.0  # the last paragraph
    with pytest.raises(BadScores, match=r"no final 'Answer: lower\|similar\|higher': 'they are higher\. ...'"):
        parse_reasoned("they are higher.\n\n...")
    with pytest.raises(BadScores, match="empty"):
        parse_reasoned("  ")
    (request,) = reasoned_requests(
        "Is it Adelie?", [{"name": "body_mass_g"}], "Adelie", samples=4, temperature=0.7, max_tokens=120
    )
    assert request.sampling.n == 4 and request.sampling.max_tokens == 120 and request.meta["feature"] == "body_mass_g"
    assert "Answer: lower / Answer: similar / Answer: higher" in request.messages[-1].content


def test_laat_reasoned_mode_averages_the_samples_per_feature(tmp_path: Path) -> None:
    responses = ["Small birds.\nAnswer: lower", "Answer: higher", "no conclusion {hash}"]
    config = laat_config(tmp_path, responses=responses, elicitation="reasoned", estimates=3, retries=3)
    config["teacher_baseline"] = {"enabled": False}
    start_run(Engine.load(), write_config(tmp_path / "r.yaml", config))
    run = tmp_path / "runs" / "laat"
    requests = json.loads((run / "rounds/0/requests.json").read_text())
    assert [q["sampling"]["n"] for q in requests[: len(PENGUIN_FEATURES)]] == [3] * len(PENGUIN_FEATURES)
    assert {x["reason"][:20] for x in read_lines(run / "rejects.jsonl")} == {"no final 'Answer: lo"}
    answers = json.loads((run / "manifest.json").read_text())["state"]["laat"]["contrast"]["Adelie"]
    assert all(set(v) <= {-10.0, 10.0} and v for v in answers.values())
    saved = json.loads((run / "rounds/1/attributions.json").read_text())["elicited"]["Adelie"]
    assert saved["mean"] == pytest.approx([float(np.mean(answers[f])) for f in PENGUIN_FEATURES])


# --------------------------------------------------------------------------- real parts


@pytest.mark.slow
def test_elicitation_with_the_real_tiny_vllm_under_the_json_schema(vllm_teacher: Any) -> None:
    """The random tiny model cannot know anything, but under the schema every finished answer must hold
    exactly one integer score in [-10, 10] per feature; an answer cut by max_tokens is refused by name."""
    require_vllm()
    names = ["bill_length_mm", "island=Dream", "body_mass_g"]
    # the tiny model's context is 512 tokens of a small BPE vocabulary: the full prompt runs in the SmolLM2 test
    messages = [ChatMessage(role="user", content="Score each feature from -10 to 10 as JSON.")]
    request = TeacherRequest(
        messages=messages, sampling=SamplingParams(temperature=1.0, max_tokens=96, n=6, json_schema=score_schema(names))
    )
    completions = list(vllm_teacher.sample([request]))
    assert len(completions) == 6
    parsed = 0
    for completion in completions:
        assert completion.ok, completion.error
        if completion.finish_reason == "length":
            with pytest.raises(BadScores):
                parse_scores(completion.text, names)
            continue
        scores = parse_scores(completion.text, names)
        assert list(scores) == names and all(-10 <= v <= 10 for v in scores.values())
        parsed += 1
    assert parsed >= 3, [c.text for c in completions]
    # the same random model without the schema writes no JSON object, and is refused saying so
    free = request.model_copy(update={"sampling": SamplingParams(temperature=1.0, max_tokens=24, n=2)})
    for completion in vllm_teacher.sample([free]):
        with pytest.raises(BadScores, match=r"not a JSON object|missing features|unknown features"):
            parse_scores(completion.text, names)


@pytest.mark.slow
def test_contrast_questions_with_the_real_tiny_vllm_read_logprobs(vllm_teacher: Any) -> None:
    """Guided choice over the three words with log-probabilities: every answer is one of them and scores
    in [-10, 10] from the probabilities (not only +-10 or 0, which the bare text would give)."""
    require_vllm()
    features = [{"name": name} for name in ("bill_length_mm", "body_mass_g")]
    requests = contrast_requests("Is it an Adelie penguin?", features, "Adelie", orders=3)
    completions = list(vllm_teacher.sample(requests))
    assert len(completions) == 6 and all(c.ok and c.text in CONTRAST_CHOICES for c in completions)
    scores = [parse_contrast(c) for c in completions]
    assert all(-10.0 <= s <= 10.0 for s in scores)
    assert any(s not in (-10.0, 0.0, 10.0) for s in scores), scores


@pytest.mark.slow
def test_laat_run_with_the_embedded_smollm2_teacher(default_teacher_dir: Path, tmp_path: Path) -> None:
    """The example config end to end with the real default teacher: the full prompt under the schema, vLLM."""
    require_vllm()
    config = yaml.safe_load((ROOT / "examples/tabular/laat.yaml").read_text())
    config["dataset"]["path"] = str(PENGUINS)
    config.update(output_dir=str(tmp_path / "runs"), teacher_cache=str(tmp_path / "cache.sqlite"))
    done = subprocess.run(
        [CLI, "run", str(write_config(tmp_path / "l.yaml", config))], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "runs" / config["name"]
    state = json.loads((run / "manifest.json").read_text())["state"]["laat"]
    rejects = read_lines(run / "rejects.jsonl")
    assert len(state["estimates"]["Adelie"]) + len(rejects) == state["answers"] >= 5
    assert len(state["estimates"]["Adelie"]) >= 3, [x["reason"] for x in rejects]
    assert all(sorted(e) == sorted(PENGUIN_FEATURES) for e in state["estimates"]["Adelie"])
    assert state["completion_tokens"] > 0 and state["prompt_tokens"] > 0
    assert (run / "report/attributions-Adelie.png").exists()
    assert "## LAAT: elicited feature scores" in (run / "report.md").read_text()
