"""``ngplus``: Negative Gradient Plus (Kurmanji et al. 2023; Deep Unlearn's baseline to beat).

Iterate D_r batches with D_f batches cycled beside them and minimise
``alpha * [CE(r) + lam/2 * ||theta - theta_0||^2] - (1 - alpha) * CE(f)`` with SGD
(momentum 0.9) at a constant learning rate. Defaults from Deep Unlearn's
``neggradplus.py`` (Cadet et al. 2024, arXiv 2410.01276): alpha 0.95, lr 0.01,
10 epochs, batch 256, optimiser weight decay 0. Search space as Deep Unlearn's:
the shared lr / weight decay / batch / epochs space plus alpha in [0, 1].

``lam`` is the reference's proximal weight (its ``l2_penalty`` to theta_0, weighted
by ``cfg.weight_decay``). It defaults to 0 there and is never searched (the search
varies only the optimiser's weight decay), so every reference run has none; here
it is an opt-in hyperparameter, default 0, outside the search space.

Departure from the reference code ("do better", METHODS.md): the reference runs
the whole loop in ``model.eval()`` (BatchNorm statistics frozen); here BatchNorm
mode is an explicit hyperparameter, train mode by default (``bn_mode="eval"``
is the reference's behaviour). At the defaults on mnist1d/cnn1d (seed 0) the two
modes differ little: TA 0.939 / RetDev 0.066 (train) vs 0.944 / 0.069 (eval).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """The retain term first, then the forget term (BatchNorm statistics in that order)."""
    retain_term = out.ce("retain")
    if hp["lam"]:
        retain_term = retain_term + hp["lam"] / 2 * out.sq_dist_to_start()
    return hp["alpha"] * retain_term - (1 - hp["alpha"]) * out.ce("forget")


#: The loss as data: read by the shared loop and by the many-model engine.
OBJECTIVE = Objective(_loss, reads=("retain", "forget"), driver="retain", schedule="constant", anchor="lam")


@register(
    "ngplus",
    name="Negative Gradient Plus",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kurmanji et al. 2023.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "weight_decay": 0.0,
              "alpha": 0.95, "lam": 0.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "alpha": Float(0.0, 1.0)},
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
