"""NeurIPS 2023 challenge score: the official rules, pinned against a loop over rules.

``loop_rates`` / ``loop_epsilon`` / ``loop_score`` restate the official rules
(google-deepmind/unlearning_evaluation ``metric.py``) one rule at a time, with no
sorting or binary search; ``benchmarks/neurips_score.py`` times them against the
vectorised module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnlib.evaluation.neurips import (
    DELTA,
    EPSILON_CAP,
    epsilon,
    example_epsilon,
    example_score,
    final_score,
    forgetting_quality,
    max_epsilon,
    rule_rates,
)

# --------------------------------------------------------------------------- the reference loop


def loop_rates(retrained, unlearned, per_unit: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of every official rule, one rule at a time: double thresholds, then single."""
    r, u = np.asarray(retrained, float), np.asarray(unlearned, float)
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)   # positive: larger median
    pos_range, neg_range = pos.max() - pos.min(), neg.max() - neg.min()
    width = min(pos_range, neg_range)
    peaky, broad = (neg, pos) if pos_range >= neg_range else (pos, neg)
    rules = []
    lo, hi = peaky.min() + width - 2.0, peaky.max() + 2.0
    for right in np.linspace(lo, hi, math.ceil((hi - lo) * per_unit)):
        for left in np.linspace(right - width - 2.0, right - width + 2.0, math.ceil(2 * 2.0 * per_unit)):
            peaky_in = (left <= peaky) & (peaky <= right)        # flagged "peaky"
            broad_in = (left <= broad) & (broad <= right)
            rules.append((np.count_nonzero(broad_in) / len(broad), np.count_nonzero(~peaky_in) / len(peaky)))
    both = np.r_[pos, neg]
    for t in np.linspace(both.min(), both.max(), math.ceil((both.max() - both.min()) * per_unit)):
        rules.append((np.count_nonzero(neg >= t) / len(neg), np.count_nonzero(pos < t) / len(pos)))
    fpr, fnr = zip(*rules, strict=True) if rules else ((), ())
    return np.array(fpr, float), np.array(fnr, float)


def loop_epsilon(retrained, unlearned, delta: float = DELTA, per_unit: int = 100) -> float:
    """eps_s by the official rules, rule by rule."""
    r, u = np.asarray(retrained, float), np.asarray(unlearned, float)
    ranges = sorted([r.max() - r.min(), u.max() - u.min()])
    if ranges[1] > 0 and ranges[0] / ranges[1] < 0.01:
        return 50.0                                              # near-constant set
    best = None
    for fpr, fnr in zip(*loop_rates(r, u, per_unit), strict=True):
        if fpr == 0 and fnr == 0:
            return 50.0                                          # inf, clipped to the cap
        if fpr == 0 or fnr == 0:
            continue                                             # one rate zero: discarded
        terms = [math.log(1 - delta - a) - math.log(b) for a, b in ((fpr, fnr), (fnr, fpr)) if 1 - delta - a > 0]
        if terms:
            e = max(0.0, max(terms))
            best = e if best is None else max(best, e)
    return 0.0 if best is None else min(best, 50.0)


def loop_score(eps: float, n_models: int) -> float:
    """The official buckets: 1, 1/2, 1/4, ... for [0, .5), [.5, 1), ... while the bucket
    ends at or below ceil(log(N - 1)); 0 beyond."""
    cap = math.ceil(math.log(n_models - 1)) if n_models > 2 else (0 if n_models == 2 else -math.inf)
    start, points = 0.0, 1.0
    while start + 0.5 <= cap:
        if eps < start + 0.5:
            return points
        start, points = start + 0.5, points / 2
    return 0.0


def _cases():
    """Inputs that exercise orientation, swaps on equal ranges, ties with thresholds, sizes."""
    rng = np.random.default_rng(7)
    g = rng.normal
    yield g(size=16), g(size=16)                                  # same distribution
    yield g(size=16), g(0.7, 1.0, size=16)                        # shifted up
    yield g(0.7, 1.0, size=16), g(size=16)                        # shifted down
    yield g(size=12), g(0.0, 0.2, size=20)                        # peaky unlearned, unequal sizes
    yield g(0.0, 0.1, size=16), g(size=16)                        # peaky retrained
    yield np.round(g(size=16), 1), np.round(g(0.3, 1, size=16), 1)  # ties on a 0.1 grid
    yield np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0]) + 0.5  # equal ranges
    yield np.array([-5.0, -4.0, 4.0, 5.0]), np.array([-0.5, 0.0, 0.5])         # interval rule
    yield np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0])       # two values only
    yield 3 * g(size=8), g(size=8)


# --------------------------------------------------------------------------- pinned to the loop


@pytest.mark.parametrize("case", range(10))
def test_vectorised_rules_match_the_loop(case):
    r, u = list(_cases())[case]
    fpr, fnr = rule_rates(r, u, thresholds_per_unit=10)
    want_fpr, want_fnr = loop_rates(r, u, per_unit=10)
    np.testing.assert_array_equal(fpr, want_fpr)
    np.testing.assert_array_equal(fnr, want_fnr)
    assert example_epsilon(r, u, thresholds_per_unit=10) == pytest.approx(loop_epsilon(r, u, per_unit=10),
                                                                         rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", [1, 5])
def test_vectorised_rules_match_the_loop_at_the_official_density(case):
    r, u = list(_cases())[case]
    fpr, fnr = rule_rates(r, u)
    want_fpr, want_fnr = loop_rates(r, u)
    assert len(fpr) > 160_000  # 400 x 400 double-threshold rules and the single ones
    np.testing.assert_array_equal(fpr, want_fpr)
    np.testing.assert_array_equal(fnr, want_fnr)
    assert example_epsilon(r, u) == pytest.approx(loop_epsilon(r, u), rel=1e-12, abs=1e-12)


def test_bins_match_the_official_buckets():
    eps = np.r_[np.linspace(0.0, 8.0, 161), 0.4999, 1.9999, 50.0]
    for n in (2, 3, 8, 32, 128, 512):
        np.testing.assert_array_equal(example_score(eps, n), [loop_score(e, n) for e in eps])


# --------------------------------------------------------------------------- closed forms


def test_epsilon_formula_and_skipped_rules():
    want = max(math.log(1 - DELTA - 0.1) - math.log(0.3), math.log(1 - DELTA - 0.3) - math.log(0.1))
    assert epsilon([0.1], [0.3]) == pytest.approx(want)
    assert epsilon([0.0, 0.5], [0.2, 0.5]) == pytest.approx(0.0, abs=1e-4)  # the one-zero rule is skipped
    assert epsilon([0.0], [0.0]) == math.inf   # perfect separation
    assert epsilon([0.9], [0.9]) == 0.0        # clipped at 0
    # FPR = FNR = 1: both logarithms undefined, the rule is discarded (not counted as perfect)
    assert epsilon([1.0, 0.5], [1.0, 0.5]) == 0.0


def test_bins_and_the_model_count_cap():
    np.testing.assert_allclose(example_score([0.0, 0.49, 0.5, 1.2, np.inf]), [1.0, 1.0, 0.5, 0.25, 0.0])
    # ceil(log(N - 1)): log 7 = 1.95 -> 2, log 31 = 3.43 -> 4, log 127 = 4.84 -> 5, log 511 = 6.24 -> 7
    assert [max_epsilon(n) for n in (8, 32, 128, 512)] == [2, 4, 5, 7]
    np.testing.assert_array_equal(example_score([1.9, 2.0, 2.4, EPSILON_CAP], 8), [0.125, 0.0, 0.0, 0.0])
    assert example_score(6.9, 512) == 0.5 ** 13 and example_score(7.0, 512) == 0.0


def test_identical_samples_score_one():
    # every rule flags the same fraction of both sets: each eps term is <= 0
    rng = np.random.default_rng(0)
    same = [rng.normal(size=64) for _ in range(20)]
    f, eps, h = forgetting_quality(same, [s.copy() for s in same])
    assert f == 1.0 and eps.max() == 0.0


def test_cap_rules():
    rng = np.random.default_rng(3)
    r = rng.normal(size=16)
    # an unlearned set 1000x narrower than the retrained one gets eps 50 even inside its range
    assert example_epsilon(r, 0.3 + 1e-4 * rng.normal(size=16)) == EPSILON_CAP
    # constants: different values separate (inf, clipped to 50); the same value cannot be told apart
    assert example_epsilon(np.zeros(16), np.full(16, 5.0)) == EPSILON_CAP
    assert example_epsilon(np.full(16, 2.0), np.full(16, 2.0)) == 0.0
    f, eps, h = forgetting_quality([r, np.zeros(16), np.full(16, 2.0)],
                                   [0.3 + 1e-4 * rng.normal(size=16), np.full(16, 5.0), np.full(16, 2.0)])
    np.testing.assert_array_equal(h, [0.0, 0.0, 1.0])
    assert f == pytest.approx(1 / 3)


def test_separated_distributions_score_zero():
    rng = np.random.default_rng(1)
    f, eps, _ = forgetting_quality([rng.normal(size=64) for _ in range(20)],
                                   [rng.normal(10.0, 1.0, size=64) for _ in range(20)])
    assert f == 0.0 and (eps == EPSILON_CAP).all()
    # unlearned in the middle, retrained on both sides: only an interval rule separates
    assert example_epsilon(np.array([-5.0, -4.0, 4.0, 5.0]), np.array([-0.5, 0.5])) == EPSILON_CAP


def test_few_models_cannot_score():
    # N = 2: ceil(log 1) = 0, no bucket; every example scores 0 whatever its eps
    f, eps, h = forgetting_quality([np.array([0.0, 1.0])], [np.array([0.0, 1.0])])
    assert eps[0] == 0.0 and f == 0.0


def test_independent_draws_do_not_score_more_leniently_with_more_models():
    # Thresholds at every 0.01 of the observed range, not at sample quantiles: the
    # score of two draws of one distribution does not climb with N (the official code
    # gives F ~ 0.17 / 0.18 / 0.18 at 32 / 128 / 512; a 20-quantile grid gave 0.13 / 0.23 / 0.65).
    rng = np.random.default_rng(5)
    f = {n: forgetting_quality([rng.normal(size=n) for _ in range(40)], [rng.normal(size=n) for _ in range(40)])[0]
         for n in (32, 512)}
    assert f[512] < f[32] + 0.1 and f[512] < 0.35
    shifted = forgetting_quality([rng.normal(size=512) for _ in range(40)],
                                 [rng.normal(0.5, 1.0, size=512) for _ in range(40)])[0]
    assert shifted < f[512]


def test_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        example_epsilon(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        example_epsilon(np.array([np.nan, 1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="same, non-zero"):
        forgetting_quality([np.zeros(3)], [])


def test_final_score_multiplies_accuracy_ratios():
    assert final_score(0.5, 0.9, 1.0, 0.8, 0.8) == pytest.approx(0.45)
