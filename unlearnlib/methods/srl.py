"""``srl``: successive random relabeling (Graves et al. 2021, "Amnesiac ML"; Deep Unlearn).

Each epoch iterates D_r u D_f shuffled; every time a forget sample is drawn its
label is redrawn uniformly at random, then CE is minimised with SGD (momentum
0.9) at a CONSTANT learning rate: Deep Unlearn's ``successive_random_labels.py``
builds a scheduler and discards it. Other settings as FT (Cadet et al. 2024,
arXiv 2410.01276): 5 epochs, lr 0.1, batch 256, weight decay 5e-4.

Departure from the reference code: BatchNorm mode is an explicit hyperparameter
(train mode by default, as in the reference's ``model.train()``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop


@register(
    "srl",
    name="Successive Random Relabeling",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Graves et al. 2021.",
    defaults={"epochs": 5, "lr": 0.1, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="union",
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    gen = torch.Generator().manual_seed(data.seed + 1)

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        random_y = torch.randint(0, data.num_classes, r.y.shape, generator=gen).to(r.y.device)
        y = torch.where(r.is_forget, random_y, r.y)
        return F.cross_entropy(m(r.x), y)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="constant",
                     driver="union", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads)
    return model
