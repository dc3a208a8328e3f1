"""``gd``: gradient descent on the retain set (Pawelczyk et al. 2024, arXiv 2406.17216).

"Keep training on D_r": minimise CE on D_r with the training optimiser (SGD,
momentum 0.9) at a constant learning rate, so that the compute budget
(``UnlearnData.max_sample_grads``, 2-10% of training in the paper) is the only
thing that ends the run early. It differs from ``ft`` only in the schedule:
FT anneals to zero over its epochs (Deep Unlearn), GD does not.
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
OBJECTIVE = Objective(_loss, reads=("retain",), driver="retain", schedule="constant")


@register(
    "gd",
    name="Gradient Descent on D_r",
    paper="Pawelczyk et al. 2024, Machine Unlearning Fails to Remove Data Poisoning Attacks (arXiv 2406.17216).",
    defaults={"epochs": 5, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
