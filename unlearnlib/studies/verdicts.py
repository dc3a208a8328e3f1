"""Verdicts the budget can support: every claim the book tests, computed from result rows.

A claim is ``holds``, ``does not hold``, ``inconclusive at this budget`` (it was tested:
the interval contains the threshold) or ``not tested at this budget`` (too few seeds, a
budget check that failed, or nothing to measure: e.g. no gap between the original and
the retrained model), by a criterion written next to it:

- **Uncertainty over seeds.** The claim's statistic is computed from the per-seed rows
  and its 95% interval from a paired bootstrap over seeds (seeds are resampled with
  replacement, every method of a resampled seed comes along, so comparisons are
  paired), each side of the percentile interval stretched by :func:`t_scale` (the
  plain percentile interval covers a normal mean about 83% of the time at 5 seeds;
  :mod:`.calibration` measures each statistic's coverage by simulation, and
  ``benchmarks/verdicts.py`` prints the table). The claim holds when the whole
  interval lies on its side of the criterion's threshold, does not hold when the whole
  interval lies on the other side, and is inconclusive otherwise. Fewer than
  :data:`MIN_SEEDS` seeds test nothing. Ranks share ties (:data:`TIES`), and a tie that
  decides a claim counts against it.
- **Budget check.** A conclusive verdict counts only when the same analysis on the
  half-budget rows (hyperparameters chosen from the first half of every study's
  trials, :func:`unlearnlib.studies.hpo.in_budget`) gives the same verdict, unless more
  tuning can only push the claim further the way it already went (``decide``'s
  ``tuning_moves``); otherwise the search had not converged far enough to tell.
- An ``inconclusive`` or ``not tested`` verdict names what would decide it: the seeds that
  would decide it with 80% power (:func:`seeds_needed`) or more trials.

Utility constraint: a method whose mean test accuracy is more than :data:`UTILITY`
below the retrained model's cannot be "best" or "close to retraining": a destroyed
model is at chance for every MIA and cheap to compute. Such methods rank after every
method that keeps its accuracy (the poisoning chapter's rule, made general).

Cost: methods are ranked by ``cost_rte``, retraining's per-sample gradient evaluations
over the method's (load-independent; :mod:`unlearnlib.methods._cost`), with wall-clock
RTE kept as measured information.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import method_labels

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


# --------------------------------------------------------------------------- several comparisons at once
# A claim about the smallest (or largest) of m comparisons -- "every baseline", "some method
# on some attack" -- is an intersection on one side and a union on the other. The side where
# all m must clear the threshold needs only the extreme component covered (an
# intersection-union test: no correction); the side where one of m suffices takes the
# extreme over m chances and is corrected (Bonferroni: each component's tail at a / m).
# The bootstrap of the minimum itself has neither property: with 21 noisy comparisons its
# draws sit below the true minimum (issue 31).


@dataclass
class Resampled:
    """One statistic's point estimate and its draws over shared seed resamples."""

    estimate: float
    draws: np.ndarray
    n_seeds: int

    def bound(self, tail: float, upper: bool) -> float:
        """One-sided bound with ``tail`` probability beyond it: the draws' quantile stretched
        around the estimate by sqrt(n/(n-1)) t_{n-1,1-tail} / z_{1-tail} (:func:`t_scale` at
        that tail). Excluded draws are +/-inf and count as draws (an excluded comparison is
        beyond every bound), so the quantile picks a draw rather than interpolating."""
        from scipy.stats import norm, t

        d = self.draws[~np.isnan(self.draws)]
        if not len(d) or self.n_seeds < 2:
            return math.nan
        q = float(np.quantile(d, 1 - tail if upper else tail, method="inverted_cdf"))
        if not (math.isfinite(q) and math.isfinite(self.estimate)):
            return q
        c = math.sqrt(self.n_seeds / (self.n_seeds - 1)) * float(t.ppf(1 - tail, self.n_seeds - 1) / norm.ppf(1 - tail))
        return self.estimate + c * (q - self.estimate)

    def abs_bounds(self, tail: float) -> tuple[float, float]:
        """Bounds of |theta| (:func:`abs_bounds`)."""
        return abs_bounds(self, tail)


def abs_bounds(x, tail: float) -> tuple[float, float]:
    """Bounds of |theta| with at most ``tail`` beyond each, from ``x.bound`` (signed bounds)
    at ``tail / 2``: an error on either side of |theta| needs theta outside one of them. A
    signed interval across 0 gives 0 as the lower bound: the absolute value of a noisy mean
    is biased away from 0, its bound is not."""
    lo, hi = x.bound(tail / 2, False), x.bound(tail / 2, True)
    return max(0.0, lo, -hi), max(-lo, hi)


@dataclass
class Ratio:
    """A ratio of two paired means over seeds, mean(num) / mean(den), with Fieller's
    bounds (Fieller 1954, J. R. Stat. Soc. B 16(2)): the ratios rho not rejected by the t
    test of mean(num - rho den) = 0. A bootstrap of the ratio of means is skewed and wild
    when the denominator's mean comes near 0 in a resample (a small gap between two
    models); Fieller's bounds are exact for normal seeds and unbounded when the denominator
    is not resolved at that level. ``den`` of ones gives Student's t bounds of mean(num).
    ``excluded`` (e.g. a method that lost its utility) puts the ratio at +inf."""

    num: np.ndarray
    den: np.ndarray
    excluded: bool = False

    def __post_init__(self) -> None:
        num, den = np.asarray(self.num, float), np.asarray(self.den, float)
        ok = np.isfinite(num) & np.isfinite(den)
        self.num, self.den = num[ok], den[ok]

    @property
    def n_seeds(self) -> int:
        return len(self.num)

    @property
    def estimate(self) -> float:
        if self.excluded:
            return math.inf
        b = float(self.den.mean()) if self.n_seeds else math.nan
        return float(self.num.mean()) / b if b else math.nan

    def bound(self, tail: float, upper: bool) -> float:
        """One-sided bound with ``tail`` beyond it (+/-inf where the denominator is unresolved)."""
        from scipy.stats import t

        if self.excluded:
            return math.inf
        n = self.n_seeds
        if n < 2:
            return math.nan
        a, b = float(self.num.mean()), float(self.den.mean())
        v = np.cov(self.num, self.den, ddof=1) / n
        q2 = float(t.ppf(1 - tail, n - 1)) ** 2
        qa, qb, qc = b * b - q2 * v[1, 1], a * b - q2 * v[0, 1], a * a - q2 * v[0, 0]
        if qa <= 0:
            return math.inf if upper else -math.inf
        r = math.sqrt(max(qb * qb - qa * qc, 0.0))
        return (qb + r) / qa if upper else (qb - r) / qa

    def abs_bounds(self, tail: float) -> tuple[float, float]:
        return abs_bounds(self, tail)


def resample(tables: Tables, stats: Mapping, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Every statistic of ``stats`` (key -> :data:`Stat`) on the per-seed ``tables`` and on
    one shared set of paired seed resamples: key -> :class:`Resampled`."""
    n = tables.n_seeds
    pick = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    with np.errstate(invalid="ignore"):
        point = {k: np.nanmean(a, axis=0)[None, :] for k, a in tables.arrays.items()}
        means = {k: np.nanmean(a[pick], axis=1) for k, a in tables.arrays.items()}
        return {key: Resampled(float(f(point, tables)[0]), np.asarray(f(means, tables), float), n)
                for key, f in stats.items()}


def tails(m: int, reduce: str, level: float = LEVEL) -> tuple[float, float]:
    """The (lower, upper) tail each of ``m`` components' bounds gets when a claim reads
    their ``reduce`` ("min" or "max"): the union side a / m, the other a (block comment)."""
    a = (1 - level) / 2
    if reduce not in ("min", "max"):
        raise ValueError(f"reduce must be 'min' or 'max'; got {reduce!r}.")
    return (a, a / max(m, 1)) if reduce == "min" else (a / max(m, 1), a)


def boot_size(m: int, level: float = LEVEL) -> int:
    """Resamples enough to read a quantile at the corrected tail (a / m): about 50 draws beyond it."""
    return int(min(20_000, max(N_BOOT, math.ceil(50 / ((1 - level) / 2 / max(m, 1))))))


def extreme_evidence(components: Mapping, low: Callable, high: Callable, reduce: str, threshold: float,
                     holds_above: bool, n_seeds: int, estimate: float, level: float = LEVEL) -> Evidence:
    """Evidence about ``reduce`` ("min"/"max") over the ``components`` (key -> anything the
    bound functions read): ``low(c, tail)`` / ``high(c, tail)`` give one component's
    one-sided bounds with ``tail`` beyond them; the tails follow :func:`tails`, so each
    side of the interval of the extreme keeps its (1 - level) / 2 error whatever m is."""
    if not components:
        return Evidence("inconclusive", math.nan, math.nan, math.nan, n_seeds, holds_above)
    tl, th = tails(len(components), reduce, level)
    agg = min if reduce == "min" else max
    lo = agg(low(c, tl) for c in components.values())
    hi = agg(high(c, th) for c in components.values())
    return Evidence(side(lo, hi, threshold, holds_above), estimate, float(lo), float(hi), n_seeds, holds_above)


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
    from ..methods import available

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


# --------------------------------------------------------------------------- shared statistics


def objective_norms(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with Deep Unlearn's objective norm per row (against the same seed's retrained row)."""
    from .hpo import add_objectives

    return add_objectives(df)


def grid_tables(df: pd.DataFrame, cost: str = "cost_rte") -> Tables:
    """The per-seed tables of a tuned grid: objective norm, test accuracy and log cost ratio
    (``cost``, else wall-clock RTE when the rows predate the cost column)."""
    d = objective_norms(df)
    col = cost if cost in d.columns and d[cost].notna().all() else "rte"
    d = d.assign(log_cost=np.log(np.clip(d[col].to_numpy(float), 1e-12, None)))
    return pivot(d, ["objective_norm", "test_acc", "log_cost"])


def method_means(m: Mapping[str, np.ndarray], t: Tables) -> dict[str, np.ndarray]:
    """Per unlearning method (columns ``methods``) of B resamples: mean objective norm, cost
    ratio (geometric mean) and whether it keeps its utility (mean TA within UTILITY of the
    retrained model's)."""
    idx = [i for i, c in enumerate(t.columns) if c not in REFERENCES]
    ta_r = m["test_acc"][:, t.col("retrain")][:, None]
    return {"methods": [t.columns[i] for i in idx], "norm": m["objective_norm"][:, idx],
            "cost": np.exp(m["log_cost"][:, idx]), "utility": m["test_acc"][:, idx] >= ta_r - UTILITY}


#: How tied methods share ranks (scipy's ``rankdata`` methods): mid-ranks to show a
#: ranking; in a claim, a tie counts against it: the worst of the tied ranks ("max") where
#: a low rank supports the claim, the best ("min") where a high rank does.
TIES = ("average", "max", "min")


def ranks(mm: Mapping[str, np.ndarray], with_cost: bool, ties: str = "average") -> np.ndarray:
    """(B, methods) ranks, 1 = best. Quality = the objective norm (lower is better); with
    cost, the mean of the quality and cost ranks. Methods that lose their utility rank after
    all that keep it. Tied methods share ranks by ``ties`` (:data:`TIES`; never by column
    order, which would break ties alphabetically)."""
    from scipy.stats import rankdata

    if ties not in TIES:
        raise ValueError(f"Unknown ties rule {ties!r}; allowed: {', '.join(TIES)}.")
    score = rankdata(mm["norm"], axis=1, method="average")
    if with_cost:
        score = (score + rankdata(-mm["cost"], axis=1, method="average")) / 2
    key = np.where(mm["utility"], 0.0, 1e6) + score
    return rankdata(key, axis=1, method=ties).astype(float)


def ranking_table(df: pd.DataFrame) -> pd.DataFrame:
    """The point estimates behind Deep Unlearn's verdicts, one row per unlearning method:
    objective norm, test accuracy, utility kept, cost ratio, quality rank and overall rank
    (quality and cost), sorted by the overall rank."""
    t = grid_tables(df)
    means = {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
    mm = method_means(means, t)
    out = pd.DataFrame({
        "objective norm": mm["norm"][0], "test acc": means["test_acc"][0][[t.col(m) for m in mm["methods"]]],
        "keeps utility": mm["utility"][0], "cost ratio": mm["cost"][0],
        "quality rank": ranks(mm, with_cost=False)[0], "overall rank": ranks(mm, with_cost=True)[0],
    }, index=pd.Index(mm["methods"], name="method"))
    return out.sort_values("overall rank").rename(index=method_labels(df))


# --------------------------------------------------------------------------- Deep Unlearn's claims

DEEP_UNLEARN = "Cadet et al. 2024 (Deep Unlearn)"


def rank_of(ms: Sequence[str], with_cost: bool, worst: bool) -> Stat:
    """The worse (``worst``) or better rank of the methods ``ms`` (Deep Unlearn's first two
    claims). ``worst``: a low rank supports the claim, so a tie takes the worst tied rank;
    else the best."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mm = method_means(m, t)
        r = ranks(mm, with_cost, ties="max" if worst else "min")[:, [mm["methods"].index(x) for x in ms]]
        return r.max(axis=1) if worst else r.min(axis=1)
    return stat


def baseline_margin(simple: Sequence[str]) -> Stat:
    """The smallest margin of objective norm, each simple baseline minus NG+; -1 where NG+
    loses its utility (it beats nothing then): Deep Unlearn's third claim."""
    def margin(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mm = method_means(m, t)
        ng = mm["methods"].index("ngplus")
        others = [mm["methods"].index(b) for b in simple]
        diff = (mm["norm"][:, others] - mm["norm"][:, [ng]]).min(axis=1)
        return np.where(mm["utility"][:, ng], diff, -1.0)
    return margin


def deep_unlearn_verdicts(df: pd.DataFrame, df_half: pd.DataFrame | None, budget: str,
                          chapter: str = "methods", more_trials: str | None = None) -> list[Verdict]:
    """Deep Unlearn's three headline claims on a tuned grid (rows of every method and seed,
    references included) and its half-budget counterpart."""
    full, half = grid_tables(df), None if df_half is None else grid_tables(df_half)
    methods = [m for m in dict.fromkeys(df["method"]) if m not in REFERENCES]
    n = len(methods)
    # "best": both at the top of the ranking, at most one other method ahead of either (ranks
    # <= 3; the top third of a short list). The top third of 24 (8) read "best" too leniently.
    top, middle = min(BEST_RANK, math.ceil(n / 3)), n / 2
    out = []

    def present(ms: Sequence[str]) -> bool:
        return set(ms) <= set(methods)

    if present(["msg", "ct"]):
        stat = rank_of(["msg", "ct"], True, worst=True)
        ev = evidence(full, stat, top + 0.5, holds_above=False, bounds=(1, n))
        hv = None if half is None else evidence(half, stat, top + 0.5, holds_above=False, bounds=(1, n))
        ct = method_labels(df).get("ct", "ct").replace("ct", "CT", 1)  # "CT (1-D extension)" on a 1-D CNN
        rank_rule = (f"rank = mean of the ranks by objective norm and by cost (retraining's gradient evaluations / "
                     f"the method's), methods losing more than {UTILITY:.0%} test accuracy against retraining ranked last")
        out.append(decide(
            f"MSG and {ct} are the best methods", DEEP_UNLEARN, chapter,
            f"the worse of MSG's and CT's ranks among {n} methods is at most {top} (\"best\": at most one other "
            f"method ahead of either; the top third of a short list); {rank_rule}",
            "worse rank of MSG and CT", top + 0.5, ev, hv, budget, more_trials))
        # the conjunction's parts, so a reader sees which one decides it
        for key, name in (("msg", "MSG"), ("ct", ct)):
            stat = rank_of([key], True, worst=True)
            ev = evidence(full, stat, top + 0.5, holds_above=False, bounds=(1, n))
            hv = None if half is None else evidence(half, stat, top + 0.5, holds_above=False, bounds=(1, n))
            out.append(decide(
                f"{name} is among the best methods", DEEP_UNLEARN, chapter,
                f"{name}'s rank among {n} methods is at most {top} (one part of \"MSG and CT are the best\"); "
                f"{rank_rule}", f"rank of {name}", top + 0.5, ev, hv, budget, more_trials))
    if present(["ga", "srl"]):
        stat = rank_of(["ga", "srl"], False, worst=False)
        ev = evidence(full, stat, middle, holds_above=True, bounds=(1, n))
        hv = None if half is None else evidence(half, stat, middle, holds_above=True, bounds=(1, n))
        out.append(decide(
            "GA and SRL are weak baselines", DEEP_UNLEARN, chapter,
            f"the better of GA's and SRL's quality ranks among {n} methods is in the bottom half (> {middle:g}); "
            "quality = objective norm, utility-losing methods last",
            "better quality rank of GA and SRL", middle, ev, hv, budget, more_trials))
    simple = [m for m in ("ft", "ga", "srl") if m in methods]
    if "ngplus" in methods and simple:
        margin = baseline_margin(simple)
        ev = evidence(full, margin, 0.0, holds_above=True)
        hv = None if half is None else evidence(half, margin, 0.0, holds_above=True)
        out.append(decide(
            "NG+ is the baseline to beat", DEEP_UNLEARN, chapter,
            f"NG+'s objective norm is lower than each of {', '.join(simple)}'s (the smallest paired margin > 0) "
            f"while keeping its utility",
            "smallest margin of objective norm, simple baseline minus NG+ (-1: NG+ loses its utility)", 0.0, ev, hv, budget, more_trials))
    return scoped(out, scope_of(df))


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


# --------------------------------------------------------------------------- rankings across datasets


def ranking_transfer_verdicts(df_a: pd.DataFrame, df_b: pd.DataFrame, name_a: str, name_b: str, budget: str,
                              chapter: str = "text", n_boot: int = N_BOOT, seed: int = 0) -> list[Verdict]:
    """"Method rankings carry over from ``name_a`` to ``name_b``": Kendall's tau between the
    two tuned grids' quality rankings (objective norm, utility-losing methods last) over the
    methods both ran. The interval resamples the seeds of each grid independently; the claim
    holds when it lies above 0 (the rankings agree more than chance) and does not hold when
    it lies below 0."""
    from scipy.stats import kendalltau

    ta, tb = grid_tables(df_a), grid_tables(df_b)
    common = [m for m in ta.columns if m in tb.columns and m not in REFERENCES]
    if len(common) < 3:
        raise ValueError(f"Need at least 3 methods in both grids to compare rankings; common: {common}.")

    def ranking(t: Tables, m: Mapping[str, np.ndarray]) -> np.ndarray:
        keep = [t.col(c) for c in [*common, "retrain"]]
        sub = Tables([*common, "retrain"], {})
        mm = method_means({k: v[:, keep] for k, v in m.items()}, sub)
        return ranks(mm, with_cost=False)

    def means(t: Tables, pick: np.ndarray | None) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore"):
            if pick is None:
                return {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
            return {k: np.nanmean(a[pick], axis=1) for k, a in t.arrays.items()}

    ra, rb = ranking(ta, means(ta, None))[0], ranking(tb, means(tb, None))[0]
    est = float(kendalltau(ra, rb).statistic)
    rng = np.random.default_rng(seed)
    pa = rng.integers(0, ta.n_seeds, (n_boot, ta.n_seeds))
    pb = rng.integers(0, tb.n_seeds, (n_boot, tb.n_seeds))
    a, b = ranking(ta, means(ta, pa)), ranking(tb, means(tb, pb))
    draws = np.array([kendalltau(x, y).statistic for x, y in zip(a, b, strict=True)], float)
    lo, hi = np.clip(interval_from_draws(est, draws, min(ta.n_seeds, tb.n_seeds)), -1.0, 1.0)  # tau's range
    lo, hi = float(lo), float(hi)
    ev = Evidence(side(lo, hi, 0.0), est, lo, hi, min(ta.n_seeds, tb.n_seeds), True)
    return scoped([decide(
        f"Method rankings carry over from {name_a} to {name_b}", BOOK_TEXT, chapter,
        f"Kendall's tau between the quality rankings (objective norm; methods losing more than {UTILITY:.0%} test "
        f"accuracy last) of the {len(common)} methods both ran is above 0",
        "Kendall tau", 0.0, ev, None, budget)],
        f"{len(common)} methods, {name_a} and {name_b}")


BOOK_TEXT = "Pawelczyk et al. 2024, nabla-tau and Thudi et al. test text; does Deep Unlearn's picture carry over?"


# --------------------------------------------------------------------------- the explorer's premise

BOOK = "this book (Deep Unlearn's motivation)"


def credited_share(share, test_acc, retrain_test_acc, utility: float = UTILITY) -> np.ndarray:
    """The share of the loss-MIA gap a setting is credited with (:func:`hyperparameter_verdicts`):
    its share clipped at 0, and 0 where its test accuracy is more than ``utility`` below the
    retrained model's (a broken model closes nothing). Arrays broadcast."""
    keeps = np.asarray(test_acc, float) >= np.asarray(retrain_test_acc, float) - utility
    return np.where(keeps, np.clip(np.asarray(share, float), 0, None), 0.0)


def hyperparameter_verdicts(grid: pd.DataFrame, refs: pd.DataFrame, budget: str,
                            chapter: str = "explore") -> list[Verdict]:
    """"The verdict on a method depends on its hyperparameters" (Deep Unlearn tunes every
    method because of it), on a grid of settings per method.

    ``grid`` has ``method``, ``seed``, ``mia_test``, ``test_acc`` and one column per grid
    hyperparameter (``grid_*``); ``refs`` the ``original`` and ``retrain`` rows of the same
    seeds. Per (method, setting) the share of the loss-MIA gap closed (forget vs test,
    original -> retrained) is its mean over seeds, 0 for a setting that loses more than
    UTILITY test accuracy. The statistic is the largest spread (best minus worst setting)
    over methods; the claim holds when its interval lies above 0.5: some method closes at
    least half of the gap more at one setting than at another of the same grid.
    """
    params = [c for c in grid.columns if c.startswith("grid_")]
    if not params:
        raise ValueError("The grid needs grid_* columns (unlearnlib.book.static_explorer.grid_rows).")
    g = grid.assign(setting=grid[params].astype(str).agg("|".join, axis=1))
    r = refs[refs["method"].isin(REFERENCES)].assign(setting="-")
    t = pivot(pd.concat([g, r], ignore_index=True), ["mia_test", "test_acc"], ("method", "setting"))
    cells = [c for c in t.columns if c[0] not in REFERENCES]
    methods = list(dict.fromkeys(c[0] for c in cells))

    def spread(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mia, acc = m["mia_test"], m["test_acc"]
        orig, ret = mia[:, t.col(("original", "-"))], mia[:, t.col(("retrain", "-"))]
        ta_r = acc[:, t.col(("retrain", "-"))]
        best = np.full(len(mia), -np.inf)
        for meth in methods:
            cols = [t.col(c) for c in cells if c[0] == meth]
            with np.errstate(invalid="ignore", divide="ignore"):
                share = (orig[:, None] - mia[:, cols]) / (orig - ret)[:, None]
            share = credited_share(share, acc[:, cols], ta_r[:, None])
            best = np.maximum(best, share.max(axis=1) - share.min(axis=1))
        return best

    return scoped([decide(
        "The verdict on a method depends on its hyperparameters", BOOK, chapter,
        f"over the grid of each method ({', '.join(p[len('grid_'):] for p in params)}), the share of the loss-MIA "
        f"gap closed (original -> retrained, settings losing more than {UTILITY:.0%} test accuracy count as 0) "
        "differs by more than half the gap between the best and the worst setting of some method",
        "largest spread of the share of the gap closed", 0.5, evidence(t, spread, 0.5), None, budget)],
        scope_of(g, methods) + f"; a grid of {g['setting'].nunique()} settings")


# --------------------------------------------------------------------------- presenting


def verdict_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """One row per claim: its scope, verdict, statistic with its interval, seeds, budget,
    half-budget verdict, the reason and what would test it."""
    rows = [{"claim": v.claim, "scope": v.scope or "", "verdict": v.state, "statistic": v.statistic,
             "estimate [95% CI]": v.interval(),
             "seeds": v.n_seeds, "budget": v.budget, "half budget": v.half_state or "n/a", "why": v.reason,
             "would test it": v.needed or "", "criterion": v.criterion, "source": v.source} for v in verdicts]
    return pd.DataFrame(rows)


def verdicts_markdown(verdicts: Sequence[Verdict]) -> str:
    """A Markdown list: claim, bold verdict, interval, budget, and the criterion."""
    lines = []
    for v in verdicts:
        tail = f" Would test it: {v.needed}." if v.needed else ""
        scope = f" [{v.scope}]" if v.scope else ""
        lines.append(f"- **{v.claim}**{scope} ({v.source}): **{v.state}**. {v.statistic}: {v.interval()} "
                     f"({v.n_seeds} seeds; {v.budget}; half budget: {v.half_state or 'n/a'}); {v.reason}.{tail}"
                     f"\n  Criterion: {v.criterion}.")
    return "\n".join(lines)


def as_records(verdicts: Sequence[Verdict]) -> list[Mapping]:
    return [v.row() for v in verdicts]


#: Environment variable naming the folder where chapters publish their verdicts; the book
#: build sets it and turns the files into the landing dashboard (:mod:`unlearnlib.book.dashboard`).
PUBLISH_ENV = "UNLEARNLIB_VERDICTS_DIR"


def publish(verdicts: Sequence[Verdict], chapter: str, folder: str | None = None) -> str | None:
    """Write ``verdicts`` as ``<folder>/<chapter>.json`` (folder: ``$UNLEARNLIB_VERDICTS_DIR``);
    nothing without a folder. Returns the path written."""
    import json
    import os
    from pathlib import Path

    from ..store import atomic_write_bytes

    folder = folder or os.environ.get(PUBLISH_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{chapter}.json"
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in v_.row().items()}
            for v_ in verdicts]
    atomic_write_bytes(path, json.dumps({"chapter": chapter, "verdicts": rows}, indent=1).encode())
    return str(path)


def load_published(folder: str) -> list[Verdict]:
    """Every verdict published into ``folder`` (chapter files in name order)."""
    import json
    from pathlib import Path

    out = []
    for f in sorted(p for p in Path(folder).glob("*.json") if not p.name.endswith(".plotly.json")):
        for row in json.loads(f.read_text())["verdicts"]:
            out.append(Verdict(**{k: (math.nan if v is None and k in ("estimate", "low", "high") else v)
                                  for k, v in row.items()}))
    return out


__all__ = [
    "HOLDS", "FAILS", "INCONCLUSIVE", "UNTESTED", "STATES", "MIN_SEEDS", "UTILITY", "Evidence", "Verdict", "seed_bootstrap",
    "side", "evidence", "decide", "seeds_needed", "pivot", "grid_tables", "method_means", "ranks", "ranking_table", "rank_of", "baseline_margin", "t_scale", "INTERVALS", "deep_unlearn_verdicts",
    "nabla_tau_verdicts", "carried_baselines", "nt_ratio", "nt_margin", "nt_gap", "closeness",
    "nt_forgets_evidence", "nt_no_tuning_evidence", "Ratio", "abs_bounds", "Resampled", "resample", "tails", "boot_size", "extreme_evidence",
    "hyperparameter_verdicts", "ranking_transfer_verdicts", "scope_of", "scoped", "registered_methods", "credited_share", "verdict_table", "verdicts_markdown", "as_records", "publish", "load_published",
    "PUBLISH_ENV",
]
