"""Fixtures that build or locate real models offline (tiny Llama, SmolLM2, MiniLM)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def require_vllm() -> None:
    """Skip without vLLM locally; in CI (``CI=true``) a missing vLLM is a failure, not a skip."""
    if os.environ.get("CI"):
        import vllm  # noqa: F401
    else:
        pytest.importorskip("vllm")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with its own BPE tokenizer and chat template (built in seconds)."""
    from distilforge.testing.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model", seed=0)


@pytest.fixture(scope="session")
def vllm_teacher(tiny_model_dir: Path) -> Iterator[Any]:
    """An in-process vLLM teacher on the tiny model (float32: exact, and tiny anyway)."""
    require_vllm()
    from distilforge.plugins.teachers.vllm_teacher import VLLMTeacher, VLLMTeacherConfig

    teacher = VLLMTeacher(
        VLLMTeacherConfig(
            model=str(tiny_model_dir),
            dtype="float32",
            max_model_len=512,
            kv_cache_memory_bytes=64 << 20,
            seed=0,
        )
    )
    yield teacher
    teacher.close()


@pytest.fixture(scope="session")
def default_teacher_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct, converted once into ``$DISTILFORGE_HOME`` (~45 s)."""
    from distilforge.plugins.models.packaged import default_teacher_dir as prepare

    return prepare()
