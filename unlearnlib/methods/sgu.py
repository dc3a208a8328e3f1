"""``sgu``: single-gradient unlearning (Thudi et al. 2022, Unrolling SGD, arXiv 2109.13398).

Unrolling SGD from ``w_0`` to first order, the forgotten data ``x*`` moved the
weights by ``-n_seen * eta * grad L(w_0; x*)``; adding it back approximates the
model retrained without ``x*``:

    w_u = w_t + scale * n_seen * eta * grad L(w_0; x*)

with the gradient at the initial weights ``w_0 = data.init_state`` and ``L`` **the loss
the model was trained with** (:func:`unlearnlib.training.training_loss`): cross-entropy,
plus the SD term for an SD-regularised recipe, as the reference code
(``cleverhans-lab/unrolling-sgd``, ``Unlearning/correlation_verification.py``) takes the
gradient of ``std_loss`` for its SD runs. The gradient is taken in train mode (BatchNorm
batch statistics), as the reference does with its pretrained model in ``train()``.

The reference unlearns one batch ``x*`` of a fine-tuning run that visits it once per
epoch at a constant learning rate: ``w_u = w_t + (ep + 1) * lr * grad L(w_pre; x*)``
(:mod:`unlearnlib.studies.unrolling` reproduces that protocol with
:func:`single_gradient_unlearn`). As a registered method ``sgu`` unlearns a whole forget
set D_f of a model trained for E epochs with batch B on the mean batch loss, which is our
extension: every forget sample is seen once per epoch and contributes ``eta_k / B *
grad l_i`` to that step's update, so the total is ``sum_e eta_e / B * sum_{i in D_f}
grad l_i^(e)(w_0)``, with ``eta_e`` the learning rate averaged over epoch ``e``'s steps
(a sample's position in an epoch is uniformly random) and ``l^(e)`` that epoch's loss
(the SD weight may decay every 10 epochs). Because the loss is linear in the SD weight,
this is one gradient of ``CE + lam_bar * SD`` with ``lam_bar = sum_e eta_e lam_e /
sum_e eta_e``, scaled by ``sum_e eta_e / B``.

Remaining departures: momentum and weight decay are ignored (as in the paper and the
reference; with momentum m a gradient's long-run effect is about ``1 / (1 - m)`` times
larger, which ``scale`` can absorb); the forget set's gradient is summed in chunks of B
rows of D_f (BatchNorm sees batches of forget rows only, not the mixed batches of
training); buffers (BatchNorm statistics) keep their trained values; ``w_0`` is the random
initialisation of training from scratch, far from the trained weights, where a first-order
step is a poor approximation (the reference's ``w_0`` is a pretrained checkpoint a few
hundred fine-tuning steps away).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..training import LossFn, Recipe, make_schedule, sd_lambda_at, training_loss
from . import Float, UnlearnData, _cost, register


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def summed_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, train_mode: bool = True,
    loss_fn: LossFn = F.cross_entropy,
) -> list[torch.Tensor]:
    """``sum_i grad l_i(w)`` over the rows of ``(x, y)`` for a batch-mean loss ``loss_fn``
    (each chunk contributes ``len(chunk) * grad loss_fn(chunk)``), computed in chunks of
    ``batch_size`` so BatchNorm sees batches of the training size. ``model`` is evaluated
    on a copy: its weights and buffers are left untouched."""
    if batch_size < 1 or len(y) == 0:
        raise ValueError(f"Need batch_size >= 1 and a non-empty batch; got {batch_size}, {len(y)} rows.")
    work = copy.deepcopy(model).train(train_mode)
    params = [p for _, p in _trainable(work)]
    total = [torch.zeros_like(p) for p in params]
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        loss = loss_fn(work(xb), yb) * len(yb)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        _cost.add(len(yb))
        for t, g in zip(total, grads, strict=True):
            if g is not None:
                t.add_(g)
    return total


def add_gradient(model: nn.Module, grads: list[torch.Tensor], step: float) -> nn.Module:
    """In place: ``w <- w + step * g`` over ``model``'s trainable parameters."""
    with torch.no_grad():
        for (_, p), g in zip(_trainable(model), grads, strict=True):
            p.add_(g.to(p.device, p.dtype), alpha=step)
    return model


def single_gradient_unlearn(
    model: nn.Module, init_state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
    step: float, batch_size: int, train_mode: bool = True, loss_fn: LossFn = F.cross_entropy,
) -> nn.Module:
    """In place: ``w <- w + step * sum_i grad l_i(w_0)`` over the forgotten rows, the
    gradient of ``loss_fn`` (the training loss: pass the recipe's
    :func:`~unlearnlib.training.training_loss` for an SD-regularised model) taken at the
    initial weights ``w_0 = init_state`` (Thudi et al. 2022).

    For one forgotten batch of size B seen ``n`` times at learning rate eta,
    ``step = n * eta / B`` (the training loss is the batch mean). Buffers keep their
    trained values.
    """
    at_w0 = copy.deepcopy(model)
    at_w0.load_state_dict(init_state)
    return add_gradient(model, summed_gradient(at_w0, x, y, batch_size, train_mode, loss_fn), step)


def epoch_mean_lrs(recipe: Recipe, n_train: int) -> list[float]:
    """The learning rate of ``recipe`` averaged over each epoch's ``ceil(n_train / B)`` steps."""
    per_epoch = math.ceil(n_train / recipe.batch_size)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
    factor = make_schedule(opt, recipe.schedule, recipe.epochs * per_epoch).lr_lambdas[0]
    return [recipe.lr * sum(factor(e * per_epoch + s) for s in range(per_epoch)) / per_epoch
            for e in range(recipe.epochs)]


def mean_schedule_lr(recipe: Recipe, n_train: int) -> float:
    """The learning rate of ``recipe`` averaged over its ``epochs * ceil(n_train / B)`` steps."""
    lrs = epoch_mean_lrs(recipe, n_train)
    return sum(lrs) / max(1, len(lrs))


def forget_set_update(recipe: Recipe, n_train: int) -> tuple[float, LossFn]:
    """``(sum_e eta_e / B, loss)``: the step and the loss whose summed gradient over D_f at
    ``w_0`` is the first-order effect of D_f on a run of ``recipe`` (module docstring)."""
    lrs = epoch_mean_lrs(recipe, n_train)
    lr_sum = sum(lrs)
    lam = 0.0
    if recipe.sd_lambda and lr_sum > 0:
        lam = sum(lr * sd_lambda_at(recipe.sd_lambda, recipe.sd_decay, e) for e, lr in enumerate(lrs)) / lr_sum
    return lr_sum / recipe.batch_size, training_loss(recipe.with_(sd_lambda=lam, sd_decay=1.0))


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
    step, loss_fn = forget_set_update(recipe, len(data.retain) + len(data.forget))
    return single_gradient_unlearn(model, data.init_state, data.forget.x, data.forget.y, scale * step,
                                   recipe.batch_size, loss_fn=loss_fn)
