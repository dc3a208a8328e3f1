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

import math

import torch
from torch import nn

from ..training import make_schedule
from ..unrolling import single_gradient_unlearn
from . import Float, UnlearnData, register


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
