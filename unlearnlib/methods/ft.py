"""``ft``: fine-tuning on the retain set (Warnecke et al. 2023; Deep Unlearn baseline).

Minimise cross-entropy on D_r with SGD and cosine annealing over the run, relying
on catastrophic forgetting to erase D_f. Defaults from Deep Unlearn (Cadet et al.
2024, arXiv 2410.01276): 5 epochs, lr 0.1, batch 256.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """Cross-entropy on the retain batch."""
    return out.ce("retain")


#: The loss as data: read by the shared loop and by the many-model engine.
OBJECTIVE = Objective(_loss, reads=("retain",), driver="retain", schedule="cosine")


@register(
    "ft",
    name="Fine-tuning",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Warnecke et al. 2023.",
    defaults={"epochs": 5, "lr": 0.1, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
