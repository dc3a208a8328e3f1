"""``cfk``: Catastrophic Forgetting-k (Goel et al. 2022, arXiv 2201.06640; SCRUB's and Deep
Unlearn's port; evaluated by Pawelczyk et al. 2024).

Freeze everything but the last k blocks of the trunk and the classifier head
(``models.model_blocks``; k clipped to the number of trunk blocks with
parameters) and fine-tune on D_r with CE + (lam/2) * ||theta - theta_0||^2 over the
trainable parameters, plain SGD (momentum 0, no weight decay) and the reference's
step decay (``_surgery.step_decay_epochs``: epoch e, 0-based, runs at
``decay_rate ** m``, m the number of milestones int(0.5 E), int(0.8 E), int(0.9 E)
it exceeds; E = 10: 6 epochs at lr, 3 at 0.1 lr, 1 at 0.01 lr; a 1-epoch run is
never decayed). As in the reference (``fk_finetune``, ``run_train_epoch``) the
model trains in eval mode (``bn_mode="eval"``): BatchNorm uses and keeps the
original running statistics. Defaults from the Deep Unlearn/SCRUB code: k 1,
10 epochs, lr 0.01, batch 256, lam 0.1, decay_rate 0.1. Search space as Deep
Unlearn's (the dimensions that have an effect): lr, batch size, epochs, k in
[1, 10], lam log-uniform [1e-5, 1e-1], decay_rate in [0, 1].

Departures from the reference code:
- Frozen blocks are fully frozen: no gradient (backward stops before them), not in
  the optimiser, BatchNorm layers kept in eval mode even when ``bn_mode="train"``.
- Works for every registered model through ``blocks`` (the reference: ResNet and
  TinyViT only). For ResNet-18 the trunk blocks here are stem, layer1..layer4, so
  k = 5..10 also trains the stem, which the reference (layer1..layer4 only) never does.
- ``bn_mode="train"`` (BatchNorm statistics of the trainable blocks updated) is
  offered as an explicit choice; the default is the reference's eval mode.
"""

from __future__ import annotations

from torch import nn

from . import UnlearnData, register
from ._surgery import FK_SPACE, freeze, last_k_blocks, proximal_ce_loss, step_decay_finetune


@register(
    "cfk",
    name="Catastrophic Forgetting-k",
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
    params = [p for b in trainable for p in b.parameters()]
    with freeze(frozen):
        step_decay_finetune(model, data, proximal_ce_loss(params, lam), params, epochs, lr, batch_size,
                            decay_rate, bn_mode)
    return model
