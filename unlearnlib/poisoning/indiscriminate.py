"""Indiscriminate poisoning by gradient canceling (Lu, Kamath, Yu 2023, ICML,
"Exploring the Limits of Model-Targeted Indiscriminate Data Poisoning Attacks").

Two steps. (1) Target parameters ``theta_p``: a low-accuracy model near the
clean one, here made by gradient ascent on the clean training loss from the
clean model until the validation accuracy has dropped by ``target_drop``
(a simplified stand-in for the paper's GradPC). (2) Gradient canceling: choose
poisons ``D_p`` (initialised as label-flipped training samples, labels then
fixed) so that ``theta_p`` is a stationary point of training on ``D_c u D_p``:

    min_{x_p}  || sum_{D_c} grad l(theta_p) + sum_{D_p} grad l(theta_p) ||^2 / || sum_{D_c} grad l(theta_p) ||^2

by Adam on the inputs, projected onto the data range. Metric: test-accuracy
drop of the model trained on the poisoned data against the clean model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from ..predict import accuracy
from .base import Crafted


def _grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool = False) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return list(torch.autograd.grad(loss, params, create_graph=create_graph))


def target_parameters(
    clean: nn.Module, train: Split, val: Split, target_drop: float = 0.15, lr: float = 0.01,
    max_steps: int = 500, batch_size: int = 256, gen: torch.Generator | None = None,
) -> nn.Module:
    """Gradient ascent on the clean training loss until validation accuracy fell by ``target_drop``."""
    model = copy.deepcopy(clean).eval()
    goal = accuracy(clean, val) - target_drop
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = gen or torch.Generator().manual_seed(0)
    for step in range(max_steps):
        idx = torch.randint(len(train), (batch_size,), generator=gen).to(train.y.device)
        loss = -F.cross_entropy(model(train.x[idx]), train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 9 and accuracy(model, val) <= goal:
            break
    return model.eval()


def craft(
    pool: Split, n_poison: int, gen: torch.Generator, surrogate: nn.Module, val: Split,
    target_drop: float = 0.15, steps: int = 300, lr: float = 0.05,
) -> Crafted:
    """Gradient-canceling poisons for ``n_poison`` rows of ``pool`` at target parameters
    derived from ``surrogate`` (the clean model)."""
    if not 0.0 < target_drop < 1.0:
        raise ValueError(f"target_drop must lie in (0, 1); got {target_drop}.")
    num_classes = int(pool.y.max()) + 1
    rows = torch.randperm(len(pool), generator=gen)[:n_poison].sort().values
    base = pool.subset(rows)
    keep = torch.ones(len(pool), dtype=torch.bool)
    keep[rows] = False
    clean = pool.subset(keep.nonzero().squeeze(1))
    theta_p = target_parameters(surrogate, clean, val, target_drop, gen=gen)
    g_clean = [g.detach() for g in _grad(theta_p, clean.x, clean.y)]
    scale = sum(float(g.pow(2).sum()) for g in g_clean)
    y_p = (base.y + 1) % num_classes  # label-flip initialisation (Lu et al. 2023)
    lo, hi = float(pool.x.min()), float(pool.x.max())
    x_p = base.x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x_p], lr=lr * (hi - lo))
    first = last = float("nan")
    for step in range(steps):
        g_p = _grad(theta_p, x_p, y_p, create_graph=True)
        loss = sum((a + b).pow(2).sum() for a, b in zip(g_clean, g_p, strict=True)) / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x_p.clamp_(lo, hi)
        first = loss.item() if step == 0 else first
        last = loss.item()
    for p in theta_p.parameters():
        p.grad = None
    return Crafted(rows, x_p.detach(), y_p, {
        "target_model": theta_p, "target_val_acc": accuracy(theta_p, val),
        "cancel_loss_start": first, "cancel_loss_end": last,
    })


def craft_label_flip(pool: Split, n_poison: int, gen: torch.Generator, num_classes: int | None = None) -> Crafted:
    """Random label flipping (Biggio, Nelson, Laskov 2012; the baseline of Lu et al. 2023):
    ``n_poison`` random rows get a uniformly drawn wrong label; inputs unchanged."""
    c = num_classes or int(pool.y.max()) + 1
    rows = torch.randperm(len(pool), generator=gen)[:n_poison].sort().values
    base = pool.subset(rows)
    shift = torch.randint(1, c, (n_poison,), generator=gen).to(base.y.device)
    return Crafted(rows, base.x.clone(), (base.y + shift) % c, {})
