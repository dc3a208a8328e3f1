"""Gaussian data poisoning and the Gaussian Unlearning Score (Pawelczyk et al. 2024, Sec. 4).

Poison: ``x_tilde = x_base + xi`` with ``xi ~ N(0, eps^2 I)``, label unchanged.
Test, per poison z: ``I_z = <g_z, xi_z> / (eps * ||g_z||)`` with ``g_z`` the
gradient of the loss with respect to the INPUT at the clean ``x_base``. A model
that never saw ``xi_z`` gives ``I_z ~ N(0, 1)`` (``xi`` is independent of
``g_z``). Sign convention: ``g_z`` is the gradient of the LOSS, and training on
``x_base + xi`` lowers the loss along ``xi``, so memorisation shifts ``I_z``
to NEGATIVE values. GUS = mean of ``I_z``; successful unlearning gives GUS ~ 0
and a TPR at 1% FPR ~ 1%, like the retrained model. The TPR uses a two-sided
threshold taken from fresh noise draws, so it does not depend on the sign.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from .base import Crafted, PoisonInfo


def craft(pool: Split, n_poison: int, gen: torch.Generator, eps: float = 0.3) -> Crafted:
    """Add ``N(0, eps^2 I)`` noise to ``n_poison`` random rows of ``pool``; labels unchanged."""
    if eps <= 0:
        raise ValueError(f"Gaussian poisoning needs eps > 0; got {eps}.")
    rows = torch.randperm(len(pool), generator=gen)[:n_poison].sort().values
    base = pool.subset(rows)
    xi = eps * torch.randn(base.x.shape, generator=gen).to(base.x.device)
    return Crafted(rows, base.x + xi, base.y.clone(), {"eps": eps})


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Per-sample gradients of the cross-entropy with respect to the inputs (eval mode).

    In eval mode rows do not interact, so the gradient of the summed loss is the
    stack of per-sample input gradients.
    """
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(y), batch_size):
        xb = x[i : i + batch_size].detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xb), y[i : i + batch_size], reduction="sum")
        (g,) = torch.autograd.grad(loss, xb)
        out.append(g.detach())
    model.train(was_training)
    return torch.cat(out)


def statistic(grads: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
    """``I = <g, xi> / (eps * ||g||)`` per row; ``noise`` may carry extra leading draws
    (shape ``(k, n, ...)`` against ``grads`` of shape ``(n, ...)``)."""
    g = grads.reshape(grads.shape[0], -1)
    xi = noise.reshape(*noise.shape[: noise.dim() - grads.dim() + 1], -1)
    norm = g.norm(dim=1).clamp_min(1e-12)
    return (xi * g).sum(-1) / (eps * norm)


def gaussian_statistic(model: nn.Module, info: PoisonInfo) -> torch.Tensor:
    """``I_z`` of every poison for ``model`` (CPU tensor)."""
    eps = float(info.params["eps"])
    g = input_gradients(model, info.x_base, info.y_base)
    return statistic(g, info.delta, eps).cpu()


def tpr_at_fpr(real: torch.Tensor, null: torch.Tensor, fpr: float = 0.01) -> float:
    """Two-sided test: the fraction of ``|real|`` above the ``1 - fpr`` quantile of ``|null|``."""
    threshold = torch.quantile(null.abs().flatten().double(), 1.0 - fpr)
    return float((real.abs().double() > threshold).float().mean())


@functools.lru_cache(maxsize=1)
def fresh_noise(n_fresh: int, shape: tuple[int, ...], eps: float, seed: int) -> torch.Tensor:
    """``n_fresh`` draws of ``N(0, eps^2 I)`` noise of ``shape`` (CPU), the same for every
    model scored with one ``seed``; the last draw is kept, as a study scores many models
    of one poison set in a row (drawing it cost more than the rest of the score)."""
    gen = torch.Generator().manual_seed(seed)
    return eps * torch.randn((n_fresh, *shape), generator=gen)


def gaussian_scores(
    model: nn.Module, info: PoisonInfo, n_fresh: int = 100, fpr: float = 0.01, seed: int = 0
) -> dict[str, float]:
    """GUS, its z-score, and the TPR at ``fpr`` against ``n_fresh`` fresh draws per poison.

    - ``gus``: mean ``I_z`` over the poisons (negative = the poisons are remembered);
    - ``gus_z``: ``gus * sqrt(n)``, standard normal for a model that never saw the noise;
    - ``tpr``: share of poisons whose ``|I_z|`` exceeds the (1 - fpr) quantile of ``|I|``
      under fresh noise ``N(0, eps^2 I)`` at the same clean bases;
    - ``fresh_mean``/``fresh_std``: the null distribution's moments (sanity: 0 and 1).
    """
    eps = float(info.params["eps"])
    g = input_gradients(model, info.x_base, info.y_base)
    real = statistic(g, info.delta, eps).cpu()
    null = statistic(g.cpu(), fresh_noise(n_fresh, tuple(info.delta.shape), eps, seed), eps)
    n = len(real)
    return {
        "gus": float(real.mean()),
        "gus_z": float(real.mean() * n**0.5),
        "tpr": tpr_at_fpr(real, null, fpr),
        "fresh_mean": float(null.mean()),
        "fresh_std": float(null.std()),
    }
