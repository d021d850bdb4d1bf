"""Losses shared by the students."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float, beta: float, clamp_min: float = 1e-4
) -> torch.Tensor:
    """Symmetric cross-entropy (Wang et al. 2019), as used by GOLD for noisy generated labels.

    ``L = alpha * CE + beta * RCE`` with the reverse cross-entropy
    ``RCE = -sum_k softmax(logits)_k * log(clamp(onehot_k, clamp_min, 1))``, both batch means.
    Since log(1) = 0, RCE equals ``-log(clamp_min) * (1 - p_target)``: a bounded, MAE-like term
    that does not chase confidently wrong (noisy) labels the way CE does.
    """
    ce = F.cross_entropy(logits, targets)
    probs = F.softmax(logits, dim=1)
    onehot = F.one_hot(targets, num_classes=logits.shape[1]).to(logits.dtype)
    rce = -(probs * torch.log(onehot.clamp(min=clamp_min, max=1.0))).sum(dim=1).mean()
    return alpha * ce + beta * rce
