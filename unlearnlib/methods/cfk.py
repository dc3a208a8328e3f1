"""``cfk``: Catastrophic Forgetting-k (Goel et al. 2022, arXiv 2201.06640; SCRUB's and Deep
Unlearn's port; evaluated by Pawelczyk et al. 2024).

Freeze everything but the last k blocks of the trunk and the classifier head
(``models.model_blocks``; k clipped to the number of trunk blocks with
parameters) and fine-tune on D_r with CE + (lam/2) * ||theta - theta_0||^2 over the
trainable parameters, plain SGD (momentum 0, no weight decay) and step decay of
the lr by ``decay_rate`` at 50/80/90% of the epochs. Defaults from the Deep
Unlearn/SCRUB code: k 1, 10 epochs, lr 0.01, batch 256, lam 0.1, decay_rate 0.1.

Departures from the reference code:
- Frozen blocks are fully frozen: no gradient (backward stops before them), not in
  the optimiser (so neither weight decay nor momentum moves them) and their
  BatchNorm layers kept in eval mode, so their running statistics do not change.
- The decay milestones are ceil(f * E), so the first epoch always runs at the
  full lr (the reference's int(f * E) decayed a one-epoch run three times).
- Works for every registered model through ``blocks`` (the reference: ResNet and
  TinyViT only; for ResNet-18 the trunk blocks are stem, layer1..layer4).
- BatchNorm mode of the trainable blocks is an explicit hyperparameter (train by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, Int, UnlearnData, register
from ._loop import Batch
from ._surgery import freeze, last_k_blocks, step_decay_finetune


@register(
    "cfk",
    name="Catastrophic Forgetting-k",
    paper="Goel et al. 2022 (arXiv 2201.06640); Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276).",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "k": 1, "lam": 0.1, "decay_rate": 0.1,
              "bn_mode": "train"},
    search_space={"lr": STD_SPACE["lr"], "batch_size": STD_SPACE["batch_size"], "epochs": STD_SPACE["epochs"],
                  "k": Int(1, 10), "lam": Float(1e-5, 1e-1, log=True), "decay_rate": Float(0.0, 1.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, lr: float, batch_size: int, k: int, lam: float,
    decay_rate: float, bn_mode: str,
) -> nn.Module:
    trainable, frozen = last_k_blocks(model, k)
    params = [p for b in trainable for p in b.parameters()]
    theta0 = [p.detach().clone() for p in params]

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out = F.cross_entropy(m(r.x), r.y)
        if lam:
            out = out + lam / 2 * sum((p - p0).pow(2).sum() for p, p0 in zip(params, theta0, strict=True))
        return out

    with freeze(frozen):
        step_decay_finetune(model, data, loss, params, epochs, lr, batch_size, decay_rate, bn_mode)
    return model
