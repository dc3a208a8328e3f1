"""Population MIA: the standardised default attacker and the reference (raw-loss) one."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnlib.evaluation.mia import population_mia


def _separable(scale: float, n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Member losses uniform on [0, scale), non-members on [scale, 2 scale): a threshold separates."""
    rng = np.random.default_rng(seed)
    return scale * rng.uniform(0, 1, n), scale * rng.uniform(1, 2, n)


def test_scaled_attacker_does_not_depend_on_the_loss_units():
    # the same ordering at every scale: a standardised attack sees the same data
    accs = [population_mia(*_separable(scale)) for scale in (1e-4, 1.0, 100.0)]
    assert min(accs) > 0.95
    assert max(accs) - min(accs) < 1e-9


def test_reference_attacker_collapses_on_tiny_losses():
    # on tiny losses LogisticRegression() stops at its first iterate (gradient below
    # tol in these units) and predicts one class: 0.5 on balanced folds, though a
    # threshold separates the classes perfectly
    members, nonmembers = _separable(1e-4)
    ref = population_mia(members, nonmembers, attacker="reference")
    assert ref == pytest.approx(0.5, abs=0.02)
    assert population_mia(members, nonmembers) > 0.95
    # on unit-scale losses the two attackers agree
    m1, n1 = _separable(1.0)
    assert population_mia(m1, n1, attacker="reference") == pytest.approx(population_mia(m1, n1), abs=0.02)


def test_unknown_attacker():
    with pytest.raises(ValueError, match="allowed: scaled, reference"):
        population_mia(np.zeros(4), np.ones(4), attacker="svm")
