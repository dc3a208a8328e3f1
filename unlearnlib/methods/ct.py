"""``ct``: Convolution Transpose (Kaggle NeurIPS 2023 unlearning challenge; Deep Unlearn).

Replace every Conv2d weight ``W[o, i, h, w]`` by its spatial transpose
``W[o, i, w, h]``, then fine-tune on D_r with CE, SGD (momentum 0.9) and a cosine
schedule stepped once per epoch, as the reference's ``CosineAnnealingLR(T_max=epochs)``
(``kgltop5.py``): epoch e runs at lr * (1 + cos(pi * e / E)) / 2, so a one-epoch run
keeps its lr constant. D_f is never used. Deep Unlearn (Cadet et al. 2024, arXiv 2410.01276)
finds CT among the best methods on accuracy and run-time efficiency.
Defaults: 3 epochs, lr 1e-3, batch 64, weight decay 5e-4.

Departures from the reference code:
- Conv1d (our extension): a 1-D kernel has no transpose, so each kernel is
  flipped, ``W[o, i, k] -> W[o, i, K-1-k]``, the same kind of structured
  scrambling that keeps the weight statistics intact. It is not the reference's
  method, so results on such a model are reported as "CT (1-D extension)"
  (:func:`variant`; likewise "CT (MLP extension)" for the Linear variant below).
- A Conv2d with a non-square kernel cannot be transposed in place; it is an
  error rather than a silent reshape.
- A model without convolutions (an MLP on images, our extension): each row of its
  first Linear layer is a filter over the whole (C, H, W) input; with H == W the rows
  are transposed spatially, the same scrambling as a conv kernel's. Other inputs are an error.
- A token model (an ``nn.Embedding`` over token ids, ``text_bag``) is refused: an
  embedding table and the layers after it have no spatial axes to transpose, and
  inventing a scrambling for them would not be the reference's method.
- BatchNorm mode is an explicit hyperparameter (train mode by default).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import conv_dims
from . import STD_SPACE, UnlearnData, register
from ._loop import LoopConfig, run_loop
from ._surgery import CONV, conv_modules


def epoch_cosine(epochs: float) -> Callable[[int, int], float]:
    """The lr factor of step ``step``: cosine annealing to 0 over ``epochs`` epochs, stepped
    once per epoch (the reference steps its scheduler after each epoch)."""
    def factor(step: int, steps_per_epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * (step // steps_per_epoch) / epochs)) if epochs else 1.0

    return factor


def variant(model: str) -> str | None:
    """What CT is on the registered model ``model``: None where its convolutions are 2-D (the
    reference's method), else the name of our extension that runs instead."""
    return {1: "1-D extension", 0: "MLP extension"}.get(conv_dims(model))


@torch.no_grad()
def transpose_kernels_(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> None:
    """In place: transpose every Conv2d kernel spatially, flip every Conv1d kernel; for a
    conv-free model, transpose the first Linear layer's rows as (C, H, W) images."""
    if not any(isinstance(m, CONV) for m in model.modules()):
        if any(isinstance(m, nn.Embedding) for m in model.modules()):
            raise ValueError(
                "CT (Convolution Transpose) has no kernels to transpose in a token model (nn.Embedding over "
                "token ids, e.g. text_bag); it needs convolution layers or an MLP on square (C, H, H) images.")
        transpose_first_linear_(model, input_shape)
        return
    for name, conv in conv_modules(model, "CT (Convolution Transpose)"):
        w = conv.weight
        if w.dim() == 4:
            if w.shape[2] != w.shape[3]:
                raise ValueError(f"CT cannot transpose the non-square {tuple(w.shape[2:])} kernel of {name!r}.")
            w.copy_(w.transpose(2, 3).clone())
        else:
            w.copy_(w.flip(-1))


@torch.no_grad()
def transpose_first_linear_(model: nn.Module, input_shape: tuple[int, ...] | None) -> None:
    """The MLP extension: rows of the first Linear layer viewed as (C, H, W), H == W, transposed."""
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    if first is None or input_shape is None or len(input_shape) != 3 or input_shape[1] != input_shape[2] \
            or first.in_features != math.prod(input_shape):
        raise ValueError(
            "CT (Convolution Transpose) needs convolution layers, or an MLP whose first Linear layer reads "
            f"square (C, H, H) images; got {type(model).__name__} on inputs of shape {input_shape}.")
    w = first.weight
    w.copy_(w.view(-1, *input_shape).transpose(2, 3).reshape_as(w).clone())


@register(
    "ct",
    name="Convolution Transpose",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kaggle NeurIPS 2023 unlearning challenge.",
    defaults={"epochs": 3, "lr": 1e-3, "batch_size": 64, "weight_decay": 5e-4, "bn_mode": "train"},
    search_space=STD_SPACE,
    version=2,  # 2: the cosine schedule steps per epoch as in the reference (was per step)
    variant=variant,
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, bn_mode: str,
) -> nn.Module:
    transpose_kernels_(model, tuple(data.retain.x.shape[1:]))
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule=epoch_cosine(epochs),
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y), cfg,
             data.seed, max_sample_grads=data.max_sample_grads)
    return model
