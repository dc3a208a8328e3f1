"""``salun``: Saliency Unlearning (Fan et al. 2024, ICLR; Deep Unlearn's variant).

1. Saliency: g = sum over D_f batches of grad of -CE (model in eval mode, so
   BatchNorm statistics are not touched); the mask is 1 on the top ``threshold``
   fraction of |g| ranked globally over ALL parameter entries.
2. Successive random relabeling (as ``srl``: D_r u D_f shuffled, forget labels
   redrawn uniformly at every access) with gradients multiplied by the mask.
Defaults from Deep Unlearn (Cadet et al. 2024): threshold 0.5, lr 0.01,
weight decay 0, 10 epochs, batch 256, constant learning rate, and momentum 0.9:
its search fixes the momentum at 0.9 (``settings.HP_MOMENTUM``), so every tuned
run it reports used 0.9 (its untuned default config has 0). Search space: the
shared lr / weight decay / batch / epochs space plus threshold in [0, 1].

Departures from the reference code:
- ("do better") the mask lives on the parameters' device (the reference
  hard-coded CUDA); masked-out entries are restored after every optimiser step
  (``run_loop``'s ``keep_fixed``), so neither weight decay nor momentum can move
  them: they end exactly at the original weights whatever the optimiser settings.
- The saliency is the plain sum of the per-batch gradients. Deep Unlearn's
  ``save_gradient_ratio`` zeroes the gradients through an optimiser that holds
  the OTHER model's parameters, so the copy's gradients accumulate and batch b
  of B is counted B - b + 1 times (a weighting that depends on the shuffle).
- The mask-optimiser settings Deep Unlearn searches (``mask_optimizer.*``) have
  no effect on the mask there, so they are not hyperparameters here.
- BatchNorm mode of the relabelling phase is an explicit hyperparameter (train
  by default, as the reference's ``model.train()``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from . import STD_SPACE, Float, UnlearnData, _cost, register
from ._loop import Batch, LoopConfig, run_loop


def saliency_mask(model: nn.Module, forget: Split, threshold: float, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Boolean masks, True on the ``threshold`` fraction of entries with the largest |grad of -CE on D_f|.

    Exactly ``int(threshold * n_entries)`` entries are selected over the whole model.
    The model is left as it was (mode restored, gradients cleared).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a fraction of parameters and must lie in [0, 1]; got {threshold}.")
    if len(forget) == 0:
        raise ValueError("The forget set is empty; SalUn's saliency needs forget samples.")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = {n: torch.zeros_like(p) for n, p in named}
    was_training = model.training
    model.eval()
    for start in range(0, len(forget), batch_size):
        x, y = forget.x[start : start + batch_size], forget.y[start : start + batch_size]
        model.zero_grad(set_to_none=True)
        (-F.cross_entropy(model(x), y)).backward()
        _cost.add(len(y))
        for n, p in named:
            if p.grad is not None:
                grads[n] += p.grad
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    k = int(threshold * flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, start = {}, 0
    for n, p in named:
        masks[n] = chosen[start : start + p.numel()].view_as(p)
        start += p.numel()
    return masks


@register(
    "salun",
    name="Saliency Unlearning",
    paper="Fan et al. 2024, SalUn (ICLR, arXiv 2310.12508); Cadet et al. 2024, Deep Unlearn.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "momentum": 0.9, "weight_decay": 0.0,
              "threshold": 0.5, "bn_mode": "train"},
    search_space={**STD_SPACE, "threshold": Float(0.0, 1.0)},
    epochs_over="union",
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int, momentum: float,
    weight_decay: float, threshold: float, bn_mode: str,
) -> nn.Module:
    masks = saliency_mask(model, data.forget, threshold, batch_size)
    gen = torch.Generator().manual_seed(data.seed + 1)

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        random_y = torch.randint(0, data.num_classes, r.y.shape, generator=gen).to(r.y.device)
        return F.cross_entropy(m(r.x), torch.where(r.is_forget, random_y, r.y))

    cfg = LoopConfig(epochs, lr, batch_size, momentum=momentum, weight_decay=weight_decay,
                     schedule="constant", driver="union", bn_mode=bn_mode)
    params = dict(model.named_parameters())
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed,
             grad_scale={n: m.to(params[n].dtype) for n, m in masks.items()},  # masked gradients
             keep_fixed={n: ~m for n, m in masks.items()},  # no drift by decay or momentum
             max_sample_grads=data.max_sample_grads)
    return model
