"""``prmq``: Prune, Retrain, Mask, Quantise (Kaggle NeurIPS 2023 unlearning challenge #4; Deep Unlearn).

Global L1-unstructured pruning of the ``prune_amount`` fraction of smallest |w|
among all convolution and linear weights and biases; pruned weight entries are
re-initialised from U(-sqrt(1/fan_in), +sqrt(1/fan_in)) (pruned biases stay 0);
then train on D_r with CE weighted by class_count^-0.1 plus the MSE between the
prediction entropies of the student and of the original model; SGD (momentum
0.9), constant lr, fractional epochs; finally cast every floating tensor to fp16
and back. Defaults from the reference: prune_amount 0.99, 3.2 epochs, lr 5e-4,
batch 64, weight decay 5e-4 (Cadet et al. 2024, arXiv 2410.01276).

Departures from the reference code:
- Conv1d layers are pruned like Conv2d (our extension). An ``nn.Embedding`` (the token
  table of ``text_bag``) is not pruned, as the reference's conv/linear type filter would
  leave it; it is trained on D_r with the rest.
- Only the pruned entries are re-initialised (the reference re-drew every weight
  equal to zero, which is the same set unless a weight was exactly 0 before).
- Classes absent from D_r (class-wise forgetting) get weight 0 instead of
  breaking the weight vector's alignment with the labels.
- BatchNorm mode is an explicit hyperparameter (train by default).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, Param, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop
from ._surgery import CONV, fan_in


@torch.no_grad()
def prune_and_reinit_(model: nn.Module, amount: float) -> dict[str, torch.Tensor]:
    """Global L1 pruning of conv/linear weights and biases; returns the pruned masks."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"prune_amount must lie in [0, 1]; got {amount}.")
    named = {f"{mn}.{pn}" if mn else pn: p
             for mn, m in model.named_modules() if isinstance(m, (*CONV, nn.Linear))
             for pn, p in m.named_parameters(recurse=False)}
    if not named:
        raise ValueError(f"PRMQ found no convolution or linear layer in {type(model).__name__}.")
    flat = torch.cat([p.detach().abs().reshape(-1) for p in named.values()])
    k = round(amount * flat.numel())
    pruned = torch.zeros_like(flat, dtype=torch.bool)
    if k:
        pruned[torch.topk(flat, k, largest=False).indices] = True
    masks, start = {}, 0
    for name, p in named.items():
        mask = pruned[start:start + p.numel()].view_as(p)
        start += p.numel()
        p[mask] = 0.0
        if p.dim() > 1:  # weights: re-draw the pruned entries
            bound = math.sqrt(1.0 / fan_in(p))
            fresh = (torch.rand_like(p) - 0.5) * 2 * bound
            p[mask] = fresh[mask]
        masks[name] = mask
    return masks


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = logits.log_softmax(1)
    return -(logp.exp() * logp).sum(1)


@torch.no_grad()
def quantise_roundtrip_(model: nn.Module) -> None:
    """Cast every floating parameter and buffer to fp16 and back."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            t.copy_(t.half().float())


@register(
    "prmq",
    name="Prune, Retrain, Mask, Quantise",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kaggle NeurIPS 2023 unlearning challenge.",
    defaults={"epochs": 3.2, "lr": 5e-4, "batch_size": 64, "weight_decay": 5e-4, "prune_amount": 0.99,
              "bn_mode": "train"},
    search_space={**STD_SPACE, "epochs": Param("float", 1.0, None, high_train_fraction=0.2),
                  "prune_amount": Float(0.0, 1.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, prune_amount: float, bn_mode: str,
) -> nn.Module:
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    prune_and_reinit_(model, prune_amount)
    counts = torch.bincount(data.retain.y, minlength=data.num_classes).float()
    weights = torch.where(counts > 0, counts.clamp(min=1) ** -0.1, torch.zeros_like(counts)).to(data.device)

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out = m(r.x)
        with torch.no_grad():
            target_entropy = _entropy(teacher(r.x))
        return F.cross_entropy(out, r.y, weight=weights) + F.mse_loss(_entropy(out), target_entropy)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads)
    quantise_roundtrip_(model)
    return model
