"""Batched predictions, accuracy and per-sample losses on device-resident splits.

The engine's view of a model's outputs, below methods and evaluation alike: methods
read them (SCRUB's model selection, nabla-tau's per-sample losses) and so do the
metrics and attacks. Moved here from ``unlearnlib.evaluation.accuracy`` (issue 35:
a method importing evaluation made evaluation and the methods one floor);
:mod:`unlearnlib.evaluation` re-exports every function, so
``from unlearnlib.evaluation import accuracy`` still works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split


@torch.no_grad()
def logits(model: nn.Module, split: Split, batch_size: int = 1024) -> torch.Tensor:
    """Eval-mode logits for every row of ``split`` (on the split's device)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    model.train(was_training)
    return out


def accuracy_of(z: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose largest logit in ``z`` is the label ``y`` (NaN for no rows)."""
    if len(y) == 0:
        return float("nan")
    return (z.argmax(1) == y).float().mean().item()


def loss_of(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row of logits ``z`` with label ``y``, on the CPU."""
    return F.cross_entropy(z, y, reduction="none").cpu()


def entropy_of(z: torch.Tensor) -> torch.Tensor:
    """Prediction entropy -sum_c p_c log p_c of each row of logits ``z``, on the CPU."""
    logp = torch.log_softmax(z, dim=1)
    return -(logp.exp() * logp).sum(1).cpu()


def accuracy(model: nn.Module, split: Split) -> float:
    """Fraction of ``split`` classified correctly (RA, FA, VA or TA)."""
    if len(split) == 0:
        return float("nan")
    return accuracy_of(logits(model, split), split.y)


def per_sample_loss(model: nn.Module, split: Split) -> torch.Tensor:
    """Cross-entropy of each sample (the population MIA's feature), on the CPU."""
    return loss_of(logits(model, split), split.y)


def per_sample_entropy(model: nn.Module, split: Split) -> torch.Tensor:
    """Prediction entropy -sum_c p_c log p_c of each sample (nabla-tau's second MIA feature)."""
    return entropy_of(logits(model, split))
