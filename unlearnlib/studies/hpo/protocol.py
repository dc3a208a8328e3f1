"""Deep Unlearn's tuning protocol, one study at a time: the four objectives and their norm,
the search space (drawing, checking and clipping hyperparameters, flagging values on a
bound) and one Optuna study's trials (NSGA-III re-created per trial index, stored studies
named by a content key, :func:`optimize`). The package docstring (:mod:`.`) describes
the protocol and its departures from the paper."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from ...data import ForgetSpec
from ...evaluation import indiscernibility, indiscernibility_to
from ...methods import Param
from ...store import Store, content_key
from .. import trials

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
    (:func:`~..trials.trial_seed`), so a resumed study draws what an uninterrupted one drew."""
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
    Stale trials of killed runs are failed on open (:mod:`..trials`).
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
    so one call and several resumed calls end with the same trials (:mod:`..trials`). A
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


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """All trials of a study: number, state, parameters, objectives, norm and metrics."""
    rows = []
    for t in study.trials:
        values = t.values or [math.nan] * len(OBJECTIVES)
        rows.append({"trial": t.number, "state": t.state.name, **t.params,
                     **dict(zip(OBJECTIVES, values, strict=True)), "norm": objective_norm(values),
                     **t.user_attrs.get("metrics", {})})
    return pd.DataFrame(rows)


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


__all__ = [
    "HPO_VERSION", "OBJECTIVES", "TRIAL_METRICS", "objective_vector", "objective_norm", "best_trial", "suggest",
    "check_param", "clip_to_space", "bound_flags", "quiet_optuna", "make_sampler", "open_study", "optimize",
    "trials_frame", "add_objectives",
]
