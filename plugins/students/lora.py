"""Low-rank adapters on ``nn.Linear`` layers (no ``peft`` dependency), and weight fingerprints."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def state_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over named tensors (names, dtypes, shapes and bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(dropout(x)))`` with a frozen ``base``; ``B`` starts at zero,
    so a fresh adapter leaves the model's function unchanged."""

    def __init__(
        self, base: nn.Linear, r: int, alpha: float, dropout: float, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.base = base
        self.r = r
        self.scaling = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=generator)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return self.base(x) + update * self.scaling


def add_lora(
    model: nn.Module, targets: Sequence[str], r: int, alpha: float, dropout: float, generator: torch.Generator
) -> list[str]:
    """Wrap every ``nn.Linear`` whose attribute name is in ``targets``; return the wrapped names.

    Modules are visited in ``named_modules`` order, so a seeded ``generator`` gives the same
    adapters every time.
    """
    wanted = set(targets)
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in wanted
    ]
    if not found:
        raise ValueError(f"causal-lm: no nn.Linear named any of {sorted(wanted)} in the model")
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha, dropout, generator))
    return [name for name, _ in found]


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if ".lora_" in name}
