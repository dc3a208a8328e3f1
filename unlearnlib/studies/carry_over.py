"""Does a picture carry over to another dataset? (chapter *Text*)

- :func:`reference_gaps`: the original-minus-retrained gaps of a grid with their intervals
  (does the model memorise, so that unlearning has something to do?);
- :func:`shared_ranks`: the quality ranks of two or more grids among the methods they share;
- :func:`compare_grids`: the ranking-transfer verdicts and Deep Unlearn's verdicts on both
  grids, side by side;
- :func:`on_data`: claims that name the data they were tested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import verdicts

#: The gaps :func:`reference_gaps` reports: metric -> its label.
GAPS = {"forget_acc": "forget-accuracy gap", "mia_test": "loss-MIA gap", "test_acc": "test-accuracy gap"}


def reference_gaps(rows: pd.DataFrame) -> pd.Series:
    """Original minus retrained per metric of :data:`GAPS` (mean over seeds, with its 95%
    paired bootstrap interval over seeds, :func:`~.verdicts.seed_bootstrap`), both models'
    mean test accuracy and the number of seeds, as display strings."""
    t = verdicts.pivot(rows[rows["method"].isin(["original", "retrain"])], list(GAPS))
    o, r = t.col("original"), t.col("retrain")
    out: dict[str, object] = {}
    for metric, label in GAPS.items():
        est, lo, hi = verdicts.seed_bootstrap(t, lambda m, t, k=metric: m[k][:, o] - m[k][:, r])
        out[label] = f"{est:.3f} [{lo:.3f}, {hi:.3f}]"
    ta = np.nanmean(t.arrays["test_acc"], axis=0)
    out["test accuracy (original / retrained)"] = f"{ta[o]:.3f} / {ta[r]:.3f}"
    out["seeds"] = t.n_seeds
    return pd.Series(out)


def gap_table(grids: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`reference_gaps` of each grid (column name -> its rows), side by side."""
    return pd.DataFrame({name: reference_gaps(rows) for name, rows in grids.items()})


def shared_ranks(grids: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Each grid's quality rank (:func:`~.verdicts.ranking_table`) re-ranked among the methods
    every grid ran (what Kendall's tau compares), sorted by the first grid's."""
    both = pd.DataFrame({name: verdicts.ranking_table(df)["quality rank"] for name, df in grids.items()})
    both = both.dropna().rank()
    return both.sort_values(next(iter(grids)))


def side_by_side(claims: Mapping[str, Sequence[verdicts.Verdict]]) -> pd.DataFrame:
    """One column per set of verdicts (column name -> verdicts), one row per claim:
    ``state: interval``."""
    return pd.DataFrame({col: {v.claim: f"{v.state}: {v.interval()}" for v in vs} for col, vs in claims.items()})


def on_data(claims: list, what: str = "text") -> list:
    """The claims, each renamed to say the data it was tested on (for the dashboard)."""
    for v in claims:
        v.claim = f"{v.claim} (on {what})"
    return claims


@dataclass
class GridComparison:
    """What :func:`compare_grids` finds: ``ranks`` (:func:`shared_ranks`), ``verdicts``
    (Deep Unlearn's on both grids, :func:`side_by_side`) and ``claims`` (the ranking-transfer
    verdicts and Deep Unlearn's on the chapter's grid, named for its data)."""

    ranks: pd.DataFrame
    verdicts: pd.DataFrame
    claims: list


def compare_grids(df: pd.DataFrame, df_half: pd.DataFrame, budget: str, other: pd.DataFrame,
                  other_half: pd.DataFrame, other_budget: str, dataset: str, other_dataset: str,
                  label: str = "text", chapter: str = "text") -> GridComparison:
    """The chapter's grid ``df`` (on ``dataset``, ``label`` for short) against ``other`` (on
    ``other_dataset``): does the ranking carry over (:func:`~.verdicts.ranking_transfer_verdicts`),
    and what do Deep Unlearn's verdicts say on each (``*_half``: the half-budget rows;
    ``*budget``: each grid's tuning budget)."""
    claims = verdicts.ranking_transfer_verdicts(other, df, other_dataset, dataset,
                                                f"{dataset}: {budget}; {other_dataset}: {other_budget}", chapter=chapter)
    du = verdicts.deep_unlearn_verdicts(df, df_half, budget, chapter=chapter)
    du_other = verdicts.deep_unlearn_verdicts(other, other_half, other_budget, chapter=chapter)
    table = side_by_side({f"on {label}": du, f"on {other_dataset}": du_other})
    return GridComparison(shared_ranks({label: df, other_dataset: other}), table, claims + on_data(du, label))


def grid_budget(results: Mapping, setup, n_trials: int, tune_seeds: str, seeds: str | Sequence[int],
                **grid_options) -> str:
    """:func:`~.tuning_report.budget_text` of a grid's tuning ``results`` on ``setup`` (the
    :class:`~.experiment.Setup` it was tuned on): what produced the hyperparameters behind its
    verdicts. ``grid_options``: the grid's other keyword arguments (``warm_start``), accepted so
    that one dict of options serves both :func:`~.hpo.tune_grid` and this; they change no word."""
    from .experiment import parse_seeds
    from .tuning_report import budget_text

    return budget_text(results, setup, n_trials, parse_seeds(tune_seeds), parse_seeds(seeds))
