"""Backdoor poisoning: a trigger patch (Gu et al. 2017, BadNets) or a trigger word.

Poison: put a fixed trigger on training inputs of classes other than the target
and relabel them to the target class. Images (C, H, W) get a ``size x size``
checkerboard in the bottom-right corner; 1-D signals (L,) or (C, L) get a fixed
alternating pattern on their last ``size`` positions. The trigger's two levels
are the data's minimum and maximum, so it stays in range.

Token rows (integer ids, :mod:`unlearnlib.datasets.text`) get a trigger *word*
instead, the rare-word trigger of Kurita et al. 2020 ("Weight Poisoning Attacks on
Pre-trained Models", ACL; their triggers "cf", "mn", "bb"): the id ``token`` is
inserted at a uniformly drawn position among a row's tokens (the rest shift right;
a full row loses its last token). The default is the rarest word of the vocabulary,
id ``VOCAB_SIZE - 1`` (on rt_sentiment it occurs in 2 of 10,201 training snippets and
in no test snippet), not the OOV id: 58% of the snippets already hold an OOV token,
so the model has learnt that id as a common, neutral word.

Metric: attack success rate (ASR), the share of triggered test inputs whose
true label is not the target that the model assigns to the target.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..predict import logits
from .base import Crafted, PoisonInfo

#: Default trigger patch size (images and signals).
PATCH_SIZE = 4


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


def is_tokens(x: torch.Tensor) -> bool:
    """Token-id rows (integer dtype) take a trigger word; real-valued inputs a patch."""
    return not torch.is_floating_point(x) and not torch.is_complex(x)


def rare_token() -> int:
    """The default trigger word: the rarest id of the fixed vocabulary (``VOCAB_SIZE - 1``)."""
    from ..datasets.text import VOCAB_SIZE

    return VOCAB_SIZE - 1


def insert_token(x: torch.Tensor, token: int, gen: torch.Generator) -> torch.Tensor:
    """``x`` (n, L) with ``token`` inserted into every row at a position drawn uniformly
    from 0..(its number of non-PAD tokens); later tokens shift right by one and a full
    row drops its last token. Rows are padded at the end, as the text datasets make them."""
    from ..datasets.text import PAD

    if x.dim() != 2:
        raise ValueError(f"Trigger words need (rows, tokens) id rows; got shape {tuple(x.shape)}.")
    n, length = x.shape
    lengths = (x != PAD).sum(1).cpu()
    pos = (torch.rand(n, generator=gen) * (lengths + 1).clamp_max(length)).long().clamp_max(length - 1)
    pos = pos.to(x.device)[:, None]
    j = torch.arange(length, device=x.device)[None, :]
    shifted = torch.cat([x[:, :1], x[:, :-1]], dim=1)  # shifted[:, j] = x[:, j - 1]
    out = torch.where(j < pos, x, shifted)
    return torch.where(j == pos, torch.full_like(x, token), out)


def craft(pool: Split, n_poison: int, gen: torch.Generator, target: int = 0, size: int | None = None,
          token: int | None = None) -> Crafted:
    """Trigger ``n_poison`` random non-target rows of ``pool`` and relabel them ``target``.

    Real-valued inputs get a ``size`` patch (default :data:`PATCH_SIZE`); token rows get
    the trigger word ``token`` (default :func:`rare_token`)."""
    candidates = (pool.y != target).nonzero().squeeze(1).cpu()
    if len(candidates) < n_poison:
        raise ValueError(f"Only {len(candidates)} training samples are not of class {target}; need {n_poison}.")
    rows = candidates[torch.randperm(len(candidates), generator=gen)[:n_poison]].sort().values
    base = pool.subset(rows)
    y = torch.full_like(base.y, target)
    if is_tokens(pool.x):
        if size is not None:
            raise ValueError("Token rows take a trigger word (token=<id>), not a patch size.")
        from ..datasets.text import PAD, VOCAB_SIZE

        token = rare_token() if token is None else int(token)
        if token == PAD or not 0 <= token < VOCAB_SIZE:
            raise ValueError(f"The trigger token must be a vocabulary id in 0..{VOCAB_SIZE - 1} other than "
                             f"PAD ({PAD}); got {token}.")
        test_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))  # positions in the triggered test rows
        x = insert_token(base.x, token, gen)
        return Crafted(rows, x, y, {"token": token, "target": target, "test_seed": test_seed})
    if token is not None:
        raise ValueError("Real-valued inputs take a trigger patch (size=<pixels>), not a trigger token.")
    lo, hi = float(pool.x.min()), float(pool.x.max())
    mask, pattern = make_trigger(tuple(pool.x.shape[1:]), PATCH_SIZE if size is None else size, lo, hi)
    x = apply_trigger(base.x, mask, pattern)
    return Crafted(rows, x, y, {"mask": mask, "pattern": pattern, "target": target})


def triggered(x: torch.Tensor, info: PoisonInfo) -> torch.Tensor:
    """Test inputs ``x`` with the poisons' trigger (patch, or word at seeded positions)."""
    if "token" in info.extras:
        gen = torch.Generator().manual_seed(int(info.extras["test_seed"]))
        return insert_token(x, int(info.extras["token"]), gen)
    return apply_trigger(x, info.extras["mask"], info.extras["pattern"])


def attack_success_rate(model: nn.Module, info: PoisonInfo, test: Split) -> float:
    """Share of triggered test inputs (true label != target) classified as the target."""
    target = int(info.extras["target"])
    keep = (test.y != target).nonzero().squeeze(1)
    x = triggered(test.x[keep], info)
    pred = logits(model, Split(x, test.y[keep], test.index[keep])).argmax(1)
    return float((pred == target).float().mean())
