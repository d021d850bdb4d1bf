"""Mechanics students share: the learning-rate schedule and the checkpoint header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINT_HEADER = "student.json"


def warmup_linear_decay(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """Learning-rate factor per optimizer step: a linear warm-up over the first ``warmup_ratio`` of
    the steps, then a linear decay to 0 (for ``torch.optim.lr_scheduler.LambdaLR``)."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def write_checkpoint_header(path: Path, component: Any, **fields: Any) -> None:
    """``student.json`` in the checkpoint directory ``path``: the component's type and config plus ``fields``."""
    header = {"type": component.config.type, "config": component.config.model_dump(mode="json"), **fields}
    (Path(path) / CHECKPOINT_HEADER).write_text(json.dumps(header, indent=2), encoding="utf-8")


def read_checkpoint_header(path: Path, component: Any) -> dict[str, Any]:
    """The header :func:`write_checkpoint_header` wrote; refuses a checkpoint of another component type."""
    header: dict[str, Any] = json.loads((Path(path) / CHECKPOINT_HEADER).read_text(encoding="utf-8"))
    if header.get("type") != component.config.type:
        raise ValueError(f"{path} holds a {header.get('type')!r} checkpoint, not {component.config.type!r}")
    return header
