"""The NeurIPS 2023 machine-unlearning challenge score (Triantafillou et al. 2024).

Follows the official implementation (``google-deepmind/unlearning_evaluation``,
``metric.py``). For every forget example s, phi (logit-scaled confidence) is
observed on N models retrained without the forget set and N unlearned models.

Orientation. The *positive* class of s is the one with the larger median phi
(the unlearned models on a tie).

Peaky cap. If the smaller of the two ranges (max - min) is below 1% of the larger
(one distribution nearly constant), eps_s = :data:`EPSILON_CAP` (50) without any
rule being evaluated.

Rules, with thresholds placed on the observed values (a decision "positive"
gives rates over the models: FPR = negatives flagged, FNR = positives missed):

- single threshold: "positive iff phi >= t" for ``ceil(100 (max - min))``
  evenly spaced t from the smallest to the largest value of both sets;
- double threshold: "peaky iff l <= phi <= r", where *peaky* is the set with
  the smaller range w (the negative class on a tie); ``ceil(100 (hi - lo))``
  right ends r (400: hi - lo = 4 up to rounding) evenly spaced over
  [lo, hi] = [min_peaky + w - 2, max_peaky + 2], and for each r 400 left ends l
  over [r - w - 2, r - w + 2]; here the peaky set plays the positive class.

Per rule: FPR = FNR = 0 gives eps = inf; exactly one of them 0 discards the rule
(too few models to measure it); otherwise

    eps = max( log(1 - delta - FPR) - log FNR,  log(1 - delta - FNR) - log FPR ),

delta = 1e-5, a term whose logarithm is undefined ignored, the rule discarded
if both are, and clipped at 0. eps_s is the maximum over the remaining rules,
then clipped to [0, 50]. Bins of width 0.5: H(s) = 2^-floor(eps_s / 0.5) if
eps_s < ceil(log(N - 1)), else 0 (the largest eps that N models can measure is
about log(N - 1)). Forgetting quality F = mean_s H(s); the final score is
F * (RA_U / RA_R) * (TA_U / TA_R) with accuracies averaged over the models.

Departures from the official code, all outside what decides the score on
continuous data:

- Thresholds and rates are float64; the official single-threshold grid is made
  by ``torch.linspace`` in float32 and its rates are float32 means. This can
  only matter when an observation lies within float32 rounding of a threshold.
- If no rule survives (both sets the same constant), the official code fails an
  assertion (``assert thr_eps`` on an array, meant as a non-empty check); here
  eps_s = 0: no rule can tell the sets apart.
- Unequal numbers of retrained and unlearned observations are allowed (the
  rates are fractions of each set); the bin cap uses the smaller N. In
  :func:`neurips_score` each example has its own N (the shadow rows whose
  forget set holds it), so each has its own cap.

Speed: rates come from sorted observations by binary search (``searchsorted``)
for all of an example's ~160,000 rules at once, O(rules * log N), where the
official code compares every model with every rule; about 8 s per example at
N = 512 there, milliseconds here (``benchmarks/neurips_score.py``).

Agreement with the official code was checked by running a scratch CPU copy of
it (``.cuda()`` calls removed, the assertion made a length check) on the same
inputs: 100 examples of (a) two independent N(0, 1) draws and (b) N(0.5, 1)
unlearned against N(0, 1) retrained, at N = 32, 128 and 512 models. F agreed
within 0.02 in all six settings, in fact to every printed digit ((a) 0.1731 /
0.1831 / 0.1872, (b) 0.1347 / 0.0933 / 0.0744), and every per-example eps within
4e-6 (the official float32 rates). The scratch copy is not part of the project;
tests/test_neurips.py pins the vectorised rules against a per-rule loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DELTA = 1e-5
BIN_WIDTH = 0.5
#: eps given to a near-constant distribution and the upper clip of every eps.
EPSILON_CAP = 50.0
#: A distribution whose range is below this fraction of the other's gets EPSILON_CAP.
PEAKY_RATIO = 0.01
#: Threshold density of the official grids (thresholds per unit of phi).
THRESHOLDS_PER_UNIT = 100
#: Reach of the double-threshold grid beyond the peaky set (phi units).
BUFFER = 2.0


# --------------------------------------------------------------------------- rules


def _count_in(sorted_x: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """#{x : left <= x <= right} for every left end (rows of ``left``, shape (R, L)) of
    every right end (``right``, shape (R,)), flattened; ``x`` sorted."""
    n = np.searchsorted(sorted_x, left, side="left")
    np.subtract(np.searchsorted(sorted_x, right, side="right")[:, None], n, out=n)
    return np.maximum(n, 0, out=n).ravel()  # left > right: an empty interval


Errors = tuple[np.ndarray, int, np.ndarray, int]  # false positives of n, false negatives of n


def _double_threshold_errors(pos: np.ndarray, neg: np.ndarray, per_unit: int) -> Errors:
    """Errors of "peaky iff l <= phi <= r" (the peaky set is the positive class); sorted inputs."""
    pos_range, neg_range = pos[-1] - pos[0], neg[-1] - neg[0]
    width = min(pos_range, neg_range)
    peaky, broad = (neg, pos) if pos_range >= neg_range else (pos, neg)
    lo, hi = peaky[0] + width - BUFFER, peaky[-1] + BUFFER
    right = np.linspace(lo, hi, int(np.ceil((hi - lo) * per_unit)))
    n_left = int(np.ceil(2 * BUFFER * per_unit))
    left = np.linspace(right - width - BUFFER, right - width + BUFFER, n_left, axis=1)
    left = np.ascontiguousarray(left)  # (R, n_left); row-major keys make searchsorted faster
    tp = _count_in(peaky, left, right)
    return _count_in(broad, left, right), len(broad), len(peaky) - tp, len(peaky)


def _single_threshold_errors(pos: np.ndarray, neg: np.ndarray, per_unit: int) -> Errors:
    """Errors of "positive iff phi >= t"; sorted inputs."""
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    t = np.linspace(lo, hi, int(np.ceil((hi - lo) * per_unit)))
    below_pos = np.searchsorted(pos, t, side="left")   # positives with phi < t: missed
    below_neg = np.searchsorted(neg, t, side="left")
    return len(neg) - below_neg, len(neg), below_pos, len(pos)


def _rates(errors: Errors, distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR); with ``distinct`` each (FPR, FNR) pair once (the max over rules is the
    same, and ~160,000 rules hold only a few thousand pairs)."""
    fp, n_fp, fn, n_fn = errors
    if distinct and len(fp):
        code = fp * (n_fn + 1) + fn
        size = (n_fp + 1) * (n_fn + 1)
        code = np.flatnonzero(np.bincount(code, minlength=size)) if size <= 4 * len(code) else np.unique(code)
        fp, fn = np.divmod(code, n_fn + 1)
    return fp / n_fp, fn / n_fn


def _oriented(retrained: np.ndarray, unlearned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) sorted: positive = the set with the larger median."""
    r = np.sort(np.asarray(retrained, dtype=np.float64).ravel())
    u = np.sort(np.asarray(unlearned, dtype=np.float64).ravel())
    if len(r) == 0 or len(u) == 0:
        raise ValueError("Need at least one retrained and one unlearned observation.")
    if not (np.isfinite(r).all() and np.isfinite(u).all()):
        raise ValueError("phi values must be finite.")
    return (r, u) if np.median(r) > np.median(u) else (u, r)


def _is_peaky(pos: np.ndarray, neg: np.ndarray) -> bool:
    """The official cap test: smaller range / larger range < 1% (0/0 is not peaky)."""
    a, b = pos[-1] - pos[0], neg[-1] - neg[0]
    small, large = min(a, b), max(a, b)
    return large > 0 and small / large < PEAKY_RATIO


def rule_rates(
    retrained: np.ndarray, unlearned: np.ndarray, thresholds_per_unit: int = THRESHOLDS_PER_UNIT
) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of every official rule for one example: double-threshold rules
    first, then single-threshold rules (see the module docstring).

    ``thresholds_per_unit`` is the grid density; the challenge uses 100 (other
    values only to make tests fast).
    """
    pos, neg = _oriented(retrained, unlearned)
    fd, nd = _rates(_double_threshold_errors(pos, neg, thresholds_per_unit))
    fs, ns = _rates(_single_threshold_errors(pos, neg, thresholds_per_unit))
    return np.r_[fd, fs], np.r_[nd, ns]


def epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> float:
    """max over rules of the official per-rule eps (before the cap at 50).

    FPR = FNR = 0: inf. Exactly one of them 0: rule discarded. Else the larger
    of the two log-ratios whose logarithm is defined (none: discarded), clipped
    at 0. No rule left: 0.
    """
    fpr, fnr = np.asarray(fpr, float), np.asarray(fnr, float)
    if ((fpr == 0) & (fnr == 0)).any():
        return math.inf
    keep = (fpr > 0) & (fnr > 0)
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    e = e[~np.isnan(e)]
    return float(max(0.0, e.max())) if len(e) else 0.0


def example_epsilon(
    retrained: np.ndarray, unlearned: np.ndarray, delta: float = DELTA,
    thresholds_per_unit: int = THRESHOLDS_PER_UNIT,
) -> float:
    """eps_s of one forget example from its phi values on the two model sets, in [0, 50]."""
    pos, neg = _oriented(retrained, unlearned)
    if _is_peaky(pos, neg):
        return EPSILON_CAP
    fd, nd = _rates(_double_threshold_errors(pos, neg, thresholds_per_unit), distinct=True)
    fs, ns = _rates(_single_threshold_errors(pos, neg, thresholds_per_unit), distinct=True)
    return min(epsilon(np.r_[fd, fs], np.r_[nd, ns], delta), EPSILON_CAP)


def max_epsilon(n_models: int | np.ndarray) -> np.ndarray:
    """ceil(log(N - 1)): eps at or above it scores 0 (-inf for N = 1: nothing scores)."""
    with np.errstate(divide="ignore"):
        return np.ceil(np.log(np.asarray(n_models, float) - 1))


def example_score(eps: float | np.ndarray, n_models: int | np.ndarray | None = None) -> np.ndarray:
    """H(s) = 2^-floor(eps / 0.5), and 0 where eps >= ceil(log(N - 1)) or eps = inf.

    ``n_models=None`` leaves out the N cap (H > 0 for every finite eps).
    """
    eps = np.asarray(eps, float)
    finite = np.isfinite(eps)
    with np.errstate(over="ignore"):
        h = np.where(finite, np.power(0.5, np.floor(np.where(finite, eps, 0) / BIN_WIDTH)), 0.0)
    if n_models is not None:
        h = np.where(eps < max_epsilon(n_models), h, 0.0)
    return h


# --------------------------------------------------------------------------- scores


@dataclass
class NeurIPSScore:
    """Per-example eps and H, forgetting quality F and the final score."""

    eps: np.ndarray
    h: np.ndarray
    forgetting_quality: float
    ra_ratio: float
    ta_ratio: float
    score: float
    n_models: float


def forgetting_quality(
    retrained: Sequence[np.ndarray], unlearned: Sequence[np.ndarray], delta: float = DELTA
) -> tuple[float, np.ndarray, np.ndarray]:
    """F = mean_s H(s); ``retrained[s]`` / ``unlearned[s]`` are example s's phi arrays
    (a 2-D array counts as one row per example). Returns (F, eps, H)."""
    if len(retrained) != len(unlearned) or len(retrained) == 0:
        raise ValueError("Need the same, non-zero number of examples on both sides.")
    eps = np.array([example_epsilon(r, u, delta) for r, u in zip(retrained, unlearned, strict=True)])
    n = np.array([min(np.size(r), np.size(u)) for r, u in zip(retrained, unlearned, strict=True)])
    h = example_score(eps, n)
    return float(mean_example_score(h)[0]), eps, h


def mean_example_score(h: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """F: the mean of the per-example scores ``h`` weighted by ``sample_weight`` (B, examples),
    for B weightings at once (integer weights: the mean over the examples repeated that many
    times); None: one weighting of ones, the plain mean. A (B,) array."""
    h = np.asarray(h, np.float64)
    w = np.ones((1, len(h))) if sample_weight is None else np.atleast_2d(np.asarray(sample_weight, np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * h).sum(1) / w.sum(1)


def final_score(f: float, ra_u: float, ra_r: float, ta_u: float, ta_r: float) -> float:
    """F * (RA_U / RA_R) * (TA_U / TA_R)."""
    return f * (ra_u / ra_r) * (ta_u / ta_r)


def neurips_score(shadows, unlearned, retrained, delta: float = DELTA) -> NeurIPSScore:
    """The challenge score on shadow outputs (:mod:`unlearnlib.evaluation.lira`).

    For every target s the unlearned and the retrained observations are the
    rows whose forget set holds s (the same forget sets on both sides); each
    example's bin cap uses its own number of rows.
    """
    forget = shadows.forget_masks.numpy()
    cols = np.nonzero(forget.any(0))[0]
    r = [retrained.phi[forget[:, s], s] for s in cols]
    u = [unlearned.phi[forget[:, s], s] for s in cols]
    f, eps, h = forgetting_quality(r, u, delta)
    ra = float(unlearned.retain_acc.mean()) / float(retrained.retain_acc.mean())
    ta = float(unlearned.test_acc.mean()) / float(retrained.test_acc.mean())
    return NeurIPSScore(eps, h, f, ra, ta, f * ra * ta, float(np.mean([len(x) for x in u])))


__all__ = ["DELTA", "BIN_WIDTH", "EPSILON_CAP", "PEAKY_RATIO", "THRESHOLDS_PER_UNIT", "BUFFER", "rule_rates",
           "epsilon", "example_epsilon", "max_epsilon", "example_score", "forgetting_quality", "mean_example_score", "final_score",
           "neurips_score", "NeurIPSScore"]
