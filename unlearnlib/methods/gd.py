"""``gd``: gradient descent on the retain set (Pawelczyk et al. 2024, arXiv 2406.17216).

"Keep training on D_r": minimise CE on D_r with the training optimiser (SGD,
momentum 0.9) at a constant learning rate, so that the compute budget
(``UnlearnData.max_sample_grads``, 2-10% of training in the paper) is the only
thing that ends the run early. It differs from ``ft`` only in the schedule:
FT anneals to zero over its epochs (Deep Unlearn), GD does not.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import LoopConfig, run_loop


@register(
    "gd",
    name="Gradient Descent on D_r",
    paper="Pawelczyk et al. 2024, Machine Unlearning Fails to Remove Data Poisoning Attacks (arXiv 2406.17216).",
    defaults={"epochs": 5, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y), cfg,
             data.seed, max_sample_grads=data.max_sample_grads)
    return model
