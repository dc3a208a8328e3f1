"""The machinery every verdict goes through: the four states, :class:`Evidence` (one
analysis at one budget) and :class:`Verdict`, per-seed :class:`Tables` and the paired seed
bootstrap with its t-scaled interval, the side of a threshold an interval lies on, the
seeds that would decide an inconclusive claim, :func:`decide` (full and half budget into
one verdict) and a verdict's scope. The package docstring (:mod:`.`) states the rules."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

HOLDS, FAILS = "holds", "does not hold"
INCONCLUSIVE, UNTESTED = "inconclusive at this budget", "not tested at this budget"
STATES = (HOLDS, FAILS, INCONCLUSIVE, UNTESTED)
#: Fewest seeds that can test a claim.
MIN_SEEDS = 5
#: A method may lose at most this much test accuracy against retraining (absolute).
UTILITY = 0.03
#: "Best" in Deep Unlearn's headline: each of the named methods within this overall rank.
BEST_RANK = 3
#: Bootstrap resamples and interval level.
N_BOOT, LEVEL = 2000, 0.95
REFERENCES = ("original", "retrain")


# --------------------------------------------------------------------------- the machinery


@dataclass
class Evidence:
    """One analysis at one budget: ``state`` in holds / does not hold / inconclusive;
    ``holds_above``: whether the claim holds above its threshold (None: not recorded)."""

    state: str
    estimate: float
    low: float
    high: float
    n_seeds: int
    holds_above: bool | None = None


@dataclass
class Verdict:
    """A claim, its computed verdict, the interval behind it and the budget that produced it."""

    claim: str
    source: str
    chapter: str
    criterion: str
    statistic: str
    state: str
    estimate: float
    low: float
    high: float
    n_seeds: int
    budget: str
    half_state: str | None
    reason: str
    needed: str | None = None
    #: The criterion's threshold and the side on which the claim holds (a forest plot draws
    #: each claim against its own threshold); None in verdicts published before they were kept.
    threshold: float | None = None
    holds_above: bool | None = None
    #: What the claim was tested on, read from its rows (:func:`scope_of`): "6 of 24 methods,
    #: mnist1d/cnn1d, random:0.1". A verdict speaks for its scope only (None: not recorded).
    scope: str | None = None

    def row(self) -> dict:
        return asdict(self)

    def interval(self, digits: int = 3) -> str:
        return f"{self.estimate:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


@dataclass
class Tables:
    """Per-seed values of several metrics over the same columns (methods, or (forget,
    method) pairs): ``arrays[metric]`` is (seeds, columns). A bootstrap resamples rows."""

    columns: list
    arrays: dict[str, np.ndarray]

    @property
    def n_seeds(self) -> int:
        return len(next(iter(self.arrays.values())))

    def col(self, key) -> int:
        return self.columns.index(key)


def pivot(df: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("method",)) -> Tables:
    """A (seed x ``by``) table per metric of the rows' values (the mean where a cell has
    several rows): what a bootstrap over seeds resamples."""
    missing = [c for c in ["seed", *by, *metrics] if c not in df.columns]
    if missing:
        raise ValueError(f"Verdicts need the columns {missing} of the result rows; got {list(df.columns)}.")
    wide = {m: df.pivot_table(index="seed", columns=list(by), values=m, aggfunc="mean") for m in metrics}
    cols = list(next(iter(wide.values())).columns)
    return Tables(cols, {m: t.reindex(columns=cols).to_numpy(float) for m, t in wide.items()})


#: A statistic maps the per-column means of B resamples, {metric: (B, columns)}, to (B,).
Stat = Callable[[Mapping[str, np.ndarray], Tables], np.ndarray]


#: How :func:`seed_bootstrap` turns resamples into an interval.
INTERVALS = ("t-scaled", "percentile")


def t_scale(n: int, level: float = LEVEL) -> float:
    """How much wider than the percentile bootstrap's a t interval is at ``n`` seeds:
    sqrt(n / (n - 1)) * t_{n-1, 1-a/2} / z_{1-a/2}. The bootstrap spreads a mean by
    s * sqrt((n - 1) / n) / sqrt(n) (the plug-in variance) and reads normal quantiles,
    where Student's t interval uses s / sqrt(n) and t quantiles (Hesterberg 2015, "What
    teachers should know about the bootstrap", Am. Stat. 69(4): the percentile interval is
    too narrow in small samples). 1.58 at 5 seeds, 1.22 at 10, 1.0 in the limit."""
    from scipy.stats import norm, t

    if n < 2:
        return math.nan
    q = 1 - (1 - level) / 2
    return math.sqrt(n / (n - 1)) * float(t.ppf(q, n - 1)) / float(norm.ppf(q))


def seed_bootstrap(tables: Tables, stat: Stat, n_boot: int = N_BOOT, level: float = LEVEL,
                   seed: int = 0, interval: str = "t-scaled") -> tuple[float, float, float]:
    """``stat`` of the per-seed ``tables`` and its interval from resampling the seeds with
    replacement (every column of a drawn seed comes along: a paired bootstrap). Resamples
    whose statistic is undefined (NaN) are dropped.

    ``interval``: ``t-scaled`` (default) stretches each side of the percentile interval
    around the estimate by :func:`t_scale` (for a mean of normal seeds it is Student's t
    interval, which keeps its coverage at 5 seeds where the percentile interval covers
    about 83%; :mod:`.calibration` measures every statistic's coverage);
    ``percentile`` is the plain percentile interval."""
    if interval not in INTERVALS:
        raise ValueError(f"Unknown interval {interval!r}; allowed: {', '.join(INTERVALS)}.")
    n = tables.n_seeds
    with np.errstate(invalid="ignore"):
        est = float(stat({k: np.nanmean(a, axis=0)[None, :] for k, a in tables.arrays.items()}, tables)[0])
        pick = np.random.default_rng(seed).integers(0, n, (n_boot, n))
        draws = stat({k: np.nanmean(a[pick], axis=1) for k, a in tables.arrays.items()}, tables)
    return (est, *interval_from_draws(est, draws, n, level, interval))


def t_half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half the Student-t interval of the mean of ``values`` (finite ones; NaN below two)."""
    from scipy import stats

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def interval_from_draws(est: float, draws: np.ndarray, n_seeds: int, level: float = LEVEL,
                        interval: str = "t-scaled") -> tuple[float, float]:
    """The interval of :func:`seed_bootstrap` from an estimate and its bootstrap draws over
    ``n_seeds`` seeds (undefined draws dropped; NaN bounds when none is left)."""
    draws = np.asarray(draws, float)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return math.nan, math.nan
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    if interval == "t-scaled" and math.isfinite(est):
        c = t_scale(n_seeds, level)
        lo, hi = est - c * max(est - lo, 0.0), est + c * max(hi - est, 0.0)
    return float(lo), float(hi)


def side(low: float, high: float, threshold: float, holds_above: bool = True) -> str:
    """holds / does not hold / inconclusive for an interval against a threshold."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    above, below = low > threshold, high < threshold
    if above or below:
        return HOLDS if above == holds_above else FAILS
    return "inconclusive"


def evidence(tables: Tables, stat: Stat, threshold: float, holds_above: bool = True,
             bounds: tuple[float, float] = (-math.inf, math.inf)) -> Evidence:
    """The statistic's estimate and interval against ``threshold``; the interval is clipped
    to the statistic's range ``bounds`` (a rank lies in [1, n]: the t-scaled stretch may
    reach past it, which covers nothing more)."""
    est, lo, hi = seed_bootstrap(tables, stat)
    if math.isfinite(lo) and math.isfinite(hi):
        lo, hi = float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))
    return Evidence(side(lo, hi, threshold, holds_above), est, lo, hi, tables.n_seeds, holds_above)


#: The power a "seeds needed" estimate targets.
POWER = 0.8


def seeds_needed(ev: Evidence, threshold: float, power: float = POWER, level: float = LEVEL) -> int | None:
    """Seeds at which the interval would clear the threshold with probability ``power`` if
    the true value is the estimate: the interval's half facing the threshold gives the
    standard error now (half-width / z_{1-a/2}), which shrinks as 1/sqrt(seeds); clearing
    with that power needs gap >= (z_{1-a/2} + z_power) x SE. (Targeting the point where the
    estimate would just clear the threshold is 50% power.)"""
    from scipy.stats import norm

    gap = abs(ev.estimate - threshold)
    facing = ev.estimate - ev.low if threshold < ev.estimate else ev.high - ev.estimate
    if not (math.isfinite(facing) and facing > 0 and gap > 0):
        return None
    z = norm.ppf(1 - (1 - level) / 2)
    se = facing / z
    return max(ev.n_seeds + 1, math.ceil(ev.n_seeds * ((z + norm.ppf(power)) * se / gap) ** 2))


def decide(claim: str, source: str, chapter: str, criterion: str, statistic: str, threshold: float,
           full: Evidence, half: Evidence | None, budget: str, more_trials: str | None = None,
           tuning_moves: str | None = None) -> Verdict:
    """Combine the full- and half-budget evidence into a verdict (module docstring).

    ``tuning_moves``: the state more tuning can only push the claim toward (HOLDS or FAILS),
    where the claim says so (more trials make tuned baselines better, never worse, so "an
    untuned method matches tuned baselines" can only move toward FAILS); None where more
    tuning can move it either way. A verdict already in that state is final whatever the
    half budget says; any other is demoted when the half budget disagrees."""
    if tuning_moves not in (None, HOLDS, FAILS):
        raise ValueError(f"tuning_moves must be None, {HOLDS!r} or {FAILS!r}; got {tuning_moves!r}.")
    half_state = None if half is None else (half.state if half.state != "inconclusive" else INCONCLUSIVE)
    base = dict(claim=claim, source=source, chapter=chapter, criterion=criterion, statistic=statistic,
                estimate=full.estimate, low=full.low, high=full.high, n_seeds=full.n_seeds, budget=budget,
                half_state=half_state, threshold=float(threshold), holds_above=full.holds_above)
    if full.n_seeds < MIN_SEEDS:
        return Verdict(**base, state=UNTESTED, reason=f"{full.n_seeds} seed(s); a claim needs at least {MIN_SEEDS}",
                       needed=f"at least {MIN_SEEDS} seeds")
    if full.state == "inconclusive":
        n = seeds_needed(full, threshold)
        return Verdict(**base, state=INCONCLUSIVE, reason="the interval contains the threshold",
                       needed=f"about {n} seeds (for {POWER:.0%} power)" if n
                       else "many more seeds (the estimate sits on the threshold)")
    if half is not None and half.state != full.state and full.state != tuning_moves:
        toward = "" if tuning_moves is None else f"; more tuning can only move it toward {tuning_moves!r}"
        return Verdict(**base, state=UNTESTED,
                       reason=f"the half-budget analysis says {half_state!r}: the search had not converged{toward}",
                       needed=more_trials or "more trials per tuning seed")
    if half is not None and half.state != full.state:
        return Verdict(**base, state=full.state, reason="the interval clears the threshold; half the budget "
                       f"says {half_state!r}, but more tuning can only move the claim toward {tuning_moves!r}")
    return Verdict(**base, state=full.state, reason="the interval clears the threshold"
                   + ("" if half is None else ", and half the budget agrees"))


def registered_methods() -> list[str]:
    """The registered unlearning methods (the references ``original`` and ``retrain`` aside)."""
    from ...methods import available

    return [m for m in available() if m not in REFERENCES]


def scope_of(df: pd.DataFrame, methods: Sequence[str] | None = None, what: str = "methods") -> str:
    """What a claim was tested on, from its rows: the unlearning methods run (of how many are
    registered), the dataset/model pairs and the forget sets, e.g. "6 of 24 methods,
    mnist1d/cnn1d, random:0.1" or "all 24 methods, ...". ``methods``: the methods the claim
    reads (default: every non-reference method of the rows); ``what``: their noun."""
    ms = [m for m in dict.fromkeys(df["method"] if methods is None else methods) if m not in REFERENCES]
    known = registered_methods()
    n_known = len([m for m in known if m in ms]) if what == "methods" else len(ms)
    if what != "methods" or n_known < len(ms):
        parts = [f"{len(ms)} {what}"]
    elif n_known == len(known):
        parts = [f"all {len(known)} methods"]
    else:
        parts = [f"{len(ms)} of {len(known)} methods"]
    if {"dataset", "model"} <= set(df.columns):
        parts.append(", ".join(dict.fromkeys(f"{d}/{m}" for d, m in zip(df["dataset"], df["model"], strict=True))))
    if "forget" in df.columns:
        forgets = list(dict.fromkeys(str(f) for f in df["forget"]))
        fr = [f for f in forgets if f.startswith("fraction:")]
        if len(fr) > 2 and len(fr) == len(forgets):
            vals = sorted(float(f.split(":")[1]) for f in fr)
            parts.append(f"fraction:{vals[0]:g}-{vals[-1]:g}")
        else:
            parts.append(", ".join(forgets))
    return ", ".join(parts)


def scoped(verdicts: Sequence[Verdict], scope: str) -> list[Verdict]:
    """``verdicts`` with ``scope`` recorded."""
    return [replace(v, scope=scope) for v in verdicts]


__all__ = [
    "HOLDS", "FAILS", "INCONCLUSIVE", "UNTESTED", "STATES", "MIN_SEEDS", "UTILITY", "BEST_RANK",
    "N_BOOT", "LEVEL", "REFERENCES", "Evidence", "Verdict", "Tables", "pivot", "Stat", "INTERVALS",
    "t_scale", "t_half_width", "seed_bootstrap", "interval_from_draws", "side", "evidence", "POWER", "seeds_needed",
    "decide", "registered_methods", "scope_of", "scoped",
]
