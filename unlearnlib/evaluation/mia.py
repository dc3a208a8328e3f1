"""Population membership inference (Deep Unlearn; NeurIPS 2023 challenge starter kit).

Members are the forget set, non-members the validation ("val MIA") or test set
("test MIA"). The larger class is subsampled at random so both have the same
size; a logistic regression on the per-sample feature(s) is scored by
stratified shuffle-split cross-validation, and the MIA is its mean accuracy.
After ideal unlearning the attacker cannot tell the two apart: MIA = 0.5.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _as_2d(a: torch.Tensor | np.ndarray) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return a.reshape(len(a), -1).astype(np.float64)


def population_mia(
    members: torch.Tensor | np.ndarray,
    nonmembers: torch.Tensor | np.ndarray,
    seed: int = 0,
    n_splits: int = 10,
    test_size: float = 0.1,
) -> float:
    """Mean cross-validated accuracy of a logistic-regression attack.

    ``members`` and ``nonmembers`` are per-sample features, shape (n,) for the
    loss alone or (n, k) for several (loss and entropy). Classes are balanced
    by subsampling the larger one with ``seed``.
    """
    xm, xn = _as_2d(members), _as_2d(nonmembers)
    if xm.shape[1] != xn.shape[1]:
        raise ValueError(f"Members have {xm.shape[1]} features but non-members {xn.shape[1]}.")
    n = min(len(xm), len(xn))
    if n < 2:
        raise ValueError(f"Need at least 2 members and 2 non-members; got {len(xm)} and {len(xn)}.")
    rng = np.random.default_rng(seed)
    xm = xm[rng.choice(len(xm), n, replace=False)]
    xn = xn[rng.choice(len(xn), n, replace=False)]
    x = np.concatenate([xm, xn])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    attacker = make_pipeline(StandardScaler(), LogisticRegression())
    cv = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    return float(cross_val_score(attacker, x, y, cv=cv, scoring="accuracy").mean())
