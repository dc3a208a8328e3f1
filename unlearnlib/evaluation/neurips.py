"""The NeurIPS 2023 machine-unlearning challenge score (Triantafillou et al. 2024).

For every forget example s, phi (logit-scaled confidence) is observed on N
models retrained without the forget set and on N unlearned models. Each attack
rule splits the phi axis into "unlearned" and "retrained"; with FPR and FNR of
a rule over those models, its privacy loss is

    eps = max( log(1 - delta - FPR) - log FNR,  log(1 - delta - FNR) - log FPR ),

delta = 1e-5, clipped at 0; a rule with exactly one of FPR, FNR zero is skipped
(its eps would be infinite from too few models), both zero gives eps = inf.
eps_s is the maximum over single-threshold and interval (two-threshold) rules,
on a grid of thresholds (quantiles of the pooled phi values, :data:`N_THRESHOLDS`),
in both orientations. With bins of width
0.5 from 0, n(s) = floor(eps_s / 0.5) + 1 is eps_s's bin (1-based), and
H(s) = 2 / 2^n(s) (1 in the first bin, 0 for eps = inf). Forgetting quality F
is the mean of H over the forget examples, and the final score is
F * (RA_U / RA_R) * (TA_U / TA_R) with accuracies averaged over the models.
The challenge used N = 512; fewer models cap the largest measurable eps
(about log N), so scores from small N are optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DELTA = 1e-5
BIN_WIDTH = 0.5
#: Threshold grid: pooled-phi quantiles in steps of 5%. Rules over every observed
#: value would overfit: among the O(N^2) intervals of two i.i.d. samples some hold
#: 1 retrained vs 5 unlearned points, an eps of log 5 with nothing to forget.
N_THRESHOLDS = 20


def rule_rates(
    retrained: np.ndarray, unlearned: np.ndarray, n_thresholds: int | None = N_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of every rule on the grid (positive class = unlearned).

    Rules: "phi in (c_i, c_j]" for cut points c_0 = -inf < c_1 < ... (the
    ``n_thresholds`` quantiles of the pooled values; ``None``: every distinct
    observed value), which includes both single thresholds (i = 0 or j = last),
    and the complement of each interval.
    """
    a = np.sort(np.asarray(retrained, float))
    b = np.sort(np.asarray(unlearned, float))
    if len(a) == 0 or len(b) == 0:
        raise ValueError("Need at least one retrained and one unlearned observation.")
    pooled = np.r_[a, b]
    grid = np.unique(pooled) if n_thresholds is None else np.unique(
        np.quantile(pooled, np.linspace(0, 1, n_thresholds + 1)[1:]))
    cuts = np.r_[-np.inf, grid]
    ca = np.searchsorted(a, cuts, side="right") / len(a)  # fraction <= cut
    cb = np.searchsorted(b, cuts, side="right") / len(b)
    i, j = np.triu_indices(len(cuts), k=1)
    inside_a, inside_b = ca[j] - ca[i], cb[j] - cb[i]
    fpr = np.r_[inside_a, 1 - inside_a]   # retrained flagged as unlearned
    fnr = np.r_[1 - inside_b, inside_b]   # unlearned missed
    return np.clip(fpr, 0, 1), np.clip(fnr, 0, 1)


def epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> float:
    """max over rules of the (eps, delta) bound; skip rules with exactly one rate zero."""
    fpr, fnr = np.asarray(fpr, float), np.asarray(fnr, float)
    if ((fpr == 0) & (fnr == 0)).any():
        return float("inf")
    keep = (fpr > 0) & (fnr > 0)
    if not keep.any():
        return 0.0
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        e1 = np.log(1 - delta - fpr) - np.log(fnr)
        e2 = np.log(1 - delta - fnr) - np.log(fpr)
    both = np.fmax(e1, e2)  # NaN only where both logs are undefined (FPR, FNR ~ 1: a flipped perfect rule)
    both = np.where(np.isnan(both), np.inf, both)
    return float(max(0.0, both.max()))


def example_epsilon(
    retrained: np.ndarray, unlearned: np.ndarray, delta: float = DELTA, n_thresholds: int | None = N_THRESHOLDS
) -> float:
    """eps_s of one forget example from its phi values on the two model sets."""
    return epsilon(*rule_rates(retrained, unlearned, n_thresholds), delta=delta)


def example_score(eps: float | np.ndarray) -> np.ndarray:
    """H(s) = 2 / 2^n(s), n(s) = floor(eps / 0.5) + 1; 0 for eps = inf."""
    eps = np.asarray(eps, float)
    n = np.floor(eps / BIN_WIDTH) + 1
    with np.errstate(over="ignore"):
        return np.where(np.isfinite(eps), 2.0 / np.power(2.0, np.where(np.isfinite(n), n, 0)), 0.0)


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
    retrained: list[np.ndarray], unlearned: list[np.ndarray], delta: float = DELTA
) -> tuple[float, np.ndarray, np.ndarray]:
    """F = mean_s H(s) over examples; ``retrained[s]`` / ``unlearned[s]`` are phi arrays."""
    if len(retrained) != len(unlearned) or not retrained:
        raise ValueError("Need the same, non-zero number of examples on both sides.")
    eps = np.array([example_epsilon(r, u, delta) for r, u in zip(retrained, unlearned, strict=False)])
    h = example_score(eps)
    return float(h.mean()), eps, h


def final_score(f: float, ra_u: float, ra_r: float, ta_u: float, ta_r: float) -> float:
    """F * (RA_U / RA_R) * (TA_U / TA_R)."""
    return f * (ra_u / ra_r) * (ta_u / ta_r)


def neurips_score(shadows, unlearned, retrained, delta: float = DELTA) -> NeurIPSScore:
    """The challenge score on shadow outputs (:mod:`unlearnlib.evaluation.lira`).

    For every target s the unlearned and the retrained observations are the
    rows whose forget set holds s (the same forget sets on both sides).
    """
    forget = shadows.forget_masks.numpy()
    cols = np.nonzero(forget.any(0))[0]
    r = [retrained.phi[forget[:, s], s] for s in cols]
    u = [unlearned.phi[forget[:, s], s] for s in cols]
    f, eps, h = forgetting_quality(r, u, delta)
    ra = float(unlearned.retain_acc.mean()) / float(retrained.retain_acc.mean())
    ta = float(unlearned.test_acc.mean()) / float(retrained.test_acc.mean())
    return NeurIPSScore(eps, h, f, ra, ta, f * ra * ta, float(np.mean([len(x) for x in u])))


__all__ = ["DELTA", "BIN_WIDTH", "N_THRESHOLDS", "rule_rates", "epsilon", "example_epsilon", "example_score",
           "forgetting_quality", "final_score", "neurips_score", "NeurIPSScore"]
