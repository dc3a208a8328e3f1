"""Collecting the scorecard's numbers: the hyperparameters each method runs with
(:func:`hparams_for`), the full-data rows of every seed with the relearning attack
(:func:`seed_rows`, :func:`with_relearning`), the shadow tests' per-target arrays
(:func:`shadow_arrays`), the poisoning rows (:func:`poison_rows`), the joint bootstrap's
draws of every test (:func:`bootstrap_values`, :class:`Draws`), and what the collection
trains (:func:`training_counts`). Every entry is cached in the store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from torch import nn

from ... import methods as registry
from ...data import Splits
from ...evaluation import registry as metric_registry
from ...evaluation.forget_quality import forget_quality_on_shadows, per_target_means
from ...evaluation.klom import ORACLE_FIRST, klom_on_shadows
from ...evaluation.lira import ShadowOutputs, ShadowSet, ulira
from ...evaluation.neurips import neurips_score
from ...evaluation.relearning import relearning_attack
from ...evaluation.rmia import rmia
from ...shadows import OUTPUTS_VERSION, ShadowRunner
from ...store import Store
from ...training import ReferenceModels, model_spec
from ..worker_cache import load, splits_key, stored
from .catalogue import (
    N_BOOT,
    REFERENCES,
    SCORECARD_VERSION,
    TESTS,
    UNBUDGETED,
    UTILITY,
    KlomResolution,
    test_of,
)

if TYPE_CHECKING:
    from ..poisoning_study import SeedKeys, SeedRun


# --------------------------------------------------------------------------- hyperparameters


def method_keys(methods: str = "all") -> list[str]:
    """The methods a scorecard runs: the two references first, then every registered method
    (``"all"``) or those of a comma list (:func:`~unlearnlib.methods.parse_methods`), in order."""
    chosen = registry.available() if methods == "all" else registry.parse_methods(methods)
    return list(REFERENCES) + [k for k in chosen if k not in REFERENCES]


def n_shipped(hparams: Mapping[str, tuple[dict, str]]) -> int:
    """How many methods of :func:`hparams_for`'s answer run with shipped tuned hyperparameters."""
    return sum(src.startswith("shipped") for _, src in hparams.values())


def hparams_for(setup, keys: Sequence[str], source: str = "shipped") -> dict[str, tuple[dict, str]]:
    """``{method: (hparams, where they came from)}``: the package's shipped tuned entry for
    ``setup`` where it has one (``source="shipped"``), else the defaults (``{}``)."""
    from ..hpo import shipped_entry

    if source not in ("shipped", "defaults"):
        raise ValueError(f"source must be 'shipped' or 'defaults'; got {source!r}.")
    out: dict[str, tuple[dict, str]] = {}
    for m in keys:
        entry = shipped_entry(setup, m) if source == "shipped" and not registry.get(m).reference else None
        if entry:
            out[m] = (dict(entry["hparams"]),
                      f"shipped ({entry['trials_per_seed']} trials x {len(entry['tuning_seeds'])} seed(s))")
        else:
            out[m] = ({}, "reference" if registry.get(m).reference else "defaults")
    return out


# --------------------------------------------------------------------------- full-data rows


def unlearned_model(key: str, refs: ReferenceModels, splits: Splits, hparams: Mapping[str, Any]) -> nn.Module:
    """The model :func:`~unlearnlib.studies.experiment.run_method` evaluates for ``key``: the
    same data, seed and hyperparameters (deterministic on the CPU), so the relearning attack
    sees the model whose row the scorecard reads."""
    if key == "original":
        return refs.original
    if key == "retrain":
        return refs.retrained
    data = registry.UnlearnData.from_splits(splits, seed=refs.seed, model_name=refs.model_name,
                                            init_state=refs.init_state, train_recipe=refs.recipe)
    return registry.get(key)(refs.original, data, **dict(hparams))


def relearning_spec(setup, key: str, seed: int, hparams: Mapping[str, Any] | None = None,
                    attack: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The store spec of :func:`relearning_row`'s entry."""
    method = registry.get(key)
    hp = method.resolve_hparams(dict(hparams or {}), setup.scale)
    return {**model_spec(setup.splits, setup.model, setup.recipe, seed), **method.identity, "hparams": hp,
            "attack": dict(sorted(dict(attack or {}).items())), "scorecard": SCORECARD_VERSION}


def relearning_row(setup, key: str, seed: int, hparams: Mapping[str, Any] | None = None,
                   **attack: Any) -> dict[str, Any]:
    """The relearning attack (:func:`~unlearnlib.evaluation.relearning.relearning_attack`,
    its defaults unless ``attack`` says otherwise) on ``key``'s unlearned model of ``seed``;
    cached. ``relearn_acc`` is the retain case's forget accuracy after the last step."""
    spec = relearning_spec(setup, key, seed, hparams, attack)

    def compute() -> list[dict]:
        refs = setup.refs(seed)
        model = unlearned_model(key, refs, setup.splits, spec["hparams"])
        res = relearning_attack(model, refs.retrained, refs.original, setup.splits, **attack)
        return [{**res.as_row(), "relearn_acc": res.retain.unlearned.after}]

    return setup.store.rows("scorecard_relearn", spec, compute)[0]


def relearning_unit(store: Store, key, method: str, seed: int, hparams: dict, attack: dict) -> None:
    """A task (:mod:`.executors`): one :func:`relearning_row` in a worker (``key``: the
    setup's :class:`~.executors.SetupKey`)."""
    from ..experiment import worker_setup

    relearning_row(worker_setup(store, key), method, int(seed), hparams, **attack)


def utility_keepers(rows: pd.DataFrame, utility: float = UTILITY) -> list[str]:
    """Non-reference methods whose mean test accuracy is at most ``utility`` below the
    retrained model's (means over the seeds of ``rows``), in row order."""
    ta = rows.groupby("method", sort=False)["test_acc"].mean()
    if "retrain" not in ta.index:
        raise ValueError("utility_keepers needs the retrain rows.")
    return [m for m in ta.index if m not in REFERENCES and ta[m] >= ta["retrain"] - utility]


def deeper_methods(keys: Sequence[str], keepers: Sequence[str], deeper: str = "utility") -> list[str]:
    """The methods (references aside) given the shadow, relearning and poisoning tests:
    ``keepers`` (:func:`utility_keepers`; the others pass no test by the utility rule) when
    ``deeper`` is ``"utility"``, every method of ``keys`` when it is ``"all"``."""
    if deeper not in ("utility", "all"):
        raise ValueError(f"deeper must be 'utility' or 'all'; got {deeper!r}.")
    return list(keepers) if deeper == "utility" else [k for k in keys if k not in REFERENCES]


def poison_methods(deep: Sequence[str]) -> list[str]:
    """The poisoning test's methods: the references and those of ``deep`` that a compute
    budget can bound (:data:`UNBUDGETED` left out)."""
    return list(REFERENCES) + [m for m in deep if m not in UNBUDGETED and m not in REFERENCES]


def seed_rows(setup, keys: Sequence[str], seeds: Sequence[int], hparams: Mapping[str, tuple[dict, str]],
              executor: Any = None) -> pd.DataFrame:
    """One row per (method, seed): :meth:`~unlearnlib.studies.hpo.Setup.run` (accuracies,
    RetDev, MIAs, verification error: cached rows, shared with every chapter that runs the
    same method, seed and hyperparameters) and where the hyperparameters came from.
    ``hparams`` as :func:`hparams_for` returns it. The missing rows run first on
    ``executor`` (:func:`~unlearnlib.studies.experiment.compute_rows`: None is the
    scheduler of ``$UNLEARNLIB_SCHEDULER`` when set, else nothing ahead)."""
    from ..experiment import compute_rows

    compute_rows(setup, [(key, seed, hparams.get(key, ({}, ""))[0]) for seed in seeds for key in keys],
                 executor, "scorecard rows")
    out = []
    for seed in seeds:
        for key in keys:
            hp, source = hparams.get(key, ({}, "defaults"))
            out.append({**setup.run(key, seed, hp), "hparams_source": source})
    return pd.DataFrame(out)


def with_relearning(rows: pd.DataFrame, setup, keys: Sequence[str], hparams: Mapping[str, tuple[dict, str]],
                    executor: Any = None, **attack: Any) -> pd.DataFrame:
    """``rows`` with ``relearn_acc`` (:func:`relearning_row`) for the methods in ``keys`` and
    every seed of ``rows``; NaN for the other methods. The missing attacks run first on
    ``executor``'s workers (as :func:`seed_rows`), each after its seed's reference models."""
    from .. import executors
    from ..experiment import UnitPlan

    wanted = [(m, int(s)) for m, s in zip(rows["method"], rows["seed"], strict=True) if m in keys]
    with executors.using(executor) as ex:
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            tasks = []
            for m, s in wanted:
                hp = dict(hparams.get(m, ({}, ""))[0])
                spec = relearning_spec(setup, m, s, hp, attack)
                tasks.append(ex.task(f"relearning attack on {m}, seed {s}", relearning_unit,
                                     (setup.task_key(), m, s, hp, dict(attack)), setup.store,
                                     needs=(plan.refs(s),), done=stored(setup.store, [("scorecard_relearn", spec)])))
            ex.run(tasks, setup.store, "relearning attacks", setup.show_progress)
    acc = [relearning_row(setup, m, int(s), hparams.get(m, ({}, ""))[0], **attack)["relearn_acc"]
           if m in keys else math.nan for m, s in zip(rows["method"], rows["seed"], strict=True)]
    return rows.assign(relearn_acc=acc)


# --------------------------------------------------------------------------- shadow tests


def _pairs(res) -> dict[str, np.ndarray]:
    """Scores and target columns of the game's positive and negative pairs."""
    pr, pc = np.nonzero(res.positive)
    nr, nc = np.nonzero(res.negative)
    return {"pos": res.scores[pr, pc], "pos_col": pc, "neg": res.scores[nr, nc], "neg_col": nc}


def evaluate_shadows(shadows: ShadowSet, out: ShadowOutputs, reference: ShadowOutputs,
                     mode: str = "fixed_variance") -> dict[str, np.ndarray]:
    """Everything the shadow tests need for one method's unlearned shadows ``out``, per pair,
    example or target column, so that any resampling of the targets can be scored later
    (:func:`shadow_values`).

    U-LiRA (``mode``) and RMIA: the scores of the game's positive and negative pairs with
    their target columns and the decision thresholds; NeurIPS: each forgotten example's H
    and column; KLOM: the per-point values over the pool (NaN: not a forget point); forget
    quality: the per-target mean phi of the unlearned and of the oracle rows (``reference``,
    the models retrained without each row's forget set). The ``*_point`` scalars are the
    library's own summaries, for the record.
    """
    u, r = ulira(shadows, out, mode=mode), rmia(shadows, out)
    ns, kl = neurips_score(shadows, out, reference), klom_on_shadows(shadows, out, reference)
    fq = forget_quality_on_shadows(shadows, out, reference)
    cols, mu = per_target_means(shadows, out)
    _, mr = per_target_means(shadows, reference)
    arrays = {f"ulira_{k}": v for k, v in _pairs(u).items()}
    arrays.update({f"rmia_{k}": v for k, v in _pairs(r).items()})
    point = {"ulira_accuracy": u.metrics["accuracy"], "ulira_tpr": u.metrics["tpr_at_1pct_fpr"],
             "rmia_auc": r.metrics["auc"], "neurips_f": ns.forgetting_quality, "klom": kl.summary["forget"]}
    arrays.update({f"{k}_point": np.float64(v) for k, v in point.items()})
    arrays.update({
        "ulira_threshold": np.float64(u.metrics["threshold"]), "rmia_threshold": np.float64(r.metrics["threshold"]),
        "neurips_h": ns.h, "neurips_col": np.nonzero(shadows.forget_masks.numpy().any(0))[0],
        "klom": kl.values["forget"], "fq_col": cols, "fq_u": mu, "fq_r": mr,
        "fq_pvalue": np.float64(fq.pvalue), "fq_statistic": np.float64(fq.statistic),
        "test_acc": np.float64(out.test_acc.mean()), "forget_acc": np.float64(out.forget_acc.mean()),
    })
    return arrays


def shadow_arrays(runner: ShadowRunner, key: str, hparams: Mapping[str, Any] | None = None,
                  mode: str = "fixed_variance") -> dict[str, np.ndarray]:
    """:func:`evaluate_shadows` of ``key``'s unlearned shadows (trained or read from the
    store by ``runner``, with the oracles shared by every method), cached in the store."""
    hp = _shadow_hparams(runner, key, hparams)
    return runner.store.arrays("scorecard_shadow", _shadow_spec(runner, key, hp, mode), lambda: evaluate_shadows(
        runner.shadows, runner.outputs(key, hp), runner.outputs("retrained-reference"), mode))


def shadow_arrays_many(runner: ShadowRunner, hparams: Mapping[str, Mapping[str, Any] | None],
                       mode: str = "fixed_variance", executor: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """:func:`shadow_arrays` of every key of ``hparams`` (key -> its hyperparameters), in
    that order. The shadow groups that the missing arrays need run first on ``executor``
    (:func:`.executors.resolve`: None is the scheduler of ``$UNLEARNLIB_SCHEDULER`` when
    set, as in the book's kernels, else serial), one task per method
    (:meth:`ShadowRunner.outputs_many`); the arrays are then computed here from the stored
    outputs, so they are the same on every executor."""
    from .. import executors

    hp = {k: _shadow_hparams(runner, k, v) for k, v in hparams.items()}
    missing = {k: v for k, v in hp.items() if not runner.store.has("scorecard_shadow", _shadow_spec(runner, k, v, mode))}
    if missing:
        with executors.using(executor) as ex:
            if ex.parallel:
                runner.outputs_many({"retrained-reference": None, **missing}, ex)
    return {k: shadow_arrays(runner, k, v, mode) for k, v in hp.items()}


def _shadow_hparams(runner: ShadowRunner, key: str, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if key in REFERENCES else registry.get(key).resolve_hparams(dict(hparams or {}), runner.scale)


def _shadow_spec(runner: ShadowRunner, key: str, hp: Mapping[str, Any], mode: str) -> dict[str, Any]:
    ident = {"method": key} if key in REFERENCES else registry.get(key).identity
    # the shadow outputs' version (RMIA's float64 test phi) and KLOM's direction change these values
    return {**runner.spec, **ident, "hparams": hp, "mode": mode, "scorecard": SCORECARD_VERSION,
            "outputs": OUTPUTS_VERSION, "klom_direction": ORACLE_FIRST}


def shadow_values(arrays: Mapping[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """The shadow tests' values under B target weightings ``weights`` (B, pool columns).

    Each pair, example or point carries the weight of its target column, so a row of
    bootstrap counts gives the tests of that resample and a row of ones the point values.
    Every value is the registry's one definition of the metric, which accepts the weights
    (:meth:`~unlearnlib.evaluation.registry.Metric.on_arrays`); the scorecard has no copy.
    """
    W = np.atleast_2d(np.asarray(weights, float))
    return {t.key: metric_registry.metric(t.key).on_arrays(arrays, W) for t in TESTS if t.source == "shadows"}


# --------------------------------------------------------------------------- poisoning


@dataclass(frozen=True)
class PoisonSetting:
    """Pawelczyk et al. 2024's setting as the poisoning chapter runs it (mnist5k with
    standardised pixels, an MLP: the embedded setting where the Gaussian test has power)."""

    dataset: str = "mnist5k"
    model: str = "mlp"
    attack: str = "gaussian"
    fraction: float = 0.02
    params: tuple[tuple[str, Any], ...] = (("eps", 1.0),)
    epochs: int = 20
    budget: float = 0.10


def poison_clean_splits(setting: PoisonSetting, data_root: str | None = None, device: str = "cpu") -> Splits:
    """The clean splits of the poisoning chapter: pixels standardised by the training mean and std."""
    return load(setting.dataset, "fraction:0.02", data_root, device, standardize=True)


def poison_rows(store: Store, clean: Splits, setting: PoisonSetting, keys: Sequence[str],
                seeds: Sequence[int], executor: Any = None, data_root: str | None = None) -> pd.DataFrame:
    """Per (method, seed): the attack's metric (``gus`` for the Gaussian attack) and test
    accuracy after unlearning the poisons at ``setting.budget`` of the training compute,
    methods at their defaults (cached). ``original`` is the poisoned model, ``retrain`` the
    model retrained without the poisons; poison draw and model seed are both ``seed``. The
    poisons and reference models of a seed are the poisoning study's
    (:func:`~.poisoning_study.seed_run`: the same store entries).

    The missing entries run first on ``executor``'s workers (None: the scheduler of
    ``$UNLEARNLIB_SCHEDULER`` when set, else nothing ahead): one task per seed for its
    poisons and reference models, then one per (method, seed). A worker re-creates
    ``clean`` with :func:`poison_clean_splits` (``data_root`` as the caller gave it, on
    ``clean``'s device), so ``clean`` must be what that function returns (the worker checks)."""
    from .. import executors
    from ..poisoning_study import needs_clean, seed_run

    bad = [k for k in keys if k in UNBUDGETED]
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot be held to a compute budget; leave them out (UNBUDGETED).")
    if needs_clean(setting.attack, False):
        raise ValueError(f"The scorecard runs attacks without a clean or surrogate model; got {setting.attack!r}.")
    with executors.using(executor) as ex:
        if ex.parallel:
            ex.run(_poison_tasks(ex, store, clean, setting, keys, seeds, data_root), store, "poisoning units",
                   False)
    rows = []
    for seed in map(int, seeds):
        run = seed_run(clean, setting.attack, setting.model, seed, setting.fraction, dict(setting.params),
                       _poison_recipe(setting), store, False)
        rows += [_poison_row(run, setting, key) for key in keys]
    return pd.DataFrame(rows)


def _poison_recipe(setting: PoisonSetting):
    from ...training import default_recipe

    return default_recipe(setting.dataset).with_(epochs=setting.epochs)


def _poison_spec(base: dict, setting: PoisonSetting, key: str) -> dict:
    """The store spec of ``key``'s row (``base``: ``model_spec`` of the seed's poisoned splits)."""
    method = registry.get(key)
    return {**base, "budget": setting.budget, "scorecard": SCORECARD_VERSION, **method.identity,
            "hparams": method.defaults}


def _poison_row(run: SeedRun, setting: PoisonSetting, key: str) -> dict:
    """``key``'s cached row on ``run``, one seed's :class:`~.poisoning_study.SeedRun`."""
    from ...evaluation import accuracy
    from ...poisoning import METRICS, attack_metric
    from ..experiment import timed_unlearn
    from ..poisoning_study import budget_data

    def compute() -> list[dict]:
        if key in REFERENCES:
            model = run.refs.original if key == "original" else run.refs.retrained
        else:
            data = budget_data(run.splits, run.seed, setting.model, run.recipe, setting.budget, run.refs.init_state)
            model, _ = timed_unlearn(registry.get(key), run.refs.original, data)
        return [{"metric": attack_metric(model, run.info, run.splits)[METRICS[setting.attack]],
                 "test_acc": accuracy(model, run.splits.test)}]

    r = run.store.rows("scorecard_poison", _poison_spec(run.base, setting, key), compute)[0]
    return {"method": key, "seed": run.seed, "gus": r["metric"], "poison_test_acc": r["test_acc"]}


def _poison_tasks(ex, store: Store, clean: Splits, setting: PoisonSetting, keys: Sequence[str],
                  seeds: Sequence[int], data_root: str | None) -> list:
    """The tasks of :func:`poison_rows`: per seed the poisoning study's poisons and reference
    models (:class:`~.poisoning_study.SeedKeys`), then one row per method after them; each
    done when its store entries exist (a seed whose poisons are not stored is not done)."""
    from ..poisoning_study import SeedKeys

    source, recipe = splits_key(clean, data_root, standardize=True), _poison_recipe(setting)

    def row_entries(keyed: SeedKeys, key: str) -> list[tuple[str, dict]] | None:
        known = keyed.known()
        return None if known is None else [("scorecard_poison", _poison_spec(known.base, setting, key))]

    tasks = []
    for seed in map(int, seeds):
        keyed = SeedKeys(source, clean, setting.attack, setting.model, seed, setting.fraction, dict(setting.params),
                         recipe, store, False)
        refs = ex.task(f"poisons and reference models of seed {seed}", poison_unit, (setting, None, *keyed.args),
                       store, done=stored(store, lambda k=keyed: k.reference_entries(rows=False)))
        tasks += [refs, *(ex.task(f"{key} on the poisons of seed {seed}", poison_unit, (setting, key, *keyed.args),
                                  store, needs=(refs,), done=stored(store, lambda k=keyed, m=key: row_entries(k, m)))
                          for key in keys)]
    return tasks


def poison_unit(store: Store, setting: PoisonSetting, key: str | None, *args: Any) -> None:
    """A task (:func:`poison_rows`): the poisons and reference models of one seed (``key``
    None), or ``key``'s row on them. ``args``: :func:`~.poisoning_study.worker_run`'s; the
    worker keeps the seed's run, so the rows of one seed load its poisons and models once."""
    from ..poisoning_study import worker_run

    run = worker_run(store, *args)
    if key is not None:
        _poison_row(run, setting, key)


# --------------------------------------------------------------------------- the bootstrap


@dataclass
class Draws:
    """Raw values of every test under B + 1 draws (row 0: the point estimate).

    ``values[test]`` and ``test_acc`` / ``poison_acc`` are (B + 1, methods); a method
    without a test has NaN there.
    """

    methods: list[str]
    values: dict[str, np.ndarray]
    test_acc: np.ndarray
    poison_acc: np.ndarray
    n_seeds: int
    n_poison_seeds: int
    n_targets: int

    @property
    def n_boot(self) -> int:
        return len(self.test_acc) - 1

    @property
    def interval_seeds(self) -> int:
        """The fewest seeds of any seed resampling (full-data or poisoning): the coarsest level
        of the joint bootstrap (the shadow targets number in the hundreds), so the widest
        stretch of any level, for a statistic that combines them all. Each test's own
        interval is read at :meth:`sample_size`, and the verdicts from those (module docstring)."""
        return min((n for n in (self.n_seeds, self.n_poison_seeds) if n > 0), default=0)

    def sample_size(self, test: str) -> int:
        """The number of units test ``test``'s values resample (:attr:`Test.source`): seeds of
        the full-data or poisoning rows, or the shadow set's targets. A test's own interval is
        read at it (a shadow test's hundreds of targets need no small-sample stretch)."""
        source = test_of(test).source
        return {"seeds": self.n_seeds, "poison": self.n_poison_seeds, "shadows": self.n_targets}.get(
            source, self.interval_seeds)

    def col(self, method: str) -> int:
        return self.methods.index(method)


def _seed_means(df: pd.DataFrame, columns: Sequence[str], methods: list[str], picks: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Per column: (B + 1, methods) means over the seeds of each draw (row 0: all seeds)."""
    out = {}
    for c in columns:
        table = df.pivot_table(index="seed", columns="method", values=c, aggfunc="mean", dropna=False)
        a = table.reindex(columns=methods).to_numpy(float)
        with np.errstate(invalid="ignore"), _quiet():
            out[c] = np.r_[np.nanmean(a, axis=0)[None, :], np.nanmean(a[picks], axis=1)]
    return out


class _quiet:
    """Silence numpy's "mean of empty slice" for methods without a test."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


#: The target columns of the shadow tests' pairs, examples and samples.
_COLUMNS = metric_registry.target_columns()


def bootstrap_values(rows: pd.DataFrame, shadow: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                     poison: pd.DataFrame | None = None, n_targets: int | None = None,
                     n_boot: int = N_BOOT, seed: int = 0, leave_out: Sequence[str] = ()) -> Draws:
    """Every test's raw values under the joint bootstrap (module docstring).

    ``rows``: full-data rows (:func:`seed_rows`); ``shadow``: ``{method: shadow_arrays}``
    (methods without shadows get NaN there), ``n_targets`` the shadow pool's size (default:
    read from the arrays); the targets resampled are every column any shadow test uses;
    ``poison``: :func:`poison_rows`. Methods are those of ``rows``, in order. ``leave_out``:
    test keys left out of the draws, so of every reading, table and verdict downstream (e.g.
    ``"klom"`` where :func:`klom_resolution` says it cannot read); the resampling is the same.
    """
    for k in leave_out:
        test_of(k)  # an unknown key fails here
    methods = list(dict.fromkeys(rows["method"]))
    if not set(REFERENCES) <= set(methods):
        raise ValueError(f"The scorecard needs the reference rows {REFERENCES}; got methods {methods}.")
    rng = np.random.default_rng(seed)
    seeds = sorted(rows["seed"].unique())
    picks = rng.integers(0, len(seeds), (n_boot, len(seeds)))
    seed_tests = [t.key for t in TESTS if t.source == "seeds"]
    d = rows.assign(seed=rows["seed"].map({s: i for i, s in enumerate(seeds)}))
    means = _seed_means(d, [*seed_tests, "test_acc"], methods, picks)
    values = {k: means[k] for k in seed_tests}
    B1 = n_boot + 1
    for t in (t.key for t in TESTS if t.source == "shadows"):
        values[t] = np.full((B1, len(methods)), np.nan)
    if shadow:
        if n_targets is None:
            n_targets = max(len(a["klom"]) for a in shadow.values())
        targets = np.unique(np.concatenate([a[c] for a in shadow.values() for c in _COLUMNS]
                                           + [np.nonzero(np.isfinite(a["klom"]))[0] for a in shadow.values()]))
        W = np.zeros((B1, n_targets))
        W[0, targets] = 1.0
        for b in range(1, B1):
            W[b, targets] = np.bincount(rng.integers(0, len(targets), len(targets)), minlength=len(targets))
        for m, arrays in shadow.items():
            if m in methods:
                for k, v in shadow_values(arrays, W).items():
                    values[k][:, methods.index(m)] = v
    poison_acc = np.full((B1, len(methods)), np.nan)
    values["gus"] = np.full((B1, len(methods)), np.nan)
    n_poison = 0
    if poison is not None and len(poison):
        ps = sorted(poison["seed"].unique())
        n_poison = len(ps)
        pp = rng.integers(0, len(ps), (n_boot, len(ps)))
        pd_ = poison.assign(seed=poison["seed"].map({s: i for i, s in enumerate(ps)}))
        pm = _seed_means(pd_, ["gus", "poison_test_acc"], methods, pp)
        values["gus"], poison_acc = pm["gus"], pm["poison_test_acc"]
    for k in leave_out:
        values.pop(k, None)
    return Draws(methods, values, means["test_acc"], poison_acc, len(seeds), n_poison,
                 0 if not shadow else len(targets))


# --------------------------------------------------------------------------- counts


def training_counts(n_seeds: int, n_methods: int, n_relearn: int, k: int, n_shadow_methods: int,
                    n_poison_seeds: int, n_poison_methods: int, shadow_tests: int = 5, oracle_tests: int = 3,
                    seed_tests: int = 5) -> pd.DataFrame:
    """Models trained (from scratch) and unlearning runs, with the store's sharing and without it.

    With sharing: per seed an original and a retrained model, one unlearning per method, and
    for the relearning attack one more unlearning per relearned method (rows do not keep
    models); one shadow set of ``k`` originals, ``k`` oracles and ``k`` retrained shadows,
    ``k`` unlearnings per shadowed method (``n_shadow_methods`` excludes the references);
    per poisoning seed a poisoned and a retrained model and one unlearning per method.
    Without sharing, each of the ``seed_tests`` full-data tests and the relearning attack
    trains its own models, and each of the ``shadow_tests`` shadow attacks (U-LiRA, RMIA,
    NeurIPS, KLOM, forget quality) its own shadows, ``oracle_tests`` of them (NeurIPS, KLOM,
    forget quality) with their own oracles.
    Counts exclude the relearning attack's own short fine-tunings (4 per method and seed).
    """
    shadow_base = 3 * k  # originals, retrained shadows and oracles
    with_sharing = {
        "full-data models (seeds)": (2 * n_seeds, n_seeds * (n_methods + n_relearn)),
        "shadow models": (shadow_base, k * n_shadow_methods),
        "poisoning models": (2 * n_poison_seeds, n_poison_seeds * n_poison_methods),
    }
    without = {
        "full-data models (seeds)": ((seed_tests + 1) * 2 * n_seeds, n_seeds * (seed_tests * n_methods + n_relearn)),
        "shadow models": ((2 * shadow_tests + oracle_tests) * k, shadow_tests * k * n_shadow_methods),
        "poisoning models": (2 * n_poison_seeds, n_poison_seeds * n_poison_methods),
    }
    rows = [{"models": what, "trained, shared": a, "unlearning runs, shared": b,
             "trained, without sharing": without[what][0], "unlearning runs, without sharing": without[what][1]}
            for what, (a, b) in with_sharing.items()]
    df = pd.DataFrame(rows).set_index("models")
    df.loc["total"] = df.sum()
    return df


@dataclass(frozen=True)
class Budget:
    """What one scorecard ran: the methods and where their hyperparameters came from
    (``hparams``, :func:`hparams_for`'s answer, references included), the full-data
    ``seeds`` and the poisoning ``poison_seeds`` as the chapter's parameters spell them
    (``"3-12"``), the methods given the deeper tests (``deep``, :func:`deeper_methods`) and
    the poisoning test (``poison_keys``, :func:`poison_methods`, references included), the
    shadow set's splits and epochs, the bootstrap's draws and KLOM's resolution.
    :attr:`text` is the verdicts' budget; :meth:`counts` the models it trained."""

    hparams: Mapping[str, tuple[dict, str]]
    seeds: str
    deep: Sequence[str]
    shadow_k: int
    shadow_epochs: int
    poison_seeds: str
    poison_keys: Sequence[str]
    n_boot: int
    klom: KlomResolution

    @property
    def n_methods(self) -> int:
        return sum(m not in REFERENCES for m in self.hparams)

    @property
    def text(self) -> str:
        """The budget every verdict of the chapter names."""
        from ..experiment import parse_seeds

        n, shipped = self.n_methods, n_shipped(self.hparams)
        return (f"{n} methods ({shipped} shipped tuned, {n - shipped} defaults) on seeds {self.seeds}; "
                f"deeper tests for {len(self.deep)}; {self.shadow_k} shadow splits x {self.shadow_epochs} epochs; "
                f"poisoning on {len(parse_seeds(self.poison_seeds))} seed(s); {self.n_boot} bootstrap draws"
                + ("" if self.klom.keep else f"; KLOM left out (N = {self.klom.n_median:g} models per side)"))

    def counts(self) -> pd.DataFrame:
        """:func:`training_counts` of this run: every method on every seed, the deeper tests'
        methods relearned and shadowed, the poisoning methods on every poisoning seed; KLOM
        left out is one shadow test (with its oracles) fewer."""
        from ..experiment import parse_seeds

        klom = int(self.klom.keep)
        return training_counts(len(parse_seeds(self.seeds)), self.n_methods, len(self.deep), self.shadow_k,
                               len(self.deep), len(parse_seeds(self.poison_seeds)),
                               sum(m not in REFERENCES for m in self.poison_keys),
                               shadow_tests=4 + klom, oracle_tests=2 + klom)


__all__ = [
    "method_keys", "n_shipped", "hparams_for", "unlearned_model", "relearning_spec", "relearning_row",
    "relearning_unit", "utility_keepers", "deeper_methods", "poison_methods", "seed_rows", "with_relearning",
    "evaluate_shadows", "shadow_arrays", "shadow_arrays_many", "shadow_values", "PoisonSetting",
    "poison_clean_splits", "poison_rows", "poison_unit", "Draws", "bootstrap_values", "training_counts", "Budget",
]
