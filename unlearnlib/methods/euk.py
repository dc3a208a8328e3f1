"""``euk``: Exact Unlearning-k (Goel et al. 2022, arXiv 2201.06640; Deep Unlearn's port;
evaluated by Pawelczyk et al. 2024).

As CF-k, freeze all but the last k trunk blocks plus the head
(``models.model_blocks``; k clipped to the number of trunk blocks with parameters),
but first re-initialise the trainable blocks as Deep Unlearn's ``init_weights``
does (Kaiming-uniform fan_out convolutions, Xavier-uniform linear layers, zero
biases, BatchNorm weight 1 / bias 0; the BatchNorm running statistics are NOT
reset, they stay the original model's), then fine-tune them on D_r exactly as
CF-k's ``fk_finetune``: CE + (lam/2) * ||theta - theta_init||^2 with theta_init the
RE-INITIALISED weights (the reference copies the model after the reset), plain
SGD (momentum 0, no weight decay), the step decay of ``_surgery.step_decay_epochs``,
and the whole model in eval mode (``bn_mode="eval"``: BatchNorm normalises with,
and keeps, the original running statistics). Retain batches are augmented when
the original model was (Deep Unlearn's ``augmented_train_retain_loaders``).
Defaults from the reference (``exact_unlearning_k.py``): k 1, 10 epochs, lr 0.01,
batch 256, lam 0.1, decay_rate 0.1. Search space as CF-k's (the dimensions of
Deep Unlearn's search that have an effect). At these defaults on mnist1d/cnn1d
(15 steps an epoch) the re-initialised blocks stay under-trained: test accuracy
0.22 (seed 0); lr 0.1 with lam 0, inside the search space, reaches 0.77.

Departures from the reference code:
- Augmentation (random crop + horizontal flip, ``data.augment_batch``) is applied
  only when the original model was trained with it (``data.train_recipe.augment``)
  and the inputs are images (N, C, H, W); 1-D signals and the small digit sets
  are not augmented, as in their training.
- Frozen blocks are fully frozen: no gradient, not in the optimiser, BatchNorm
  layers kept in eval mode even when ``bn_mode="train"``.
- Works for every registered model, 1-D layers included (the reference: ResNet and
  TinyViT, and its ``init_weights`` only knows 2-D convolutions and BatchNorm).
  For ResNet-18, k = 5..10 also re-initialises the stem (see ``cfk``).
- ``bn_mode="train"`` (BatchNorm statistics of the re-initialised blocks
  re-estimated while training) is offered as an explicit choice; the default is
  the reference's eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import augment_batch
from . import UnlearnData, register
from ._surgery import (
    FK_SPACE,
    freeze,
    last_k_blocks,
    proximal_ce_loss,
    reinit_,
    step_decay_finetune,
)


@register(
    "euk",
    name="Exact Unlearning-k",
    paper="Goel et al. 2022 (arXiv 2201.06640); Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276).",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "k": 1, "lam": 0.1, "decay_rate": 0.1,
              "bn_mode": "eval"},
    search_space=FK_SPACE,
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, lr: float, batch_size: int, k: int, lam: float,
    decay_rate: float, bn_mode: str,
) -> nn.Module:
    trainable, frozen = last_k_blocks(model, k)
    for b in trainable:
        reinit_(b, reset_running_stats=False)
    params = [p for b in trainable for p in b.parameters()]
    augment = bool(getattr(data.train_recipe, "augment", False)) and data.retain.x.dim() == 4
    gen = torch.Generator().manual_seed(data.seed + 1)
    transform = (lambda x: augment_batch(x, gen)) if augment else None
    with freeze(frozen):
        step_decay_finetune(model, data, proximal_ce_loss(params, lam, transform), params, epochs, lr,
                            batch_size, decay_rate, bn_mode)
    return model
