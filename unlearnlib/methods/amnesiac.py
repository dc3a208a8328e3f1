"""``amnesiac``: fine-tune on D_r plus D_f with random wrong labels (Graves et al. 2021).

The "unlearning" variant of Graves et al.'s Amnesiac ML, as benchmarked by
Chundawat et al. 2023 (Bad Teacher): every forget sample gets a label drawn
uniformly from the classes other than its own, drawn ONCE before training;
D_r and the relabelled D_f are shuffled together and CE is minimised with
Adam (lr 1e-4, 3 epochs). Unlike ``srl`` the labels are fixed and always wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from . import STD_SPACE, UnlearnData, register
from ._loop import LoopConfig, run_loop


def wrong_labels(y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random label different from ``y`` for every row (on ``y``'s device)."""
    if num_classes < 2:
        raise ValueError("Amnesiac relabelling needs at least 2 classes.")
    shift = torch.randint(1, num_classes, y.shape, generator=gen).to(y.device)
    return (y + shift) % num_classes


@register(
    "amnesiac",
    name="Amnesiac (random wrong labels)",
    paper="Graves et al. 2021, Amnesiac Machine Learning (AAAI); Chundawat et al. 2023.",
    defaults={"epochs": 3, "lr": 1e-4, "batch_size": 256, "weight_decay": 0.0, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="union",
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    gen = torch.Generator().manual_seed(data.seed + 1)
    f = data.forget
    relabelled = Split(f.x, wrong_labels(f.y, data.num_classes, gen), f.index)
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, optimizer="adam",
                     schedule="constant", driver="union", bn_mode=bn_mode)
    run_loop(model, data.retain, relabelled, lambda m, _f, r: F.cross_entropy(m(r.x), r.y), cfg,
             data.seed, max_sample_grads=data.max_sample_grads)
    return model
