"""Every kind of config mistake gets its own clear message, before any work starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plugin_majority
import pytest
from helpers import loop_config, write_config

from distilforge.engine.api.errors import ConfigError
from distilforge.engine.build import Engine
from distilforge.engine.cli import main
from distilforge.engine.config import load_config


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(extra_plugins=[plugin_majority])


def error_for(engine: Engine, tmp_path: Path, config: Any) -> str:
    with pytest.raises(ConfigError) as err:
        engine.parse(config)
    return str(err.value)


def test_valid_config_parses_with_defaults(engine: Engine, tmp_path: Path) -> None:
    config = engine.parse(loop_config(tmp_path))
    assert config.method.type == "llm2llm"
    assert config.executor.type == "local"


def test_unknown_key_names_path_and_suggests(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["method"]["roundz"] = 2
    msg = error_for(engine, tmp_path, cfg)
    assert "method.roundz: unknown key 'roundz'; did you mean 'rounds'?" in msg
    assert "Allowed keys here:" in msg and "max_synthetic" in msg


def test_unknown_top_level_key(engine: Engine, tmp_path: Path) -> None:
    msg = error_for(engine, tmp_path, {**loop_config(tmp_path), "sed": 1})
    assert "sed: unknown key 'sed'" in msg


def test_unknown_component_type_lists_installed_ones(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["teacher"] = {"type": "fak"}
    msg = error_for(engine, tmp_path, cfg)
    assert "teacher.type: 'fak' is not an installed teacher" in msg
    assert "fake" in msg and "(did you mean 'fake'?)" in msg


def test_missing_type(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["student"] = {}
    assert "student.type: missing; say which student to use: one of" in error_for(engine, tmp_path, cfg)


def test_wrong_value_shows_value_and_constraint(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, method={"k": 0})
    msg = error_for(engine, tmp_path, cfg)
    assert "method.k: got 0: Input should be greater than or equal to 1" in msg
    cfg = loop_config(tmp_path, method={"task_type": "poetry"})
    assert "method.task_type: got 'poetry'" in error_for(engine, tmp_path, cfg)
    assert "allowed: 'classification' or 'math'" in error_for(engine, tmp_path, cfg)


def test_missing_required_field_and_bad_name(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    del cfg["dataset"]["train"]
    cfg["name"] = "../escape"
    msg = error_for(engine, tmp_path, cfg)
    assert "dataset.train: required, but missing" in msg
    assert "name: got '../escape'" in msg
    assert msg.startswith("invalid config (2 errors)")


def test_missing_data_file_is_named(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, dataset={"test": str(tmp_path / "nope.jsonl")})
    assert "dataset.test: got" in (msg := error_for(engine, tmp_path, cfg)) and "file not found" in msg


def test_list_component_error_has_index(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["filters"] = [{"type": "no-such-filter"}]
    msg = error_for(engine, tmp_path, cfg)
    assert msg.count("filters[0]") == 1


def test_yaml_syntax_and_shape_errors(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethod: {type: llm2llm\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad, engine.registry)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad, engine.registry)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml", engine.registry)


def test_cli_reports_config_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = loop_config(tmp_path)
    cfg["teacher"]["temprature"] = 0.7
    code = main(["run", str(write_config(tmp_path / "c.yaml", cfg))])
    err = capsys.readouterr().err
    assert code == 2
    assert "teacher.temprature: unknown key" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists(), "a bad config must fail before any work starts"


def test_schema_lists_every_installed_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema)
    for name in (
        "llm2llm",
        "gold",
        "energy",
        "fake",
        "vllm",
        "openai",
        "transformers",
        "tfidf-logreg",
        "rotten-tomatoes",
        "file",
    ):
        assert f'"const": "{name}"' in text, name
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[1].glob("examples/*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_example_config_is_valid(engine: Engine, path: Path) -> None:
    if path.name.endswith(".features.yaml"):  # a table's feature file, not a run config
        from distilforge.plugins.datasets.table import load_feature_file

        assert load_feature_file(path).features
        assert path.with_name(path.name.replace(".features.yaml", ".csv")).exists()
        return
    config = load_config(path, engine.registry)
    assert config.name and config.method.type == path.stem


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": {"type": "llm2llm", "prompt_template": "Write {foo} for {task}"}}, "unknown template field {foo}"),
        ({"method": {"type": "llm2llm", "prompt_template": "Write {0}"}}, "positional field {0}"),
        ({"method": {"type": "llm2llm", "prompt_template": "Write {task"}}, "not a valid template"),
        ({"method": {"type": "gold", "request_template": "Label {label} {x}"}}, "unknown template field {x}"),
        ({"filters": [{"type": "parse-validity", "debris_patterns": ["(open"]}]}, "not a valid regular expression"),
        ({"filters": [{"type": "label-judge", "template": "{task} {text} {answer}"}]}, "unknown template field"),
    ],
)
def test_templates_and_regexes_are_checked_at_config_time(
    engine: Engine, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    assert message in error_for(engine, tmp_path, {**loop_config(tmp_path), **change})


def test_a_boolean_is_not_read_as_a_number(engine: Engine, tmp_path: Path) -> None:
    config = loop_config(tmp_path)
    config["method"]["k"] = True
    assert "k: got True, a boolean, where a number is wanted" in error_for(engine, tmp_path, config)
    config = loop_config(tmp_path, method={"sampling": {"n": True}})
    assert "n: got True, a boolean" in error_for(engine, tmp_path, config)
