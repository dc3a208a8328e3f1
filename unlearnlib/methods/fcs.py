"""``fcs``: Forget-Contrast-Strengthen, the NeurIPS 2023 unlearning challenge's #1 entry.

1. Forget: one pass over D_f minimising KL(uniform || softmax(out)), SGD (``lr``,
   ``weight_decay``, momentum 0.9).
2. Then for each of ``epochs`` epochs:
   - contrast round: one pass over D_f with a retain batch beside every forget
     batch, minimising -mean log_softmax(out_f @ out_r.detach().T / tau)
     (SGD ``forget_lr``/``forget_weight_decay``, cosine-annealed to ``eta_min``
     over all rounds);
   - strengthen round: one pass over D_r minimising CE (SGD ``retain_lr``/``retain_weight_decay``).
Defaults from Deep Unlearn's port (Cadet et al. 2024, arXiv 2410.01276):
8 epochs, batch 256, lr 5e-3, wd 0; forget lr 3e-4, wd 0; retain lr 1e-3 *
256/64 = 4e-3 (the reference scales its retain lr by batch/64; here
``retain_lr`` is the rate actually used), wd 1e-2; tau 1.15; eta_min 1e-6.

Each round is one run of the shared loop; the forget rounds share one SGD
state and the strengthen rounds another (passed between runs), as the
reference's two optimisers do. Departures from the reference code: the
forget rounds' cosine schedule is a staircase (constant within a round, cosine across rounds) instead of
per step; the retain batches of a contrast round continue one shuffled stream
over D_r instead of restarting a loader each epoch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._distill import kl_to_uniform
from ._loop import Batch, LoopConfig, run_loop

LOG_SPACE = Float(1e-5, 1e-1, log=True)  # Deep Unlearn: lr and weight decay


def contrastive_loss(out_f: torch.Tensor, out_r: torch.Tensor, tau: float) -> torch.Tensor:
    """-mean log_softmax(out_f @ out_r.T / tau): pushes forget logits away from retain logits."""
    if tau <= 0:
        raise ValueError(f"tau must be > 0; got {tau}.")
    return -F.log_softmax(out_f @ out_r.detach().T / tau, dim=-1).mean()


@register(
    "fcs",
    name="Forget-Contrast-Strengthen (Kaggle #1)",
    paper="NeurIPS 2023 Machine Unlearning challenge, 1st place (Triantafillou et al. 2024); Cadet et al. 2024.",
    defaults={"epochs": 8, "batch_size": 256, "lr": 5e-3, "weight_decay": 0.0,
              "forget_lr": 3e-4, "forget_weight_decay": 0.0, "retain_lr": 4e-3, "retain_weight_decay": 1e-2,
              "tau": 1.15, "eta_min": 1e-6, "bn_mode": "train"},
    search_space={**STD_SPACE, "forget_lr": LOG_SPACE, "forget_weight_decay": LOG_SPACE,
                  "retain_lr": LOG_SPACE, "retain_weight_decay": LOG_SPACE,
                  "tau": Float(0.05, 5.0), "eta_min": Float(1e-6, 1e-1, log=True)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, batch_size: int, lr: float, weight_decay: float,
    forget_lr: float, forget_weight_decay: float, retain_lr: float, retain_weight_decay: float,
    tau: float, eta_min: float, bn_mode: str,
) -> nn.Module:
    if tau <= 0:
        raise ValueError(f"tau must be > 0; got {tau}.")
    epochs = int(epochs)

    def contrast(m: nn.Module, f: Batch, r: Batch) -> torch.Tensor:
        return contrastive_loss(m(f.x), m(r.x).detach(), tau)

    # (loss, driver, lr, weight decay, use_retain) per round, in order
    rounds = [(lambda m, f, r: kl_to_uniform(m(f.x)), "forget", lr, weight_decay, False)]
    for e in range(epochs):
        lr_e = eta_min + (forget_lr - eta_min) * 0.5 * (1 + math.cos(math.pi * e / epochs))
        rounds.append((contrast, "forget", lr_e, forget_weight_decay, True))
        rounds.append((lambda m, f, r: F.cross_entropy(m(r.x), r.y), "retain", retain_lr, retain_weight_decay, False))
    budget = data.max_sample_grads
    opt_states: dict[bool, dict | None] = {True: None, False: None}  # forget / retain optimiser
    for i, (loss_fn, driver, lr_i, wd_i, use_retain) in enumerate(rounds):
        cfg = LoopConfig(1, lr_i, batch_size, weight_decay=wd_i, schedule="constant", driver=driver,
                         use_retain=use_retain, bn_mode=bn_mode)
        log = run_loop(model, data.retain, data.forget, loss_fn, cfg, data.seed + i, max_sample_grads=budget,
                       optimizer_state=opt_states[use_retain] if i else None)
        if i:
            opt_states[use_retain] = log.optimizer_state
        if budget is not None:
            budget -= log.sample_grads
        if log.stopped_by_budget:
            break
    return model
