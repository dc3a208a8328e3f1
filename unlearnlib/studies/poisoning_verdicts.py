"""Pawelczyk et al. 2024's two findings as computed verdicts (holds / does not hold /
inconclusive / not tested at this budget), with the machinery of :mod:`unlearnlib.studies.verdicts`,
over paired seeds (every method and attack of a seed together), at least 5 seeds.

All statistics use the rows at the largest compute budget and, per attack, the
*gap* ``M_original - M_retrain`` of the attack's headline metric ``M``
(:data:`~unlearnlib.poisoning.METRICS`) between the model trained on the poisons and
the one retrained without them. A method's *signed share* is
``(M_method - M_retrain) / gap`` (1 = as poisoned as before, 0 = as the retrained model,
< 0 = pushed past it, e.g. gradient ascent turning GUS positive) and its *share of the gap
left* is ``min(|signed share|, 1)``: distance on both sides counts.

- **Against the retrained model's own seed-to-seed spread.** The share of a method's
  mean is compared through the interval of the *signed* share (an equivalence reading;
  Fieller's interval for a ratio of paired means, :class:`~.verdicts.Ratio`, since the gap
  in the denominator is itself noisy): the lower bound of |share| is 0 whenever the signed
  interval straddles 0. Reading
  ``|mean|`` itself would be biased upward: a method that is just another retrained
  model has a share of about 0.8 standard errors (Pawelczyk's "no method removes the
  poisons" came out "holds" in 8-15% of simulated data sets containing such a method).
- **Several comparisons.** Both findings take an extreme over methods x attacks.
  Their intervals are built per comparison and combined with
  :func:`~unlearnlib.studies.verdicts.extreme_evidence`: the side where every comparison
  must clear the threshold is an intersection (no correction), the side where one of m
  suffices is Bonferroni-corrected (tail 2.5% / m), so each side keeps its 2.5% error
  whatever the number of methods and attacks; :mod:`.calibration` measures both.
- **Working attacks.** An attack is tested only when its gap is real: the interval of
  ``HARM_SIGN * (M_original - M_retrain)`` lies above 0. Attacks that do not work are named
  in the verdict's budget line and left out.
- **Utility.** A method counts only when its mean test accuracy is within
  :data:`ACC_TOL` (5 points) of the retrained model's: a destroyed
  model "removes" any poison.

Finding 1, "no method removes the poisons within the budget": statistic = the smallest
share of the gap left over the methods keeping their utility and the working attacks.
It holds when the interval lies above :data:`REMOVED` (10%): every method leaves more
than 10% of every gap. It does not hold when the interval lies below 10%: some method
removed some poison.

Finding 2, "the population MIA gives a false sense of success": a method *passes* the
loss-based population MIA when its MIA (poisons vs test) is within :data:`MIA_TOL` (0.05)
of the retrained model's, and *leaves the poison* when it leaves more than 10% of the gap.
Both are thresholds, so the statistic is a margin that is positive exactly when both hold,
in MIA units: ``min(MIA_TOL - |MIA_method - MIA_retrain|, (MIA_TOL / REMOVED) * (share - REMOVED))``
(the second term maps a share of 10% to 0 and 20% to 0.05). Statistic = the largest margin
over the working attacks and the methods keeping their utility (-1 when none does). It
holds when the interval lies above 0: some method passes the MIA while more than 10% of
the poison's effect is left. It does not hold when the interval lies below 0: every method
that passes the MIA has removed the poison, and every one that leaves it is caught.

There is no tuning here (methods run at their defaults), so there is no half-budget
check; the budget line says what ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..poisoning import HARM_SIGN, METRICS
from .verdicts import (
    MIN_SEEDS,
    UNTESTED,
    Evidence,
    Ratio,
    Tables,
    Verdict,
    decide,
    evidence,
    extreme_evidence,
    pivot,
    scope_of,
    scoped,
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


def _keeps(acc: np.ndarray, t: Tables, attack: str, method: str) -> bool:
    """Whether the method's mean test accuracy is within ACC_TOL of the retrained model's."""
    mean = np.nanmean(acc, axis=0)
    return bool(mean[t.col((attack, method))] >= mean[t.col((attack, "retrain"))] - ACC_TOL)


def signed_share(t: Tables, attack: str, method: str) -> Ratio:
    """``(M_method - M_retrain) / (M_original - M_retrain)`` of ``attack`` over the seeds of
    ``t``, signed (0 = as the retrained model, 1 = as poisoned as before, < 0 = past the
    retrained model), with Fieller's bounds; excluded (+inf) where the method does not keep
    its utility (it cannot count as removing anything)."""
    x = t.arrays["metric"]
    r, p, k = (x[:, t.col((attack, c))] for c in ("retrain", "original", method))
    return Ratio(k - r, p - r, excluded=not _keeps(t.arrays["test_acc"], t, attack, method))


def mia_offset(t: Tables, attack: str, method: str) -> Ratio:
    """The method's population MIA minus the retrained model's (Student's t bounds of the
    paired mean; +inf without utility)."""
    mia = t.arrays["mia_test"]
    d = mia[:, t.col((attack, method))] - mia[:, t.col((attack, "retrain"))]
    return Ratio(d, np.ones_like(d), excluded=not _keeps(t.arrays["test_acc"], t, attack, method))


@dataclass
class Comparison:
    """One (attack, method) pair's signed share and MIA offset."""

    share: Ratio
    mia: Ratio


def share_left(c: Comparison, tail: float, upper: bool) -> float:
    """Bound of the share of the gap left, min(|share|, 1), with ``tail`` beyond it (capped at
    1: as poisoned as before; the abs bound keeps a noisy mean's |.| from reading as a floor)."""
    lo, hi = c.share.abs_bounds(tail)
    return min(hi if upper else lo, 1.0)


def false_success_margin(c: Comparison, tail: float, upper: bool) -> float:
    """Bound of min(MIA_TOL - |MIA offset|, (MIA_TOL / REMOVED) (share left - REMOVED)), floored
    at -1, with ``tail`` beyond it: each of the two terms gets half the tail (an error of the
    minimum needs an error in one of them)."""
    mia_lo, mia_hi = c.mia.abs_bounds(tail / 2)
    share = share_left(c, tail / 2, upper)
    margin = min(MIA_TOL - (mia_lo if upper else mia_hi), (MIA_TOL / REMOVED) * (share - REMOVED))
    return max(margin, -1.0)


def _point(c: Comparison) -> tuple[float, float]:
    """(share left, false-success margin) of the point estimate."""
    share = min(abs(c.share.estimate), 1.0)
    margin = max(min(MIA_TOL - abs(c.mia.estimate), (MIA_TOL / REMOVED) * (share - REMOVED)), -1.0)
    return share, margin


def comparisons(t: Tables, attacks: Sequence[str]) -> dict[tuple[str, str], Comparison]:
    """Every (attack, method) pair of the ``attacks`` (paired over the same seeds)."""
    return {(a, k): Comparison(signed_share(t, a, k), mia_offset(t, a, k)) for a in attacks for k in _methods(t, a)}


def finding_evidence(comps: Mapping[tuple[str, str], Comparison], which: str, n_seeds: int) -> Evidence:
    """Finding 1 (``"removed"``): the smallest share left over the pairs, interval against
    REMOVED; finding 2 (``"false success"``): the largest margin, against 0. Each side of
    either interval keeps its 2.5% error over all the pairs (:func:`~.verdicts.extreme_evidence`)."""
    if which == "removed":
        est = min((_point(c)[0] for c in comps.values()), default=math.nan)
        return extreme_evidence(comps, lambda c, a: share_left(c, a, False), lambda c, a: share_left(c, a, True),
                                "min", REMOVED, True, n_seeds, est)
    est = max((_point(c)[1] for c in comps.values()), default=math.nan)
    return extreme_evidence(comps, lambda c, a: false_success_margin(c, a, False),
                            lambda c, a: false_success_margin(c, a, True), "max", 0.0, True, n_seeds, est)


def findings(t: Tables, signs: Mapping[str, int]) -> tuple[list[str], dict[str, Evidence]]:
    """The working attacks of the per-seed ``t`` (``signs``: attack -> HARM_SIGN of its
    metric) and both findings' evidence over them ({} when no attack works): what
    :func:`poisoning_verdicts` decides with, and what :mod:`.calibration` simulates."""
    working = [a for a, sg in signs.items() if evidence(t, gap_stat(a, sg), 0.0).state == "holds"]
    if not working:
        return [], {}
    comps = comparisons(t, working)
    return working, {w: finding_evidence(comps, w, t.n_seeds) for w in ("removed", "false success")}


def method_table(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per (attack, method) at the largest budget (the references as they are): the mean over
    seeds of the attack's metric, the share of the original-retrained gap it leaves (|M -
    M_retrain| / gap; NaN without a gap), its test accuracy and whether it keeps it (within
    ACC_TOL of the retrained model's), its population MIA and whether it passes it (within
    MIA_TOL of the retrained model's); and that budget. The findings' point estimates read
    the same means."""
    d, top = at_top_budget(df)
    means = d.groupby(["attack", "method"], sort=False)[["metric", "test_acc", "mia_test"]].mean()
    rows = []
    for (attack, key), r in means.iterrows():
        ref = means.loc[attack]
        gap = abs(ref.loc["original", "metric"] - ref.loc["retrain", "metric"])
        rows.append({"attack": attack, "method": key, "metric": r["metric"],
                     "share of the gap left": abs(r["metric"] - ref.loc["retrain", "metric"]) / gap if gap else np.nan,
                     "test accuracy": r["test_acc"],
                     "keeps accuracy": bool(r["test_acc"] >= ref.loc["retrain", "test_acc"] - ACC_TOL),
                     "population MIA": r["mia_test"],
                     "passes the MIA": bool(abs(r["mia_test"] - ref.loc["retrain", "mia_test"]) <= MIA_TOL)})
    return pd.DataFrame(rows).set_index(["attack", "method"]), top


def mia_blind_attacks(table: pd.DataFrame) -> list[str]:
    """The attacks of :func:`method_table` where the untouched poisoned original already
    passes the population MIA: there the MIA cannot tell it from the retrained model, so a
    method passing it says nothing about forgetting."""
    return [a for a in table.index.get_level_values("attack").unique() if bool(table.loc[(a, "original"), "passes the MIA"])]


def attack_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per attack at the largest budget: the gap (estimate and 95% interval over
    seeds) and whether the attack works, the best method and the share of the gap it
    leaves, and the margin of the population MIA's false success (finding 2), each with
    its interval over that attack's methods (corrected for their number)."""
    d, top = at_top_budget(df)
    t, sign = tables(d), {a: HARM_SIGN[m] for a, m in _metric_of(d).items()}
    means = {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
    comps = comparisons(t, _attacks(t))
    rows = []
    for a in _attacks(t):
        g = seed_bootstrap(t, gap_stat(a, sign[a]))
        mine = {k: c for k, c in comps.items() if k[0] == a}
        b, f = finding_evidence(mine, "removed", t.n_seeds), finding_evidence(mine, "false success", t.n_seeds)
        usable = sorted((_point(c)[0], k[1]) for k, c in mine.items() if math.isfinite(c.share.estimate))
        rows.append({
            "attack": a, "seeds": t.n_seeds, "budget": top,
            "original": means["metric"][0, t.col((a, "original"))], "retrain": means["metric"][0, t.col((a, "retrain"))],
            "gap": g[0], "gap low": g[1], "gap high": g[2], "works": bool(g[1] > 0),
            "best method": usable[0][1] if usable else "none keeps its accuracy",
            "share left (best)": b.estimate, "share low": b.low, "share high": b.high,
            "methods keeping accuracy": len(usable), "methods": len(mine),
            "MIA original": means["mia_test"][0, t.col((a, "original"))],
            "MIA retrain": means["mia_test"][0, t.col((a, "retrain"))],
            "MIA margin": f.estimate, "margin low": f.low, "margin high": f.high,
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
    working, ev = findings(t, {a: sign[a] for a in attacks})
    idle = [a for a in attacks if a not in working]
    budget = budget_line(df, setting) + (
        f"; left out, no gap between original and retrained: {', '.join(idle)}" if idle else "")
    c1 = (f"at the largest budget ({top:.0%}), for every working attack the best method within "
          f"{ACC_TOL * 100:.0f} points of the retrained model's test accuracy leaves more than "
          f"{REMOVED:.0%} of the gap |M_original - M_retrain| of the attack's metric "
          f"(share left = |M_method - M_retrain| / gap, bounded from the signed share's Fieller interval; each side "
          "of the interval of the smallest keeps its 2.5% error over the methods x attacks compared)")
    c2 = (f"at the largest budget ({top:.0%}), some method within {ACC_TOL * 100:.0f} points of the retrained "
          f"model's test accuracy passes the loss-based population MIA (poisons vs test, within {MIA_TOL} of the "
          f"retrained model's) while leaving more than {REMOVED:.0%} of the gap of the attack's metric: the "
          "largest margin by which a method does both lies above 0 (its lower bound corrected for the number of "
          "methods x attacks: one of them suffices)")
    claims = [("No unlearning method removes the poisons within the budget", c1, REMOVED,
               "smallest share of the gap left, min(|M - M_retrain| / gap, 1), over the methods keeping their "
               "utility and the working attacks", "removed"),
              ("The population MIA gives a false sense of success", c2, 0.0,
               f"largest margin by which a method passes the MIA and leaves the poison, min({MIA_TOL} - "
               f"|MIA - MIA_retrain|, {MIA_TOL / REMOVED:g} x (share left - {REMOVED})), over methods and "
               "working attacks", "false success")]
    out = []
    for claim, criterion, threshold, statistic, which in claims:
        if working:
            out.append(decide(claim, PAWELCZYK, chapter, criterion, statistic, threshold, ev[which], None, budget))
            continue
        v = decide(claim, PAWELCZYK, chapter, criterion, statistic, threshold,
                   Evidence("inconclusive", np.nan, np.nan, np.nan, t.n_seeds), None, budget)
        if t.n_seeds >= MIN_SEEDS:
            v.state = UNTESTED
            v.reason = "no attack opened a gap between the original and the retrained model"
            v.needed = "an attack that works on this model (more poisons, a stronger trigger)"
        out.append(v)
    methods = [m for m in dict.fromkeys(d["method"]) if m not in ("original", "retrain", "clean")]
    attacks_run = f"{len(working)} of {len(attacks)} attacks working" + (f" ({', '.join(working)})" if working else "")
    return scoped(out, f"{scope_of(d, methods)}, {attacks_run}")

__all__ = ["PAWELCZYK", "ACC_TOL", "REMOVED", "MIA_TOL", "poisoning_verdicts", "attack_table", "budget_line",
           "method_table", "mia_blind_attacks",
           "at_top_budget", "tables", "signed_share", "mia_offset", "Comparison", "comparisons", "share_left",
           "false_success_margin", "finding_evidence", "findings", "gap_stat"]


def removing(table: pd.DataFrame, removed: float = REMOVED) -> pd.DataFrame:
    """The rows of :func:`method_table` whose method (no reference) leaves at most ``removed``
    of its attack's gap at the largest budget (point estimate), whatever its accuracy: the
    methods that remove a poison by finding 1's threshold."""
    methods = table.index.get_level_values("method")
    return table[(table["share of the gap left"] <= removed) & ~methods.isin(_REFS)]


#: The columns of :func:`attack_table` the chapter shows, with their names there.
SHOWN_COLUMNS = {"works": "attack works", "gap": "gap", "gap low": "gap low", "gap high": "gap high",
                 "best method": "best method", "share left (best)": "share left by the best",
                 "share low": "share low", "share high": "share high", "MIA original": "MIA original",
                 "MIA retrain": "MIA retrain", "MIA margin": "MIA margin (finding 2)", "margin low": "margin low",
                 "margin high": "margin high"}


def shown_attack_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`attack_table`'s columns that the chapter shows (:data:`SHOWN_COLUMNS`), renamed."""
    return table[list(SHOWN_COLUMNS)].rename(columns=SHOWN_COLUMNS)
