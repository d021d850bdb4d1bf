"""``distilforge init``: a config written from the user's data that validates as written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(autouse=True)
def _no_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path / "home"))  # no preset is set up: SmolLM2 is chosen


@pytest.mark.parametrize("method", ["llm2llm", "gold"])
def test_a_text_config_from_a_csv_validates_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str
) -> None:
    data = tmp_path / "data" / "news.csv"
    data.parent.mkdir()
    shutil.copy(EXAMPLES / "own_data" / "news.csv", data)
    out = tmp_path / "configs" / f"{method}.yaml"
    code, output = run_cli(capsys, "init", "--method", method, "--data", str(data), "-o", str(out))
    assert code == 0 and f"wrote {out}" in output, output
    config = yaml.safe_load(out.read_text())
    assert config["dataset"] == {
        "type": "file",
        "train": "../data/news.csv",
        "test_fraction": 0.2,
        "input_field": "headline",
        "target_field": "topic",
        "task": "Classify the topic of a headline as business, science, sport, tech or world.",
    }
    assert config["teacher"]["model"] == "smollm2-135m" and config["method"]["type"] == method
    longest = max(len(line.rsplit(",", 1)[0]) for line in data.read_text().splitlines()[1:])
    assert config["method"]["sampling"]["max_tokens"] == max(64, -(-3 * -(-longest // 4) // 2) + 16)
    assert "# tokens per input" in out.read_text()  # the choices are explained
    code, output = run_cli(capsys, "validate", str(out))
    assert code == 0 and "5 labels: business, science, sport, tech, world" in output, output
    assert not (tmp_path / "home" / "models" / "smollm2-135m-instruct").exists()  # validating converts nothing
    code, output = run_cli(capsys, "init", "--method", method, "--data", str(data), "-o", str(out))
    assert code == 2 and "pass --force" in output
    # the commented validation block runs as written once uncommented
    text = out.read_text()
    for key in ("validation:", "  fraction: 0.2", "  patience: 2"):
        text = text.replace(f"# {key}", key, 1)
    out.write_text(text)
    code, output = run_cli(capsys, "validate", str(out))
    assert code == 0 and "25 seed examples" in output and "validation: 5 of the seed examples held out" in output, (
        output
    )


def test_a_laat_config_comes_with_a_feature_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "wine.csv"
    shutil.copy(EXAMPLES / "tabular" / "wine.csv", table)
    out = tmp_path / "laat.yaml"
    code, output = run_cli(capsys, "init", "--method", "laat", "--data", str(table), "-o", str(out))
    assert code == 0, output
    features = yaml.safe_load((tmp_path / "wine.features.yaml").read_text())
    assert (
        features["target"] == "cultivar"
        and {"name": "alcohol", "description": "the alcohol column"} in features["features"]
    )
    code, output = run_cli(capsys, "validate", str(out))
    assert code == 0 and "dataset table" in output, output


def test_free_form_targets_are_refused_with_the_way_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "math.jsonl"
    data.write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(20)))
    code, output = run_cli(capsys, "init", "--method", "llm2llm", "--data", str(data), "-o", str(tmp_path / "m.yaml"))
    assert code == 2 and "does not look like class labels" in output and not (tmp_path / "m.yaml").exists()
