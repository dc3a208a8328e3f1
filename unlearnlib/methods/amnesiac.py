"""``amnesiac``: fine-tune on D_r plus D_f with random wrong labels (Graves et al. 2021).

The "unlearning" variant of Graves et al.'s Amnesiac ML, as benchmarked by
Chundawat et al. 2023 (Bad Teacher): every forget sample gets a label drawn
uniformly from the classes other than its own, drawn ONCE before training;
D_r and the relabelled D_f are shuffled together and CE is minimised with
Adam (lr 1e-4, 3 epochs). Unlike ``srl`` the labels are fixed and always wrong.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from . import STD_SPACE, UnlearnData, register
from ._loop import Objective, Outputs, unlearn_by


def wrong_labels(y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random label different from ``y`` for every row (on ``y``'s device)."""
    if num_classes < 2:
        raise ValueError("Amnesiac relabelling needs at least 2 classes.")
    shift = torch.randint(1, num_classes, y.shape, generator=gen).to(y.device)
    return (y + shift) % num_classes


def _loss(out: Outputs, hp: Mapping[str, Any]) -> torch.Tensor:
    """Cross-entropy on the union batch (the forget rows carry their wrong labels)."""
    return out.ce("union")


#: The loss as data: read by the shared loop and by the many-model engine. The forget
#: set's wrong labels are drawn once, before the run, from the run's CPU generator.
OBJECTIVE = Objective(_loss, reads=("union",), driver="union", schedule="constant", optimizer="adam",
                      relabel_forget=wrong_labels)


@register(
    "amnesiac",
    name="Amnesiac (random wrong labels)",
    paper="Graves et al. 2021, Amnesiac Machine Learning (AAAI); Chundawat et al. 2023.",
    defaults={"epochs": 3, "lr": 1e-4, "batch_size": 256, "weight_decay": 0.0, "bn_mode": "train"},
    search_space=STD_SPACE,
    epochs_over="union",
    objective=OBJECTIVE,
)
def unlearn(model: nn.Module, data: UnlearnData, **hp) -> nn.Module:
    return unlearn_by(OBJECTIVE, model, data, hp)
