"""Forgetting more data: one set of methods over several forget sets.

nabla-tau (Trippa et al. 2024, arXiv 2403.14339) claims two things this module
tests: it forgets random forget sets of 3%, 15% and 30% of the training data
(and whole classes), and it needs no hyperparameter tuning, reaching a lower
membership-inference advantage than tuned baselines at equal test accuracy.

:func:`run_fraction_study` runs the untuned methods at their defaults and the
baselines with tuned hyperparameters (Deep Unlearn's Optuna protocol,
:mod:`unlearnlib.studies.hpo`) on every forget set and seed; every run is cached in the
store. :func:`claims_table` turns the rows into the checks behind the claims and
:func:`claims_markdown` into sentences; both compute, nothing is hard-coded.
With an executor (:mod:`.executors`) every study of every tuning forget set runs on the
workers together, then every row of every forget set, before the serial loop reads them.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import methods as registry
from ..data import ForgetSpec
from ..training import progress
from . import executors
from .experiment import Setups, UnitPlan, parse_seeds, to_frame
from .hpo import (
    TuneResult,
    add_trial_counts,
    check_held_out,
    prepare_tuning,
    tune,
    warm_entry,
)
from .tables import summary_table

#: Metrics of the nabla-tau comparison, with their display names.
STUDY_METRICS = {
    "forget_acc": "FA", "test_acc": "TA", "mia_test": "loss-MIA", "mia_entropy_test": "entropy-MIA",
    "forget_loss": "L_f", "val_loss": "L_val", "rte": "RTE",
}


def forget_specs(fractions: Iterable[float] = (0.03, 0.15, 0.3), forget_class: int | None = 3) -> list[str]:
    """``fraction:F`` specs (share of D_r u D_f, the original model's training data: nabla-tau's 3/15/30%) and
    ``class:C`` when ``forget_class`` is not None, validated."""
    specs = [f"fraction:{float(f):g}" for f in fractions]
    if forget_class is not None:
        specs.append(f"class:{int(forget_class)}")
    if not specs:
        raise ValueError("Give at least one forget fraction or a forget class.")
    for s in specs:
        ForgetSpec.parse(s)
    return specs


def fraction_of(spec: str) -> float:
    """The forget fraction of a ``fraction:`` or ``random:`` spec; NaN for ``class:``."""
    fs = ForgetSpec.parse(spec)
    return math.nan if fs.kind == "class" else float(fs.value)


def run_fraction_study(
    setups: Setups,
    untuned: Sequence[str] | str = ("nabla_tau",),
    baselines: Sequence[str] | str = ("ft", "ngplus", "scrub", "ssd", "amnesiac", "msg", "ct"),
    forgets: Sequence[str] = ("fraction:0.03", "fraction:0.15", "fraction:0.3", "class:3"),
    seeds: Sequence[int] | str | int = (3, 4, 5),
    tune_forget: str = "random:0.1",
    tune_seeds: Sequence[int] | str | int = (0,),
    n_trials: int = 4,
    warm_start: bool = False,
    budget: str = "full",
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> tuple[pd.DataFrame, dict[tuple[str, str], TuneResult]]:
    """Rows of ``original``, ``retrain``, the ``untuned`` methods (defaults) and the tuned
    ``baselines`` on every forget set in ``forgets`` and every seed.

    ``setups`` (:class:`~.experiment.Setups`: the dataset, model, epochs, device, data folder,
    store and progress bars) gives the :class:`~.experiment.Setup` of each forget set.
    ``tune_forget`` is the forget set the baselines are tuned on (Deep Unlearn's
    ``random:0.1`` by default, transferred to every forget set), or ``"each"`` to tune
    them on every forget set separately. Rows gain ``tuned`` (bool), ``tuned_on`` (the forget
    set a baseline's hyperparameters were chosen on; "" for the untuned) and ``fraction``
    (NaN for class forgetting). The second value maps (tuning forget set, method) to the
    tuning result. ``warm_start`` starts every study from the package's shipped tuned
    entry of its forget set (:mod:`.tuned`); ``budget="half"`` runs the baselines with their
    half-budget choice instead (the verdicts' budget check, :mod:`.verdicts`). ``executor``
    and ``parallel_trials``: as for :func:`~.hpo.tune`; the rows equal the serial run's.
    """
    if budget not in ("full", "half"):
        raise ValueError(f"Unknown budget {budget!r}; allowed: full, half.")
    untuned = registry.parse_methods(untuned)
    baselines = [b for b in registry.parse_methods(baselines) if b not in untuned]
    if not forgets:
        raise ValueError("Give at least one forget set, e.g. ['fraction:0.3'].")
    for spec in forgets:
        ForgetSpec.parse(spec)
    if tune_forget != "each":
        ForgetSpec.parse(tune_forget)
    seeds = parse_seeds(seeds)
    store, show_progress = setups.store, setups.show_progress
    tuned: dict[tuple[str, str], TuneResult] = {}
    wheres = list(dict.fromkeys(forgets)) if tune_forget == "each" else [tune_forget]
    if baselines:
        check_held_out(tune_seeds, seeds, [warm_entry(setups(w), m, warm_start) for w in wheres for m in baselines])

    with executors.using(executor) as ex:
        ran: dict[str, dict] = {}
        if ex.parallel:  # every study of every tuning forget set at once
            ran = {w: prepare_tuning(ex, setups(w), baselines, tune_seeds, n_trials, warm_start=warm_start,
                                     parallel_trials=parallel_trials)
                   for w in wheres}

        def tuning(method: str, spec: str) -> TuneResult:
            where = spec if tune_forget == "each" else tune_forget
            if (where, method) not in tuned:
                tuned[(where, method)] = add_trial_counts(
                    tune(setups(where), method, tune_seeds, n_trials, warm_start=warm_start, executor=ex,
                         parallel_trials=parallel_trials), ran.get(where, {}))
            return tuned[(where, method)]

        def plan_of(spec: str) -> list[tuple[str, dict, bool, str]]:
            """(method, hyperparameters, tuned here, the forget set they were chosen on)."""
            plan = [(m, {}, False, "") for m in ["original", "retrain", *untuned]]
            where = spec if tune_forget == "each" else tune_forget
            return plan + [(m, r.half.hparams if budget == "half" and r.half else r.hparams, r.tuned, where)
                           for m in baselines for r in [tuning(m, spec)]]

        plans: dict[str, list] = {}
        if ex.parallel:  # every row of every forget set, then the serial loop below reads them
            tasks = []
            for spec in forgets:
                plans[spec] = plan_of(spec)
                units = UnitPlan.for_setup(ex, setups(spec))
                for seed in seeds:
                    for method, hp, _, _ in plans[spec]:
                        units.row(method, seed, hp)
                tasks += units.tasks()
            ex.run(tasks, store, "rows", show_progress, short=True)

        rows: list[dict] = []
        for spec in progress(list(forgets), "forget sets", enabled=show_progress):
            plan = plans[spec] if spec in plans else plan_of(spec)
            fraction = fraction_of(spec)
            for seed in seeds:
                for method, hp, is_tuned, where in plan:
                    rows.append({**setups(spec).run(method, seed, hp), "tuned": is_tuned, "tuned_on": where,
                                 "fraction": fraction})
    return to_frame(rows), tuned


def study_table(df: pd.DataFrame, metrics: dict[str, str] = STUDY_METRICS) -> pd.DataFrame:
    """``mean ± std`` over seeds per (forget set, method) (:func:`plots.summary_table` per
    forget set, in the frame's order), columns renamed to ``metrics``' display names."""
    missing = [c for c in ["forget", *metrics] if c not in df.columns]
    if missing:
        raise ValueError(f"study_table needs the columns {missing}; got {list(df.columns)}.")
    parts = {spec: summary_table(d, list(metrics)) for spec, d in df.groupby("forget", sort=False)}
    return pd.concat(parts, names=["forget", "method"]).rename(columns=metrics)


def claims_table(
    df: pd.DataFrame, method: str = "nabla_tau", mia: str = "mia_test", class_metric: str = "forget_acc",
    acc_tol: float = 0.02, min_gap_closed: float = 0.5,
) -> pd.DataFrame:
    """Per forget set, the numbers behind "forgets this much" and "needs no tuning".

    The gap metric is ``mia`` for random forget sets and ``class_metric`` for class
    forgetting (there a forget-vs-test MIA mostly sees the missing class, which the
    retrained model separates best of all). With means over seeds and R the retrained model:

    - ``gap_original`` = |metric_original - metric_R|, ``gap`` = |metric_method - metric_R|,
      and ``gap_closed`` = 1 - gap / gap_original (1: as close as retraining);
    - ``ta_drop`` = TA_R - TA_method (positive: the method lost accuracy);
    - ``forgets`` = gap_closed >= ``min_gap_closed`` and ta_drop <= ``acc_tol``;
    - among the other non-reference methods whose TA is at least TA_method - ``acc_tol``
      ("equal accuracy"), ``best_rival`` has the smallest gap; ``beats_rivals`` says whether
      the method's gap is at most ``best_rival_gap``.
    """
    for col in ("forget", "method", "test_acc", mia, class_metric):
        if col not in df.columns:
            raise ValueError(f"claims_table needs the column {col!r}; got {list(df.columns)}.")
    out = []
    for spec, d in df.groupby("forget", sort=False):
        metric = class_metric if ForgetSpec.parse(spec).kind == "class" else mia
        mean = d.groupby("method")[["test_acc", metric]].mean()
        for needed in ("original", "retrain", method):
            if needed not in mean.index:
                raise ValueError(f"Forget set {spec}: no rows of {needed!r}; methods: {list(mean.index)}.")
        ref = mean.loc["retrain"]
        gaps = (mean[metric] - ref[metric]).abs()
        gap_o, gap_m = gaps["original"], gaps[method]
        closed = 1 - gap_m / gap_o if gap_o > 0 else math.nan
        ta_drop = ref["test_acc"] - mean.loc[method, "test_acc"]
        rivals = [m for m in mean.index if m not in ("original", "retrain", method)
                  and mean.loc[m, "test_acc"] >= mean.loc[method, "test_acc"] - acc_tol]
        best = gaps[rivals].idxmin() if rivals else None
        out.append({
            "forget": spec, "fraction": fraction_of(spec), "metric": metric,
            "retrained": ref[metric], "original": mean.loc["original", metric], "value": mean.loc[method, metric],
            "gap_original": gap_o, "gap": gap_m, "gap_closed": closed,
            "ta_retrained": ref["test_acc"], "ta": mean.loc[method, "test_acc"], "ta_drop": ta_drop,
            "forgets": bool(closed >= min_gap_closed and ta_drop <= acc_tol),
            "rivals_equal_acc": len(rivals), "best_rival": best,
            "best_rival_gap": gaps[best] if best else math.nan,
            "beats_rivals": bool(best is None or gap_m <= gaps[best]),
        })
    return pd.DataFrame(out).set_index("forget")


def claims_markdown(claims: pd.DataFrame, method: str = "nabla_tau", acc_tol: float = 0.02,
                    min_gap_closed: float = 0.5) -> str:
    """Sentences on the two claims, computed from :func:`claims_table`'s output."""
    lines = []
    for spec, c in claims.iterrows():
        rival = (f"best rival at equal accuracy {c.best_rival} (gap {c.best_rival_gap:.3f})"
                 if c.best_rival else "no rival reaches its accuracy")
        name = STUDY_METRICS.get(c.metric, c.metric)
        lines.append(
            f"- **{spec}**: {name} original {c.original:.3f}, retrained {c.retrained:.3f}, {method} "
            f"{c.value:.3f}: {100 * c.gap_closed:.0f}% of the gap closed; test accuracy {c.ta:.3f} "
            f"(retrained {c.ta_retrained:.3f}); {rival}.")
    frac = claims[np.isfinite(claims["fraction"])].sort_values("fraction")
    ok = frac[frac["forgets"]]
    if len(frac) == 0:
        up_to = "No random forget fraction was run."
    elif len(ok) == len(frac):
        up_to = (f'"Up to {100 * frac.fraction.max():g}%" **holds** here: at every fraction {method} closes at '
                 f"least {100 * min_gap_closed:.0f}% of the loss-MIA gap within {100 * acc_tol:g} points of the "
                 "retrained model's test accuracy.")
    else:
        bad = ", ".join(f"{100 * f:g}%" for f in frac.loc[~frac["forgets"], "fraction"])
        up_to = (f'"Up to {100 * frac.fraction.max():g}%" **does not hold** here: at {bad} {method} closes less '
                 f"than {100 * min_gap_closed:.0f}% of the loss-MIA gap or loses more than {100 * acc_tol:g} points "
                 "of test accuracy.")
    wins = claims["beats_rivals"] & claims["forgets"]
    if wins.all():
        no_tune = (f'"No tuning needed" **holds** here: at its defaults {method} forgets and no tuned '
                   "baseline of equal accuracy gets closer to the retrained model, on every forget set.")
    else:
        where = ", ".join(claims.index[~wins])
        no_tune = (f'"No tuning needed" **does not hold** here on {where}: at its defaults {method} either '
                   "does not forget (criterion above) or a tuned baseline of equal accuracy gets closer to the "
                   "retrained model (loss-MIA; forget accuracy for a class).")
    return "\n".join(lines) + "\n\n" + up_to + "\n\n" + no_tune


# --------------------------------------------------------------------------- the nabla-tau chapter's tables


#: What the loss ratio of :func:`with_loss_ratio` reads.
LOSS_RATIO_LABEL = "L_f / L_val (1 = forget set looks unseen)"


def with_loss_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with ``loss_ratio`` = forget loss / validation loss (nabla-tau's stopping point is 1)."""
    return df.assign(loss_ratio=df["forget_loss"] / df["val_loss"])


def run_both_budgets(setups: Setups, untuned: Sequence[str] | str, baselines: Sequence[str] | str,
                     forgets: Sequence[str], seeds: Sequence[int] | str | int, **study
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], TuneResult]]:
    """:func:`run_fraction_study` at the baselines' full and at their half-budget choice (the
    verdicts' budget check): (rows, half-budget rows, tuning results); the second run is
    quiet (``setups.quiet()``). ``study``: the other arguments of :func:`run_fraction_study`
    (``budget`` excepted)."""
    df, tuned = run_fraction_study(setups, untuned, baselines, forgets, seeds, **study)
    df_half, _ = run_fraction_study(setups.quiet(), untuned, baselines, forgets, seeds, budget="half", **study)
    return df, df_half, tuned


def _hparams_text(hp: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items())


def tuned_table(tuned: dict[tuple[str, str], TuneResult], n_trials: int) -> pd.DataFrame:
    """One row per (tuning forget set, baseline) of :func:`run_fraction_study`'s tuning
    results: where it was tuned, the trials run here per seed (0 where nothing was tuned), where
    the hyperparameters came from and what they are."""
    return pd.DataFrame([{"tuned on": where, "method": m, "trials per seed here": n_trials if r.tuned else 0,
                          "hyperparameters from": r.source, "hyperparameters": _hparams_text(r.hparams)}
                         for (where, m), r in tuned.items()]).set_index("method")


def ascent_weights(df: pd.DataFrame) -> pd.DataFrame:
    """Per random forget set of ``df``: nabla-tau's initial alpha_0, the original models' tau
    (their validation loss, mean over seeds) and forget loss L_f, and the two weights of
    nabla-tau's first gradient, the ascent 2 alpha_0 (tau - L_f) and the descent 1 - alpha_0."""
    from ..methods.nabla_tau import initial_alpha

    rows = []
    for spec, d in df[np.isfinite(df["fraction"])].groupby("forget", sort=False):
        o = d[d["method"] == "original"]
        a0, tau, lf = initial_alpha(fraction_of(spec)), o["val_loss"].mean(), o["forget_loss"].mean()
        rows.append({"forget": spec, "alpha_0": a0, "tau = L_val (original)": tau, "L_f (original)": lf,
                     "ascent weight 2 alpha_0 (tau - L_f)": 2 * a0 * (tau - lf), "descent weight 1 - alpha_0": 1 - a0})
    return pd.DataFrame(rows).set_index("forget")


def outside_utility(df: pd.DataFrame, utility: float) -> list[tuple[str, str, float, float]]:
    """(forget set, method, its mean test accuracy, the retrained model's) of every
    non-reference method more than ``utility`` below the retrained model's test accuracy on
    that forget set (means over seeds), in the rows' order."""
    acc = df.groupby(["forget", "method"], sort=False)["test_acc"].mean()
    return [(f, m, float(acc[(f, m)]), float(acc[(f, "retrain")])) for f, m in acc.index
            if m not in ("original", "retrain") and (f, "retrain") in acc.index
            and acc[(f, m)] < acc[(f, "retrain")] - utility]


def baselines_budget(setups: Setups, forgets: Sequence[str], baselines: Sequence[str], tune_forget: str,
                     n_trials: int, tune_seeds: str, seeds: str, warm_start: bool) -> str:
    """The tuning budget behind the baselines of :func:`run_fraction_study`, in words: where
    they were tuned (every one of ``forgets`` when ``tune_forget="each"``), the shipped entries
    that started the studies (``warm_start``; read with the Setups of ``setups``), the trials
    run here and the evaluation seeds."""
    wheres = list(forgets) if tune_forget == "each" else [tune_forget]
    made = [setups(w) for w in wheres] if warm_start else []
    shipped = ""
    if warm_start:
        from .hpo import shipped_entry

        entries = [shipped_entry(s, m) for s in made for m in baselines]
        found = [e for e in entries if e is not None]
        shipped = (f"shipped table for {len(found)}/{len(entries)}"
                   + (f" ({'/'.join(sorted({str(e['trials_per_seed']) for e in found}))} trials on seeds "
                      f"{'/'.join(sorted({','.join(map(str, e['tuning_seeds'])) for e in found}))})" if found else "")
                   + " + ")
    return (f"baselines tuned on {'each forget set' if tune_forget == 'each' else tune_forget} ({shipped}{n_trials} "
            f"trials on seed(s) {tune_seeds}); nabla-tau at its defaults; evaluated on seeds {seeds}")
