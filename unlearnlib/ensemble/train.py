"""Training K models as one computation: :func:`train_ensemble`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data import Split, augment_batch
from ..training import Recipe, progress, sd_lambda_at, train
from .optim import StackedSGD, _ce, _check_optimizer, lr_sequence
from .paths import (
    _check_masks,
    _default_chunk,
    _first_batches,
    _groups,
    _oom_chunks,
    _sync,
    choose_path,
)
from .stack import Ensemble


@dataclass
class EnsembleLog:
    """What an ensemble run did: wall time, steps per model and the path per group."""

    seconds: float
    steps: list[int]
    paths: dict[tuple, str]


def train_ensemble(
    ens: Ensemble,
    data: Split,
    masks: torch.Tensor,
    recipe: Recipe,
    seeds: Sequence[int],
    path: str = "auto",
    chunk: int | None = None,
    show_progress: bool = False,
) -> EnsembleLog:
    """Train every model of ``ens`` in place; model k on ``data.subset(masks[k])``.

    Equivalent to ``training.train(model_k, data.subset(masks[k]), recipe, seeds[k])``
    for each k. ``masks`` is a boolean (K, N) tensor over ``data``'s rows.
    ``path``: ``auto`` (see the module docstring), ``grouped``, ``vmap`` or ``loop``.
    ``chunk`` bounds how many models share one batched step (default: all, but
    :func:`grouped_chunk` for the grouped path on the CPU; on CUDA out-of-memory
    halves it).
    """
    _check_optimizer(recipe.optimizer)
    K, N = len(ens), len(data)
    masks = _check_masks(masks, K, N)
    if len(seeds) != K:
        raise ValueError(f"Need one data-order seed per model: {K} models, {len(seeds)} seeds.")
    if ens.device != data.x.device:
        raise ValueError(f"Ensemble is on {ens.device} but the data on {data.x.device}.")
    start = time.perf_counter()
    log = EnsembleLog(0.0, [0] * K, {})
    for (n,), rows in _groups(masks.sum(1)).items():
        if n == 0:
            raise ValueError("A model's training mask selects no sample.")
        steps = recipe.epochs * math.ceil(n / recipe.batch_size)
        sub = ens.select(rows)
        first = _first_batches(data, masks[rows], recipe.batch_size)
        chosen = choose_path(path, sub, *first, steps)
        log.paths[(n,)] = chosen
        if chosen == "loop":
            for i in progress(rows, "train (loop)", enabled=show_progress):
                m = ens.model(i)
                out = train(m, data.subset(torch.nonzero(masks[i]).squeeze(1)), recipe, int(seeds[i]),
                            show_progress=False)
                ens.assign([i], Ensemble.from_models([m]))
                log.steps[i] = out.steps
        else:
            def run(part: list[int], path: str = chosen) -> None:
                work = ens.select(part)
                _train_batched(work, data, masks[part], recipe, [int(seeds[i]) for i in part], path,
                               show_progress)
                ens.assign(part, work)

            _oom_chunks(run, rows, chunk or _default_chunk(chosen, sub, first[0]))
            for i in rows:
                log.steps[i] = steps
    _sync(data.x.device)
    log.seconds = time.perf_counter() - start
    return log


def _train_batched(
    ens: Ensemble, data: Split, masks: torch.Tensor, recipe: Recipe, seeds: list[int], path: str,
    show_progress: bool,
) -> None:
    """One group (equal subset sizes) as one computation by ``path``; see :func:`train_ensemble`."""
    K = len(ens)
    rows = [torch.nonzero(m).squeeze(1) for m in masks]
    n = len(rows[0])
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    spe = math.ceil(n / recipe.batch_size)
    lrs = lr_sequence(recipe.lr, recipe.schedule, recipe.epochs * spe)
    ens.requires_grad_(True)
    opt = StackedSGD(ens.params, recipe.momentum, recipe.weight_decay)
    dev = data.x.device
    step = 0
    for epoch in progress(range(recipe.epochs), f"train ({path}, K={K})", enabled=show_progress):
        # the same generator call per model as training.train: one randperm per epoch
        order = torch.stack([r[torch.randperm(n, generator=g)] for r, g in zip(rows, gens, strict=False)]).to(dev)
        for s in range(0, n, recipe.batch_size):
            idx = order[:, s : s + recipe.batch_size]
            x, y = data.x[idx], data.y[idx]
            if recipe.augment:
                x = torch.stack([augment_batch(x[k], gens[k]) for k in range(K)])
            out = ens.forward(x, path=path)
            loss = _ce(out, y)
            if recipe.sd_lambda:  # training.sd_loss per model: sum_i std_c(z_ic) / (B * C)
                lam = sd_lambda_at(recipe.sd_lambda, recipe.sd_decay, epoch)
                loss = loss + lam * out.std(dim=2).sum(1) / (out.shape[1] * out.shape[2])
            loss.sum().backward()
            opt.step(lrs[step])
            step += 1
    ens.requires_grad_(False)
    ens.base.eval()

