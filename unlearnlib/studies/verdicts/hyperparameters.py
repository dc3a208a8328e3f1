"""The explorer's premise: the verdict on a method depends on its hyperparameters (why Deep
Unlearn tunes every method), on a grid of settings per method."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .core import REFERENCES, UTILITY, Tables, Verdict, decide, evidence, pivot, scope_of, scoped

# --------------------------------------------------------------------------- the explorer's premise

BOOK = "this book (Deep Unlearn's motivation)"


def credited_share(share, test_acc, retrain_test_acc, utility: float = UTILITY) -> np.ndarray:
    """The share of the loss-MIA gap a setting is credited with (:func:`hyperparameter_verdicts`):
    its share clipped at 0, and 0 where its test accuracy is more than ``utility`` below the
    retrained model's (a broken model closes nothing). Arrays broadcast."""
    keeps = np.asarray(test_acc, float) >= np.asarray(retrain_test_acc, float) - utility
    return np.where(keeps, np.clip(np.asarray(share, float), 0, None), 0.0)


def hyperparameter_verdicts(grid: pd.DataFrame, refs: pd.DataFrame, budget: str,
                            chapter: str = "explore") -> list[Verdict]:
    """"The verdict on a method depends on its hyperparameters" (Deep Unlearn tunes every
    method because of it), on a grid of settings per method.

    ``grid`` has ``method``, ``seed``, ``mia_test``, ``test_acc`` and one column per grid
    hyperparameter (``grid_*``); ``refs`` the ``original`` and ``retrain`` rows of the same
    seeds. Per (method, setting) the share of the loss-MIA gap closed (forget vs test,
    original -> retrained) is its mean over seeds, 0 for a setting that loses more than
    UTILITY test accuracy. The statistic is the largest spread (best minus worst setting)
    over methods; the claim holds when its interval lies above 0.5: some method closes at
    least half of the gap more at one setting than at another of the same grid.
    """
    params = [c for c in grid.columns if c.startswith("grid_")]
    if not params:
        raise ValueError("The grid needs grid_* columns (unlearnlib.book.static_explorer.grid_rows).")
    g = grid.assign(setting=grid[params].astype(str).agg("|".join, axis=1))
    r = refs[refs["method"].isin(REFERENCES)].assign(setting="-")
    t = pivot(pd.concat([g, r], ignore_index=True), ["mia_test", "test_acc"], ("method", "setting"))
    cells = [c for c in t.columns if c[0] not in REFERENCES]
    methods = list(dict.fromkeys(c[0] for c in cells))

    def spread(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mia, acc = m["mia_test"], m["test_acc"]
        orig, ret = mia[:, t.col(("original", "-"))], mia[:, t.col(("retrain", "-"))]
        ta_r = acc[:, t.col(("retrain", "-"))]
        best = np.full(len(mia), -np.inf)
        for meth in methods:
            cols = [t.col(c) for c in cells if c[0] == meth]
            with np.errstate(invalid="ignore", divide="ignore"):
                share = (orig[:, None] - mia[:, cols]) / (orig - ret)[:, None]
            share = credited_share(share, acc[:, cols], ta_r[:, None])
            best = np.maximum(best, share.max(axis=1) - share.min(axis=1))
        return best

    return scoped([decide(
        "The verdict on a method depends on its hyperparameters", BOOK, chapter,
        f"over the grid of each method ({', '.join(p[len('grid_'):] for p in params)}), the share of the loss-MIA "
        f"gap closed (original -> retrained, settings losing more than {UTILITY:.0%} test accuracy count as 0) "
        "differs by more than half the gap between the best and the worst setting of some method",
        "largest spread of the share of the gap closed", 0.5, evidence(t, spread, 0.5), None, budget)],
        scope_of(g, methods) + f"; a grid of {g['setting'].nunique()} settings")


__all__ = [
    "BOOK", "credited_share", "hyperparameter_verdicts",
]
