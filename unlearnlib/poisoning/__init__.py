"""Poisoning attacks as unlearning tests (Pawelczyk et al. 2024, arXiv 2406.17216).

Four poison makers, each with its metric; the forget set IS the poison set.

==================  =======================================  ==========================================
attack              paper                                    metric (:func:`attack_metric`)
==================  =======================================  ==========================================
``gaussian``        Pawelczyk et al. 2024                    GUS = mean I_z (negative = remembered),
                                                             TPR at 1% FPR
``targeted``        Geiping et al. 2021, Witches' Brew       targets' adversarial-label rate
``indiscriminate``  Lu et al. 2023, gradient canceling       test-accuracy drop vs the clean model
``labelflip``       Biggio et al. 2012 (random flips)        test-accuracy drop vs the clean model
``backdoor``        Gu et al. 2017, BadNets                  attack success rate on triggered inputs
==================  =======================================  ==========================================

>>> clean = make_splits(load_raw("mnist5k"), "fraction:0.02")            # doctest: +SKIP
>>> splits, info = poison_splits(clean, "gaussian", fraction=0.02, eps=0.3)  # doctest: +SKIP
>>> refs = train_reference_models(splits, "mlp", 0)  # original = poisoned, retrained = without  # doctest: +SKIP
>>> attack_metric(refs.original, info, splits)                            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import Splits
from ..evaluation import accuracy
from . import backdoor, gaussian, indiscriminate, targeted
from .backdoor import apply_trigger, attack_success_rate
from .base import BUDGET_FRACTIONS, Crafted, PoisonInfo, assemble, budget_sample_grads, n_poisons
from .gaussian import gaussian_scores, gaussian_statistic
from .targeted import adversarial_rate

ATTACKS = ("gaussian", "targeted", "indiscriminate", "labelflip", "backdoor")
#: The headline metric of each attack and whether larger means a stronger poison.
METRICS = {
    "gaussian": "gus",
    "targeted": "adv_rate",
    "indiscriminate": "acc_drop",
    "labelflip": "acc_drop",
    "backdoor": "asr",
}
_NEEDS_SURROGATE = ("targeted", "indiscriminate")


def poison_splits(
    splits: Splits,
    attack: str,
    fraction: float = 0.02,
    seed: int = 0,
    surrogate: nn.Module | None = None,
    **params: Any,
) -> tuple[Splits, PoisonInfo]:
    """Poison ``fraction`` of the training pool (``splits.retain`` u ``splits.forget``).

    Returns splits whose ``forget`` rows are the poisons (the rest of the pool
    is ``retain``; ``val`` and ``test`` stay clean) and the :class:`PoisonInfo`
    the metrics need. ``targeted`` and ``indiscriminate`` need ``surrogate``,
    the model trained on the clean pool. ``params`` go to the attack's ``craft``
    (gaussian: eps; targeted: n_targets, eps, steps, restarts, adv_class;
    indiscriminate: target_drop, steps, lr; labelflip: none; backdoor: target, size).
    """
    if attack not in ATTACKS:
        raise ValueError(f"Unknown attack {attack!r}; allowed: {', '.join(ATTACKS)}.")
    if attack in _NEEDS_SURROGATE and surrogate is None:
        raise ValueError(f"The {attack} attack needs surrogate=<the clean trained model>.")
    pool = splits.train
    n = n_poisons(len(pool), fraction)
    gen = torch.Generator().manual_seed(seed)
    if attack == "gaussian":
        crafted = gaussian.craft(pool, n, gen, **params)
    elif attack == "backdoor":
        crafted = backdoor.craft(pool, n, gen, **params)
    elif attack == "labelflip":
        crafted = indiscriminate.craft_label_flip(pool, n, gen, splits.num_classes, **params)
    elif attack == "targeted":
        crafted = targeted.craft(pool, n, gen, surrogate, splits.test, **params)
    else:
        crafted = indiscriminate.craft(pool, n, gen, surrogate, splits.val, **params)
    spec = {"fraction": fraction, "seed": seed, **params}
    return assemble(splits, attack, spec, crafted)


def attack_metric(
    model: nn.Module, info: PoisonInfo, splits: Splits, clean: nn.Module | None = None, seed: int = 0
) -> dict[str, float]:
    """The attack's metrics for ``model``; ``clean`` (the clean model) is needed for
    the indiscriminate attack's accuracy drop. Keys: see :data:`METRICS`."""
    if info.attack == "gaussian":
        return gaussian_scores(model, info, seed=seed)
    if info.attack == "backdoor":
        return {"asr": attack_success_rate(model, info, splits.test)}
    if info.attack == "targeted":
        return {"adv_rate": adversarial_rate(model, info)}
    if info.attack in ("indiscriminate", "labelflip"):
        if clean is None:
            raise ValueError("The indiscriminate metric needs clean=<the clean trained model>.")
        return {"acc_drop": accuracy(clean, splits.test) - accuracy(model, splits.test)}
    raise ValueError(f"Unknown attack {info.attack!r}; allowed: {', '.join(ATTACKS)}.")


__all__ = [
    "ATTACKS", "METRICS", "BUDGET_FRACTIONS", "Crafted", "PoisonInfo", "poison_splits", "assemble",
    "attack_metric", "budget_sample_grads", "cached_poison_splits", "n_poisons", "gaussian_scores", "gaussian_statistic",
    "attack_success_rate", "adversarial_rate", "apply_trigger",
]


def cached_poison_splits(
    store: Any, splits: Splits, attack: str, fraction: float = 0.02, seed: int = 0,
    surrogate: nn.Module | None = None, surrogate_spec: dict | None = None, **params: Any,
) -> tuple[Splits, PoisonInfo]:
    """:func:`poison_splits` cached in ``store`` (crafting Witches' Brew or gradient-canceling
    poisons costs as much as training). ``surrogate_spec`` must identify the surrogate,
    e.g. ``training.model_spec(clean, model, recipe, seed)``."""
    import io

    from ..store import atomic_write_bytes, content_key

    key = content_key("poisons", {"split": splits.fingerprint(), "forget": splits.forget_spec, "attack": attack,
                                  "fraction": fraction, "seed": seed, "params": params,
                                  "surrogate": surrogate_spec if attack in _NEEDS_SURROGATE else None})
    path = store.path_for("poisons", f"{key}.pt")
    if path.exists():
        store.hits += 1
        out, info = torch.load(path, map_location="cpu", weights_only=False)
        return out.to(splits.device), info
    store.misses += 1
    out, info = poison_splits(splits, attack, fraction, seed, surrogate, **params)
    buf = io.BytesIO()
    torch.save((out.to("cpu"), info), buf)
    atomic_write_bytes(path, buf.getvalue())
    return out, info
