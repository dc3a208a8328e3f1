"""``ngplus``: Negative Gradient Plus (Kurmanji et al. 2023; Deep Unlearn's baseline to beat).

Iterate D_r batches with D_f batches cycled beside them and minimise
``a * [CE(r) + lam/2 * ||theta - theta_0||^2] - (1 - a) * CE(f)``.
Departure from the reference code: it ran the model in eval mode; here the
BatchNorm mode is an explicit hyperparameter, train mode by default.
Defaults: a 0.95, lr 0.01, 10 epochs, batch 256 (Cadet et al. 2024, arXiv 2410.01276).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop


@register(
    "ngplus",
    name="Negative Gradient Plus",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kurmanji et al. 2023.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4,
              "alpha": 0.95, "lam": 0.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "alpha": Float(0.0, 1.0), "lam": Float(0.0, 1.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, alpha: float, lam: float, bn_mode: str,
) -> nn.Module:
    theta0 = [p.detach().clone() for p in model.parameters()]

    def loss(m: nn.Module, f: Batch, r: Batch) -> torch.Tensor:
        retain_term = F.cross_entropy(m(r.x), r.y)
        if lam:
            retain_term = retain_term + lam / 2 * sum(
                (p - p0).pow(2).sum() for p, p0 in zip(m.parameters(), theta0, strict=True)
            )
        return alpha * retain_term - (1 - alpha) * F.cross_entropy(m(f.x), f.y)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="retain", use_forget=True, bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads)
    return model
