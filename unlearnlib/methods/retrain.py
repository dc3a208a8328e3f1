"""``retrain``: train from the original initial weights on D_r alone (the gold standard).

Exact unlearning by definition; every other method is judged by how close it
comes to this model. It uses the same initial weights, recipe and data-order
seed as the original model (Cadet et al. 2024, Deep Unlearn protocol). The
experiment runner takes this model from the store instead of training it again.
"""

from __future__ import annotations

from torch import nn

from ..training import train
from . import UnlearnData, register


@register(
    "retrain",
    name="Retrain from scratch",
    paper="Gold standard of exact unlearning (Cadet et al. 2024, arXiv 2410.01276).",
    defaults={},
    reference=True,
)
def unlearn(model: nn.Module, data: UnlearnData) -> nn.Module:
    """Reset ``model`` to ``data.init_state`` and train it on D_r with ``data.train_recipe``."""
    if data.init_state is None or data.train_recipe is None:
        raise ValueError(
            "retrain needs data.init_state and data.train_recipe (the original model's "
            "initial weights and training recipe); build UnlearnData from train_reference_models."
        )
    model.load_state_dict(data.init_state)
    model.to(data.device)
    train(model, data.retain, data.train_recipe, data.seed, show_progress=False)
    return model
