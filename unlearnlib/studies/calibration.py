"""Does a verdict's interval keep its promise? Coverage, wrong-verdict rates and power by simulation.

A verdict (:mod:`.verdicts`) is an interval over seeds against a threshold. Its "95%" is a
claim about repeated experiments, so it is checked the only way it can be: simulate many
experiments from a known truth, compute the interval on each exactly as the book does
(:func:`.verdicts.seed_bootstrap`), and count (issue 31):

- **coverage**: how often the interval contains the true value of the statistic (the
  statistic of the true per-column means), at the seed counts the book uses;
- **wrong verdicts at the threshold**: with the truth exactly on a claim's threshold, how
  often the interval clears it on either side (a 95% two-sided interval promises at most
  2.5% a side);
- **power**: with the truth a stated effect away from the threshold, how often the claim
  is decided the right way.

Per-seed rows are simulated as the real ones are made: every column (method) of a seed
shares that seed's data order and initial weights, so columns are correlated through a
shared seed effect (``rho``), on top of each column's own noise. Seed noise is normal,
skewed (a standardised log-normal) or heavy-tailed (a standardised Student t with 3
degrees of freedom).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .verdicts import FAILS, HOLDS, Stat, Tables, seed_bootstrap, side

#: Seed-noise shapes, each standardised to mean 0 and sd 1.
NOISES = ("normal", "skewed", "heavy")


def standard_noise(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draws of mean 0 and sd 1: ``normal``; ``skewed``, a log-normal with sigma 0.75
    (skewness about 2.9); ``heavy``, Student's t with 3 degrees of freedom (infinite kurtosis)."""
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "skewed":
        s = 0.75
        mean, sd = math.exp(s * s / 2), math.sqrt((math.exp(s * s) - 1) * math.exp(s * s))
        return (rng.lognormal(0.0, s, shape) - mean) / sd
    if kind == "heavy":
        return rng.standard_t(3, shape) / math.sqrt(3.0)
    raise ValueError(f"Unknown noise {kind!r}; allowed: {', '.join(NOISES)}.")


@dataclass(frozen=True)
class Truth:
    """True per-column means and seed-to-seed sds of each metric, over ``columns``."""

    columns: list
    means: Mapping[str, np.ndarray]
    sds: Mapping[str, np.ndarray]

    def tables(self) -> Tables:
        """The truth as a one-row table: what the statistic's true value is computed from."""
        return Tables(list(self.columns), {k: np.asarray(v, float)[None, :] for k, v in self.means.items()})

    def value(self, stat: Stat) -> float:
        t = self.tables()
        return float(stat({k: a for k, a in t.arrays.items()}, t)[0])


def simulate(truth: Truth, n_seeds: int, noise: str, rng: np.random.Generator, rho: float = 0.5) -> Tables:
    """Per-seed tables drawn around ``truth``: value = mean + sd * (sqrt(rho) * seed effect +
    sqrt(1 - rho) * own noise), the seed effect shared by every column of a seed."""
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho is a share of the seed noise in [0, 1]; got {rho}.")
    k = len(truth.columns)
    arrays = {}
    for metric, mean in truth.means.items():
        shared = standard_noise(noise, (n_seeds, 1), rng)
        own = standard_noise(noise, (n_seeds, k), rng)
        sd = np.asarray(truth.sds[metric], float)[None, :]
        arrays[metric] = np.asarray(mean, float)[None, :] + sd * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * own)
    return Tables(list(truth.columns), arrays)


@dataclass(frozen=True)
class Calibration:
    """One statistic at one seed count and noise: the measured rates and their Monte Carlo error."""

    statistic: str
    noise: str
    n_seeds: int
    n_sims: int
    coverage: float
    holds: float       # share of simulations whose interval lies wholly above the threshold (None: no threshold)
    fails: float       # ... wholly below it
    mean_width: float

    @property
    def mc_error(self) -> float:
        """The standard error of ``coverage`` from the number of simulations."""
        return math.sqrt(max(self.coverage * (1 - self.coverage), 1e-12) / self.n_sims)


def calibrate(name: str, stat: Stat, truth: Truth, n_seeds: int, noise: str = "normal",
              threshold: float | None = None, n_sims: int = 1000, n_boot: int = 1000, rho: float = 0.5,
              seed: int = 0, interval: str = "t-scaled") -> Calibration:
    """Simulate ``n_sims`` experiments of ``n_seeds`` seeds from ``truth`` and measure how
    :func:`.verdicts.seed_bootstrap`'s interval for ``stat`` behaves: coverage of the true
    value, and, against ``threshold``, the shares of intervals clearing it above and below."""
    if n_sims < 1 or n_seeds < 2:
        raise ValueError(f"Need n_sims >= 1 and n_seeds >= 2; got {n_sims}, {n_seeds}.")
    true = truth.value(stat)
    rng = np.random.default_rng(seed)
    covered = above = below = 0
    widths = []
    for i in range(n_sims):
        t = simulate(truth, n_seeds, noise, rng, rho)
        _, lo, hi = seed_bootstrap(t, stat, n_boot=n_boot, seed=seed + 1 + i, interval=interval)
        covered += lo <= true <= hi
        widths.append(hi - lo)
        if threshold is not None:
            state = side(lo, hi, threshold, holds_above=True)
            above += state == HOLDS
            below += state == FAILS
    nan = math.nan
    return Calibration(name, noise, n_seeds, n_sims, covered / n_sims,
                       above / n_sims if threshold is not None else nan,
                       below / n_sims if threshold is not None else nan, float(np.nanmean(widths)))


# --------------------------------------------------------------------------- the book's statistics


def mean_of(metric: str, column: int = 0) -> Stat:
    """The mean of one column: the simplest statistic, whose t interval is exact under normal noise."""
    return lambda m, t: m[metric][:, column]


def paired_difference(metric: str, a: int, b: int) -> Stat:
    """Column a minus column b: a paired comparison of two methods over the same seeds."""
    return lambda m, t: m[metric][:, a] - m[metric][:, b]


def smallest_margin(metric: str, target: int, others: Sequence[int]) -> Stat:
    """min over ``others`` of (other - target): NG+'s "baseline to beat" statistic shape."""
    idx = list(others)
    return lambda m, t: (m[metric][:, idx] - m[metric][:, [target]]).min(axis=1)


def grid_truth(norm_means: Mapping[str, float], norm_sds: Mapping[str, float]) -> Truth:
    """A Deep Unlearn grid's truth for :func:`.verdicts.deep_unlearn_verdicts`' statistics:
    per-method objective norms (mean, seed sd), every method keeping its utility and of
    equal cost, with the references' columns."""
    methods = ["original", "retrain", *norm_means]
    k = len(methods)
    norm = np.array([0.5, 0.0, *norm_means.values()])
    sd = np.array([0.01, 0.0, *norm_sds.values()])
    return Truth(methods, {"objective_norm": norm, "test_acc": np.full(k, 0.9), "log_cost": np.zeros(k)},
                 {"objective_norm": sd, "test_acc": np.full(k, 0.002), "log_cost": np.zeros(k)})


def shipped_grid_truth(dataset: str = "mnist1d", model: str = "cnn1d", forget: str = "random:0.1") -> Truth:
    """:func:`grid_truth` from the shipped tuned table's reruns (seeds 0-9 of every entry of the
    setting): each method's mean and sd of its objective norm, as the book's rows spread."""
    from . import tuned

    entries = [e for e in tuned.load().values()
               if (e["dataset"], e["model"], e["forget"]) == (dataset, model, forget)]
    if not entries:
        raise ValueError(f"The shipped table has no entry for {dataset}/{model}/{forget}.")
    runs = {e["method"]: np.array(list(e["rerun"].values()), float) for e in entries}
    return grid_truth({m: float(v.mean()) for m, v in runs.items()},
                      {m: float(v.std(ddof=1)) for m, v in runs.items()})


__all__ = ["NOISES", "standard_noise", "Truth", "simulate", "Calibration", "calibrate", "mean_of",
           "paired_difference", "smallest_margin", "grid_truth", "shipped_grid_truth"]
