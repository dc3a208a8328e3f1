"""``ngd``: noisy gradient descent on the retain set (Pawelczyk et al. 2024, arXiv 2406.17216).

GD on D_r (see ``gd``) with Gaussian noise added to every gradient entry at
every step: g <- g + xi, xi ~ N(0, noise_var), noise_var 1e-7 by default (the
paper's sigma^2). The noise enters through the loss as <theta, xi> with xi
drawn afresh and detached, whose gradient is exactly xi, so the shared loop
needs no hook. Noise comes from a generator on the data's device seeded by the
run's seed: the same seed gives the same weights on a given device (drawing on
the device keeps large models fast on a GPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop


@register(
    "ngd",
    name="Noisy Gradient Descent on D_r",
    paper="Pawelczyk et al. 2024, Machine Unlearning Fails to Remove Data Poisoning Attacks (arXiv 2406.17216).",
    defaults={"epochs": 5, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4,
              "noise_var": 1e-7, "bn_mode": "train"},
    search_space={**STD_SPACE, "noise_var": Float(1e-9, 1e-3, log=True)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, noise_var: float, bn_mode: str,
) -> nn.Module:
    if noise_var < 0:
        raise ValueError(f"noise_var is a variance and must be >= 0; got {noise_var}.")
    sigma = math.sqrt(noise_var)
    gen = torch.Generator(device=data.device).manual_seed(data.seed + 1)
    params = [p for p in model.parameters() if p.requires_grad]

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        ce = F.cross_entropy(m(r.x), r.y)
        # d/dtheta <theta, xi> = xi: Gaussian gradient noise through the loss
        noise = sum((p * sigma * torch.randn(p.shape, generator=gen, device=gen.device)).sum() for p in params)
        return ce + noise

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads)
    return model
