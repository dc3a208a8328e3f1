"""Poisoned splits: the forget set IS the poison set (Pawelczyk et al. 2024).

Pawelczyk, Di, Lu, Sekhari, Kamath, Neel, "Machine Unlearning Fails to Remove
Data Poisoning Attacks" (arXiv 2406.17216): poison a small fraction of the
training set, train on it, then ask an unlearning method to forget exactly the
poisons, with a compute budget counted relative to the original training.

An attack is a function ``craft(pool, n_poison, gen, **params) -> Crafted``
that picks rows of the training pool (D_r u D_f of clean splits) and returns
their poisoned inputs and labels. :func:`assemble` turns that into
:class:`~unlearnlib.data.Splits` whose ``forget`` rows are the poisons and whose
``retain`` rows are the untouched rest, plus a :class:`PoisonInfo` that keeps
the clean bases and the perturbations for the attack's metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..data import Split, Splits
from ..store import canonical_json

#: Pawelczyk et al.'s compute budgets, in % of the original training compute.
BUDGET_FRACTIONS = (0.02, 0.04, 0.06, 0.08, 0.10)


@dataclass
class Crafted:
    """What an attack returns: pool rows it poisons, their new inputs and labels,
    and attack-specific extras (targets, trigger, target parameters, ...)."""

    rows: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class PoisonInfo:
    """The poisons of one attack, aligned with the rows of ``Splits.forget``.

    ``x_base``/``y_base`` are the clean inputs and labels the poisons replaced,
    ``delta = x_poison - x_base`` (the Gaussian noise xi, the bounded
    Witches' Brew perturbation, the trigger's change), ``params`` the attack's
    settings (they are part of the split's cache key) and ``extras`` what its
    metric needs.
    """

    attack: str
    params: dict[str, Any]
    index: torch.Tensor
    x_base: torch.Tensor
    y_base: torch.Tensor
    delta: torch.Tensor
    y_poison: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.shape[0])


def n_poisons(n_pool: int, fraction: float) -> int:
    """Number of poisons for ``fraction`` of the training pool; at least one."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"Poison fraction must lie in (0, 1); got {fraction}.")
    n = int(round(fraction * n_pool))
    if not 0 < n < n_pool:
        raise ValueError(f"Poison fraction {fraction} selects {n} of {n_pool} training samples.")
    return n


def assemble(splits: Splits, attack: str, params: dict[str, Any], crafted: Crafted) -> tuple[Splits, PoisonInfo]:
    """Splits whose forget set is ``crafted`` and whose retain set is the rest of the pool.

    ``forget_spec`` becomes ``poison:<attack>:<params as JSON>`` so every cache
    key built from the splits (``training.model_spec``) names the attack and its
    settings, labels included (``Splits.fingerprint`` hashes inputs, not labels).
    """
    pool = splits.train
    rows = crafted.rows.to(pool.y.device)
    keep = torch.ones(len(pool), dtype=torch.bool, device=pool.y.device)
    keep[rows] = False
    base = pool.subset(rows)
    x = crafted.x.to(pool.x.device, pool.x.dtype)
    y = crafted.y.to(pool.y.device, torch.long)
    forget = Split(x, y, base.index)
    spec = f"poison:{attack}:{canonical_json(params)}"
    out = replace(
        splits, forget_spec=spec, retain=pool.subset(keep.nonzero().squeeze(1)), forget=forget,
        meta={**splits.meta, "poison": attack},
    )
    info = PoisonInfo(attack, dict(params), base.index, base.x, base.y, x - base.x, y, dict(crafted.extras))
    return out, info


def budget_sample_grads(recipe: Any, n_train: int, fraction: float) -> int:
    """Unlearning compute budget in per-sample gradient evaluations.

    ``fraction * recipe.epochs * n_train``: Pawelczyk et al. give every method
    2, 4, 6, 8 or 10% of the original training compute. Pass the result as
    ``UnlearnData.max_sample_grads``; the shared loop stops a method there.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"Budget fraction must lie in (0, 1]; got {fraction} (e.g. 0.02 .. 0.10).")
    if n_train < 1:
        raise ValueError(f"n_train must be positive; got {n_train}.")
    return int(round(fraction * int(recipe.epochs) * n_train))
