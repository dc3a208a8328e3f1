"""Pawelczyk et al. 2024's protocol as tidy rows: poison, train, unlearn within a budget.

For one attack and each seed: draw the poisons (seed = the poison draw, the
initial weights and the data order), train the model on the poisoned data
(``original``) and the model retrained without the poisons (``retrain``; same
initial weights and data order), then run every method on the original model with a
compute budget of each fraction of the original training
(:func:`~unlearnlib.poisoning.base.budget_sample_grads`, obeyed by the shared loop).
Methods run at their defaults, with their epoch counts scaled to the data
(:meth:`unlearnlib.methods.Method.resolve_hparams`); the budget cuts a run where it
is reached. Every model is evaluated on the attack's metric, the test accuracy and
the loss-based population MIA (poisons vs test set). Models, poisons and rows are
cached in the store: a re-run trains nothing.

>>> clean = load_splits("rt_sentiment", "fraction:0.02")                 # doctest: +SKIP
>>> df = run_attack(clean, "backdoor", "text_bag", seeds=[0], methods=["gd", "ga"],
...                 fraction=0.02, budgets=BUDGET_FRACTIONS, with_clean=True)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
from torch import nn

from .. import methods as registry
from ..data import Splits
from ..evaluation import accuracy, per_sample_loss, population_mia
from ..models import build_model
from ..store import Store, canonical_json
from ..training import (
    Recipe,
    ReferenceModels,
    default_recipe,
    model_spec,
    train,
    train_reference_models,
)
from . import METRICS, NEEDS_CLEAN, NEEDS_SURROGATE, attack_metric
from .base import BUDGET_FRACTIONS, PoisonInfo, budget_sample_grads
from .cache import cached_poison_splits

#: Bumped when what an evaluated row holds changes (part of the rows' store key).
EVAL_VERSION = 2
#: Reference rows: the model trained on the poisoned data, the one retrained without
#: the poisons, and (when trained) the model of the clean pool.
REFERENCES = ("original", "retrain", "clean")


def clean_model(clean: Splits, model_name: str, seed: int, recipe: Recipe, store: Store) -> tuple[nn.Module, dict]:
    """The model trained on the clean pool (``clean.train``) and its store spec: the
    surrogate of the targeted and indiscriminate attacks and the reference of the
    accuracy drop. One training (the clean splits' retrained model is never needed)."""
    spec = {**model_spec(clean, model_name, recipe, seed), "train": clean.train_fingerprint(), "role": "clean"}
    init = build_model(model_name, clean.input_shape, clean.num_classes, seed=seed)

    def build() -> tuple[dict, dict]:
        m = copy.deepcopy(init).to(clean.device)
        log = train(m, clean.train, recipe, seed, show_progress=False)
        return m.state_dict(), {"seconds": log.seconds}

    state, _ = store.checkpoint("models", spec, build)
    init.load_state_dict(state)
    return init.to(clean.device).eval(), spec


def evaluate(model: nn.Module, info: PoisonInfo, splits: Splits, clean: nn.Module | None, seed: int) -> dict:
    """The attack's metrics (``metric`` = its headline, :data:`METRICS`), the test accuracy,
    the accuracy on the poisons with their poisoned labels and the loss-based population MIA
    (poisons vs test set, 0.5 = chance)."""
    out = attack_metric(model, info, splits, clean=clean, seed=seed)
    mia = population_mia(per_sample_loss(model, splits.forget), per_sample_loss(model, splits.test), seed=seed)
    return {**out, "metric": out[METRICS[info.attack]], "test_acc": accuracy(model, splits.test),
            "forget_acc": accuracy(model, splits.forget), "mia_test": mia}


def run_attack(
    clean: Splits,
    attack: str,
    model_name: str,
    seeds: Sequence[int],
    methods: Sequence[str],
    budgets: Sequence[float] = BUDGET_FRACTIONS,
    fraction: float = 0.02,
    params: Mapping[str, Any] | None = None,
    recipe: Recipe | None = None,
    store: Store | None = None,
    method_hparams: Mapping[str, Mapping[str, Any]] | None = None,
    with_clean: bool = False,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Tidy rows of one attack: per seed the references (``original`` = trained on the
    poisoned data, ``retrain``, and ``clean`` when a clean model is trained: the attack
    needs it, or ``with_clean``) with ``budget`` NaN, and every method at every budget
    (a fraction of the original training compute, e.g. Pawelczyk et al.'s
    :data:`~unlearnlib.poisoning.base.BUDGET_FRACTIONS`). ``method_hparams`` overrides a
    method's defaults; the rest run at their defaults scaled to the data."""
    from tqdm.auto import tqdm

    keys = registry.parse_methods(list(methods)) if len(methods) else []
    refs_asked = [k for k in keys if k in REFERENCES]
    if refs_asked:
        raise ValueError(f"The references {refs_asked} are always evaluated; pass unlearning methods only.")
    budgets = [float(b) for b in budgets]
    bad = [b for b in budgets if not 0.0 < b <= 1.0]
    if bad or not budgets:
        raise ValueError(f"Budgets are fractions of the training compute in (0, 1], e.g. 0.02 .. 0.10; got {budgets}.")
    params = dict(params or {})
    method_hparams = dict(method_hparams or {})
    stray = sorted(set(method_hparams) - set(keys))
    if stray:
        raise ValueError(f"method_hparams names {stray}, which are not among the methods run ({', '.join(keys)}).")
    recipe = recipe or default_recipe(clean.dataset)
    store = store or Store()
    rows: list[dict] = []
    bar = tqdm(total=len(seeds) * len(keys) * len(budgets), desc=f"{attack} poisons", disable=not show_progress)
    for seed in seeds:
        cm, cm_spec = (clean_model(clean, model_name, seed, recipe, store)
                       if with_clean or attack in NEEDS_CLEAN + NEEDS_SURROGATE else (None, None))
        splits, info = cached_poison_splits(store, clean, attack, fraction, seed, surrogate=cm,
                                            surrogate_spec=cm_spec, **params)
        run = _SeedRun(splits, info, train_reference_models(splits, model_name, seed, recipe, store, False),
                       cm, seed, recipe, store)
        base = {"dataset": clean.dataset, "model": model_name, "attack": attack, "fraction": fraction,
                "params": canonical_json(params), "seed": seed}
        rows += [{**base, **r} for r in run.reference_rows()]
        for key in keys:
            for b in budgets:
                rows.append({**base, **run.method_row(registry.get(key), b, method_hparams.get(key))})
                bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


@dataclass
class _SeedRun:
    """One seed of one attack: its poisoned splits, reference models and store keys."""

    splits: Splits
    info: PoisonInfo
    refs: ReferenceModels
    clean: nn.Module | None
    seed: int
    recipe: Recipe
    store: Store

    @property
    def spec(self) -> dict:
        return {**model_spec(self.splits, self.refs.model_name, self.recipe, self.seed), "poison_eval": EVAL_VERSION}

    def evaluate(self, model: nn.Module) -> dict:
        return evaluate(model, self.info, self.splits, self.clean, self.seed)

    def reference_rows(self) -> list[dict]:
        named = [("original", self.refs.original), ("retrain", self.refs.retrained)]
        named += [("clean", self.clean)] if self.clean is not None else []
        out = []
        for name, m in named:
            r = self.store.rows("poison_results", {**self.spec, "method": name}, lambda m=m: [self.evaluate(m)])[0]
            out.append({"method": name, "budget": float("nan"), "hparams": "{}", **r})
        return out

    def method_row(self, method: registry.Method, budget: float, hparams: Mapping[str, Any] | None) -> dict:
        """``method`` on the poisoned model, cut at ``budget`` of the training compute."""
        data = registry.UnlearnData.from_splits(
            self.splits, seed=self.seed, model_name=self.refs.model_name, init_state=self.refs.init_state,
            train_recipe=self.recipe, max_sample_grads=budget_sample_grads(self.recipe, len(self.splits.train), budget))
        hp = method.resolve_hparams(dict(hparams or {}), data.scale)

        def compute() -> list[dict]:
            start = time.perf_counter()
            model = method(self.refs.original, data, **dict(hparams or {}))
            seconds = time.perf_counter() - start
            return [{**self.evaluate(model), "seconds": seconds}]

        r = self.store.rows("poison_results", {**self.spec, "method": method.key, "budget": budget, "hparams": hp},
                            compute)[0]
        return {"method": method.key, "budget": budget, "hparams": canonical_json(hp), **r}


def run_attacks(
    clean: Splits, attacks: Sequence[str], model_name: str, seeds: Sequence[int], methods: Sequence[str],
    fractions: Mapping[str, float], params: Mapping[str, Mapping[str, Any]] | None = None, **kw: Any,
) -> pd.DataFrame:
    """:func:`run_attack` for each of ``attacks`` (poison fraction and parameters per attack), concatenated."""
    params = params or {}
    missing = [a for a in attacks if a not in fractions]
    if missing:
        raise ValueError(f"No poison fraction for {missing}; give fractions={{attack: fraction}} for every attack.")
    frames = [run_attack(clean, a, model_name, seeds, methods, fraction=fractions[a], params=params.get(a), **kw)
              for a in attacks]
    return pd.concat(frames, ignore_index=True)


__all__ = ["REFERENCES", "EVAL_VERSION", "clean_model", "evaluate", "run_attack", "run_attacks"]

