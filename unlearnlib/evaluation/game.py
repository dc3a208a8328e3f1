"""Summaries of a membership game with weights: balanced accuracy, ROC AUC, TPR at low FPR.

A per-sample attack (U-LiRA, Hayes et al. 2024; RMIA, Zarifzadeh et al. 2024) plays a
balanced game: scores of *positive* pairs (a model that saw the target, then unlearned
it) against scores of *negative* pairs (a model that never saw it). These functions
summarise the scores with a weight per pair, for B weightings at once: ``pos_weight``
(B, n_pos) and ``neg_weight`` (B, n_neg), or None for one weighting of ones (the plain
summary). Integer weights give the summary of the scores repeated that many times, so a
row of bootstrap counts gives the summary of that resample (the scorecard's bootstrap over
shadow targets reads them so). Each returns a (B,) array.

At unit weights they equal :func:`~unlearnlib.evaluation.lira.attack_metrics`' AUC,
``tpr_at_1pct_fpr`` and ``accuracy`` (scikit-learn's ``roc_auc_score`` and ``roc_curve``);
``tests/test_metric_registry.py`` pins both.
"""

from __future__ import annotations

import numpy as np

#: FPR at which the TPR is read (strictly below, as :func:`~unlearnlib.evaluation.lira.tpr_at_fpr`).
LOW_FPR = 0.01


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones((1, n)) if w is None else np.atleast_2d(w).astype(float)


def weighted_roc(pos: np.ndarray, pos_w: np.ndarray, neg: np.ndarray, neg_w: np.ndarray,
                 low_fpr: float = LOW_FPR) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, TPR at FPR strictly below ``low_fpr``) of scores with weights, for B weightings at once.

    ``pos_w`` (B, n_pos) and ``neg_w`` (B, n_neg) weigh each pair (a bootstrap's
    multiplicities). The curve has one point per distinct score (ties form one step, no
    point is dropped) from (0, 0); the AUC is its trapezoidal area, which counts a tied
    positive-negative pair as 1/2 (as ``roc_auc_score``).
    """
    pos_w, neg_w = np.atleast_2d(pos_w).astype(float), np.atleast_2d(neg_w).astype(float)
    s = np.r_[pos, neg]
    order = np.argsort(-s, kind="stable")
    s = s[order]
    w = np.concatenate([pos_w, np.zeros_like(neg_w)], axis=1)[:, order]
    v = np.concatenate([np.zeros_like(pos_w), neg_w], axis=1)[:, order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
    tp, fp = np.cumsum(w, axis=1)[:, ends], np.cumsum(v, axis=1)[:, ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.c_[np.zeros(len(tp)), tp / tp[:, -1:]]
        fpr = np.c_[np.zeros(len(fp)), fp / fp[:, -1:]]
    auc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    low = np.where(fpr < low_fpr, tpr, -np.inf).max(axis=1)
    return auc, low


def roc_auc(pos: np.ndarray, neg: np.ndarray, pos_weight: np.ndarray | None = None,
            neg_weight: np.ndarray | None = None) -> np.ndarray:
    """Area under the ROC curve of the game (:func:`weighted_roc`); 0.5 = the attack is at chance."""
    return weighted_roc(pos, _weights(pos_weight, len(pos)), neg, _weights(neg_weight, len(neg)))[0]


def tpr_at_low_fpr(pos: np.ndarray, neg: np.ndarray, pos_weight: np.ndarray | None = None,
                   neg_weight: np.ndarray | None = None, low_fpr: float = LOW_FPR) -> np.ndarray:
    """Largest TPR at an FPR strictly below ``low_fpr`` (:func:`weighted_roc`; Carlini et al. 2022)."""
    return weighted_roc(pos, _weights(pos_weight, len(pos)), neg, _weights(neg_weight, len(neg)), low_fpr)[1]


def balanced_accuracy(pos: np.ndarray, neg: np.ndarray, threshold: float,
                      pos_weight: np.ndarray | None = None, neg_weight: np.ndarray | None = None) -> np.ndarray:
    """Mean of the weighted share of positives above ``threshold`` and of negatives at or
    below it: the game's accuracy at the attack's own decision threshold (0.5 = chance)."""
    pw, nw = _weights(pos_weight, len(pos)), _weights(neg_weight, len(neg))
    thr = float(threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * ((pw * (pos > thr)).sum(1) / pw.sum(1) + (nw * (neg <= thr)).sum(1) / nw.sum(1))


__all__ = ["LOW_FPR", "weighted_roc", "roc_auc", "tpr_at_low_fpr", "balanced_accuracy"]
