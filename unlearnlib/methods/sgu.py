"""``sgu``: single-gradient unlearning (Thudi et al. 2022, Unrolling SGD, arXiv 2109.13398).

Unrolling SGD from ``w_0`` to first order, the forgotten data ``x*`` moved the
weights by ``-n_seen * eta * grad L(w_0; x*)``; adding it back approximates the
model retrained without ``x*``:

    w_u = w_t + scale * n_seen * eta * grad L(w_0; x*)

with the gradient at the initial weights ``w_0 = data.init_state``.

Choice of ``n_seen * eta`` for a whole forget set D_f trained for E epochs with
batch B on the mean batch loss: every forget sample is seen once per epoch and
contributes ``eta_k / B * grad l_i`` to that step's update, so the total is
``E * mean_k(eta_k) / B * sum_{i in D_f} grad l_i(w_0)``. Here ``mean_k(eta_k)`` is
the learning rate ``data.train_recipe.lr`` averaged over the recipe's schedule
(equal to ``lr`` for a constant schedule; about ``lr / 2`` for cosine), because a
sample's position in each epoch is uniformly random. The per-sample gradient sum
is computed at ``w_0`` in chunks of B in train mode (BatchNorm batch statistics as
in training). As in the paper, momentum and weight decay are ignored: with
momentum m a gradient's long-run effect is about ``1 / (1 - m)`` times larger,
which ``scale`` can absorb. Buffers (BatchNorm statistics) keep their trained values.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..training import make_schedule
from . import Float, UnlearnData, _cost, register


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def summed_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, train_mode: bool = True,
) -> list[torch.Tensor]:
    """``sum_i grad l_i(w)`` over the rows of ``(x, y)``, computed in chunks of
    ``batch_size`` so BatchNorm sees batches of the training size. ``model`` is
    evaluated on a copy: its weights and buffers are left untouched."""
    if batch_size < 1 or len(y) == 0:
        raise ValueError(f"Need batch_size >= 1 and a non-empty batch; got {batch_size}, {len(y)} rows.")
    work = copy.deepcopy(model).train(train_mode)
    params = [p for _, p in _trainable(work)]
    total = [torch.zeros_like(p) for p in params]
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        loss = F.cross_entropy(work(xb), yb, reduction="sum")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        _cost.add(len(yb))
        for t, g in zip(total, grads, strict=True):
            if g is not None:
                t.add_(g)
    return total


def single_gradient_unlearn(
    model: nn.Module, init_state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
    step: float, batch_size: int, train_mode: bool = True,
) -> nn.Module:
    """In place: ``w <- w + step * sum_i grad l_i(w_0)`` over the forgotten rows, the
    gradient taken at the initial weights ``w_0 = init_state`` (Thudi et al. 2022).

    For one forgotten batch of size B seen once at learning rate eta, ``step = eta / B``
    (the training loss is the batch mean). Buffers keep their trained values.
    """
    at_w0 = copy.deepcopy(model)
    at_w0.load_state_dict(init_state)
    grads = summed_gradient(at_w0, x, y, batch_size, train_mode)
    with torch.no_grad():
        for (_, p), g in zip(_trainable(model), grads, strict=True):
            p.add_(g.to(p.device, p.dtype), alpha=step)
    return model


def mean_schedule_lr(recipe, n_train: int) -> float:
    """The learning rate of ``recipe`` averaged over its ``epochs * ceil(n_train / B)`` steps."""
    steps = recipe.epochs * math.ceil(n_train / recipe.batch_size)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
    factor = make_schedule(opt, recipe.schedule, steps).lr_lambdas[0]
    return recipe.lr * sum(factor(s) for s in range(steps)) / max(1, steps)


@register(
    "sgu",
    name="Single-Gradient Unlearning",
    paper="Thudi et al. 2022, Unrolling SGD (arXiv 2109.13398).",
    defaults={"scale": 1.0},
    search_space={"scale": Float(0.0, 2.0)},
)
def unlearn(model: nn.Module, data: UnlearnData, scale: float) -> nn.Module:
    recipe = data.train_recipe
    if data.init_state is None or recipe is None:
        raise ValueError("sgu needs data.init_state (w_0) and data.train_recipe (lr, epochs, batch size, "
                         "schedule of the original training); build UnlearnData with both.")
    n_train = len(data.retain) + len(data.forget)
    eta = mean_schedule_lr(recipe, n_train)
    step = scale * recipe.epochs * eta / recipe.batch_size
    return single_gradient_unlearn(model, data.init_state, data.forget.x, data.forget.y, step,
                                   recipe.batch_size)
