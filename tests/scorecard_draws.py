"""Constructed scorecard draws shared by tests/test_scorecard.py and
tests/test_scorecard_view.py (a plain module: pytest puts tests/ on the path)."""

from __future__ import annotations

import numpy as np

from unlearnlib.studies import scorecard as sc


def constructed_draws(n_seeds: int, shallow_mia: float, honest_ulira: float = 0.51,
                      honest_mia: float = 0.5) -> tuple[sc.Draws, sc.Reading]:
    """Draws of the loss-MIA and U-LiRA: "shallow" keeps U-LiRA's original value (fails it),
    "honest" is near retraining on U-LiRA (score 0.93 at 0.51)."""
    methods = ["original", "retrain", "shallow", "honest"]
    B1 = 41
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.002, B1)  # noqa: E731
    vals = {k: np.full((B1, 4), np.nan) for k in sc.TEST_KEYS}
    vals["mia_test"] = np.c_[0.6 + noise(), 0.5 + noise(), shallow_mia + noise(), honest_mia + noise()]
    vals["ulira_accuracy"] = np.c_[0.65 + noise(), 0.5 + noise(), 0.64 + noise(), honest_ulira + noise()]
    ta = np.tile([0.95, 0.94, 0.94, 0.94], (B1, 1))
    d = sc.Draws(methods, vals, ta, np.full((B1, 4), np.nan), n_seeds, 0, 100)
    score = sc.scores(d)
    return d, sc.classify(score, sc.utility_mask(ta, 1), methods)
