"""``ga``: gradient ascent on the forget set (Thudi et al. 2022; Graves et al. 2021).

Minimise -CE on D_f only, model in train mode, no retain term. Deep Unlearn
(Cadet et al. 2024, arXiv 2410.01276) finds it inadequate as a sole baseline: it
destroys accuracy on the retained data along with the forget set.
Defaults: 10 epochs, lr 0.01, batch 256, weight decay 5e-4.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """Negative cross-entropy on the forget batch."""
    return -out.ce("forget")


#: The loss as data: read by the shared loop and by the many-model engine.
OBJECTIVE = Objective(_loss, reads=("forget",), driver="forget", schedule="constant")


@register(
    "ga",
    name="Gradient Ascent",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Thudi et al. 2022.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="forget",
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
