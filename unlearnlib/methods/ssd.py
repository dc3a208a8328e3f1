"""``ssd``: Selective Synaptic Dampening (Foster et al. 2023, arXiv 2308.07707; as evaluated
by Pawelczyk et al. 2024, arXiv 2406.17216).

Diagonal Fisher importances I_f on D_f and I_D on all training data D_r u D_f;
for every parameter entry with I_f > alpha * I_D multiply the weight by
min(lambda * I_D / I_f, 1); all other entries are untouched. No fine-tuning.
Defaults lambda 1, alpha 10 (Pawelczyk et al. 2024).

Departures from the reference code:
- The importances are the empirical diagonal Fisher from per-sample gradients
  (vmap, model in eval mode); the reference squared the gradient of each batch's
  mean loss, which depends on the batch size.
- Under a compute budget (``max_sample_grads``, Pawelczyk et al.'s protocol) the
  importance passes count against it: when |D_f| + |D| gradients do not fit, I_D
  is estimated on a random subsample of D that fills what D_f leaves, and if D_f
  alone does not fit, each importance gets half of the budget (subsampled).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from . import Float, UnlearnData, register
from ._surgery import fisher_diagonal


@torch.no_grad()
def dampen_(
    model: nn.Module, imp_forget: dict[str, torch.Tensor], imp_all: dict[str, torch.Tensor],
    lam: float, alpha: float,
) -> dict[str, torch.Tensor]:
    """Apply SSD's dampening in place; returns the selected entries per parameter."""
    selected = {}
    for name, p in model.named_parameters():
        f, d = imp_forget[name], imp_all[name]
        sel = f > alpha * d
        factor = (lam * d / f.clamp(min=torch.finfo(f.dtype).tiny)).clamp(max=1.0)
        p[sel] = p[sel] * factor[sel]
        selected[name] = sel
    return selected


@register(
    "ssd",
    name="Selective Synaptic Dampening",
    paper="Foster et al. 2023 (arXiv 2308.07707); Pawelczyk et al. 2024 (arXiv 2406.17216).",
    defaults={"lam": 1.0, "alpha": 10.0},
    search_space={"lam": Float(0.1, 5.0, log=True), "alpha": Float(1.0, 100.0, log=True)},
)
def unlearn(model: nn.Module, data: UnlearnData, lam: float, alpha: float) -> nn.Module:
    if lam < 0 or alpha < 0:
        raise ValueError(f"SSD needs lam >= 0 and alpha >= 0; got lam={lam}, alpha={alpha}.")
    everything = Split.concat(data.retain, data.forget)
    n_f, n_d = importance_sizes(len(data.forget), len(everything), data.max_sample_grads)
    imp_forget = fisher_diagonal(model, _sample(data.forget, n_f))
    imp_all = fisher_diagonal(model, _sample(everything, n_d))
    dampen_(model, imp_forget, imp_all, lam, alpha)
    return model


def importance_sizes(n_forget: int, n_all: int, budget: int | None) -> tuple[int, int]:
    """How many samples of D_f and of D the two Fisher passes use within ``budget``
    per-sample gradients (None: all of both)."""
    if budget is None or budget >= n_forget + n_all:
        return n_forget, n_all
    if budget < 2:
        raise ValueError(f"SSD needs a budget of at least 2 per-sample gradients; got {budget}.")
    if budget > n_forget:
        return n_forget, budget - n_forget
    return budget // 2, budget - budget // 2


def _sample(split: Split, n: int) -> Split:
    """A random subset of ``n`` rows (the whole split when ``n`` covers it); the
    caller's seeded global RNG makes it reproducible."""
    if n >= len(split):
        return split
    return split.subset(torch.randperm(len(split))[:n].sort().values)
