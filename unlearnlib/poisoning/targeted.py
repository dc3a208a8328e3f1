"""Targeted poisoning by gradient matching (Geiping et al. 2021, "Witches' Brew", ICLR).

For a test target ``x_t`` and an adversarial label ``y_adv``, perturb a few
training inputs of class ``y_adv`` within an L_inf ball of radius ``eps`` so
that their training gradient aligns with the gradient that would teach the
model ``(x_t, y_adv)``:

    min_delta  1 - cos( grad_theta L(x_p + delta, y_p), grad_theta L(x_t, y_adv) )

at the parameters of a surrogate (here: the clean trained model), optimised by
signed Adam (lr ``0.1 * eps``, steps decayed by 10 at 3/8, 5/8, 7/8 of the run),
projected onto the ball and the data range after every step; the restart with
the lowest matching loss is kept. Each target gets its own group of poisons.
Departures from the paper: no differentiable augmentation, no ensemble, and the
adversarial label defaults to the surrogate's runner-up class (``"random"``
gives the paper's random choice). Metric: the targets' adversarial-label rate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from ..predict import logits
from .base import Crafted, PoisonInfo


def _flat_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph)
    return torch.cat([g.reshape(-1) for g in grads])


def match_poisons(
    surrogate: nn.Module, x_target: torch.Tensor, y_adv: int, x_base: torch.Tensor, y_base: torch.Tensor,
    eps: float, bounds: tuple[float, float], gen: torch.Generator, steps: int = 250, restarts: int = 1,
) -> tuple[torch.Tensor, float]:
    """Best ``delta`` (same shape as ``x_base``) and its final matching loss ``1 - cos``."""
    surrogate.eval()
    target_grad = _flat_grad(surrogate, x_target[None], torch.tensor([y_adv], device=x_target.device), False)
    target_grad = target_grad.detach()
    lo, hi = bounds
    best, best_loss = torch.zeros_like(x_base), float("inf")
    milestones = [int(steps * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    for _ in range(max(1, restarts)):
        init = (torch.rand(x_base.shape, generator=gen) * 2 - 1) * eps
        delta = init.to(x_base.device).requires_grad_(True)
        opt = torch.optim.Adam([delta], lr=0.1 * eps)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
        for _ in range(steps):
            g = _flat_grad(surrogate, x_base + delta, y_base, True)
            loss = 1 - F.cosine_similarity(g, target_grad, dim=0)
            opt.zero_grad(set_to_none=True)
            (grad,) = torch.autograd.grad(loss, delta)
            delta.grad = grad.sign()
            opt.step()
            sched.step()
            with torch.no_grad():  # project onto the eps-ball and the data range
                delta.clamp_(-eps, eps)
                delta.copy_((x_base + delta).clamp(lo, hi) - x_base)
        g = _flat_grad(surrogate, x_base + delta.detach(), y_base, False)
        final = float(1 - F.cosine_similarity(g, target_grad, dim=0))
        if final < best_loss:
            best, best_loss = delta.detach().clone(), final
    for p in surrogate.parameters():
        p.grad = None
    return best, best_loss


def craft(
    pool: Split, n_poison: int, gen: torch.Generator, surrogate: nn.Module, test: Split,
    n_targets: int = 1, eps: float = 0.2, steps: int = 250, restarts: int = 1, adv_class: str = "runner_up",
) -> Crafted:
    """Pick ``n_targets`` test samples the surrogate gets right, give each an adversarial
    label, and craft ``n_poison // n_targets`` poisons of that class per target."""
    if adv_class not in ("runner_up", "random"):
        raise ValueError(f"Unknown adv_class {adv_class!r}; allowed: runner_up, random.")
    if eps <= 0 or n_targets < 1 or n_poison < n_targets:
        raise ValueError(f"Need eps > 0 and 1 <= n_targets <= n_poison; got eps={eps}, "
                         f"n_targets={n_targets}, n_poison={n_poison}.")
    out = logits(surrogate, test)
    correct = (out.argmax(1) == test.y).nonzero().squeeze(1).cpu()
    targets = correct[torch.randperm(len(correct), generator=gen)[:n_targets]]
    bounds = (float(pool.x.min()), float(pool.x.max()))
    per_target = n_poison // n_targets
    rows, deltas, advs, losses = [], [], [], []
    for t in targets.tolist():
        y_t = int(test.y[t])
        if adv_class == "runner_up":
            y_adv = int(out[t].clone().index_fill_(0, torch.tensor([y_t], device=out.device), -float("inf")).argmax())
        else:
            others = [c for c in range(out.shape[1]) if c != y_t]
            y_adv = others[int(torch.randint(len(others), (1,), generator=gen))]
        taken = torch.cat(rows) if rows else torch.empty(0, dtype=torch.long)
        cand = (pool.y.cpu() == y_adv).nonzero().squeeze(1)
        cand = cand[~torch.isin(cand, taken)]
        if len(cand) < per_target:
            raise ValueError(f"Class {y_adv} has {len(cand)} free training samples; need {per_target}.")
        r = cand[torch.randperm(len(cand), generator=gen)[:per_target]]
        base = pool.subset(r)
        delta, loss = match_poisons(surrogate, test.x[t], y_adv, base.x, base.y, eps, bounds, gen, steps, restarts)
        rows.append(r)
        deltas.append(delta)
        advs.append(y_adv)
        losses.append(loss)
    rows_t, delta_t = torch.cat(rows), torch.cat(deltas)
    order = rows_t.argsort()
    base = pool.subset(rows_t[order])
    return Crafted(rows_t[order], base.x + delta_t[order], base.y.clone(), {
        "targets": test.subset(targets.to(test.y.device)),
        "adv_labels": torch.tensor(advs, device=test.y.device),
        "match_loss": losses,
    })


def adversarial_rate(model: nn.Module, info: PoisonInfo) -> float:
    """Share of the targets that ``model`` assigns to their adversarial label."""
    pred = logits(model, info.extras["targets"]).argmax(1)
    return float((pred == info.extras["adv_labels"]).float().mean())
