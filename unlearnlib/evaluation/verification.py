"""Verification error and its cheap proxy (Thudi et al. 2022, Unrolling SGD, arXiv 2109.13398).

- Verification error ``||w_u - w_r||_2`` over trainable parameters (buffers
  excluded), where ``w_r`` starts from the same checkpoint ``w_0`` and sees the
  same batch sequence minus the forgotten batch
  (:func:`unlearnlib.studies.unrolling.unrolled_models` builds that pair).
- Unlearning-error proxy ``e = eta^2 * t * 0.5 * ||w_t - w_0||_2 * sigma`` with
  ``sigma = sqrt(|lambda_max|)`` of the loss Hessian on a fixed batch
  (:func:`top_hessian_eigenvalue`: power iteration on Hessian-vector products).
  It bounds the second-order term of the unrolled SGD update that the
  single-gradient approximation drops, so it should track verification error.

Conventions of the reference code (``cleverhans-lab/unrolling-sgd``,
``Unlearning/correlation_verification.py``, whose Hessian is PyHessian's), followed here:
the Hessian is taken with the model in **eval mode** (PyHessian calls ``model.eval()``:
BatchNorm uses its running statistics) and of **the loss the model trains with**
(``std_loss``, cross-entropy plus the SD term, for SD-regularised runs; pass
:func:`unlearnlib.training.training_loss` of the recipe as ``loss_fn``); power iteration
stops at a relative change of ``1e-3`` or after 100 products, PyHessian's defaults.
``train_mode=True`` (BatchNorm batch statistics) is kept as an option.

Remaining departures: sigma is ``sqrt(|lambda|)`` where the reference takes
``np.sqrt`` of the signed eigenvalue (NaN for a negative one); the start vector is drawn
from a seeded generator, not the global RNG; the ``t`` passed to the proxy is the
caller's (the reference's study counts the 0-based index of the step just taken,
:mod:`unlearnlib.studies.unrolling` does the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import l2_distance

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# --------------------------------------------------------------------------- distances


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def verification_error(unlearned: nn.Module, retrained: nn.Module) -> float:
    """``||w_u - w_r||_2`` over trainable parameters, buffers excluded (Thudi et al. 2022)."""
    return l2_distance(unlearned, retrained)


def weight_distance(model: nn.Module, init_state: dict[str, torch.Tensor]) -> float:
    """``||w_t - w_0||_2`` over ``model``'s trainable parameters (buffers in ``init_state``
    are ignored)."""
    missing = [n for n, _ in _trainable(model) if n not in init_state]
    if missing:
        raise ValueError(f"init_state lacks parameter(s) {missing[:3]}; pass the model's initial state_dict.")
    total = sum(((p.detach() - init_state[n].to(p.device, p.dtype)) ** 2).sum() for n, p in _trainable(model))
    return float(torch.as_tensor(total).sqrt())


# --------------------------------------------------------------------------- Hessian


@dataclass
class PowerIteration:
    """Result of :func:`top_hessian_eigenvalue`: the eigenvalue of largest magnitude
    (signed Rayleigh quotient), the iterations used and whether ``tol`` was met."""

    eigenvalue: float
    iterations: int
    converged: bool

    @property
    def sigma(self) -> float:
        """``sqrt(|lambda_max|)``, the proxy's sigma."""
        return math.sqrt(abs(self.eigenvalue))


def hessian_vector_product(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy,
    train_mode: bool = False,
) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    """``v -> H v`` for the loss of ``model`` on the fixed batch ``(x, y)``.

    One forward pass and one differentiable backward pass are built once; each
    product is then a double-backward (``torch.autograd.grad`` of ``g . v``).
    The loss is evaluated in eval mode (BatchNorm running statistics), as PyHessian and
    Thudi et al.'s reference do; ``train_mode=True`` evaluates it with BatchNorm batch
    statistics instead. The model's buffers and mode are left as they were.
    """
    params = [p for _, p in _trainable(model)]
    # the forward pass sees copies of the buffers, so BatchNorm statistics stay untouched
    state = {**dict(model.named_parameters()), **{n: b.detach().clone() for n, b in model.named_buffers()}}
    was_training = model.training
    model.train(train_mode)
    try:
        loss = loss_fn(torch.func.functional_call(model, state, (x,)), y)
    finally:
        model.train(was_training)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params, strict=True)]

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        # gradients that do not depend on the weights contribute zero rows of H
        live = [(g, vi) for g, vi in zip(grads, v, strict=True) if g.requires_grad]
        if not live:
            return [torch.zeros_like(p) for p in params]
        out = torch.autograd.grad([g for g, _ in live], params, grad_outputs=[vi for _, vi in live],
                                  retain_graph=True, allow_unused=True)
        return [o.detach() if o is not None else torch.zeros_like(p) for o, p in zip(out, params, strict=True)]

    return hvp


def top_hessian_eigenvalue(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy,
    tol: float = 1e-3, max_iter: int = 100, seed: int = 0, train_mode: bool = False,
) -> PowerIteration:
    """Largest-magnitude eigenvalue of the loss Hessian on ``(x, y)`` by power iteration.

    Starts from a Gaussian vector drawn with ``seed`` and stops when the Rayleigh
    quotient changes by at most ``tol`` relative to its magnitude, or after
    ``max_iter`` Hessian-vector products (PyHessian's ``eigenvalues()`` defaults). Eval
    mode unless ``train_mode`` (see :func:`hessian_vector_product`).
    """
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"Need tol > 0 and max_iter >= 1; got tol={tol}, max_iter={max_iter}.")
    hvp = hessian_vector_product(model, x, y, loss_fn, train_mode)
    params = [p for _, p in _trainable(model)]
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    v = _normalise(v)
    eig = 0.0
    for it in range(1, max_iter + 1):
        hv = hvp(v)
        new = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))
        norm = _norm(hv)
        if norm == 0.0:
            return PowerIteration(0.0, it, True)
        if it > 1 and abs(new - eig) <= tol * max(abs(new), 1e-12):
            return PowerIteration(new, it, True)
        eig = new
        v = [h / norm for h in hv]
    return PowerIteration(eig, max_iter, False)


def _norm(v: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t ** 2).sum() for t in v)))


def _normalise(v: list[torch.Tensor]) -> list[torch.Tensor]:
    n = _norm(v)
    return [t / n for t in v]


# --------------------------------------------------------------------------- proxy


def unlearning_error_proxy(lr: float, steps: int, distance: float, sigma: float) -> float:
    """``e = eta^2 * t * 0.5 * ||w_t - w_0||_2 * sigma`` (Thudi et al. 2022, Eq. for the
    unlearning error of single-gradient unlearning)."""
    if lr < 0 or steps < 0 or distance < 0 or sigma < 0:
        raise ValueError(f"lr, steps, distance and sigma must be >= 0; got {lr}, {steps}, {distance}, {sigma}.")
    return lr ** 2 * steps * 0.5 * distance * sigma


@dataclass
class Proxy:
    """The proxy and its ingredients for one trained model."""

    proxy: float
    distance: float
    sigma: float
    eigenvalue: float
    power_iterations: int
    converged: bool


def proxy_for(
    model: nn.Module, init_state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
    lr: float, steps: int, loss_fn: LossFn = F.cross_entropy, **power_kw,
) -> Proxy:
    """:func:`unlearning_error_proxy` of a model trained ``steps`` SGD steps at ``lr`` from
    ``init_state``, with sigma from the Hessian of ``loss_fn`` at the trained weights on
    ``(x, y)``: eval mode unless ``train_mode=True`` is in ``power_kw``. Pass the recipe's
    own loss (:func:`unlearnlib.training.training_loss`) for an SD-regularised model."""
    pi = top_hessian_eigenvalue(model, x, y, loss_fn, **power_kw)
    dist = weight_distance(model, init_state)
    return Proxy(unlearning_error_proxy(lr, steps, dist, pi.sigma), dist, pi.sigma,
                 pi.eigenvalue, pi.iterations, pi.converged)
