"""Cross-validated logistic regression on a few features, all folds at once.

The population MIA (:mod:`.mia`) fits scikit-learn's ``LogisticRegression()`` (L2
penalty with C = 1, unpenalised intercept), optionally after ``StandardScaler()``,
on each of 10 shuffle-split folds: 60 fits per evaluated model, about half of a
tuning trial's time. With one or two features the same objective is solved here
by Newton's method for every fold at once (a (folds, d+1, d+1) system per step).
It converges to the exact optimum of scikit-learn's objective, where lbfgs stops
at a gradient tolerance of 1e-4; predictions can differ only for a test point
that lies within that tolerance of the decision boundary
(``tests/test_logistic.py`` compares both on many draws).
"""

from __future__ import annotations

import numpy as np


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's StandardScaler fitted per fold: (folds, n, d) arrays."""
    mean = train.mean(axis=1, keepdims=True)
    std = train.std(axis=1, keepdims=True)
    std = np.where(std == 0, 1.0, std)  # StandardScaler leaves constant features unscaled
    return (train - mean) / std, (test - mean) / std


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, max_iter: int = 100,
                 tol: float = 1e-10) -> np.ndarray:
    """Minimise ``0.5 ||w||^2 + C * sum_i logloss(y_i, w.x_i + b)`` per fold by Newton's method.

    ``x`` is (folds, n, d), ``y`` (folds, n) in {0, 1}; returns (folds, d + 1) with the
    intercept last (not penalised), as ``LogisticRegression(C=c)`` defines the problem.
    """
    folds, n, d = x.shape
    xb = np.concatenate([x, np.ones((folds, n, 1))], axis=2)
    theta = np.zeros((folds, d + 1))
    reg = np.eye(d + 1)
    reg[d, d] = 0.0
    for _ in range(max_iter):
        z = np.einsum("fnd,fd->fn", xb, theta)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # a sigmoid that never overflows
        grad = c * np.einsum("fnd,fn->fd", xb, p - y) + theta @ reg
        w = c * p * (1 - p)
        hess = np.einsum("fnd,fn,fne->fde", xb, w, xb) + reg
        hess[:, d, d] += 1e-12  # a fold whose labels are all one class
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta -= step
        if np.abs(step).max() < tol:
            break
    return theta


def cv_accuracy(x: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                scale: bool = True) -> float:
    """Mean test accuracy over ``splits`` (train and test row indices of equal sizes per fold)
    of logistic regression (after per-fold standardisation when ``scale``)."""
    train = np.stack([x[tr] for tr, _ in splits])
    test = np.stack([x[te] for _, te in splits])
    if scale:
        train, test = _standardise(train, test)
    theta = fit_logistic(train, np.stack([y[tr] for tr, _ in splits]))
    z = np.einsum("fnd,fd->fn", test, theta[:, :-1]) + theta[:, -1:]
    pred = (z > 0).astype(float)  # scikit-learn predicts class 1 only for a positive score
    return float((pred == np.stack([y[te] for _, te in splits])).mean(axis=1).mean())


__all__ = ["fit_logistic", "cv_accuracy"]
