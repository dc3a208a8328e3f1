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

With an executor whose workers run in parallel (:mod:`unlearnlib.studies.executors`;
``executor=`` of :func:`run_attack` and :func:`run_attacks`, None: the scheduler of
``$UNLEARNLIB_SCHEDULER`` when set, else serial), the units not stored yet run there first:
per seed the clean model, per (attack, seed) the poisons, the reference models and their
rows, and every (method, budget) row after them. The serial loop then reads every row back
from the store, so the rows are the serial run's. Workers re-create the clean splits from
their key (:func:`clean_splits` records it; other splits must be ``load_splits(dataset,
forget)``).

>>> clean = load_splits("rt_sentiment", "fraction:0.02")                 # doctest: +SKIP
>>> df = run_attack(clean, "backdoor", "text_bag", seeds=[0], methods=["gd", "ga"],
...                 fraction=0.02, budgets=BUDGET_FRACTIONS, with_clean=True)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import pandas as pd
import torch
from torch import nn

from .. import methods as registry
from ..data import Splits
from ..evaluation import accuracy, per_sample_loss, population_mia
from ..models import build_model
from ..poisoning import METRICS, NEEDS_CLEAN, NEEDS_SURROGATE, attack_metric
from ..poisoning.base import BUDGET_FRACTIONS, PoisonInfo, budget_sample_grads
from ..poisoning.cache import KIND, cached_poison_splits, poison_entry_spec
from ..store import Store, canonical_json
from ..training import (
    Recipe,
    ReferenceModels,
    default_recipe,
    model_spec,
    train,
    train_reference_models,
)
from .worker_cache import Kept, SplitsKey, absolute, load, splits_key, stored, worker_splits

#: Bumped when what an evaluated row holds changes (part of the rows' store key).
EVAL_VERSION = 2
#: Reference rows: the model trained on the poisoned data, the one retrained without
#: the poisons, and (when trained) the model of the clean pool.
REFERENCES = ("original", "retrain", "clean")


def clean_spec(clean: Splits, model_name: str, seed: int, recipe: Recipe) -> dict:
    """The store spec of :func:`clean_model` (no training)."""
    return {**model_spec(clean, model_name, recipe, seed), "train": clean.train_fingerprint(), "role": "clean"}


def clean_model(clean: Splits, model_name: str, seed: int, recipe: Recipe, store: Store) -> tuple[nn.Module, dict]:
    """The model trained on the clean pool (``clean.train``) and its store spec: the
    surrogate of the targeted and indiscriminate attacks and the reference of the
    accuracy drop. One training (the clean splits' retrained model is never needed)."""
    spec = clean_spec(clean, model_name, seed, recipe)
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
    executor: Any = None,
) -> pd.DataFrame:
    """Tidy rows of one attack: per seed the references (``original`` = trained on the
    poisoned data, ``retrain``, and ``clean`` when a clean model is trained: the attack
    needs it, or ``with_clean``) with ``budget`` NaN, and every method at every budget
    (a fraction of the original training compute, e.g. Pawelczyk et al.'s
    :data:`~unlearnlib.poisoning.base.BUDGET_FRACTIONS`). ``method_hparams`` overrides a
    method's defaults; the rest run at their defaults scaled to the data. ``executor``
    (:func:`unlearnlib.studies.executors.resolve`): where the missing units run first
    (module docstring); the rows equal the serial run's but for ``seconds``."""
    from tqdm.auto import tqdm

    from . import executors

    keys, budgets, params, method_hparams = _checked(methods, budgets, params, method_hparams)
    recipe = recipe or default_recipe(clean.dataset)
    store = store or Store()
    with executors.using(executor) as ex:
        if ex.parallel:
            plan = _AttackPlan(ex, clean, model_name, seeds, recipe, store, with_clean)
            plan.add(attack, fraction, params, keys, budgets, method_hparams)
            plan.run(f"{attack} units", show_progress)
    rows: list[dict] = []
    bar = tqdm(total=len(seeds) * len(keys) * len(budgets), desc=f"{attack} poisons", disable=not show_progress)
    for seed in seeds:
        run = seed_run(clean, attack, model_name, seed, fraction, params, recipe, store, with_clean)
        base = {"dataset": clean.dataset, "model": model_name, "attack": attack, "fraction": fraction,
                "params": canonical_json(params), "seed": seed}
        rows += [{**base, **r} for r in run.reference_rows()]
        for key in keys:
            for b in budgets:
                rows.append({**base, **run.method_row(registry.get(key), b, method_hparams.get(key))})
                bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


def _checked(methods: Sequence[str], budgets: Sequence[float], params: Mapping[str, Any] | None,
             method_hparams: Mapping[str, Mapping[str, Any]] | None) -> tuple[list[str], list[float], dict, dict]:
    """:func:`run_attack`'s method keys, budgets, attack parameters and method
    hyperparameters, checked (one ``ValueError`` line each)."""
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
    return keys, budgets, params, method_hparams


def needs_clean(attack: str, with_clean: bool) -> bool:
    """Whether a seed of ``attack`` trains the clean model (the attack uses it, or ``with_clean``)."""
    return with_clean or attack in NEEDS_CLEAN + NEEDS_SURROGATE


def seed_run(clean: Splits, attack: str, model_name: str, seed: int, fraction: float, params: dict,
             recipe: Recipe, store: Store, with_clean: bool) -> "SeedRun":
    """One seed of one attack: the clean model when needed, the cached poisons, and the
    reference models trained on the poisoned data and without the poisons."""
    cm, cm_spec = (clean_model(clean, model_name, seed, recipe, store)
                   if needs_clean(attack, with_clean) else (None, None))
    splits, info = cached_poison_splits(store, clean, attack, fraction, seed, surrogate=cm,
                                        surrogate_spec=cm_spec, **params)
    return SeedRun(splits, info, train_reference_models(splits, model_name, seed, recipe, store, False),
                   cm, seed, recipe, store)


def rows_spec(splits: Splits, model_name: str, recipe: Recipe, seed: int, base: dict | None = None) -> dict:
    """The store spec shared by one seed's ``poison_results`` rows (``splits``: poisoned;
    ``base``: their ``model_spec``, computed when not given)."""
    base = base if base is not None else model_spec(splits, model_name, recipe, seed)
    return {**base, "poison_eval": EVAL_VERSION}


def budget_data(splits: Splits, seed: int, model_name: str, recipe: Recipe, budget: float,
                init_state: dict | None = None) -> registry.UnlearnData:
    """What a method sees on the poisoned ``splits``, its compute cut at ``budget``."""
    return registry.UnlearnData.from_splits(
        splits, seed=seed, model_name=model_name, init_state=init_state, train_recipe=recipe,
        max_sample_grads=budget_sample_grads(recipe, len(splits.train), budget))


@dataclass
class SeedRun:
    """One seed of one attack: its poisoned splits, reference models and store keys."""

    splits: Splits
    info: PoisonInfo
    refs: ReferenceModels
    clean: nn.Module | None
    seed: int
    recipe: Recipe
    store: Store

    @property
    def base(self) -> dict:
        """``model_spec`` of the poisoned splits (what every entry of this seed is keyed by)."""
        return model_spec(self.splits, self.refs.model_name, self.recipe, self.seed)

    @property
    def spec(self) -> dict:
        return rows_spec(self.splits, self.refs.model_name, self.recipe, self.seed, self.base)

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
        data = budget_data(self.splits, self.seed, self.refs.model_name, self.recipe, budget, self.refs.init_state)
        hp = method.resolve_hparams(dict(hparams or {}), data.scale)

        def compute() -> list[dict]:
            start = time.perf_counter()
            model = method(self.refs.original, data, **dict(hparams or {}))
            seconds = time.perf_counter() - start
            return [{**self.evaluate(model), "seconds": seconds}]

        r = self.store.rows("poison_results", {**self.spec, **method.identity, "budget": budget, "hparams": hp},
                            compute)[0]
        return {"method": method.key, "budget": budget, "hparams": canonical_json(hp), **r}


def run_attacks(
    clean: Splits, attacks: Sequence[str], model_name: str, seeds: Sequence[int], methods: Sequence[str],
    fractions: Mapping[str, float], params: Mapping[str, Mapping[str, Any]] | None = None,
    executor: Any = None, **kw: Any,
) -> pd.DataFrame:
    """:func:`run_attack` for each of ``attacks`` (poison fraction and parameters per attack),
    concatenated. With parallel workers (``executor``, as :func:`run_attack`'s) the missing
    units of every attack run there together first; then each attack's rows are read back."""
    from . import executors

    params = params or {}
    missing = [a for a in attacks if a not in fractions]
    if missing:
        raise ValueError(f"No poison fraction for {missing}; give fractions={{attack: fraction}} for every attack.")
    with executors.using(executor) as ex:
        if ex.parallel:
            _plan_attacks(ex, clean, attacks, model_name, seeds, methods, fractions, params, **kw)
    frames = [run_attack(clean, a, model_name, seeds, methods, fraction=fractions[a], params=params.get(a),
                         executor=executors.SerialExecutor(), **kw) for a in attacks]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- units on an executor

#: ``Splits.meta`` entry where :func:`clean_splits` records the loader arguments the splits do not hold.
CLEAN_KEY = "poisoning_clean_key"
#: The end of a worker's error when it re-creates other clean splits than the sender's.
CLEAN_HINT = ("make them with studies.poisoning_study.clean_splits(...) (or load_splits(dataset, forget)) to run "
              "on an executor")


def clean_splits(dataset: str, forget: str = "fraction:0.02", data_root: str | None = None,
                 device: Any = "cpu", standardize: bool = False) -> Splits:
    """The clean splits of a poisoning study: the dataset's splits with ``forget`` (the
    forget set is replaced by the poisons), with the pixels standardised by the training
    set's mean and standard deviation when ``standardize`` (the Gaussian test's setting).
    ``meta`` records how they were made (:func:`clean_key`: workers re-create them so)."""
    splits = load(dataset, forget, data_root, device, standardize)
    splits.meta[CLEAN_KEY] = {"data_root": absolute(data_root), "standardize": standardize}
    return splits


def clean_key(clean: Splits) -> SplitsKey:
    """The :class:`~.worker_cache.SplitsKey` of ``clean``: made as :func:`clean_splits`
    recorded, else as ``load_splits(dataset, forget_spec)`` (the workers check the fingerprint)."""
    return splits_key(clean, **clean.meta.get(CLEAN_KEY, {}))


#: Seed runs kept per worker process (each holds poisoned splits and three models).
KEEP_RUNS = 4
_RUNS = Kept(KEEP_RUNS)


def worker_run(store: Store, source: SplitsKey, attack: str, model_name: str, seed: int, fraction: float,
               params: dict, recipe: Recipe, with_clean: bool) -> SeedRun:
    """:func:`seed_run` in this process (a worker's) on the clean splits of ``source``, the last
    :data:`KEEP_RUNS` kept: the units of one seed load its poisons and models once. The torch
    thread count is part of the key, as it is of the models' store keys."""
    ident = (source, attack, model_name, int(seed), fraction, canonical_json(params),
             canonical_json(recipe.as_dict()), with_clean, str(store.root), torch.get_num_threads())
    return _RUNS.get(ident, lambda: seed_run(worker_splits(source, CLEAN_HINT), attack, model_name, int(seed),
                                             fraction, params, recipe, store, with_clean))


def clean_unit(store: Store, source: SplitsKey, model_name: str, seed: int, recipe: Recipe) -> None:
    """A task: the clean model of ``seed`` (shared by every attack)."""
    clean_model(worker_splits(source, CLEAN_HINT), model_name, int(seed), recipe, store)


def reference_unit(store: Store, source: SplitsKey, attack: str, model_name: str, seed: int,
                   fraction: float, params: dict, recipe: Recipe, with_clean: bool) -> None:
    """A task: the poisons of one (attack, seed), its reference models and their rows."""
    worker_run(store, source, attack, model_name, seed, fraction, params, recipe, with_clean).reference_rows()


def method_unit(store: Store, source: SplitsKey, attack: str, model_name: str, seed: int,
                fraction: float, params: dict, recipe: Recipe, with_clean: bool, method: str, budget: float,
                hparams: dict) -> None:
    """A task: one method's row at one budget (its seed's poisons and models are stored)."""
    run = worker_run(store, source, attack, model_name, seed, fraction, params, recipe, with_clean)
    run.method_row(registry.get(method), budget, hparams)


class Poisoned(NamedTuple):
    """What keys the entries of one seed's units once its poisons are stored."""

    splits: Splits              # the poisoned splits
    base: dict                  # their model_spec
    scale: registry.DataScale   # what sizes the methods' default epoch counts


class SeedKeys:
    """One (attack, seed)'s units in the sending process: ``args``, what a worker re-creates
    the seed's run from (:func:`worker_run`), and the store entries of its units. They are
    keyed by the poisoned splits, so they are known once the poisons are stored (None before,
    which :func:`~.worker_cache.stored` reads as not done)."""

    def __init__(self, source: SplitsKey, clean: Splits, attack: str, model_name: str, seed: int, fraction: float,
                 params: dict, recipe: Recipe, store: Store, with_clean: bool) -> None:
        self.args = (source, attack, model_name, seed, fraction, params, recipe, with_clean)
        self.clean, self.attack, self.model, self.seed, self.fraction, self.params = (
            clean, attack, model_name, seed, fraction, params)
        self.recipe, self.store = recipe, store
        self.clean_spec = clean_spec(clean, model_name, seed, recipe) if needs_clean(attack, with_clean) else None
        self.inputs = [("models", self.clean_spec)] if self.clean_spec is not None else []
        self.inputs.append((KIND, poison_entry_spec(clean, attack, fraction, seed, params, self.clean_spec)))
        self._known: Poisoned | None = None

    def known(self) -> Poisoned | None:
        """The poisoned splits and what they key, once the poisons are stored (None before):
        read from the store as the serial run does."""
        if self._known is None and stored(self.store, self.inputs)():
            cm = clean_model(self.clean, self.model, self.seed, self.recipe, self.store)[0] if self.clean_spec else None
            splits, _ = cached_poison_splits(self.store, self.clean, self.attack, self.fraction, self.seed,
                                             surrogate=cm, surrogate_spec=self.clean_spec, **self.params)
            scale = budget_data(splits, self.seed, self.model, self.recipe, 1.0).scale
            self._known = Poisoned(splits, model_spec(splits, self.model, self.recipe, self.seed), scale)
        return self._known

    def reference_entries(self, rows: bool = True) -> list[tuple[str, dict]] | None:
        """The entries of the reference models (trained on the poisoned data and without the
        poisons) and, with ``rows``, of their rows (:meth:`SeedRun.reference_rows`)."""
        from .experiment import reference_specs

        k = self.known()
        if k is None:
            return None
        entries = reference_specs(k.splits, self.model, self.recipe, self.seed, k.base)
        if rows:
            spec = rows_spec(k.splits, self.model, self.recipe, self.seed, k.base)
            names = ["original", "retrain", *(["clean"] if self.clean_spec is not None else [])]
            entries += [("poison_results", {**spec, "method": n}) for n in names]
        return entries

    def row_entries(self, method: str, budget: float, hparams: dict) -> list[tuple[str, dict]] | None:
        """The entry of one :meth:`SeedRun.method_row`."""
        k = self.known()
        if k is None:
            return None
        m = registry.get(method)
        hp = m.resolve_hparams(dict(hparams), k.scale)
        spec = rows_spec(k.splits, self.model, self.recipe, self.seed, k.base)
        return [("poison_results", {**spec, **m.identity, "budget": budget, "hparams": hp})]


class _AttackPlan:
    """The tasks of attacks on one set of clean splits: per seed the clean model (when an
    attack needs it), per (attack, seed) the poisons and references (after the clean
    model), per (attack, seed, method, budget) a row (after its references)."""

    def __init__(self, ex: Any, clean: Splits, model_name: str, seeds: Sequence[int], recipe: Recipe,
                 store: Store, with_clean: bool) -> None:
        self.ex, self.clean, self.model, self.seeds = ex, clean, model_name, [int(s) for s in seeds]
        self.recipe, self.store, self.with_clean = recipe, store, with_clean
        self.source = clean_key(clean)
        self._clean: dict[int, Any] = {}
        self.tasks: list = []

    def clean_task(self, seed: int) -> Any:
        if seed not in self._clean:
            spec = clean_spec(self.clean, self.model, seed, self.recipe)
            self._clean[seed] = self.ex.task(f"clean model of seed {seed}", clean_unit,
                                             (self.source, self.model, seed, self.recipe), self.store,
                                             done=stored(self.store, [("models", spec)]))
        return self._clean[seed]

    def add(self, attack: str, fraction: float, params: dict, keys: Sequence[str], budgets: Sequence[float],
            method_hparams: Mapping[str, Mapping[str, Any]]) -> None:
        """The tasks of one attack (arguments checked as :func:`run_attack` does)."""
        for seed in self.seeds:
            keyed = SeedKeys(self.source, self.clean, attack, self.model, seed, fraction, params, self.recipe,
                             self.store, self.with_clean)
            needs = (self.clean_task(seed),) if keyed.clean_spec is not None else ()
            refs = self.ex.task(f"{attack} references of seed {seed}", reference_unit, keyed.args, self.store,
                                needs=needs, done=stored(self.store, keyed.reference_entries))
            self.tasks.append(refs)
            for key in keys:
                hp = dict(method_hparams.get(key) or {})
                for b in budgets:
                    self.tasks.append(self.ex.task(
                        f"{attack} {key} at budget {b:g} on seed {seed}", method_unit, (*keyed.args, key, b, hp),
                        self.store, needs=(refs,),
                        done=stored(self.store, lambda k=keyed, m=key, b=b, hp=hp: k.row_entries(m, b, hp))))

    def run(self, desc: str, show_progress: bool) -> int:
        """Compute the missing units on the executor; how many ran."""
        return len(self.ex.run(self.tasks, self.store, desc, show_progress))


def _plan_attacks(ex: Any, clean: Splits, attacks: Sequence[str], model_name: str, seeds: Sequence[int],
                  methods: Sequence[str], fractions: Mapping[str, float], params: Mapping[str, Mapping[str, Any]],
                  budgets: Sequence[float] = BUDGET_FRACTIONS, recipe: Recipe | None = None,
                  store: Store | None = None, method_hparams: Mapping[str, Mapping[str, Any]] | None = None,
                  with_clean: bool = False, show_progress: bool = True) -> int:
    """:func:`run_attacks`' missing units of every attack on ``ex`` (keywords: :func:`run_attack`'s)."""
    keys, budgets, _, method_hparams = _checked(methods, budgets, None, method_hparams)
    plan = _AttackPlan(ex, clean, model_name, seeds, recipe or default_recipe(clean.dataset), store or Store(),
                       with_clean)
    for a in attacks:
        plan.add(a, fractions[a], dict(params.get(a) or {}), keys, budgets, method_hparams)
    return plan.run("poisoning units", show_progress)


__all__ = ["REFERENCES", "EVAL_VERSION", "CLEAN_KEY", "clean_splits", "clean_key", "clean_spec",
           "clean_model", "evaluate", "run_attack", "run_attacks", "seed_run", "needs_clean", "SeedRun", "SeedKeys",
           "worker_run"]


def hparams_shown(df: pd.DataFrame) -> pd.Series:
    """The hyperparameters each unlearning method of the rows ``df`` ran with (its first row's;
    the references left out), as ``k=v`` text (floats to 3 significant digits)."""
    import json

    methods = df[~df["method"].isin(REFERENCES)].drop_duplicates("method").set_index("method")
    return methods["hparams"].map(lambda s: ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in json.loads(s).items())).rename("hyperparameters")
