"""nabla-tau's two claims on the fraction study's rows: it forgets random forget sets of up
to 30% of the data, and it needs no hyperparameter tuning."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .comparisons import Ratio, boot_size, extreme_evidence, resample
from .core import (
    FAILS,
    HOLDS,
    MIN_SEEDS,
    REFERENCES,
    UNTESTED,
    Evidence,
    Stat,
    Tables,
    Verdict,
    decide,
    evidence,
    pivot,
    scope_of,
    scoped,
    seeds_needed,
)

# --------------------------------------------------------------------------- nabla-tau's claims

NABLA_TAU = "Trippa et al. 2024 (nabla-tau)"
#: nabla-tau's utility window (its paper compares methods "at equal accuracy").
NT_UTILITY = 0.02
#: MIA difference below which two methods count as equally close to retraining.
EQUIVALENCE = 0.01


def _nt_keeps(acc: np.ndarray, t: Tables, f: str, m: str) -> np.ndarray:
    return acc[:, t.col((f, m))] >= acc[:, t.col((f, "retrain"))] - NT_UTILITY


def nt_ratio(t: Tables, f: str) -> Ratio:
    """Signed (nt - R) / (O - R) of the loss-MIA at forget set ``f`` over the seeds of ``t``
    (Fieller's bounds; excluded where nabla-tau's mean test accuracy is more than
    NT_UTILITY below the retrained model's)."""
    mia, acc = t.arrays["mia_test"], t.arrays["test_acc"]
    orig, ret, nt = (mia[:, t.col((f, x))] for x in ("original", "retrain", "nabla_tau"))
    means = {"test_acc": np.nanmean(acc, axis=0)[None, :]}
    return Ratio(nt - ret, orig - ret, excluded=not bool(_nt_keeps(means["test_acc"], t, f, "nabla_tau")[0]))


def nt_margin(f: str, b: str) -> Stat:
    """|MIA_b - MIA_R| - |MIA_nt - MIA_R| at ``f``; +inf where baseline ``b`` loses its utility."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mia, ret = m["mia_test"], m["mia_test"][:, t.col((f, "retrain"))]
        d = np.abs(mia[:, t.col((f, b))] - ret) - np.abs(mia[:, t.col((f, "nabla_tau"))] - ret)
        return np.where(_nt_keeps(m["test_acc"], t, f, b), d, np.inf)
    return stat


def nt_gap(fr: Sequence[str]) -> Stat:
    """The smallest original-minus-retrained loss-MIA gap over the forget sets ``fr``."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mia = m["mia_test"]
        return np.min([mia[:, t.col((f, "original"))] - mia[:, t.col((f, "retrain"))] for f in fr], axis=0)
    return stat


def closeness(r: float) -> float:
    """1 - |r| for |r| = |nt - R| / |O - R|, floored at -1 (-1 also for a lost utility, r = inf):
    overshooting past the retrained model is no better than stopping short of it (the
    signed share counted it as success)."""
    return max(1.0 - r, -1.0) if math.isfinite(r) else -1.0


def nt_forgets_evidence(t: Tables, fr: Sequence[str]) -> Evidence:
    """"nabla-tau forgets": the smallest closeness over the forget sets ``fr``, each side of
    the interval keeping its error over them (:func:`extreme_evidence`), |.| bounded from
    the signed ratio's Fieller bounds (:func:`abs_bounds`)."""
    r = {f: nt_ratio(t, f) for f in fr}
    est = min(closeness(abs(x.estimate)) for x in r.values())
    return extreme_evidence(r, lambda x, a: closeness(x.abs_bounds(a)[1]),
                            lambda x, a: closeness(x.abs_bounds(a)[0]), "min", 0.5, True, t.n_seeds, est)


def nt_no_tuning_evidence(t: Tables, fr: Sequence[str], baselines: Sequence[str]) -> Evidence:
    """"No tuning needed": the smallest margin over baselines x forget sets against
    -EQUIVALENCE; the union side ("some baseline is closer") is corrected for their number,
    which the minimum of the draws was not (it leaned toward "does not hold")."""
    pairs = {(f, b): nt_margin(f, b) for f in fr for b in baselines if (f, b) in t.columns}
    r = resample(t, pairs, n_boot=boot_size(len(pairs)))
    est = min((x.estimate for x in r.values()), default=math.nan)
    return extreme_evidence(r, lambda x, a: x.bound(a, False), lambda x, a: x.bound(a, True), "min",
                            -EQUIVALENCE, True, t.n_seeds, est if math.isfinite(est) else math.nan)


def carried_baselines(df: pd.DataFrame, forgets: Sequence[str], baselines: Sequence[str]) -> str:
    """Where the tuned ``baselines``' rows at ``forgets`` were tuned on another forget set (the
    rows' ``tuned_on``): "" when each was tuned where it runs; a short description otherwise."""
    rows = df[df["method"].isin(baselines) & df["forget"].isin(forgets)]
    if "tuned_on" not in rows.columns:
        return "the rows do not name the forget set their hyperparameters were tuned on"
    off = rows[rows["tuned_on"].astype(str) != rows["forget"].astype(str)]
    if off.empty:
        return ""
    pairs = sorted({f"{w} -> {f}" for w, f in zip(off["tuned_on"], off["forget"], strict=True)})
    return "tuned on " + ", ".join(pairs)


def nabla_tau_verdicts(df: pd.DataFrame, df_half: pd.DataFrame | None, budget: str,
                       chapter: str = "nabla_tau", more_trials: str | None = None) -> list[Verdict]:
    """nabla-tau's two claims on the fraction study's rows (``forget`` = fraction:F specs and
    optionally a class): it forgets random sets of up to 30% (closes at least half of the
    loss-MIA gap between original and retrained at every fraction, within NT_UTILITY test
    accuracy), and needs no tuning (no tuned baseline within the utility window gets
    closer to the retrained model's MIA by more than EQUIVALENCE)."""
    fr = [f for f in dict.fromkeys(df["forget"]) if str(f).startswith("fraction:")]
    if "nabla_tau" not in set(df["method"]) or not fr:
        return []
    baselines = [m for m in dict.fromkeys(df["method"]) if m not in (*REFERENCES, "nabla_tau")]

    def tables(d: pd.DataFrame | None) -> Tables | None:
        return None if d is None else pivot(d[d["forget"].isin(fr)], ["mia_test", "test_acc"], ("forget", "method"))

    def no_tuning(t: Tables | None) -> Evidence | None:
        return None if t is None else nt_no_tuning_evidence(t, fr, baselines)

    def forgets(t: Tables) -> Evidence:
        return nt_forgets_evidence(t, fr)

    full, half = tables(df), tables(df_half)
    claim = "nabla-tau forgets random forget sets of up to 30% of the data"
    forget_v = decide(
        claim, NABLA_TAU, chapter,
        f"at every forget fraction ({', '.join(f.split(':')[1] for f in fr)}) nabla-tau at its defaults lands within "
        f"half of the loss-MIA gap (forget vs test) between the original and the retrained model of the retrained "
        f"model's value, on either side (closeness 1 - |nt - R| / |O - R| >= 0.5), within {NT_UTILITY:.0%} of "
        f"retraining's test accuracy; the gap must be resolved at every fraction",
        "smallest closeness to the retrained model's MIA (-1: utility lost)", 0.5, forgets(full),
        None, budget, more_trials)
    gap_ev = evidence(full, nt_gap(fr), 0.0)
    if forget_v.n_seeds >= MIN_SEEDS and gap_ev.state != HOLDS:  # closeness to an unresolved gap says nothing
        n = seeds_needed(gap_ev, 0.0)
        forget_v = replace(forget_v, state=UNTESTED, reason=(
            f"the original-retrained loss-MIA gap is not resolved at every fraction (smallest gap "
            f"{gap_ev.estimate:.3g} [{gap_ev.low:.3g}, {gap_ev.high:.3g}])"),
            needed=f"about {n} seeds to resolve the gap" if n else "more seeds to resolve the gap")
    out = [forget_v]
    if baselines:
        out.append(decide(
            "nabla-tau needs no hyperparameter tuning", NABLA_TAU, chapter,
            f"at every forget fraction no tuned baseline ({', '.join(baselines)}) within {NT_UTILITY:.0%} of "
            f"retraining's test accuracy is closer to the retrained model's loss-MIA than nabla-tau at its "
            f"defaults by more than {EQUIVALENCE}",
            "smallest margin |MIA_b - MIA_R| - |MIA_nt - MIA_R| over baselines and fractions", -EQUIVALENCE,
            no_tuning(full), no_tuning(half), budget, more_trials,
            tuning_moves=FAILS))  # more trials only make the tuned baselines better
        carried = carried_baselines(df, fr, baselines)
        if out[-1].n_seeds >= MIN_SEEDS and carried:
            out[-1] = replace(out[-1], state=UNTESTED, reason=(
                f"the baselines were not tuned on the forget sets they are compared on ({carried}): a setting "
                "carried from another forget set may be mistuned there"),
                needed="baselines tuned on every forget set (tune_forget='each')")
    return scoped(out, scope_of(df[df["forget"].isin(fr)], ["nabla_tau", *baselines]))


__all__ = [
    "NABLA_TAU", "NT_UTILITY", "EQUIVALENCE", "nt_ratio", "nt_margin", "nt_gap", "closeness",
    "nt_forgets_evidence", "nt_no_tuning_evidence", "carried_baselines", "nabla_tau_verdicts",
]
