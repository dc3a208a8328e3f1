"""Hyperparameter search with Optuna, following Deep Unlearn's protocol.

Deep Unlearn (Cadet et al. 2024, arXiv 2410.01276; ../shared/reference/EVALUATION.md)
tunes every method per (dataset, model, method, model seed in {0, 1, 2}) with
Optuna's NSGA-III sampler, seeded by the model seed, for 100 trials, minimising
the vector

    ( |RA_u - RA_R| / 3, |FA_u - FA_R| / 3, |VA_u - VA_R| / 3, 1 - Indisc(MIA_val) )

against the retrained model R of the same seed. The best trial of a seed is the
one with the smallest L2 norm of that vector; the best of the tuning seeds is
then rerun on every evaluation seed (0..9 in the paper).

Studies live in SQLite files inside the :class:`~unlearnlib.store.Store`
(``<store>/optuna/<key>.db``), named by a content key of everything that
determines them, and are opened with ``load_if_exists=True``: an interrupted
search resumes and only the missing trials run. Every trial is also an
:func:`~unlearnlib.studies.experiment.run_method` row, cached like any other result.

Departure from the paper: the first trial of a fresh study evaluates the
method's defaults (clipped into the search space), so a tuned method is never
worse than its defaults on the tuning seed, which matters for small budgets
(``enqueue_defaults=False`` gives the paper's protocol exactly).

>>> from unlearnlib import hpo
>>> best = hpo.tune("ft", n_trials=20, seeds=(0, 1, 2))          # doctest: +SKIP
>>> best.hparams                                                  # doctest: +SKIP
>>> result, rows = hpo.tune_and_rerun("ft", seeds=range(10))      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from .. import methods as registry
from ..data import Splits, load_splits
from ..evaluation import indiscernibility
from ..methods import Param
from ..store import Store, content_key
from ..training import ReferenceModels, default_recipe, model_spec, progress, train_reference_models
from .experiment import GridConfig, parse_seeds, reference_metrics, run_method, to_frame

#: Bump when the objective or the trial protocol changes (new study names).
HPO_VERSION = 1

#: Names of the four objectives, in order (recorded in each study).
OBJECTIVES = ("|RA-RA_R|/3", "|FA-FA_R|/3", "|VA-VA_R|/3", "1-Indisc(MIA_val)")

#: Row columns kept with every trial (``trial.user_attrs["metrics"]``).
TRIAL_METRICS = ("retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test",
                 "indisc", "retdev", "rte", "unlearn_seconds")

# --------------------------------------------------------------------------- objective


def objective_vector(metrics: Mapping[str, float], ref: Mapping[str, float]) -> tuple[float, ...]:
    """Deep Unlearn's four objectives of one unlearned model against the retrained one.

    ``metrics`` and ``ref`` hold ``retain_acc``, ``forget_acc``, ``val_acc`` and
    ``mia_val`` (as :func:`~unlearnlib.evaluation.evaluate_model` returns them);
    every entry is in [0, 1/3] or [0, 1], and 0 everywhere is ideal.
    """
    gaps = tuple(abs(float(metrics[k]) - float(ref[k])) / 3 for k in ("retain_acc", "forget_acc", "val_acc"))
    return (*gaps, 1.0 - indiscernibility(float(metrics["mia_val"])))


def objective_norm(values: Iterable[float]) -> float:
    """L2 norm of an objective vector: how Deep Unlearn picks the best trial."""
    return math.sqrt(sum(float(v) ** 2 for v in values))


def best_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the smallest L2 norm of its objectives (ties: the earliest)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    return min(done, key=lambda t: (objective_norm(t.values), t.number), default=None)


# --------------------------------------------------------------------------- search space


def suggest(trial: optuna.Trial, space: Mapping[str, Param]) -> dict[str, Any]:
    """Draw one value per hyperparameter of ``space`` (a resolved ``Method.space(E)``)."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        check_param(name, p)
        if p.kind == "float":
            out[name] = trial.suggest_float(name, float(p.low), float(p.high), log=p.log)
        elif p.kind == "int":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
        else:
            out[name] = trial.suggest_categorical(name, list(p.choices))
    return out


def check_param(name: str, p: Param) -> None:
    """Fail early on a range Optuna cannot sample; the message says what is allowed."""
    if p.kind not in ("float", "int", "categorical"):
        raise ValueError(f"Hyperparameter {name!r} has kind {p.kind!r}; allowed: float, int, categorical.")
    if p.kind == "categorical":
        if not p.choices:
            raise ValueError(f"Categorical hyperparameter {name!r} has no choices.")
        return
    if p.low is None or p.high is None:
        raise ValueError(f"Hyperparameter {name!r} needs both bounds; resolve epoch bounds with "
                         "Method.space(train_epochs) first.")
    if p.low > p.high:
        raise ValueError(f"Hyperparameter {name!r} has low {p.low} > high {p.high}.")
    if p.log and p.low <= 0:
        raise ValueError(f"Log-scale hyperparameter {name!r} needs low > 0; got {p.low}.")


def clip_to_space(values: Mapping[str, Any], space: Mapping[str, Param]) -> dict[str, Any]:
    """``values`` restricted to ``space``'s keys and clipped into its ranges (for enqueueing).

    A categorical value that is not among the choices is dropped (the sampler draws it).
    """
    out: dict[str, Any] = {}
    for name, p in space.items():
        if name not in values:
            continue
        v = values[name]
        if p.kind == "categorical":
            if v in p.choices:
                out[name] = v
            continue
        v = min(max(float(v), float(p.low)), float(p.high))
        out[name] = int(round(v)) if p.kind == "int" else v
    return out


# --------------------------------------------------------------------------- studies


@contextlib.contextmanager
def quiet_optuna(verbose: bool = False) -> Iterator[None]:
    """Silence Optuna's per-trial log lines and experimental warnings unless ``verbose``."""
    if verbose:
        yield
        return
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(old)


def sampler_seed(seed: int, n_existing: int) -> int:
    """NSGA-III seed: the model seed for a fresh study; on resume, a seed derived from it
    and the number of trials already stored, so the resumed run does not redraw the
    parameters of the first trials (its random generator would restart)."""
    return seed if n_existing == 0 else (seed * 1_000_003 + n_existing) % 2**32


def open_study(store: Store, spec: Mapping[str, Any], seed: int) -> optuna.Study:
    """Create or load the study for ``spec`` in ``<store>/optuna/<key>.db``.

    The study name is the content key of ``spec``: change anything that
    determines the search and a new study starts; keep it and trials accumulate.
    """
    name = content_key("optuna", dict(spec))
    url = f"sqlite:///{store.path_for('optuna', f'{name}.db')}"
    storage = optuna.storages.RDBStorage(url)
    existing = optuna.load_study(study_name=name, storage=storage) if _exists(storage, name) else None
    n = len(existing.trials) if existing else 0
    sampler = optuna.samplers.NSGAIIISampler(seed=sampler_seed(seed, n))
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler,
                                directions=["minimize"] * len(OBJECTIVES), load_if_exists=True)
    if n == 0:
        study.set_metric_names(list(OBJECTIVES))
    return study


def _exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


def optimize(
    study: optuna.Study,
    space: Mapping[str, Param],
    evaluate: Callable[[dict[str, Any]], Mapping[str, float]],
    ref: Mapping[str, float],
    n_trials: int,
    defaults: Mapping[str, Any] | None = None,
    show_progress: bool = False,
    desc: str = "trials",
    verbose: bool = False,
) -> int:
    """Run trials until ``study`` has ``n_trials`` complete ones; return how many ran
    (failed ones included).

    ``evaluate(hparams)`` returns the unlearned model's metrics; the objectives are
    :func:`objective_vector` against ``ref``. Failed or interrupted trials do not
    count: a resumed search reruns only what is missing. A trial whose method
    raises an ``Exception`` (e.g. a diverging learning rate) is marked failed and the
    search goes on; ``KeyboardInterrupt`` marks it failed and stops. Unless ``verbose``,
    ``RuntimeWarning``s raised while evaluating a trial are silenced (one summary warning
    names the failed trials).
    """
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    done = sum(t.state == TrialState.COMPLETE for t in study.trials)
    todo = max(0, int(n_trials) - done)
    if defaults and not study.trials:
        study.enqueue_trial(clip_to_space(defaults, space))
    errors: list[str] = []
    # Failed trials are replaced within this call, so one call and several resumed calls
    # end with the same trials; the cap stops a search whose every trial fails.
    max_failures = max(10, 2 * todo)
    ran = 0
    with tqdm(total=todo, desc=desc, disable=not (show_progress and todo > 0), leave=False) as bar:
        while done < int(n_trials) and len(errors) < max_failures:
            ran += 1
            trial = study.ask()
            try:
                hp = suggest(trial, space)
                with warnings.catch_warnings():
                    if not verbose:  # a diverged trial's NaN losses make sklearn warn at length
                        warnings.simplefilter("ignore", RuntimeWarning)
                    metrics = evaluate(hp)
                values = objective_vector(metrics, ref)
            except Exception as e:  # noqa: BLE001 - a failed trial must not end the search
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                errors.append(f"trial {trial.number} {trial.params}: {type(e).__name__}: {first_line}")
                trial.set_user_attr("error", errors[-1])
                study.tell(trial, state=TrialState.FAIL)
                continue
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            trial.set_user_attr("metrics", {k: float(metrics[k]) for k in TRIAL_METRICS if k in metrics})
            if all(math.isfinite(v) for v in values):
                study.tell(trial, list(values))
                done += 1
                bar.update()
            else:
                errors.append(f"trial {trial.number}: non-finite objectives {values}")
                study.tell(trial, state=TrialState.FAIL)
    if errors:
        warnings.warn(f"{len(errors)} trial(s) failed; first: {errors[0]}", RuntimeWarning, stacklevel=2)
    if best_trial(study.trials) is None:
        raise RuntimeError(f"No trial of study {study.study_name} completed; first error: "
                           f"{errors[0] if errors else 'none recorded'}.")
    return ran


# --------------------------------------------------------------------------- setup shared by tune, widgets


@dataclass
class Setup:
    """Splits, recipe and store of one (dataset, model, forget, epochs) with the
    reference models of each seed loaded once (trained or read from the store)."""

    splits: Splits
    model: str
    recipe: Any
    store: Store
    show_progress: bool = True
    _refs: dict[int, ReferenceModels] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls, dataset: str = "mnist1d", model: str = "cnn1d", forget: str = "random:0.1",
        epochs: int | None = None, device: str = "cpu", data_root: str | None = None,
        store: Store | None = None, show_progress: bool = True,
    ) -> "Setup":
        GridConfig(dataset, model, ["original"], [0], forget, epochs, data_root, device)  # validates
        splits = load_splits(dataset, forget, data_root, device)
        recipe = default_recipe(dataset).with_(epochs=epochs)
        return cls(splits, model, recipe, store or Store(), show_progress)

    def refs(self, seed: int) -> ReferenceModels:
        if seed not in self._refs:
            self._refs[seed] = train_reference_models(
                self.splits, self.model, seed, self.recipe, self.store, self.show_progress)
        return self._refs[seed]

    def run(self, method: str, seed: int, hparams: Mapping[str, Any] | None = None) -> dict:
        """One cached :func:`~unlearnlib.studies.experiment.run_method` row."""
        return run_method(method, self.refs(seed), self.splits, dict(hparams or {}), self.store)[0]


# --------------------------------------------------------------------------- tuning


@dataclass
class SeedResult:
    """Best trial of one tuning seed."""

    seed: int
    hparams: dict[str, Any]
    values: tuple[float, ...]
    norm: float
    n_trials: int
    new_trials: int
    study_name: str


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the full hyperparameters to use and the per-seed bests.

    ``tuned`` is False for reference methods and methods without a search space,
    whose ``hparams`` are their defaults.
    """

    method: str
    hparams: dict[str, Any]
    best_seed: int | None = None
    seeds: list[SeedResult] = field(default_factory=list)
    tuned: bool = True
    seconds: float = 0.0

    def table(self) -> pd.DataFrame:
        """One row per tuning seed: objectives, norm, trials and the best hyperparameters."""
        rows = [{"method": self.method, "seed": s.seed, **dict(zip(OBJECTIVES, s.values, strict=True)),
                 "norm": s.norm, "trials": s.n_trials, "best": s.seed == self.best_seed, **s.hparams}
                for s in self.seeds]
        return pd.DataFrame(rows)


def study_spec(setup: Setup, method: registry.Method, seed: int, enqueue_defaults: bool) -> dict:
    """Everything that determines a study (its name): data, model, recipe, seed, method,
    resolved search space, defaults and the objective version. Not ``n_trials``: a larger
    budget extends the same study."""
    space = method.space(setup.recipe.epochs)
    return {
        **model_spec(setup.splits, setup.model, setup.recipe, seed),
        "method": method.key, "defaults": method.defaults if enqueue_defaults else None,
        "space": {k: vars(p) for k, p in space.items()},
        "sampler": "NSGAIIISampler", "objectives": list(OBJECTIVES), "hpo": HPO_VERSION,
    }


def tune_seed(
    setup: Setup, method: str, seed: int, n_trials: int, verbose: bool = False,
    enqueue_defaults: bool = True,
) -> SeedResult:
    """Tune ``method`` on one model seed (resuming its stored study)."""
    m = registry.get(method)
    space = m.space(setup.recipe.epochs)
    ref = reference_metrics(setup.refs(seed), setup.splits, setup.store)
    with quiet_optuna(verbose):
        study = open_study(setup.store, study_spec(setup, m, seed, enqueue_defaults), seed)
        new = optimize(study, space, lambda hp: setup.run(method, seed, hp), ref, n_trials,
                       defaults=m.defaults if enqueue_defaults else None,
                       show_progress=setup.show_progress, desc=f"tune {method} seed {seed}",
                       verbose=verbose)
        best = best_trial(study.trials)
        n_done = sum(t.state == TrialState.COMPLETE for t in study.trials)
    return SeedResult(seed, m.resolve_hparams(best.params), tuple(best.values),
                      objective_norm(best.values), n_done, new, study.study_name)


def tune(
    method: str,
    dataset: str = "mnist1d",
    model: str = "cnn1d",
    seeds: Sequence[int] | str | int = (0, 1, 2),
    n_trials: int = 100,
    forget: str = "random:0.1",
    epochs: int | None = None,
    device: str = "cpu",
    store: Store | None = None,
    data_root: str | None = None,
    verbose: bool = False,
    show_progress: bool = True,
    enqueue_defaults: bool = True,
    setup: Setup | None = None,
) -> TuneResult:
    """Tune ``method`` on each of ``seeds`` and keep the best seed's hyperparameters.

    ``n_trials`` is the budget per seed (Deep Unlearn: 100). Reference methods
    (``original``, ``retrain``) and methods with an empty search space are not
    tuned: their defaults come back with ``tuned=False``.
    """
    m = registry.get(method)
    seeds = parse_seeds(seeds)
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    setup = setup or Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    if m.reference or not m.search_space:
        return TuneResult(method, m.resolve_hparams(), tuned=False)
    start = time.perf_counter()
    per_seed = [tune_seed(setup, method, s, n_trials, verbose, enqueue_defaults) for s in seeds]
    best = min(per_seed, key=lambda r: (r.norm, r.seed))
    return TuneResult(method, best.hparams, best.seed, per_seed, True, time.perf_counter() - start)


def tune_and_rerun(
    method: str,
    dataset: str = "mnist1d",
    model: str = "cnn1d",
    tune_seeds: Sequence[int] | str | int = (0, 1, 2),
    seeds: Sequence[int] | str | int = tuple(range(10)),
    n_trials: int = 100,
    forget: str = "random:0.1",
    epochs: int | None = None,
    device: str = "cpu",
    store: Store | None = None,
    data_root: str | None = None,
    verbose: bool = False,
    show_progress: bool = True,
    enqueue_defaults: bool = True,
    setup: Setup | None = None,
) -> tuple[TuneResult, pd.DataFrame]:
    """:func:`tune` on ``tune_seeds``, then rerun the best hyperparameters on every one of
    ``seeds`` (cached rows, Deep Unlearn's seeds 0..9). Rows gain ``tuned`` and ``n_trials``."""
    seeds = parse_seeds(seeds)
    setup = setup or Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    result = tune(method, seeds=tune_seeds, n_trials=n_trials, verbose=verbose,
                  enqueue_defaults=enqueue_defaults, setup=setup)
    rows = [{**setup.run(method, s, result.hparams), "tuned": result.tuned,
             "n_trials": int(n_trials) if result.tuned else 0} for s in seeds]
    return result, to_frame(rows)


def tune_grid(
    methods: Sequence[str] | str = "all",
    dataset: str = "mnist1d",
    model: str = "cnn1d",
    tune_seeds: Sequence[int] | str | int = (0, 1, 2),
    seeds: Sequence[int] | str | int = tuple(range(10)),
    n_trials: int = 100,
    forget: str = "random:0.1",
    epochs: int | None = None,
    device: str = "cpu",
    store: Store | None = None,
    data_root: str | None = None,
    verbose: bool = False,
    show_progress: bool = True,
    enqueue_defaults: bool = True,
) -> tuple[dict[str, TuneResult], pd.DataFrame]:
    """:func:`tune_and_rerun` for several methods on shared reference models.

    The ``original`` and ``retrain`` rows of every seed are always included (the
    comparisons need them). Returns the per-method results and all rows.
    """
    keys = registry.parse_methods(methods)
    keys = ["original", "retrain"] + [k for k in keys if k not in ("original", "retrain")]
    setup = Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    results, frames = {}, []
    for key in progress(keys, "methods", enabled=show_progress):
        results[key], rows = tune_and_rerun(key, tune_seeds=tune_seeds, seeds=seeds, n_trials=n_trials,
                                            verbose=verbose, enqueue_defaults=enqueue_defaults, setup=setup)
        frames.append(rows)
    return results, to_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """All trials of a study: number, state, parameters, objectives, norm and metrics."""
    rows = []
    for t in study.trials:
        values = t.values or [math.nan] * len(OBJECTIVES)
        rows.append({"trial": t.number, "state": t.state.name, **t.params,
                     **dict(zip(OBJECTIVES, values, strict=True)), "norm": objective_norm(values),
                     **t.user_attrs.get("metrics", {})})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reading a tuned grid


def add_objectives(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the four objectives and their L2 norm per row, against the
    ``retrain`` row of the same seed (rows of seeds without one get NaN)."""
    ref = df[df["method"] == "retrain"].drop_duplicates("seed").set_index("seed")
    out = df.copy()
    vals = [objective_vector(r, ref.loc[r["seed"]]) if r["seed"] in ref.index else (math.nan,) * 4
            for _, r in df.iterrows()]
    for i, name in enumerate(OBJECTIVES):
        out[name] = [v[i] for v in vals]
    out["objective_norm"] = [objective_norm(v) for v in vals]
    return out


def ranking(df: pd.DataFrame) -> pd.DataFrame:
    """Rank the unlearning methods of a grid (references excluded), Deep Unlearn style.

    Per method: mean RetDev (lower is better), mean indiscernibility of the val
    MIA (higher), geometric-mean RTE (higher) and the mean objective norm; a rank
    per criterion (1 = best), ``quality_rank`` = mean of the RetDev and Indisc
    ranks, ``overall_rank`` = mean of all three ranks. Sorted by ``overall_rank``.
    """
    d = add_objectives(df)
    d = d[~d["method"].isin(["original", "retrain"])]
    if d.empty:
        raise ValueError("ranking needs rows of at least one unlearning method besides original/retrain.")
    g = d.groupby("method")
    out = pd.DataFrame({
        "retdev": g["retdev"].mean(), "indisc": g["indisc"].mean(),
        "rte": g["rte"].apply(lambda x: float(np.exp(np.log(np.clip(x.to_numpy(float), 1e-12, None)).mean()))),
        "objective_norm": g["objective_norm"].mean(), "seeds": g["seed"].nunique(),
    })
    out["retdev_rank"] = out["retdev"].rank(method="min")
    out["indisc_rank"] = out["indisc"].rank(ascending=False, method="min")
    out["rte_rank"] = out["rte"].rank(ascending=False, method="min")
    out["quality_rank"] = (out["retdev_rank"] + out["indisc_rank"]) / 2
    out["overall_rank"] = (out["retdev_rank"] + out["indisc_rank"] + out["rte_rank"]) / 3
    return out.sort_values(["overall_rank", "quality_rank", "objective_norm"])


def headline(df: pd.DataFrame) -> str:
    """Markdown text checking Deep Unlearn's headline on a tuned grid, from the numbers.

    Claims checked (METHODS.md): (1) MSG and CT are the best methods overall (here:
    in the top third of ``overall_rank``); (2) GA and SRL are weak (bottom half of
    ``quality_rank``); (3) NG+ is the baseline to beat (it beats FT, GA and SRL on
    ``quality_rank``; the methods that beat it are named).
    """
    r = ranking(df)
    n = len(r)
    pos = {m: i + 1 for i, m in enumerate(r.index)}
    qpos = {m: i + 1 for i, m in enumerate(r.sort_values(["quality_rank", "objective_norm"]).index)}
    top = max(1, math.ceil(n / 3))
    lines = [f"Ranking {n} tuned methods over {int(r['seeds'].max())} seed(s); the top three overall "
             f"(mean rank of RetDev, indiscernibility and RTE) are "
             + ", ".join(f"**{m}**" for m in r.index[:3]) + "."]

    def missing(ms: Sequence[str]) -> list[str]:
        return [m for m in ms if m not in pos]

    best = ["msg", "ct"]
    if missing(best):
        lines.append(f"- MSG and CT best: cannot check, {', '.join(missing(best))} not in this run.")
    else:
        ok = [m for m in best if pos[m] <= top]
        verdict = "holds" if len(ok) == 2 else ("holds in part" if ok else "does not hold")
        lines.append(f"- MSG and CT best: {verdict} here: MSG is {pos['msg']}/{n} and CT {pos['ct']}/{n} "
                     f"overall (top third = 1..{top}); their RetDev {r.loc['msg', 'retdev']:.3f} and "
                     f"{r.loc['ct', 'retdev']:.3f}, RTE {r.loc['msg', 'rte']:.1f} and {r.loc['ct', 'rte']:.1f}.")
    weak = ["ga", "srl"]
    if missing(weak):
        lines.append(f"- GA and SRL weak: cannot check, {', '.join(missing(weak))} not in this run.")
    else:
        half = n / 2
        ok = [m for m in weak if qpos[m] > half]
        verdict = "holds" if len(ok) == 2 else ("holds in part" if ok else "does not hold")
        lines.append(f"- GA and SRL weak: {verdict} here: by quality (RetDev and indiscernibility) GA is "
                     f"{qpos['ga']}/{n} and SRL {qpos['srl']}/{n} (weak = below the middle, > {half:g}).")
    if "ngplus" not in qpos:
        lines.append("- NG+ the baseline to beat: cannot check, ngplus not in this run.")
    else:
        simple = [m for m in ("ft", "ga", "srl") if m in qpos]
        beaten = [m for m in simple if qpos[m] > qpos["ngplus"]]
        better = [m for m in r.sort_values("quality_rank").index if qpos[m] < qpos["ngplus"]]
        verdict = "holds" if simple and len(beaten) == len(simple) else (
            "holds in part" if beaten else "does not hold")
        lines.append(f"- NG+ the baseline to beat: {verdict} here: NG+ is {qpos['ngplus']}/{n} by quality, "
                     f"ahead of {', '.join(beaten) or 'none'} of the simple baselines {', '.join(simple)}; "
                     f"methods that beat it: {', '.join(better) or 'none'}.")
    fa = df.groupby("method")["forget_acc"].mean()
    if {"original", "retrain"} <= set(fa.index):
        gap = fa["original"] - fa["retrain"]
        idle = [m for m in r.index if abs(fa[m] - fa["original"]) < abs(gap) / 4]
        if idle:
            lines.append(f"- Caveat: the original and the retrained model differ by only {gap:.3f} in forget "
                         f"accuracy, so RetDev barely separates methods; {', '.join(idle)} stay within a "
                         "quarter of that gap of the original model (they hardly unlearn with these "
                         "hyperparameters), which indiscernibility and the objective norm expose.")
    return "\n".join(lines)


__all__ = [
    "OBJECTIVES", "objective_vector", "objective_norm", "best_trial", "suggest", "check_param",
    "clip_to_space", "open_study", "optimize", "Setup", "SeedResult", "TuneResult", "tune",
    "tune_seed", "tune_and_rerun", "tune_grid", "trials_frame", "add_objectives", "ranking",
    "headline", "quiet_optuna", "sampler_seed",
]
