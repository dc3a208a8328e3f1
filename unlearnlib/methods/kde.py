"""``kde``: reset layers, then distil (Kaggle NeurIPS 2023 challenge, 7th-place notebook;
"KDE" in Deep Unlearn, Cadet et al. 2024, arXiv 2410.01276).

The original model is kept as a frozen teacher. The student is the original
with its first convolution and its classifier head re-initialised (seeded by
the run's seed). Then
1. warm-up: ``epochs`` passes minimising KL(softmax(teacher/T) || softmax(student/T))
   (SGD ``lr``/``weight_decay``, momentum 0.9, constant rate);
2. retain phase: ``retain_epochs`` passes over D_r minimising
   soft-CE(student/T, softmax(teacher/T)) + CE(student, y) + KL_T, SGD
   ``retain_lr``/``retain_weight_decay``, cosine annealing to 0.
Defaults from the notebook (via Deep Unlearn): T 5, batch 64, warm-up 3 epochs
at lr 9e-4, retain phase 3 epochs at lr 1e-3, weight decay 5e-4 in both.

Departures from the reference code: the warm-up distils on D_r, not on the
validation split (a "do better" fix: D_v stays held out for evaluation and
model selection); the cosine schedule is per step rather than per epoch. The
"first conv" is the first convolution in module order and the head the last
linear layer, so any registered architecture works (the reference needed
``conv1``/``fc`` attributes); a model without a convolution only resets its head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import conv_layers
from . import STD_SPACE, Epochs, Float, UnlearnData, register
from ._distill import distill_kl, frozen_copy, soft_cross_entropy, teacher_logits
from ._loop import Batch, LoopConfig, run_loop

LOG_SPACE = Float(1e-5, 1e-1, log=True)


def reset_first_conv_and_head(model: nn.Module) -> list[nn.Module]:
    """Re-initialise the first convolution (if any) and the last linear layer; returns them."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to reset.")
    layers = conv_layers(model)[:1] + linears[-1:]
    for layer in layers:
        layer.reset_parameters()
    return layers


@register(
    "kde",
    name="Reset + distil (Kaggle #7 notebook)",
    paper="NeurIPS 2023 Machine Unlearning challenge, 7th-place notebook (Karipidis); Cadet et al. 2024.",
    defaults={"epochs": 3, "lr": 9e-4, "batch_size": 64, "weight_decay": 5e-4, "retain_epochs": 3,
              "retain_lr": 1e-3, "retain_weight_decay": 5e-4, "temperature": 5.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "retain_epochs": Epochs(0.2), "retain_lr": LOG_SPACE,
                  "retain_weight_decay": LOG_SPACE, "temperature": Float(0.05, 5.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int, weight_decay: float,
    retain_epochs: float, retain_lr: float, retain_weight_decay: float, temperature: float, bn_mode: str,
) -> nn.Module:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    T = temperature
    teacher = frozen_copy(model)
    reset_first_conv_and_head(model)

    def warmup(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        return distill_kl(m(r.x), teacher_logits(teacher, r.x), T)

    def retain(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out, t_out = m(r.x), teacher_logits(teacher, r.x)
        return (soft_cross_entropy(out / T, F.softmax(t_out / T, dim=1)) + F.cross_entropy(out, r.y)
                + distill_kl(out, t_out, T))

    budget = data.max_sample_grads
    phases = [(warmup, epochs, lr, weight_decay, "constant"),
              (retain, retain_epochs, retain_lr, retain_weight_decay, "cosine")]
    for i, (loss_fn, ep, lr_i, wd_i, schedule) in enumerate(phases):
        cfg = LoopConfig(ep, lr_i, batch_size, weight_decay=wd_i, schedule=schedule, driver="retain",
                         bn_mode=bn_mode)
        log = run_loop(model, data.retain, data.forget, loss_fn, cfg, data.seed + i, max_sample_grads=budget)
        if budget is not None:
            budget -= log.sample_grads
        if log.stopped_by_budget:
            break
    return model
