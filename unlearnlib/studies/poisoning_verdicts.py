"""Pawelczyk et al. 2024's two findings as computed verdicts (holds / does not hold /
not tested at this budget), with the machinery of :mod:`unlearnlib.studies.verdicts`:
the statistic of the per-seed rows and its 95% paired bootstrap interval over seeds
(every method and attack of a resampled seed comes along), at least 5 seeds.

All statistics use the rows at the largest compute budget and, per attack, the
*gap* ``|M_original - M_retrain|`` of the attack's headline metric ``M``
(:data:`~unlearnlib.poisoning.METRICS`) between the model trained on the poisons and
the one retrained without them. A method's *share of the gap left* is
``|M_method - M_retrain| / gap``: 1 = as poisoned as before, 0 = as the retrained model.
It counts distance on both sides: a method that pushes past the retrained model (e.g.
gradient ascent turning GUS positive) is as distinguishable from it as one that stops short.

- **Working attacks.** An attack is tested only when its gap is real: the interval of
  ``HARM_SIGN * (M_original - M_retrain)`` lies above 0. Attacks that do not work are named
  in the verdict's budget line and left out.
- **Utility.** A method counts only when its mean test accuracy is within
  :data:`ACC_TOL` (5 points) of the retrained model's: a destroyed model "removes" any poison.

Finding 1, "no method removes the poisons within the budget": statistic = the smallest,
over the working attacks, of the share of the gap left by the attack's best method (a
method keeping its utility; 1 when none does). It holds when the interval lies above
:data:`REMOVED` (10%): for every attack even the best method leaves more than 10% of
the gap. It does not hold when the interval lies below 10%.

Finding 2, "the population MIA gives a false sense of success": a method *passes* the
loss-based population MIA when its MIA (poisons vs test) is within :data:`MIA_TOL` (0.05)
of the retrained model's, and *leaves the poison* when it leaves more than 10% of the gap.
Both are thresholds, so the statistic is a margin that is positive exactly when both hold,
in MIA units: ``min(MIA_TOL - |MIA_method - MIA_retrain|, (MIA_TOL / REMOVED) * (share - REMOVED))``
(the second term maps a share of 10% to 0 and 20% to 0.05). Statistic = the largest margin
over the working attacks and the methods keeping their utility (-1 when none does). It
holds when the interval lies above 0: some method passes the MIA while more than 10% of
the poison's effect is left. It does not hold when the interval lies below 0: every method
that passes the MIA has removed the poison, and every one that leaves it is caught. A
margin rather than the share of a passing method, because passing is a threshold: near it
the share would jump between 0 and 1 across resamples, and its interval would say nothing.

There is no tuning here (methods run at their defaults), so there is no half-budget
check; the budget line says what ran.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..poisoning import HARM_SIGN, METRICS
from .verdicts import (
    MIN_SEEDS,
    Evidence,
    Tables,
    Verdict,
    decide,
    evidence,
    pivot,
    seed_bootstrap,
)

PAWELCZYK = "Pawelczyk et al. 2024"
#: A method may lose at most this much test accuracy against the retrained model (absolute).
ACC_TOL = 0.05
#: A method removes a poison when it leaves at most this share of the gap.
REMOVED = 0.10
#: A method passes the population MIA when its MIA is this close to the retrained model's.
MIA_TOL = 0.05
_REFS = ("original", "retrain", "clean")
_COLUMNS = ("attack", "method", "seed", "budget", "metric", "test_acc", "mia_test")


def _check(df: pd.DataFrame) -> None:
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"Poisoning verdicts need the columns {missing} of run_attack's rows; got {list(df.columns)}.")
    unknown = sorted(set(df["attack"]) - set(METRICS))
    if unknown:
        raise ValueError(f"Unknown attack(s) {unknown}; allowed: {', '.join(METRICS)}.")
    for attack, d in df.groupby("attack"):
        refs = {"original", "retrain"} - set(d["method"])
        if refs:
            raise ValueError(f"Attack {attack!r} has no {sorted(refs)} rows; the gap needs both references.")


def at_top_budget(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The methods' rows at the largest budget plus the reference rows, and that budget."""
    _check(df)
    methods = df[~df["method"].isin(_REFS)]
    if methods.empty:
        raise ValueError("No unlearning method in the rows; the findings compare methods with retraining.")
    top = float(methods["budget"].max())
    keep = df["method"].isin(("original", "retrain")) | (df["budget"] == top)
    return df[keep & (df["method"] != "clean")], top


def tables(df: pd.DataFrame) -> Tables:
    """Per-seed (attack, method) tables of the metric, test accuracy and population MIA."""
    return pivot(df, ["metric", "test_acc", "mia_test"], ("attack", "method"))


def _attacks(t: Tables) -> list[str]:
    return list(dict.fromkeys(a for a, _ in t.columns))


def _methods(t: Tables, attack: str) -> list[str]:
    return [m for a, m in t.columns if a == attack and m not in _REFS]


def _metric_of(df: pd.DataFrame) -> dict[str, str]:
    """The headline metric's name per attack (for its sign)."""
    return {a: METRICS[a] for a in dict.fromkeys(df["attack"])}


def gap_stat(attack: str, sign: int):
    """Statistic: ``sign * (M_original - M_retrain)`` of ``attack`` (> 0 when it works)."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        x = m["metric"]
        return sign * (x[:, t.col((attack, "original"))] - x[:, t.col((attack, "retrain"))])
    return stat


def shares_left(m: Mapping[str, np.ndarray], t: Tables, attack: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Methods of ``attack``, their (B, methods) share of the gap left and whether they keep
    their utility (test accuracy within ACC_TOL of the retrained model's)."""
    x, acc = m["metric"], m["test_acc"]
    r, p = x[:, t.col((attack, "retrain"))], x[:, t.col((attack, "original"))]
    ms = _methods(t, attack)
    idx = [t.col((attack, k)) for k in ms]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.abs(x[:, idx] - r[:, None]) / np.abs(p - r)[:, None]
    keeps = acc[:, idx] >= acc[:, [t.col((attack, "retrain"))]] - ACC_TOL
    return ms, share, keeps


def best_share(attack: str):
    """Statistic: share of the gap left by ``attack``'s best method that keeps its utility
    (1 when none does: nothing usable removed anything)."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        _, share, keeps = shares_left(m, t, attack)
        return np.where(keeps, share, np.inf).min(axis=1, initial=np.inf).clip(max=1.0) \
            if share.shape[1] else np.ones(len(share))
    return stat


def false_success(attack: str):
    """Statistic: largest margin (MIA units) by which a method of ``attack`` keeping its utility
    both passes the population MIA and leaves more than REMOVED of the gap (module docstring);
    -1 when no method keeps its utility."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        ms, share, keeps = shares_left(m, t, attack)
        mia = m["mia_test"]
        off = np.abs(mia[:, [t.col((attack, k)) for k in ms]] - mia[:, [t.col((attack, "retrain"))]])
        margin = np.minimum(MIA_TOL - off, (MIA_TOL / REMOVED) * (share - REMOVED))
        return np.where(keeps, margin, -1.0).max(axis=1, initial=-1.0)
    return stat


def _over(attacks: Sequence[str], make, reduce):
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        return reduce(np.stack([make(a)(m, t) for a in attacks]), axis=0)
    return stat


def attack_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per attack at the largest budget: the gap (estimate and 95% interval over
    seeds) and whether the attack works, the best method and the share of the gap it
    leaves, and the margin of the population MIA's false success (finding 2), each with
    its interval."""
    d, top = at_top_budget(df)
    t, sign = tables(d), {a: HARM_SIGN[m] for a, m in _metric_of(d).items()}
    means = {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
    rows = []
    for a in _attacks(t):
        g = seed_bootstrap(t, gap_stat(a, sign[a]))
        b = seed_bootstrap(t, best_share(a))
        f = seed_bootstrap(t, false_success(a))
        ms, share, keeps = shares_left(means, t, a)
        usable = [(s, k) for s, k, ok in zip(share[0], ms, keeps[0], strict=True) if ok and np.isfinite(s)]
        rows.append({
            "attack": a, "seeds": t.n_seeds, "budget": top,
            "original": means["metric"][0, t.col((a, "original"))], "retrain": means["metric"][0, t.col((a, "retrain"))],
            "gap": g[0], "gap low": g[1], "gap high": g[2], "works": bool(g[1] > 0),
            "best method": min(usable)[1] if usable else "none keeps its accuracy",
            "share left (best)": b[0], "share low": b[1], "share high": b[2],
            "methods keeping accuracy": int(keeps[0].sum()), "methods": len(ms),
            "MIA original": means["mia_test"][0, t.col((a, "original"))],
            "MIA retrain": means["mia_test"][0, t.col((a, "retrain"))],
            "MIA margin": f[0], "margin low": f[1], "margin high": f[2],
        })
    return pd.DataFrame(rows).set_index("attack")


def budget_line(df: pd.DataFrame, setting: str = "") -> str:
    """What ran: seeds, attacks with their poison fractions, methods and the budgets."""
    d = df[~df["method"].isin(_REFS)]
    seeds = sorted(int(x) for x in df["seed"].unique())
    budgets = sorted(d["budget"].unique())
    frac = (df.groupby("attack")["fraction"].first() if "fraction" in df.columns else None)
    attacks = ", ".join(f"{a} ({frac[a]:.0%} poisons)" if frac is not None else a for a in dict.fromkeys(df["attack"]))
    methods = list(dict.fromkeys(d["method"]))
    contiguous = len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1))
    parts = [f"seeds {seeds[0]}-{seeds[-1]}" if contiguous else f"seeds {', '.join(map(str, seeds))}", setting,
             f"attacks {attacks}",
             f"{len(methods)} methods ({', '.join(methods)}) at their defaults scaled to the data",
             f"budgets {', '.join(f'{b:.0%}' for b in budgets)} of the training compute (verdicts at {max(budgets):.0%})"]
    return "; ".join(p for p in parts if p)


def poisoning_verdicts(df: pd.DataFrame, setting: str = "", chapter: str = "poisoning") -> list[Verdict]:
    """Pawelczyk et al.'s two findings on :func:`~unlearnlib.studies.poisoning_study.run_attack` rows
    (several attacks, seeds and budgets; module docstring). ``setting`` (e.g. "mnist5k, MLP,
    20 epochs") goes into the budget line."""
    d, top = at_top_budget(df)
    t, sign = tables(d), {a: HARM_SIGN[m] for a, m in _metric_of(d).items()}
    attacks = _attacks(t)
    gaps = {a: evidence(t, gap_stat(a, sign[a]), 0.0) for a in attacks}
    working = [a for a in attacks if gaps[a].state == "holds"]
    idle = [a for a in attacks if a not in working]
    budget = budget_line(df, setting) + (
        f"; left out, no gap between original and retrained: {', '.join(idle)}" if idle else "")
    c1 = (f"at the largest budget ({top:.0%}), for every working attack the best method within "
          f"{ACC_TOL * 100:.0f} points of the retrained model's test accuracy leaves more than "
          f"{REMOVED:.0%} of the gap |M_original - M_retrain| of the attack's metric "
          f"(share left = |M_method - M_retrain| / gap)")
    c2 = (f"at the largest budget ({top:.0%}), some method within {ACC_TOL * 100:.0f} points of the retrained "
          f"model's test accuracy passes the loss-based population MIA (poisons vs test, within {MIA_TOL} of the "
          f"retrained model's) while leaving more than {REMOVED:.0%} of the gap of the attack's metric: the "
          "largest margin by which a method does both lies above 0")
    claims = [("No unlearning method removes the poisons within the budget", c1, REMOVED,
               "smallest share of the gap left by the best method, over the working attacks", best_share, np.min),
              ("The population MIA gives a false sense of success", c2, 0.0,
               f"largest margin by which a method passes the MIA and leaves the poison, min({MIA_TOL} - "
               f"|MIA - MIA_retrain|, {MIA_TOL / REMOVED:g} x (share left - {REMOVED})), over methods and "
               "working attacks", false_success, np.max)]
    out = []
    for claim, criterion, threshold, statistic, make, reduce in claims:
        if working:
            ev = evidence(t, _over(working, make, reduce), threshold)
            out.append(decide(claim, PAWELCZYK, chapter, criterion, statistic, threshold, ev, None, budget))
            continue
        v = decide(claim, PAWELCZYK, chapter, criterion, statistic, threshold,
                   Evidence("inconclusive", np.nan, np.nan, np.nan, t.n_seeds), None, budget)
        if t.n_seeds >= MIN_SEEDS:
            v.reason = "no attack opened a gap between the original and the retrained model"
            v.needed = "an attack that works on this model (more poisons, a stronger trigger)"
        out.append(v)
    return out

__all__ = ["PAWELCZYK", "ACC_TOL", "REMOVED", "MIA_TOL", "poisoning_verdicts", "attack_table", "budget_line",
           "at_top_budget", "tables", "shares_left"]
