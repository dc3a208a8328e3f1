"""``ft``: fine-tuning on the retain set (Warnecke et al. 2023; Deep Unlearn baseline).

Minimise cross-entropy on D_r with SGD and cosine annealing over the run, relying
on catastrophic forgetting to erase D_f. Defaults from Deep Unlearn (Cadet et al.
2024, arXiv 2410.01276): 5 epochs, lr 0.1, batch 256.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import LoopConfig, run_loop


@register(
    "ft",
    name="Fine-tuning",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Warnecke et al. 2023.",
    defaults={"epochs": 5, "lr": 0.1, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="cosine",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y), cfg,
             data.seed, max_sample_grads=data.max_sample_grads)
    return model
