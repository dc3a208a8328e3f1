"""``euk``: Exact Unlearning-k (Goel et al. 2022, arXiv 2201.06640; Deep Unlearn's port;
evaluated by Pawelczyk et al. 2024).

As CF-k, freeze all but the last k trunk blocks plus the head
(``models.model_blocks``; k clipped to the number of trunk blocks with parameters),
but first re-initialise the trainable blocks (Kaiming-uniform fan_out conv,
Xavier-uniform linear, zero biases, BatchNorm weight 1 / bias 0 and fresh running
statistics), then train them on D_r with plain CE: the last k blocks are
retrained from scratch on D_r, so nothing of D_f can remain there.
Defaults: k 1, 10 epochs, lr 0.1, batch 256, weight decay 5e-4.

Departures from the reference code:
- The blocks are retrained with the training recipe's optimiser (SGD momentum 0.9,
  weight decay, cosine schedule) rather than CF-k's plain SGD with step decay and
  proximal term: the proximal term would pull the re-initialised blocks back to
  theta_0, and plain SGD leaves them under-trained (retain accuracy ~0.7 after
  10 epochs on mnist1d/cnn1d).
- Retain batches are augmented (random crop + horizontal flip, ``data.augment_batch``)
  only when the original model was trained with augmentation
  (``data.train_recipe.augment``) and the inputs are images (N, C, H, W); 1-D
  signals and the small digit sets are not augmented, as in their training.
- Frozen blocks are fully frozen: no gradient, not in the optimiser, BatchNorm
  layers kept in eval mode so their running statistics do not change. Works for every
  registered model (the reference: ResNet and TinyViT only).
- BatchNorm mode of the trainable blocks is an explicit hyperparameter (train by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import augment_batch
from . import STD_SPACE, Int, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop
from ._surgery import freeze, last_k_blocks, reinit_


@register(
    "euk",
    name="Exact Unlearning-k",
    paper="Goel et al. 2022 (arXiv 2201.06640); Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276).",
    defaults={"epochs": 10, "lr": 0.1, "batch_size": 256, "weight_decay": 5e-4, "k": 1, "bn_mode": "train"},
    search_space={**STD_SPACE, "k": Int(1, 10)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int, weight_decay: float,
    k: int, bn_mode: str,
) -> nn.Module:
    trainable, frozen = last_k_blocks(model, k)
    for b in trainable:
        reinit_(b)
    params = [p for b in trainable for p in b.parameters()]
    augment = bool(getattr(data.train_recipe, "augment", False)) and data.retain.x.dim() == 4
    gen = torch.Generator().manual_seed(data.seed + 1)

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        x = augment_batch(r.x, gen) if augment else r.x
        return F.cross_entropy(m(x), r.y)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="cosine",
                     driver="retain", bn_mode=bn_mode)
    with freeze(frozen):
        run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads,
                 params=params)
    return model
