"""Backdoor poisoning with a trigger patch (Gu et al. 2017, BadNets).

Poison: stamp a fixed trigger on training inputs of classes other than the
target and relabel them to the target class. Images (C, H, W) get a
``size x size`` checkerboard in the bottom-right corner; 1-D signals (L,) or
(C, L) get a fixed alternating pattern on their last ``size`` positions. The
trigger's two levels are the data's minimum and maximum, so it stays in range.
Metric: attack success rate (ASR), the share of triggered test inputs whose
true label is not the target that the model assigns to the target.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..evaluation import logits
from .base import Crafted, PoisonInfo


def make_trigger(input_shape: tuple[int, ...], size: int, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask, pattern)`` of ``input_shape``: the trigger replaces ``x`` where ``mask`` is 1."""
    mask = torch.zeros(input_shape)
    pattern = torch.zeros(input_shape)
    if len(input_shape) == 3:  # images: checkerboard in the bottom-right corner
        h, w = input_shape[1:]
        if not 0 < size <= min(h, w):
            raise ValueError(f"Trigger size must lie in 1..{min(h, w)} for {h}x{w} images; got {size}.")
        i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        board = torch.where((i + j) % 2 == 0, high, low)
        mask[:, h - size :, w - size :] = 1.0
        pattern[:, h - size :, w - size :] = board
    elif len(input_shape) in (1, 2):  # signals: alternating pattern on the last segment
        length = input_shape[-1]
        if not 0 < size <= length:
            raise ValueError(f"Trigger size must lie in 1..{length} for signals of length {length}; got {size}.")
        seg = torch.where(torch.arange(size) % 2 == 0, high, low)
        mask[..., length - size :] = 1.0
        pattern[..., length - size :] = seg
    else:
        raise ValueError(f"Backdoor triggers support inputs (L,), (C, L) or (C, H, W); got {input_shape}.")
    return mask, pattern


def apply_trigger(x: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """``x`` with the trigger stamped on every row."""
    mask, pattern = mask.to(x.device, x.dtype), pattern.to(x.device, x.dtype)
    return x * (1 - mask) + pattern * mask


def craft(pool: Split, n_poison: int, gen: torch.Generator, target: int = 0, size: int = 4) -> Crafted:
    """Trigger ``n_poison`` random non-target rows of ``pool`` and relabel them ``target``."""
    candidates = (pool.y != target).nonzero().squeeze(1).cpu()
    if len(candidates) < n_poison:
        raise ValueError(f"Only {len(candidates)} training samples are not of class {target}; need {n_poison}.")
    rows = candidates[torch.randperm(len(candidates), generator=gen)[:n_poison]].sort().values
    base = pool.subset(rows)
    lo, hi = float(pool.x.min()), float(pool.x.max())
    mask, pattern = make_trigger(tuple(pool.x.shape[1:]), size, lo, hi)
    x = apply_trigger(base.x, mask, pattern)
    y = torch.full_like(base.y, target)
    return Crafted(rows, x, y, {"mask": mask, "pattern": pattern, "target": target})


def attack_success_rate(model: nn.Module, info: PoisonInfo, test: Split) -> float:
    """Share of triggered test inputs (true label != target) classified as the target."""
    target = int(info.extras["target"])
    keep = (test.y != target).nonzero().squeeze(1)
    x = apply_trigger(test.x[keep], info.extras["mask"], info.extras["pattern"])
    pred = logits(model, Split(x, test.y[keep], test.index[keep])).argmax(1)
    return float((pred == target).float().mean())
