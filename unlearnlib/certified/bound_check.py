"""Does an attack respect a certified (epsilon, delta) bound? (issue 37, item 2)

An (epsilon, delta)-certified removal promises that for every test ``T`` on the released
model, ``P[T(unlearned) = 1] <= e^epsilon P[T(retrained) = 1] + delta`` (and the same with
the two swapped), where *retrained* is the same mechanism run without the removed data. A
per-sample attack that scores models (a loss, a margin, a likelihood ratio) gives one test
per threshold and direction: TPR is the share of certified-unlearned models it flags, FPR
the share of certified-retrained ones. The excess ``TPR - (e^epsilon FPR + delta)`` must be
at most 0 for every threshold.

:func:`bound_excess` reports the largest observed excess over thresholds and both
directions, with a one-sided lower confidence bound: per threshold a Clopper-Pearson lower
bound on TPR and upper bound on FPR, each at ``alpha / (2 m)`` for ``m`` tests (thresholds x
directions; Bonferroni), so that the lower bound exceeds 0 for a mechanism that keeps its
promise with probability at most ``alpha``. A lower bound above 0 is a violation beyond
sampling error: a bug in the method or in the attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Excess:
    """The largest excess over the attack's thresholds: its estimate, the lower bound of the
    largest lower-bounded excess, where it was found and on how many models."""

    estimate: float
    lower: float
    threshold: float
    direction: str
    tpr: float
    fpr: float
    n_unlearned: int
    n_retrained: int

    @property
    def violated(self) -> bool:
        """A violation beyond sampling error."""
        return self.lower > 0.0


def _cp_lower(k: np.ndarray, n: int, a: float) -> np.ndarray:
    return np.where(k > 0, stats.beta.ppf(a, np.maximum(k, 1), n - k + 1), 0.0)


def _cp_upper(k: np.ndarray, n: int, a: float) -> np.ndarray:
    return np.where(k < n, stats.beta.ppf(1 - a, k + 1, np.maximum(n - k, 1)), 1.0)


def bound_excess(unlearned: np.ndarray, retrained: np.ndarray, epsilon: float, delta: float,
                 alpha: float = 0.05) -> Excess:
    """The largest ``TPR - (e^epsilon FPR + delta)`` of the threshold tests on the scores of
    certified-unlearned (``unlearned``) and certified-retrained (``retrained``) models, over
    every threshold and both directions (flag scores >= t, or <= t), with its lower bound
    (module docstring)."""
    u, r = np.asarray(unlearned, float), np.asarray(retrained, float)
    if len(u) < 2 or len(r) < 2 or not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("bound_excess needs at least 2 finite scores on each side.")
    if not (epsilon >= 0 and 0 <= delta < 1):
        raise ValueError(f"epsilon must be >= 0 and delta in [0, 1); got {epsilon!r}, {delta!r}.")
    thresholds = np.unique(np.concatenate([u, r]))
    a = alpha / (2 * 2 * len(thresholds))  # each of the 2 m bounds (TPR and FPR of m tests) at alpha / (2 m)
    e = math.exp(epsilon)
    rows = []  # (estimate, lower, threshold, direction, tpr, fpr) per test
    for direction, fu, fr in ((">=", (u[None, :] >= thresholds[:, None]).sum(1), (r[None, :] >= thresholds[:, None]).sum(1)),
                              ("<=", (u[None, :] <= thresholds[:, None]).sum(1), (r[None, :] <= thresholds[:, None]).sum(1))):
        tpr, fpr = fu / len(u), fr / len(r)
        low = _cp_lower(fu, len(u), a) - (e * _cp_upper(fr, len(r), a) + delta)
        rows += list(zip(tpr - (e * fpr + delta), low, thresholds, [direction] * len(thresholds), tpr, fpr, strict=True))
    top = max(rows, key=lambda x: x[0])
    return Excess(float(top[0]), float(max(x[1] for x in rows)), float(top[2]), top[3], float(top[4]), float(top[5]),
                  len(u), len(r))


__all__ = ["Excess", "bound_excess"]
