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

from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """Cross-entropy on the union batch, every forget row's label redrawn uniformly."""
    y = torch.where(out.is_forget("union"), out.random_labels("union"), out.labels("union"))
    return out.ce("union", y)


#: The loss as data: read by the shared loop and by the many-model engine.
OBJECTIVE = Objective(_loss, reads=("union",), driver="union", schedule="constant")


@register(
    "srl",
    name="Successive Random Relabeling",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Graves et al. 2021.",
    defaults={"epochs": 5, "lr": 0.1, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="union",
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
