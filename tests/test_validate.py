"""``distilforge validate`` / ``run --dry-run``: every problem found up front, nothing created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import loop_config, run_cli, write_config


def _config(tmp_path: Path, teacher: dict[str, str] | None = None, **changes: object) -> Path:
    config = loop_config(tmp_path, name="check", student={"type": "tfidf-logreg"}, **changes)
    if teacher is not None:
        config["teacher"] = teacher
    return write_config(tmp_path / "check.yaml", config)


def _created(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in ("check.yaml", "data"))


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_a_good_config_is_summarised_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config = _config(tmp_path)
    code, output = run_cli(capsys, *command, str(config))
    assert code == 0, output
    assert "config ok: method llm2llm, teacher fake, student tfidf-logreg, dataset file" in output
    assert "dataset: 12 seed examples, 20 test examples, 2 labels: negative, positive" in output
    assert "(would be created)" in output
    assert _created(tmp_path) == []  # no run directory, no teacher cache, no call log


def test_a_bad_data_file_fails_validation_and_run_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(
        "".join(json.dumps({"body": "a text", "a": "x", "b": "y"}) + "\n" for _ in range(4))
    )
    config = _config(tmp_path, dataset={"type": "file", "train": "data/train.jsonl", "test": None, "labels": "auto"})
    for command in (["validate"], ["run"]):
        code, output = run_cli(capsys, *command, str(config))
        assert code == 2 and "set dataset.input_field and dataset.target_field" in output, output
        assert _created(tmp_path) == [], command
    # fixed, the same command runs: no "config changed, pass --force" from a half-made run
    (data / "train.jsonl").write_text(
        "".join(
            json.dumps({"text": f"text {i}", "label": "positive" if i % 2 else "negative"}) + "\n" for i in range(8)
        )
    )
    code, output = run_cli(capsys, "validate", str(config))
    assert code == 0 and "6 seed examples, 2 test examples" in output, output


def test_a_teacher_preset_that_is_not_set_up_is_named_with_its_setup_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILFORGE_HOME", str(tmp_path / "empty-home"))
    config = _config(tmp_path, teacher={"type": "vllm", "model": "qwen2.5-coder-0.5b"})
    code, output = run_cli(capsys, "validate", str(config))
    assert code == 2 and "distilforge setup --teacher qwen2.5-coder-0.5b" in output, output
    assert not (tmp_path / "runs").exists()
