"""Poisoning attacks as unlearning tests (Pawelczyk et al. 2024, arXiv 2406.17216).

Five poison makers, each with its metric; the forget set IS the poison set.

==================  =======================================  ==========================================
attack              paper                                    metric (:func:`attack_metric`)
==================  =======================================  ==========================================
``gaussian``        Pawelczyk et al. 2024                    GUS = mean I_z (negative = remembered),
                                                             TPR at 1% FPR
``targeted``        Geiping et al. 2021, Witches' Brew       targets' adversarial-label rate
``indiscriminate``  Lu et al. 2023, gradient canceling       test-accuracy drop vs the clean model
``labelflip``       Biggio et al. 2012 (random flips)        test-accuracy drop vs the clean model
``backdoor``        Gu et al. 2017, BadNets (patch);         attack success rate on triggered inputs
                    Kurita et al. 2020 (trigger word, text)
==================  =======================================  ==========================================

:mod:`unlearnlib.studies.poisoning_study` runs an attack through training and every method at each compute budget
(tidy rows, cached); :mod:`unlearnlib.studies.poisoning_verdicts` turns the rows into the
paper's two findings as computed verdicts with intervals over seeds.

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
from ..predict import accuracy
from . import backdoor, gaussian, indiscriminate, targeted
from .backdoor import apply_trigger, attack_success_rate, insert_token
from .base import BUDGET_FRACTIONS, Crafted, PoisonInfo, assemble, budget_sample_grads, n_poisons
from .cache import cached_poison_splits
from .gaussian import gaussian_scores, gaussian_statistic
from .targeted import adversarial_rate

ATTACKS = ("gaussian", "targeted", "indiscriminate", "labelflip", "backdoor")
#: The headline metric of each attack (:data:`HARM_SIGN`: which way a working attack moves it).
METRICS = {
    "gaussian": "gus",
    "targeted": "adv_rate",
    "indiscriminate": "acc_drop",
    "labelflip": "acc_drop",
    "backdoor": "asr",
}
#: Attacks that craft their poisons against a surrogate (the clean trained model).
NEEDS_SURROGATE = ("targeted", "indiscriminate")
#: Attacks whose metric compares against the clean model (accuracy drop).
NEEDS_CLEAN = ("indiscriminate", "labelflip")
#: +1 where a working attack raises its metric (poisoned above retrained), -1 where it
#: lowers it (GUS: memorised noise shifts I_z to negative values).
HARM_SIGN = {"gus": -1, "adv_rate": 1, "acc_drop": 1, "asr": 1}


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
    indiscriminate: target_drop, steps, lr; labelflip: none; backdoor: target and
    size for a patch, or token for token rows).
    """
    crafted = craft_poisons(splits, attack, fraction, seed, surrogate, **params)
    return assemble(splits, attack, poison_spec(fraction, seed, params), crafted)


def poison_spec(fraction: float, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """The attack settings that name a poisoned split (its ``forget_spec``)."""
    return {"fraction": fraction, "seed": seed, **params}


def craft_poisons(
    splits: Splits, attack: str, fraction: float = 0.02, seed: int = 0, surrogate: nn.Module | None = None,
    **params: Any,
) -> Crafted:
    """The attack's :class:`Crafted` poisons for ``splits``' training pool (see :func:`poison_splits`)."""
    if attack not in ATTACKS:
        raise ValueError(f"Unknown attack {attack!r}; allowed: {', '.join(ATTACKS)}.")
    if attack in NEEDS_SURROGATE and surrogate is None:
        raise ValueError(f"The {attack} attack needs surrogate=<the clean trained model>.")
    pool = splits.train
    n = n_poisons(len(pool), fraction)
    gen = torch.Generator().manual_seed(seed)
    if attack == "gaussian":
        return gaussian.craft(pool, n, gen, **params)
    if attack == "backdoor":
        return backdoor.craft(pool, n, gen, **params)
    if attack == "labelflip":
        return indiscriminate.craft_label_flip(pool, n, gen, splits.num_classes, **params)
    if attack == "targeted":
        return targeted.craft(pool, n, gen, surrogate, splits.test, **params)
    return indiscriminate.craft(pool, n, gen, surrogate, splits.val, **params)


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
    "ATTACKS", "METRICS", "HARM_SIGN", "NEEDS_SURROGATE", "NEEDS_CLEAN", "BUDGET_FRACTIONS", "Crafted",
    "PoisonInfo", "poison_splits", "craft_poisons", "poison_spec", "assemble", "attack_metric",
    "budget_sample_grads", "cached_poison_splits", "n_poisons", "gaussian_scores", "gaussian_statistic",
    "attack_success_rate", "adversarial_rate", "apply_trigger", "insert_token",
]

