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
from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def _check(noise_var: float) -> None:
    if noise_var < 0:
        raise ValueError(f"noise_var is a variance and must be >= 0; got {noise_var}.")


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """Cross-entropy on the retain batch plus <theta, xi>, xi ~ N(0, noise_var) drawn afresh."""
    _check(hp["noise_var"])
    return out.ce("retain") + out.noise_dot(math.sqrt(hp["noise_var"]))


#: The loss as data: read by the shared loop and by the many-model engine.
OBJECTIVE = Objective(_loss, reads=("retain",), driver="retain", schedule="constant")


@register(
    "ngd",
    name="Noisy Gradient Descent on D_r",
    paper="Pawelczyk et al. 2024, Machine Unlearning Fails to Remove Data Poisoning Attacks (arXiv 2406.17216).",
    defaults={"epochs": 5, "lr": 0.01, "batch_size": 256, "weight_decay": 5e-4,
              "noise_var": 1e-7, "bn_mode": "train"},
    search_space={**STD_SPACE, "noise_var": Float(1e-9, 1e-3, log=True)},
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    _check(hp["noise_var"])
    return unlearn_by(OBJECTIVE, model, data, hp)
