"""Unrolling SGD's study (Thudi et al. 2022, arXiv 2109.13398): a training run and its
replay without one batch, the pair whose distance is the verification error
(:func:`unlearnlib.evaluation.verification.verification_error`)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..data import Splits
from ..models import build_model
from ..store import Store
from ..training import Recipe, model_spec, train


@dataclass
class UnrolledModels:
    """A model trained from ``init_state`` on D_r u D_f, its replay without the batch of
    step ``forget_step`` (``retrained``), and that batch's rows of ``Splits.train``."""

    original: nn.Module
    retrained: nn.Module
    init_state: dict[str, torch.Tensor]
    forgotten: torch.Tensor
    steps: int
    recipe: Recipe
    seconds: float


def unrolled_models(
    splits: Splits, model_name: str, recipe: Recipe, seed: int, forget_step: int = 0,
    store: Store | None = None, show_progress: bool = False,
) -> UnrolledModels:
    """Train (or load from ``store``) the original run and its replay minus one batch.

    Both start from ``build_model(model_name, seed=seed)``; the replay uses
    ``train(skip_batches={forget_step})`` and so sees the same batch sequence minus
    the forgotten batch, which is what verification error compares against.
    """
    store = store or Store()
    init = build_model(model_name, splits.input_shape, splits.num_classes, seed=seed)
    init_state = copy.deepcopy(init.state_dict())
    data = splits.train
    total = recipe.epochs * math.ceil(len(data) / recipe.batch_size)
    if not 0 <= forget_step < total:
        raise ValueError(f"forget_step must be in [0, {total}) for this recipe; got {forget_step}.")
    spec = {**model_spec(splits, model_name, recipe, seed), "unrolled_skip": forget_step}

    def fit(skip: set[int] | None) -> Callable[[], tuple[dict, dict]]:
        def build() -> tuple[dict, dict]:
            m = copy.deepcopy(init).to(splits.device)
            log = train(m, data, recipe, seed, show_progress=show_progress, record_order=True, skip_batches=skip)
            return m.state_dict(), {"seconds": log.seconds, "steps": log.steps,
                                    "forgotten": log.batch_order[forget_step].tolist()}
        return build

    out = []
    for role, skip in (("unrolled-original", None), ("unrolled-retrain", {forget_step})):
        state, meta = store.checkpoint("models", {**spec, "role": role}, fit(skip))
        m = copy.deepcopy(init)
        m.load_state_dict(state)
        out.append((m.to(splits.device).eval(), meta))
    (orig, meta), (retr, _) = out
    return UnrolledModels(orig, retr, init_state, torch.tensor(meta["forgotten"]), int(meta["steps"]),
                          recipe, float(meta["seconds"]))
