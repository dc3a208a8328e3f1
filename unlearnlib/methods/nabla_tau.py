"""``nabla_tau``: adaptive gradient ascent, nabla-tau (Trippa et al. 2024, arXiv 2403.14339).

Every step takes one forget batch B_f and one retain batch B_r and minimises

    alpha * ReLU(tau - L_f)^2 + (1 - alpha) * L_r

with L_f, L_r the mean CE over B_f and B_r and tau the mean per-sample CE of
the current model on the validation set (a number, no gradient), recomputed
every 5 outer epochs. The ascent on D_f scales with the gap to the held-out
loss and switches itself off once the forget loss reaches it. An outer epoch
is one pass over D_f (a retain batch beside every forget batch).

- alpha_0 = 5/3 * f, f = |D_f| / (|D_r| + |D_f|): the forget set's share of the
  data the original model trained on, as in the paper (so ``fraction:0.03/0.15/0.3``
  give its alpha_0 = 0.05/0.25/0.5); capped at 1 (f > 0.6). After each outer epoch alpha drops by
  alpha_0 / forget_epochs (linear decay to 0).
- forget_epochs = int(n_retain_batches / (2 * n_forget_batches) * 6): about three
  passes over D_r; batch 256; AdamW lr 1e-3, weight decay 0.01 (PyTorch's AdamW default).
- ``gap``: ``one-sided`` ReLU(tau - L_f)^2 (the image variant, default) or
  ``two-sided`` (tau - L_f)^2 (the text variant).
- ``bn_mode``: the reference runs the whole loop in ``net.eval()``, so the default
  is ``eval`` (BatchNorm normalises with, and keeps, the original running
  statistics); ``train`` (statistics updated) is offered as an explicit choice.

The learning rate follows the paper's LinearLR(1.0 -> 0.1) stepped once per
outer epoch. Departure from the reference: retain batches continue one reshuffled
stream over D_r; the reference restarts its retain loader every
n_retain_batches // n_forget_batches outer epochs, so when the division is not
exact the last retain batches of each pass are never drawn.
The run's alpha_0, forget_epochs and tau values are recorded on the returned
model as ``nabla_tau_info``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..predict import per_sample_loss
from . import Choice, UnlearnData, register
from ._loop import Batch, LoopConfig, run_loop

GAPS = ("one-sided", "two-sided")
TAU_EVERY = 5
LR_END = 0.1


def forget_fraction(n_retain: int, n_forget: int) -> float:
    """|D_f| / (|D_r| + |D_f|): the share of the original model's training data to forget."""
    total = n_retain + n_forget
    if n_forget <= 0 or total <= 0:
        raise ValueError(f"Need a non-empty forget set; got |D_f| = {n_forget} of {total}.")
    return n_forget / total


def initial_alpha(fraction: float) -> float:
    """alpha_0 = 5/3 * fraction, capped at 1."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The forget fraction must lie in (0, 1); got {fraction}.")
    return min(1.0, 5.0 / 3.0 * fraction)


def alpha_at(epoch: int, alpha0: float, forget_epochs: int) -> float:
    """alpha during outer epoch ``epoch`` (0-based): alpha_0 - epoch * alpha_0 / forget_epochs, >= 0."""
    return max(0.0, alpha0 - epoch * alpha0 / forget_epochs)


def num_forget_epochs(n_retain: int, n_forget: int, batch_size: int) -> int:
    """int(len(retain_batches) / (2 * len(forget_batches)) * 6), at least 1."""
    retain_batches = math.ceil(n_retain / batch_size)
    forget_batches = math.ceil(n_forget / batch_size)
    return max(1, int(retain_batches / (2 * forget_batches) * 6))


def nabla_tau_loss(loss_f: torch.Tensor, loss_r: torch.Tensor, tau: float, alpha: float,
                   gap: str = "one-sided") -> torch.Tensor:
    """alpha * ReLU(tau - L_f)^2 + (1 - alpha) * L_r (``two-sided``: (tau - L_f)^2)."""
    if gap not in GAPS:
        raise ValueError(f"Unknown gap {gap!r}; allowed: {', '.join(GAPS)}.")
    diff = tau - loss_f
    ascent = F.relu(diff) ** 2 if gap == "one-sided" else diff ** 2
    return alpha * ascent + (1 - alpha) * loss_r


@register(
    "nabla_tau",
    name="nabla-tau (adaptive gradient ascent)",
    paper="Trippa et al. 2024, nabla-tau: Gradient-based and Task-Agnostic Machine Unlearning (arXiv 2403.14339).",
    defaults={"lr": 1e-3, "batch_size": 256, "weight_decay": 0.01, "gap": "one-sided", "bn_mode": "eval"},
    search_space={"gap": Choice(*GAPS)},
    version=2,  # 2: alpha_0 from |D_f| / (|D_r| + |D_f|) (the validation split was counted in)
)
def unlearn(
    model: nn.Module, data: UnlearnData, lr: float, batch_size: int, weight_decay: float, gap: str,
    bn_mode: str,
) -> nn.Module:
    if gap not in GAPS:
        raise ValueError(f"Unknown gap {gap!r}; allowed: {', '.join(GAPS)}.")
    if len(data.val) == 0:
        raise ValueError("nabla-tau's tau is the validation loss; data.val is empty.")
    n_r, n_f = len(data.retain), len(data.forget)
    alpha0 = initial_alpha(forget_fraction(n_r, n_f))
    epochs = num_forget_epochs(n_r, n_f, batch_size)
    state = {"alpha": alpha0, "tau": per_sample_loss(model, data.val).mean().item()}
    taus = [state["tau"]]

    def loss(m: nn.Module, f: Batch, r: Batch) -> torch.Tensor:
        return nabla_tau_loss(F.cross_entropy(m(f.x), f.y), F.cross_entropy(m(r.x), r.y),
                              state["tau"], state["alpha"], gap)

    def on_epoch_end(epoch: int) -> None:
        state["alpha"] = alpha_at(epoch, alpha0, epochs)
        if epoch % TAU_EVERY == 0 and epoch < epochs:
            state["tau"] = per_sample_loss(model, data.val).mean().item()  # eval mode, then back
            taus.append(state["tau"])

    def linear_per_epoch(step: int, steps_per_epoch: int) -> float:
        # torch's LinearLR(start 1.0, end LR_END, total_iters=epochs), stepped per outer epoch
        return 1.0 + (LR_END - 1.0) * min(step // steps_per_epoch, epochs) / max(1, epochs)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, optimizer="adamw",
                     schedule=linear_per_epoch, driver="forget", use_retain=True, bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed,
             max_sample_grads=data.max_sample_grads, on_epoch_end=on_epoch_end)
    model.nabla_tau_info = {"alpha0": alpha0, "forget_epochs": epochs, "taus": taus}
    return model
