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

Workers (``executor=``, :mod:`.executors`). Every unit of a search runs on the executor's
workers: the reference models of each seed, the studies, the rows the selection over the
tuning seeds scores (:func:`candidates` x tuning seeds) and the reruns on the evaluation
seeds; the serial code then reads them back from the store and the shared study storage,
so a search on workers returns what the serial search returns. By default each study runs
on one worker at a time, studies of different seeds and methods side by side: that is
exactly the serial search (a trial's parameters depend only on the seed, its index and the
complete trials before it). ``parallel_trials=True`` also runs one study's trials on
several workers at once through its shared storage (a journal file with a lock by
default, any RDB URL via ``storage=`` or ``$UNLEARNLIB_OPTUNA_STORAGE``), with exact trial
counts (:mod:`.trials`); the price is NSGA-III's reproducibility: generation 0 (the first
``population_size`` trials, random sampling by index) is exact, but from generation 1 on a
trial may be asked before all parents of its generation completed, so which parents
NSGA-III breeds from, and so the later trials and possibly the best one, depend on timing.
The serial executor and ``parallel_trials=False`` are deterministic throughout.

>>> from unlearnlib.studies import hpo
>>> best = hpo.tune("ft", n_trials=20, seeds=(0, 1, 2))          # doctest: +SKIP
>>> best.hparams                                                  # doctest: +SKIP
>>> result, rows = hpo.tune_and_rerun("ft", seeds=range(10))      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from .. import methods as registry
from ..data import ForgetSpec
from ..evaluation import indiscernibility, indiscernibility_to
from ..methods import Param
from ..store import Store, canonical_json, content_key
from ..training import model_spec, progress
from . import executors, trials, tuned
from .experiment import (
    Setup,
    UnitPlan,
    parse_seeds,
    reference_metrics,
    to_frame,
    worker_setup,
)
from .tables import method_labels

#: Bump when the objective or the trial protocol changes (new study names).
HPO_VERSION = 2

#: Names of the four objectives, in order (recorded in each study).
OBJECTIVES = ("|RA-RA_R|/3", "|FA-FA_R|/3", "|VA-VA_R|/3", "1-Indisc(MIA_val)")

#: Row columns kept with every trial (``trial.user_attrs["metrics"]``).
TRIAL_METRICS = ("retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test",
                 "indisc", "retdev", "rte", "unlearn_seconds")

# --------------------------------------------------------------------------- objective


def objective_vector(metrics: Mapping[str, Any], ref: Mapping[str, float],
                     forget: str | None = None) -> tuple[float, ...]:
    """Deep Unlearn's four objectives of one unlearned model against the retrained one.

    ``metrics`` and ``ref`` hold ``retain_acc``, ``forget_acc``, ``val_acc`` and
    ``mia_val`` (as :func:`~unlearnlib.evaluation.evaluate_model` returns them);
    every entry is in [0, 1/3] or [0, 1], and 0 everywhere is ideal.

    Class forgetting (``forget`` or ``metrics["forget"]`` is ``class:C``): the fourth
    term is ``1 - Indisc_R``, the val MIA's indiscernibility against the retrained
    model's own val MIA (:func:`~unlearnlib.evaluation.indiscernibility_to`), not
    against chance: there the retrained model scores MIA_val ~0.93, so Deep Unlearn's
    ``1 - Indisc(MIA_val)`` ranked it below the untouched original and tuning rewarded
    not forgetting (EVALUATION.md, corrections). Random forget sets keep Deep Unlearn's term.
    """
    gaps = tuple(abs(float(metrics[k]) - float(ref[k])) / 3 for k in ("retain_acc", "forget_acc", "val_acc"))
    spec = forget or metrics.get("forget")
    if spec is not None and ForgetSpec.parse(str(spec)).kind == "class":
        return (*gaps, 1.0 - indiscernibility_to(float(metrics["mia_val"]), float(ref["mia_val"])))
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


def bound_flags(space: Mapping[str, Param], hparams: Mapping[str, Any], tol: float = 0.02) -> dict[str, str]:
    """The hyperparameters of ``hparams`` that lie within ``tol`` of an end of their range in
    ``space`` (a resolved ``Method.space(E)``): name -> ``"low"`` or ``"high"``.

    The distance is measured as a share of the range, on the log scale for log-uniform
    parameters (lr 0.095 in [1e-5, 1e-1] is 0.6% of the four decades from the top, so
    ``"high"``); an integer at its end (epochs at the cap of 20% of training) is flagged
    too. Categoricals are never flagged, nor a range with no width, nor names outside
    ``space`` (fixed hyperparameters such as ``bn_mode``).

    Why (issue 32): a chosen value on a bound of its search space hints that the space or
    the budget, not the method, limits the tuned figure; the tables show these flags
    next to each method's held-out objective."""
    out: dict[str, str] = {}
    for name, p in space.items():
        if p.kind not in ("float", "int") or name not in hparams or p.low is None or p.high is None:
            continue
        lo, hi, v = float(p.low), float(p.high), float(hparams[name])
        if p.log:
            if lo <= 0 or v <= 0:
                continue
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        if hi <= lo:
            continue
        pos = (v - lo) / (hi - lo)
        if pos <= tol:
            out[name] = "low"
        elif pos >= 1 - tol:
            out[name] = "high"
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


def make_sampler(seed: int, population_size: int | None = None) -> Callable[[int], optuna.samplers.BaseSampler]:
    """NSGA-III seeded by the model seed, re-created for every trial index
    (:func:`~.trials.trial_seed`), so a resumed study draws what an uninterrupted one drew."""
    kw = {} if population_size is None else {"population_size": int(population_size)}

    def build(index: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # "NSGAIIISampler is experimental" on every trial
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.NSGAIIISampler(seed=trials.trial_seed(seed, index), **kw)

    return build


def open_study(store: Store, spec: Mapping[str, Any], url: str | None = None) -> optuna.Study:
    """Create or load the study for ``spec`` (a journal in ``<store>/optuna/``, or ``url``).

    The study name is the content key of ``spec``: change anything that
    determines the search and a new study starts; keep it and trials accumulate.
    Stale trials of killed runs are failed on open (:mod:`.trials`).
    """
    name = content_key("optuna", dict(spec))
    return trials.open_study(store, name, len(OBJECTIVES), OBJECTIVES, url)


def optimize(
    study: optuna.Study,
    space: Mapping[str, Param],
    evaluate: Callable[[dict[str, Any]], Mapping[str, float]],
    ref: Mapping[str, float],
    n_trials: int,
    seed: int = 0,
    enqueue: Sequence[trials.Enqueued] = (),
    lock=None,
    population_size: int | None = None,
    show_progress: bool = False,
    desc: str = "trials",
    verbose: bool = False,
) -> int:
    """Run trials until ``study`` has ``n_trials`` complete ones; return how many ran here
    (failed ones included).

    ``evaluate(hparams)`` returns the unlearned model's metrics; the objectives are
    :func:`objective_vector` against ``ref``. ``enqueue`` lists fixed trials (defaults, a
    shipped entry) run first. Failed or interrupted trials do not count and are replaced,
    so one call and several resumed calls end with the same trials (:mod:`.trials`). A
    trial whose method raises an ``Exception`` (e.g. a diverging learning rate) is failed
    with a one-line reason (``trial.user_attrs["error"]``) and the search goes on;
    ``KeyboardInterrupt`` marks it interrupted and stops. Unless ``verbose``, warnings
    raised while evaluating a trial are silenced (one summary warning names the failures).
    """
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    lock = lock if lock is not None else contextlib.nullcontext()

    def run_one(trial: optuna.Trial) -> tuple[float, ...]:
        hp = suggest(trial, space)
        with warnings.catch_warnings():
            if not verbose:  # a diverged trial's NaN losses make scikit-learn warn at length
                warnings.simplefilter("ignore")
            metrics = evaluate(hp)
        trial.set_user_attr("metrics", {k: float(metrics[k]) for k in TRIAL_METRICS if k in metrics})
        values = objective_vector(metrics, ref)
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError("the model diverged (non-finite metrics)")
        return values

    todo = max(0, int(n_trials) - sum(t.state == TrialState.COMPLETE for t in study.trials))
    with tqdm(total=todo, desc=desc, disable=not (show_progress and todo > 0), leave=False) as bar:
        out = trials.run_trials(study, lock, n_trials, make_sampler(seed, population_size), run_one,
                                enqueue, on_complete=bar.update)
    if out.errors:
        warnings.warn(f"{len(out.errors)} trial(s) failed; first: {out.errors[0]}", RuntimeWarning, stacklevel=2)
    if best_trial(study.trials) is None:
        raise RuntimeError(f"No trial of study {study.study_name} completed; first error: "
                           f"{out.errors[0] if out.errors else 'none recorded'}.")
    return out.ran


# --------------------------------------------------------------------------- setup shared by tune, widgets


# --------------------------------------------------------------------------- tuning

#: How many of each seed's best trials compete in the selection over the tuning seeds.
TOP_PER_SEED = 3
#: Sources of enqueued trials (``trial.user_attrs["source"]``); a sampled trial has none.
SHIPPED, SHIPPED_HALF, SHIPPED_BOTH, DEFAULTS = "shipped", "shipped-half", "shipped+half", "defaults"


@dataclass
class SeedResult:
    """One tuning seed's study: its best trial (by the objective norm on that seed)."""

    seed: int
    hparams: dict[str, Any]
    values: tuple[float, ...]
    norm: float
    n_trials: int
    new_trials: int
    study_name: str
    trials: list[FrozenTrial] = field(default_factory=list, repr=False)

    def running_best(self) -> list[float]:
        """Best objective norm after each trial (by sampler index): the convergence curve."""
        done = sorted((t for t in self.trials if t.values is not None),
                      key=lambda t: t.user_attrs.get(trials.INDEX, t.number))
        out, best = [], math.inf
        for t in done:
            best = min(best, objective_norm(t.values))
            out.append(best)
        return out


@dataclass
class Selection:
    """The hyperparameters chosen over the tuning seeds at one budget."""

    hparams: dict[str, Any]
    objective: float                 # mean objective norm over the tuning seeds
    per_seed: dict[int, float]       # objective norm on each tuning seed
    source: str                      # "search", "defaults", "shipped", ...
    from_seed: int                   # the study whose trial it is
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the full hyperparameters to use and how they were chosen.

    ``hparams`` is the full-budget choice and ``half`` the same analysis on the first half
    of every study's trials (the budget check of the verdicts). ``tuned`` is False for
    reference methods and methods without a search space, whose ``hparams`` are their
    defaults. ``rows_half`` holds the half-budget choice rerun on the evaluation seeds
    (filled by :func:`tune_and_rerun`).
    """

    method: str
    hparams: dict[str, Any]
    best_seed: int | None = None
    seeds: list[SeedResult] = field(default_factory=list)
    tuned: bool = True
    seconds: float = 0.0
    selection: Selection | None = None
    half: Selection | None = None
    n_trials: int = 0
    rows_half: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        return self.selection.source if self.selection else "defaults"

    def table(self) -> pd.DataFrame:
        """One row per tuning seed: that seed's best trial (objectives, norm, trials,
        hyperparameters), and ``best`` marking the study the selected trial came from."""
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
        "method": method.key,
        "defaults": method.resolve_hparams({}, setup.scale) if enqueue_defaults else None,
        "space": {k: vars(p) for k, p in space.items()},
        "sampler": "NSGAIIISampler", "objectives": list(OBJECTIVES), "hpo": HPO_VERSION,
    }


def enqueued_trials(setup: Setup, method: registry.Method, enqueue_defaults: bool,
                    warm: Mapping[str, Any] | None = None) -> list[trials.Enqueued]:
    """The fixed trials a study starts with: a shipped entry's full- and half-budget choices
    (``warm``, :mod:`.tuned`), then the method's defaults (scaled to the data), all clipped
    into the search space."""
    space = method.space(setup.recipe.epochs)
    out: list[trials.Enqueued] = []
    if warm:
        full, half = clip_to_space(warm["hparams"], space), clip_to_space(warm.get("half_hparams") or {}, space)
        if half and half != full:
            out += [trials.Enqueued(full, SHIPPED), trials.Enqueued(half, SHIPPED_HALF)]
        else:
            out.append(trials.Enqueued(full, SHIPPED_BOTH))
    if enqueue_defaults:
        out.append(trials.Enqueued(clip_to_space(method.resolve_hparams({}, setup.scale), space), DEFAULTS))
    return out


def tune_seed(
    setup: Setup, method: str, seed: int, n_trials: int, verbose: bool = False,
    enqueue_defaults: bool = True, warm: Mapping[str, Any] | None = None,
    population_size: int | None = None, storage: str | None = None,
) -> SeedResult:
    """Tune ``method`` on one model seed (resuming its stored study; several processes
    may run this on the same study at once)."""
    m = registry.get(method)
    space = m.space(setup.recipe.epochs)
    ref = reference_metrics(setup.refs(seed), setup.splits, setup.store)
    spec = study_spec(setup, m, seed, enqueue_defaults)
    if warm:
        spec["warm"] = {"hparams": warm["hparams"], "half_hparams": warm.get("half_hparams")}
    with quiet_optuna(verbose):
        study = open_study(setup.store, spec, storage)
        lock = trials.study_lock(setup.store, study.study_name)
        new = optimize(study, space, lambda hp: setup.run(method, seed, hp), ref, n_trials, seed=seed,
                       enqueue=enqueued_trials(setup, m, enqueue_defaults, warm), lock=lock,
                       population_size=population_size, show_progress=setup.show_progress,
                       desc=f"tune {method} seed {seed}", verbose=verbose)
        # a study extended by an earlier, larger search keeps its first n_trials here, so a
        # result at a budget does not depend on the study's history
        done = [t for t in study.get_trials(states=(TrialState.COMPLETE,))
                if int(t.user_attrs.get(trials.INDEX, t.number)) < int(n_trials)]
    best = best_trial(done)
    return SeedResult(seed, m.resolve_hparams(best.params, setup.scale), tuple(best.values),
                      objective_norm(best.values), len(done), new, study.study_name, done)


def in_budget(trial: FrozenTrial, n_trials: int, budget: str) -> bool:
    """Whether ``trial`` belongs to the search at ``budget`` (``full`` or ``half``).

    Full = the trials with sampler index < n_trials (a study extended by a larger search
    keeps its first n_trials); half = index < ceil(n_trials / 2), except a shipped full-budget
    entry, which stands for the shipped table's whole budget (its half-budget choice,
    enqueued beside it, stands for half of it)."""
    index = int(trial.user_attrs.get(trials.INDEX, trial.number))
    if budget == "full":
        return index < int(n_trials)
    if budget != "half":
        raise ValueError(f"Unknown budget {budget!r}; allowed: full, half.")
    if trial.user_attrs.get(trials.SOURCE) == SHIPPED:
        return False
    return index < math.ceil(n_trials / 2)


def select(studies: Sequence[SeedResult], n_trials: int, norm_of: Callable[[dict, int], float],
           resolve: Callable[[dict], dict] = dict, budget: str = "full", top: int = TOP_PER_SEED) -> Selection:
    """The hyperparameters with the smallest mean objective norm over all tuning seeds.

    Deep Unlearn keeps each seed's best trial and the best of those seeds, which rewards
    one seed's lucky draw. Here each study's ``top`` best trials at ``budget`` are the
    candidates, every candidate is scored on every tuning seed by ``norm_of(hparams,
    seed)`` (in :func:`tune`: a cached row against that seed's retrained model) and the
    one with the smallest mean norm wins (ties: the earlier study, then the earlier
    trial). With one tuning seed and ``top=1`` this is Deep Unlearn's rule.
    ``resolve`` turns a trial's parameters into the full hyperparameters.
    """
    cands = candidates(studies, n_trials, resolve, budget, top)
    if not cands:
        raise RuntimeError(f"No complete trial at the {budget} budget.")
    seeds = [s.seed for s in studies]
    rows = []
    for key, (hp, source, seed, number) in cands.items():
        norms = {t: float(norm_of(hp, t)) for t in seeds}
        rows.append({"candidate": key, "source": source, "from_seed": seed, "trial": number,
                     "objective": float(np.mean(list(norms.values()))), **{f"seed {t}": v for t, v in norms.items()}})
    table = pd.DataFrame(rows).sort_values(["objective", "from_seed", "trial"], kind="stable")
    win = table.iloc[0]
    hp, source, seed, _ = cands[win["candidate"]]
    return Selection(hp, float(win["objective"]), {t: float(win[f"seed {t}"]) for t in seeds}, source, int(seed),
                     table.reset_index(drop=True))


def candidates(studies: Sequence[SeedResult], n_trials: int, resolve: Callable[[dict], dict] = dict,
               budget: str = "full", top: int = TOP_PER_SEED) -> dict[str, tuple[dict, str, int, int]]:
    """The candidates of :func:`select`: each study's ``top`` best trials at ``budget``, by
    their resolved hyperparameters' JSON -> (hyperparameters, source, study seed, trial)."""
    cands: dict[str, tuple[dict, str, int, int]] = {}
    for s in studies:
        pool = sorted((t for t in s.trials if in_budget(t, n_trials, budget)),
                      key=lambda t: (objective_norm(t.values), t.number))
        if not pool and budget == "half" and s.trials:  # a one-trial search: its half is that trial
            pool = [min(s.trials, key=lambda t: int(t.user_attrs.get(trials.INDEX, t.number)))]
        for t in pool[:top]:
            hp = resolve(t.params)
            cands.setdefault(canonical_json(hp), (hp, t.user_attrs.get(trials.SOURCE) or "search", s.seed, t.number))
    return cands


def setup_norm(setup: Setup, method: str) -> Callable[[dict, int], float]:
    """``(hparams, seed) -> objective norm`` of ``method`` on ``setup`` (cached rows)."""
    def norm_of(hp: dict, seed: int) -> float:
        ref = reference_metrics(setup.refs(seed), setup.splits, setup.store)
        return objective_norm(objective_vector(setup.run(method, seed, hp), ref))

    return norm_of


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
    warm_start: bool | Mapping[str, Any] = False,
    population_size: int | None = None,
    storage: str | None = None,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> TuneResult:
    """Tune ``method`` on each of ``seeds`` and choose over all of them (:func:`select`).

    ``n_trials`` is the budget per seed (Deep Unlearn: 100). ``warm_start=True`` starts
    every study from the shipped tuned entry of this (dataset, model, forget, method) when
    the package has one (:mod:`.tuned`); a mapping is used as that entry. Reference methods
    (``original``, ``retrain``) and methods with an empty search space are not tuned:
    their defaults come back with ``tuned=False``.

    ``executor`` (:func:`.executors.resolve`) runs the studies and the selection's rows on
    workers; ``parallel_trials`` lets one study's trials run on several workers at once
    (reproducible only in NSGA-III's generation 0: see the module docstring).
    """
    m = registry.get(method)
    seeds = parse_seeds(seeds)
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    setup = setup or Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    if m.reference or not m.search_space:
        return TuneResult(method, m.resolve_hparams({}, setup.scale), tuned=False)
    warm = warm_entry(setup, method, warm_start)
    start = time.perf_counter()
    with executors.using(executor) as ex:
        ran: dict[tuple[str, int], int] = {}
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            tasks = study_tasks(plan, setup, method, seeds, n_trials, enqueue_defaults, warm, population_size,
                                storage, parallel_trials)
            ran = study_counts(tasks, ex.run(tasks, setup.store, f"tune {method}", setup.show_progress))
        per_seed = [tune_seed(setup, method, s, n_trials, verbose, enqueue_defaults, warm, population_size, storage)
                    for s in seeds]
        per_seed = [replace(r, new_trials=r.new_trials + ran.get((method, r.seed), 0)) for r in per_seed]
        norm_of, resolve = setup_norm(setup, method), lambda p: m.resolve_hparams(p, setup.scale)
        if ex.parallel:  # the rows the selection scores: each candidate on every tuning seed
            for budget in ("full", "half"):
                for hp, *_ in candidates(per_seed, n_trials, resolve, budget).values():
                    for s in seeds:
                        plan.row(method, s, hp)
            plan.run(f"select {method}", setup.show_progress)
    full = select(per_seed, n_trials, norm_of, resolve, "full")
    half = select(per_seed, n_trials, norm_of, resolve, "half")
    return TuneResult(method, full.hparams, full.from_seed, per_seed, True, time.perf_counter() - start,
                      full, half, int(n_trials))


def warm_entry(setup: Setup, method: str, warm_start: bool | Mapping[str, Any]) -> dict | None:
    """The entry a study starts from: ``warm_start`` itself when a mapping, the shipped one
    when True (:func:`shipped_entry`), else None."""
    if isinstance(warm_start, Mapping):
        return dict(warm_start)
    return shipped_entry(setup, method) if warm_start else None


def study_tasks(
    plan: UnitPlan, setup: Setup, method: str, seeds: Sequence[int], n_trials: int,
    enqueue_defaults: bool = True, warm: Mapping[str, Any] | None = None, population_size: int | None = None,
    storage: str | None = None, parallel_trials: bool = False,
) -> list[executors.Task]:
    """The tasks of ``method``'s studies on ``seeds`` (each needs its seed's reference models):
    one per study, or one per worker of the executor with ``parallel_trials``. A study with
    ``n_trials`` complete trials is done."""
    m = registry.get(method)
    if m.reference or not m.search_space:
        return []
    copies = plan.ex.size if parallel_trials else 1
    out = []
    for seed in seeds:
        seed = int(seed)
        spec = study_spec(setup, m, seed, enqueue_defaults)
        if warm:
            spec["warm"] = {"hparams": warm["hparams"], "half_hparams": warm.get("half_hparams")}
        done = _study_done(setup.store, spec, storage, n_trials)
        args = (plan.key, method, seed, int(n_trials), enqueue_defaults, dict(warm) if warm else None,
                population_size, storage)
        for c in range(copies):
            label = f"study {method} seed {seed}" + (f" (tuner {c + 1}/{copies})" if copies > 1 else "")
            out.append(plan.ex.task(label, study_unit, args, setup.store, needs=(plan.refs(seed),),
                                    done=done, verify=False))
    return out


def _study_done(store: Store, spec: Mapping[str, Any], storage: str | None, n_trials: int) -> Callable[[], bool]:
    """Whether the study of ``spec`` has ``n_trials`` complete trials (asked once)."""
    answer: list[bool] = []

    def done() -> bool:
        if not answer:
            with quiet_optuna():
                study = open_study(store, spec, storage)
                answer.append(sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
                              >= int(n_trials))
        return answer[0]

    return done



def study_unit(store: Store, key: executors.SetupKey, method: str, seed: int, n_trials: int,
               enqueue_defaults: bool, warm: dict | None, population_size: int | None, storage: str | None) -> int:
    """A task (:func:`study_tasks`): run trials of one study until it has ``n_trials``
    complete ones (with other tuners of the same study, :mod:`.trials`); return how many
    trials ran here."""
    return tune_seed(worker_setup(store, key), method, int(seed), int(n_trials), False, enqueue_defaults,
                     warm, population_size, storage).new_trials

def study_counts(tasks: Sequence[executors.Task], values: Mapping[executors.Task, Any]) -> dict[tuple[str, int], int]:
    """Trials run per (method, seed) by the study tasks that ran."""
    out: dict[tuple[str, int], int] = {}
    for t in tasks:
        if t in values and t.fn is study_unit:
            method, seed = t.args[1], t.args[2]
            out[(method, seed)] = out.get((method, seed), 0) + int(values[t] or 0)
    return out


def prepare_tuning(
    ex: executors.Executor, setup: Setup, methods: Sequence[str], tune_seeds: Sequence[int] | str | int,
    n_trials: int, seeds: Sequence[int] | str | int = (), enqueue_defaults: bool = True,
    warm_start: bool | Mapping[str, Any] = False, parallel_trials: bool = False, show_progress: bool = True,
) -> dict[tuple[str, int], int]:
    """Run every study of ``methods`` on ``tune_seeds`` (and the reference models of ``seeds``)
    on ``ex`` at once, so studies of different methods and seeds share the workers; the
    per-method calls that follow find them complete. Returns the trials run per (method,
    seed). Nothing to do on the serial executor."""
    if not ex.parallel:
        return {}
    plan = UnitPlan.for_setup(ex, setup)
    tasks = []
    for key in methods:
        tasks += study_tasks(plan, setup, key, parse_seeds(tune_seeds), n_trials, enqueue_defaults,
                             warm_entry(setup, key, warm_start), parallel_trials=parallel_trials)
    for s in (parse_seeds(seeds) if seeds not in ((), None, "") else []):
        tasks.append(plan.refs(s))
    return study_counts(tasks, ex.run(tasks, setup.store, "tuning", show_progress))


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
    warm_start: bool | Mapping[str, Any] = False,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> tuple[TuneResult, pd.DataFrame]:
    """:func:`tune` on ``tune_seeds``, then rerun the chosen hyperparameters on every one of
    ``seeds`` (cached rows, Deep Unlearn's seeds 0..9). Rows gain ``tuned``, ``n_trials``,
    ``hparams_source`` and ``tuning_seed`` (whether the seed was one of the tuning seeds).
    The half-budget choice is rerun too, into ``result.rows_half``. ``executor`` and
    ``parallel_trials``: as for :func:`tune`; the reruns are units too."""
    seeds = parse_seeds(seeds)
    setup = setup or Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    with executors.using(executor) as ex:
        result = tune(method, seeds=tune_seeds, n_trials=n_trials, verbose=verbose,
                      enqueue_defaults=enqueue_defaults, setup=setup, warm_start=warm_start, executor=ex,
                      parallel_trials=parallel_trials)
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            for hp in [result.hparams] + ([result.half.hparams] if result.half else []):
                for s in seeds:
                    plan.row(method, s, hp)
            plan.run(f"rerun {method}", setup.show_progress)
    tuning = set(parse_seeds(tune_seeds))

    def rerun(hp: dict, source: str) -> pd.DataFrame:
        return to_frame([{**setup.run(method, s, hp), "tuned": result.tuned,
                          "n_trials": int(n_trials) if result.tuned else 0, "hparams_source": source,
                          "tuning_seed": s in tuning} for s in seeds])

    rows = rerun(result.hparams, result.source)
    result.rows_half = rerun(result.half.hparams, result.half.source) if result.half else rows
    return result, rows


def check_held_out(tune_seeds: Sequence[int] | str | int, seeds: Sequence[int] | str | int,
                   entries: Iterable[Mapping[str, Any] | None] = ()) -> None:
    """Refuse evaluation seeds that are tuning seeds, before anything trains: those of this
    search and those the shipped ``entries`` it starts from were chosen on. A method scored
    on the seed its hyperparameters were picked on is optimistic there (the winner's curse:
    the shipped mnist1d entries' seed-0 objectives sat 0.035 below their held-out mean), and
    by a different amount per method, so it reorders a ranking (issue 31)."""
    tuning = set(parse_seeds(tune_seeds)) | {int(s) for e in entries if e for s in e.get("tuning_seeds", ())}
    evaluation = parse_seeds(seeds)
    both = sorted(tuning & set(evaluation))
    if both:
        start = max(tuning) + 1
        raise ValueError(
            f"Evaluation seeds {both} are tuning seeds (tuned on {sorted(tuning)}): score tuned methods on "
            f"held-out seeds, e.g. {start}-{start + len(evaluation) - 1}.")


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
    warm_start: bool = False,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> tuple[dict[str, TuneResult], pd.DataFrame]:
    """:func:`tune_and_rerun` for several methods on shared reference models.

    The ``original`` and ``retrain`` rows of every seed are always included (the
    comparisons need them). Returns the per-method results and all full-budget rows
    (each result's ``rows_half`` holds its half-budget rows). With ``executor``, every
    method's studies run on the workers together first (:func:`prepare_tuning`).
    """
    keys = registry.parse_methods(methods)
    keys = ["original", "retrain"] + [k for k in keys if k not in ("original", "retrain")]
    setup = Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    check_held_out(tune_seeds, seeds, [warm_entry(setup, k, warm_start) for k in keys])
    results, frames = {}, []
    with executors.using(executor) as ex:
        ran = prepare_tuning(ex, setup, keys, tune_seeds, n_trials, seeds, enqueue_defaults, warm_start,
                             parallel_trials, show_progress)
        for key in progress(keys, "methods", enabled=show_progress):
            results[key], rows = tune_and_rerun(key, tune_seeds=tune_seeds, seeds=seeds, n_trials=n_trials,
                                                verbose=verbose, enqueue_defaults=enqueue_defaults, setup=setup,
                                                warm_start=warm_start, executor=ex, parallel_trials=parallel_trials)
            add_trial_counts(results[key], ran)
            frames.append(rows)
    return results, to_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def add_trial_counts(result: TuneResult, ran: Mapping[tuple[str, int], int]) -> TuneResult:
    """Add the trials that :func:`prepare_tuning` ran to ``result``'s per-seed ``new_trials``."""
    result.seeds = [replace(s, new_trials=s.new_trials + ran.get((result.method, s.seed), 0))
                    for s in result.seeds]
    return result


def space_fingerprint(setup: Setup, method: str) -> str:
    """What a tuned entry depends on besides the data: the resolved search space, the
    scaled defaults, the objectives and the protocol version."""
    m = registry.get(method)
    return content_key("tuned-space", {
        **m.identity, "space": {k: vars(p) for k, p in m.space(setup.recipe.epochs).items()},
        "defaults": m.resolve_hparams({}, setup.scale), "objectives": list(OBJECTIVES), "hpo": HPO_VERSION})


def shipped_entry(setup: Setup, method: str, path: str | None = None) -> dict | None:
    """The package's tuned entry for this setting (:mod:`.tuned`), or None."""
    return tuned.lookup(setup.splits.dataset, setup.model, setup.splits.forget_spec, method,
                        setup.recipe.as_dict(), space_fingerprint(setup, method), setup.splits.fingerprint(),
                        path)


def _cpu_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def make_entry(result: TuneResult, setup: Setup, rows: pd.DataFrame, seconds: float) -> dict:
    """A table entry (:mod:`.tuned`) for ``result``, rerun as ``rows``, with its provenance."""
    if not result.tuned or result.selection is None:
        raise ValueError(f"{result.method} was not tuned; there is nothing to ship.")
    ref = {s: reference_metrics(setup.refs(s), setup.splits, setup.store) for s in sorted(set(rows["seed"]))}
    rerun = {int(r["seed"]): objective_norm(objective_vector(r, ref[r["seed"]])) for _, r in rows.iterrows()}

    def r4(x: float) -> float:
        return round(float(x), 5)

    return with_derived({
        "dataset": setup.splits.dataset, "model": setup.model, "forget": setup.splits.forget_spec,
        "method": result.method, "hparams": result.hparams,
        "half_hparams": result.half.hparams if result.half else None,
        "objective": r4(result.selection.objective),
        "per_seed": {str(k): r4(v) for k, v in result.selection.per_seed.items()},
        "half_objective": r4(result.half.objective) if result.half else None,
        "source": result.selection.source, "from_seed": result.selection.from_seed,
        "trials_per_seed": result.n_trials, "tuning_seeds": [s.seed for s in result.seeds],
        "complete_trials": {str(s.seed): s.n_trials for s in result.seeds},
        "convergence": {str(s.seed): [r4(v) for v in s.running_best()] for s in result.seeds},
        "rerun": {str(k): r4(v) for k, v in sorted(rerun.items())},
        "sampler": "NSGAIIISampler, seeded by the model seed and re-created per trial index",
        "objectives": list(OBJECTIVES), "selection": f"top {TOP_PER_SEED} per seed, mean norm over tuning seeds",
        "recipe": setup.recipe.as_dict(), "numerics": model_spec(setup.splits, setup.model, setup.recipe, 0)["numerics"],
        # torch's CPU kernel path (AVX2, AVX512, ...): a per-seed objective is reproducible only on
        # the same path (measured: ft's seed-0 norm 0.017 / 0.023 / 0.081 on one machine's AVX512,
        # AVX2 and AVX2-with-MKL-AVX2 paths); not a store key, so caches stay shared across nodes
        "cpu_capability": _cpu_capability(),
        "fingerprint": space_fingerprint(setup, result.method), "splits": setup.splits.fingerprint(),
        "wall_seconds": round(float(seconds), 1),
        **tuned.provenance(),
    })


def with_derived(entry: Mapping[str, Any]) -> dict:
    """``entry`` with the fields derived from its recorded ones (issue 32): ``held_out``
    (:func:`.tuned.held_out` over the rerun seeds that were not tuning seeds; NaN stored as
    null) and ``at_bound`` (:func:`bound_flags` of ``hparams`` in the method's space at the
    entry's training epochs). :func:`make_entry` and the backfill of older entries both go
    through here, so the shipped fields are one formula; nothing trains."""
    held = tuned.held_out(entry)
    held = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in held.items()}
    space = registry.get(entry["method"]).space(int(entry["recipe"]["epochs"]))
    return {**entry, "held_out": held, "at_bound": bound_flags(space, entry["hparams"])}


def half_budget_rows(results: Mapping[str, TuneResult]) -> pd.DataFrame:
    """All methods' half-budget rows (references included), for the verdicts' budget check."""
    frames = [r.rows_half for r in results.values() if r.rows_half is not None]
    return to_frame(pd.concat(frames, ignore_index=True).to_dict("records")) if frames else to_frame([])


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
    ct = method_labels(df).get("ct", "ct").replace("ct", "CT", 1)  # "CT (1-D extension)" on a 1-D CNN
    if missing(best):
        lines.append(f"- MSG and {ct} best: cannot check, {', '.join(missing(best))} not in this run.")
    else:
        ok = [m for m in best if pos[m] <= top]
        verdict = "holds" if len(ok) == 2 else ("holds in part" if ok else "does not hold")
        lines.append(f"- MSG and {ct} best: {verdict} here: MSG is {pos['msg']}/{n} and {ct} {pos['ct']}/{n} "
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
    "headline", "quiet_optuna", "make_sampler", "select", "Selection", "in_budget", "space_fingerprint",
    "check_held_out", "shipped_entry", "make_entry", "half_budget_rows", "enqueued_trials", "candidates", "warm_entry",
    "study_tasks", "prepare_tuning", "add_trial_counts", "study_counts", "bound_flags", "with_derived",
]
