"""NeurIPS 2023 challenge score: eps per rule, bins, F and the final score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnlib.evaluation.neurips import (
    DELTA,
    epsilon,
    example_epsilon,
    example_score,
    final_score,
    forgetting_quality,
    rule_rates,
)


def test_epsilon_formula_and_skipped_rules():
    want = max(math.log(1 - DELTA - 0.1) - math.log(0.3), math.log(1 - DELTA - 0.3) - math.log(0.1))
    assert epsilon([0.1], [0.3]) == pytest.approx(want)
    assert epsilon([0.0, 0.5], [0.2, 0.5]) == pytest.approx(0.0, abs=1e-4)  # the one-zero rule is skipped
    assert epsilon([0.0], [0.0]) == math.inf   # perfect separation
    assert epsilon([0.9], [0.9]) == 0.0        # clipped at 0


def test_bins_of_half_width():
    np.testing.assert_allclose(example_score([0.0, 0.49, 0.5, 1.2, np.inf]), [1.0, 1.0, 0.5, 0.25, 0.0])


def test_rules_include_thresholds_and_intervals():
    fpr, fnr = rule_rates(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    assert ((fpr == 0) & (fnr == 0)).any()  # "phi > 1" separates
    # an interval is needed here: unlearned in the middle, retrained on both sides
    r, u = np.array([-5.0, -4.0, 4.0, 5.0]), np.array([-0.5, 0.5])
    assert example_epsilon(r, u) == math.inf


def test_identical_distributions_score_near_maximum():
    rng = np.random.default_rng(0)
    same = [rng.normal(size=64) for _ in range(50)]
    f, eps, h = forgetting_quality(same, [s.copy() for s in same])
    assert f == 1.0 and eps.max() < 1e-4
    iid = forgetting_quality([rng.normal(size=512) for _ in range(50)],
                             [rng.normal(size=512) for _ in range(50)])[0]
    assert iid >= 0.4  # ~0.6: finite N biases eps upwards (see N_THRESHOLDS)


def test_separated_distributions_score_near_zero():
    rng = np.random.default_rng(1)
    f, eps, _ = forgetting_quality([rng.normal(size=64) for _ in range(50)],
                                   [rng.normal(8.0, 1.0, size=64) for _ in range(50)])
    assert f < 0.05 and np.isinf(eps).mean() > 0.9
    shifted = forgetting_quality([rng.normal(size=64) for _ in range(50)],
                                 [rng.normal(1.0, 1.0, size=64) for _ in range(50)])[0]
    assert f < shifted < 1.0


def test_final_score_multiplies_accuracy_ratios():
    assert final_score(0.5, 0.9, 1.0, 0.8, 0.8) == pytest.approx(0.45)
