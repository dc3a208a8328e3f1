"""The all-folds Newton solver of the population MIA solves scikit-learn's problem."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from unlearnlib.evaluation.logistic import cv_accuracy, fit_logistic


@pytest.mark.parametrize("d", [1, 2])
def test_newton_reaches_scikit_learns_optimum(d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(3, 200, d)) + np.arange(3)[:, None, None]
    y = (rng.random((3, 200)) < 1 / (1 + np.exp(-x.sum(-1) + 1))).astype(float)
    theta = fit_logistic(x, y)
    for f in range(3):  # scikit-learn run to convergence (its default stops at tol 1e-4)
        ref = LogisticRegression(tol=1e-12, max_iter=10_000).fit(x[f], y[f])
        np.testing.assert_allclose(theta[f], np.r_[ref.coef_[0], ref.intercept_], atol=1e-6)


def test_cv_accuracy_matches_scikit_learns_pipeline_on_many_draws():
    rng = np.random.default_rng(0)
    diffs = []
    for trial in range(60):
        n, d = int(rng.integers(30, 400)), int(rng.integers(1, 3))
        scale, shift = 10 ** rng.uniform(-3, 1), rng.uniform(0, 1.5)
        x = np.concatenate([np.abs(rng.normal(0, 1, (n, d))), np.abs(rng.normal(shift, 1, (n, d)))]) * scale
        y = np.r_[np.ones(n), np.zeros(n)]
        cv = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=trial)
        ours = cv_accuracy(x, y, list(cv.split(x, y)))
        ref = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), x, y, cv=cv).mean()
        diffs.append(abs(ours - ref))
    diffs = np.array(diffs)
    # identical but where lbfgs stopped short of the optimum on a boundary point (one flip)
    assert (diffs == 0).mean() >= 0.9 and diffs.max() < 0.02


def test_a_fold_with_separable_or_constant_features_stays_finite():
    x = np.r_[np.zeros(20), np.ones(20)][:, None]
    y = np.r_[np.zeros(20), np.ones(20)]
    splits = list(StratifiedShuffleSplit(n_splits=3, test_size=0.25, random_state=0).split(x, y))
    assert cv_accuracy(x, y, splits) == 1.0
    assert cv_accuracy(np.ones((40, 1)), y, splits) == 0.5  # no information: one class predicted
