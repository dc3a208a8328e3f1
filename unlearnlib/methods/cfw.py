"""``cfw``: class-weighted fine-tune with noise (Kaggle NeurIPS 2023 unlearning challenge #3; Deep Unlearn).

Add N(0, start_std^2) noise to the weight of the model's FIRST weight layer (its
first convolution; for a model without convolutions the layer that reads the input:
the token embedding of a text model, the first Linear layer of an MLP);
fine-tune on D_r with class-balanced weighted CE (weight n / (C * count_c),
scikit-learn's "balanced"), SGD (momentum 0.9) and a cosine schedule; at the end
of epoch E-1 (the reference's ``ep == epochs - 2``, 0-based) re-inject noise with
final_std into the same layer before the last epoch. Defaults from the reference
(``kgltop3.py``): 4 epochs, lr 7e-4, batch 64, weight decay 5e-4, start_std 0.6,
final_std 0.005 (Cadet et al. 2024, arXiv 2410.01276). The search space is Deep
Unlearn's: the shared lr / weight decay / batch / epochs space plus both stds in [0, 1].

Which layer: the reference's ``vision_confuser`` noises the model's direct
children with "conv" in their name, i.e. ResNet-18's single first convolution
``conv1`` (and nothing in its TinyViT); std 0.6 is sized for that one layer.
Here the first convolution is found by type, in module order, so every registered
model has one (METHODS.md "do better"). On mnist1d/cnn1d (seed 0) noising every
convolution instead destroys the model (test accuracy 0.08-0.17 before fine-tuning
over 5 noise draws, 0.21 after the 4 epochs); the first conv alone gives 0.17-0.27
before and 0.82 after.

Departures from the reference code:
- A conv-free model (an MLP) gets the noise on its first Linear layer (our
  extension; the reference noised nothing there, a silent no-op). A token model
  (``text_bag``) gets it on its embedding table, the analogue of a ViT's patch embedding
  (METHODS.md). The default std 0.6 is sized for a conv layer: on rt_sentiment/text_bag
  (seed 0, trained entries of std 0.05) it wipes the word vectors, test accuracy
  0.76 -> 0.59 after the 4 epochs at lr 7e-4; noising the hidden Linear layer instead
  left forgetting undone (forget accuracy 0.985 -> 0.982, test 0.76 -> 0.75).
  ``start_std`` is searched.
- The class weights really weight each sample's loss; the reference multiplied the
  already-averaged CE by the mean weight of the batch.
- The cosine schedule is per step rather than per epoch; BatchNorm mode is an
  explicit hyperparameter (train by default, as the reference's ``net.train()``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop
from ._surgery import first_weight_layer


@torch.no_grad()
def add_first_layer_noise_(model: nn.Module, std: float) -> nn.Module:
    """Add N(0, std^2) to the weight of the first weight layer, in place; returns that layer."""
    _, layer = first_weight_layer(model, "CFW")
    layer.weight.add_(torch.randn_like(layer.weight) * std)
    return layer


def balanced_class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (C_present * count_c) for classes present in ``y``; 0 for absent classes."""
    counts = torch.bincount(y, minlength=num_classes).float()
    present = int((counts > 0).sum())
    return torch.where(counts > 0, len(y) / (present * counts.clamp(min=1)), torch.zeros_like(counts))


@register(
    "cfw",
    name="Class-weighted fine-tune with noise",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kaggle NeurIPS 2023 unlearning challenge.",
    defaults={"epochs": 4, "lr": 7e-4, "batch_size": 64, "weight_decay": 5e-4, "start_std": 0.6,
              "final_std": 0.005, "bn_mode": "train"},
    search_space={**STD_SPACE, "start_std": Float(0.0, 1.0), "final_std": Float(0.0, 1.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, lr: float, batch_size: int,
    weight_decay: float, start_std: float, final_std: float, bn_mode: str,
) -> nn.Module:
    add_first_layer_noise_(model, start_std)
    weights = balanced_class_weights(data.retain.y, data.num_classes).to(data.device)

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        return (F.cross_entropy(m(r.x), r.y, reduction="none") * weights[r.y]).mean()

    def on_epoch_end(epoch: int) -> None:
        if epoch == int(epochs) - 1:
            add_first_layer_noise_(model, final_std)

    cfg = LoopConfig(int(epochs), lr, batch_size, weight_decay=weight_decay, schedule="cosine",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, on_epoch_end=on_epoch_end,
             max_sample_grads=data.max_sample_grads)
    return model
