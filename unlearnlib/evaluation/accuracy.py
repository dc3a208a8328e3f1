"""Batched predictions, accuracy and per-sample losses on device-resident splits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split


@torch.no_grad()
def logits(model: nn.Module, split: Split, batch_size: int = 1024) -> torch.Tensor:
    """Eval-mode logits for every row of ``split`` (on the split's device)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, split: Split) -> float:
    """Fraction of ``split`` classified correctly (RA, FA, VA or TA)."""
    if len(split) == 0:
        return float("nan")
    return (logits(model, split).argmax(1) == split.y).float().mean().item()


def per_sample_loss(model: nn.Module, split: Split) -> torch.Tensor:
    """Cross-entropy of each sample (the population MIA's feature), on the CPU."""
    return F.cross_entropy(logits(model, split), split.y, reduction="none").cpu()


def per_sample_entropy(model: nn.Module, split: Split) -> torch.Tensor:
    """Prediction entropy -sum_c p_c log p_c of each sample (nabla-tau's second MIA feature)."""
    logp = torch.log_softmax(logits(model, split), dim=1)
    return -(logp.exp() * logp).sum(1).cpu()
