"""``ga``: gradient ascent on the forget set (Thudi et al. 2022; Graves et al. 2021).

Minimise -CE on D_f only, model in train mode, no retain term. Deep Unlearn
(Cadet et al. 2024, arXiv 2410.01276) finds it inadequate as a sole baseline: it
destroys accuracy on the retained data along with the forget set.
Defaults: 10 epochs, lr 0.01, batch 256, weight decay 5e-4.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import LoopConfig, run_loop


@register(
    "ga",
    name="Gradient Ascent",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Thudi et al. 2022.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="forget",
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="forget", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, lambda m, f, r: -F.cross_entropy(m(f.x), f.y), cfg,
             data.seed, max_sample_grads=data.max_sample_grads)
    return model
