"""Claims about several comparisons at once ("every baseline", "some method on some
attack"): statistics on shared seed resamples (:class:`Resampled`), ratios with Fieller's
bounds (:class:`Ratio`), bounds of an absolute value, and the interval of a minimum or a
maximum whose union side is corrected for the number of comparisons
(:func:`extreme_evidence`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .core import LEVEL, N_BOOT, Evidence, Tables, side

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


__all__ = [
    "Resampled", "abs_bounds", "Ratio", "resample", "tails", "boot_size", "extreme_evidence",
]
