"""Claims read from tuned grids: the per-seed statistics of a grid (objective norm, test
accuracy, cost), the methods' ranks with the utility constraint and ties, Deep Unlearn's
three headline claims, and whether a ranking carries over from one dataset to another."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..tables import method_labels
from .core import (
    BEST_RANK,
    N_BOOT,
    REFERENCES,
    UTILITY,
    Evidence,
    Stat,
    Tables,
    Verdict,
    decide,
    evidence,
    interval_from_draws,
    pivot,
    scope_of,
    scoped,
    side,
)

# --------------------------------------------------------------------------- shared statistics


def objective_norms(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with Deep Unlearn's objective norm per row (against the same seed's retrained row)."""
    from ..hpo import add_objectives

    return add_objectives(df)


def grid_tables(df: pd.DataFrame, cost: str = "cost_rte") -> Tables:
    """The per-seed tables of a tuned grid: objective norm, test accuracy and log cost ratio
    (``cost``, else wall-clock RTE when the rows predate the cost column)."""
    d = objective_norms(df)
    col = cost if cost in d.columns and d[cost].notna().all() else "rte"
    d = d.assign(log_cost=np.log(np.clip(d[col].to_numpy(float), 1e-12, None)))
    return pivot(d, ["objective_norm", "test_acc", "log_cost"])


def method_means(m: Mapping[str, np.ndarray], t: Tables) -> dict[str, np.ndarray]:
    """Per unlearning method (columns ``methods``) of B resamples: mean objective norm, cost
    ratio (geometric mean) and whether it keeps its utility (mean TA within UTILITY of the
    retrained model's)."""
    idx = [i for i, c in enumerate(t.columns) if c not in REFERENCES]
    ta_r = m["test_acc"][:, t.col("retrain")][:, None]
    return {"methods": [t.columns[i] for i in idx], "norm": m["objective_norm"][:, idx],
            "cost": np.exp(m["log_cost"][:, idx]), "utility": m["test_acc"][:, idx] >= ta_r - UTILITY}


#: How tied methods share ranks (scipy's ``rankdata`` methods): mid-ranks to show a
#: ranking; in a claim, a tie counts against it: the worst of the tied ranks ("max") where
#: a low rank supports the claim, the best ("min") where a high rank does.
TIES = ("average", "max", "min")


def ranks(mm: Mapping[str, np.ndarray], with_cost: bool, ties: str = "average") -> np.ndarray:
    """(B, methods) ranks, 1 = best. Quality = the objective norm (lower is better); with
    cost, the mean of the quality and cost ranks. Methods that lose their utility rank after
    all that keep it. Tied methods share ranks by ``ties`` (:data:`TIES`; never by column
    order, which would break ties alphabetically)."""
    from scipy.stats import rankdata

    if ties not in TIES:
        raise ValueError(f"Unknown ties rule {ties!r}; allowed: {', '.join(TIES)}.")
    score = rankdata(mm["norm"], axis=1, method="average")
    if with_cost:
        score = (score + rankdata(-mm["cost"], axis=1, method="average")) / 2
    key = np.where(mm["utility"], 0.0, 1e6) + score
    return rankdata(key, axis=1, method=ties).astype(float)


def ranking_table(df: pd.DataFrame) -> pd.DataFrame:
    """The point estimates behind Deep Unlearn's verdicts, one row per unlearning method:
    objective norm, test accuracy, utility kept, cost ratio, quality rank and overall rank
    (quality and cost), sorted by the overall rank."""
    t = grid_tables(df)
    means = {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
    mm = method_means(means, t)
    out = pd.DataFrame({
        "objective norm": mm["norm"][0], "test acc": means["test_acc"][0][[t.col(m) for m in mm["methods"]]],
        "keeps utility": mm["utility"][0], "cost ratio": mm["cost"][0],
        "quality rank": ranks(mm, with_cost=False)[0], "overall rank": ranks(mm, with_cost=True)[0],
    }, index=pd.Index(mm["methods"], name="method"))
    return out.sort_values("overall rank").rename(index=method_labels(df))


# --------------------------------------------------------------------------- Deep Unlearn's claims

DEEP_UNLEARN = "Cadet et al. 2024 (Deep Unlearn)"


def rank_of(ms: Sequence[str], with_cost: bool, worst: bool) -> Stat:
    """The worse (``worst``) or better rank of the methods ``ms`` (Deep Unlearn's first two
    claims). ``worst``: a low rank supports the claim, so a tie takes the worst tied rank;
    else the best."""
    def stat(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mm = method_means(m, t)
        r = ranks(mm, with_cost, ties="max" if worst else "min")[:, [mm["methods"].index(x) for x in ms]]
        return r.max(axis=1) if worst else r.min(axis=1)
    return stat


def baseline_margin(simple: Sequence[str]) -> Stat:
    """The smallest margin of objective norm, each simple baseline minus NG+; -1 where NG+
    loses its utility (it beats nothing then): Deep Unlearn's third claim."""
    def margin(m: Mapping[str, np.ndarray], t: Tables) -> np.ndarray:
        mm = method_means(m, t)
        ng = mm["methods"].index("ngplus")
        others = [mm["methods"].index(b) for b in simple]
        diff = (mm["norm"][:, others] - mm["norm"][:, [ng]]).min(axis=1)
        return np.where(mm["utility"][:, ng], diff, -1.0)
    return margin


def deep_unlearn_verdicts(df: pd.DataFrame, df_half: pd.DataFrame | None, budget: str,
                          chapter: str = "methods", more_trials: str | None = None) -> list[Verdict]:
    """Deep Unlearn's three headline claims on a tuned grid (rows of every method and seed,
    references included) and its half-budget counterpart."""
    full, half = grid_tables(df), None if df_half is None else grid_tables(df_half)
    methods = [m for m in dict.fromkeys(df["method"]) if m not in REFERENCES]
    n = len(methods)
    # "best": both at the top of the ranking, at most one other method ahead of either (ranks
    # <= 3; the top third of a short list). The top third of 24 (8) read "best" too leniently.
    top, middle = min(BEST_RANK, math.ceil(n / 3)), n / 2
    out = []

    def present(ms: Sequence[str]) -> bool:
        return set(ms) <= set(methods)

    if present(["msg", "ct"]):
        stat = rank_of(["msg", "ct"], True, worst=True)
        ev = evidence(full, stat, top + 0.5, holds_above=False, bounds=(1, n))
        hv = None if half is None else evidence(half, stat, top + 0.5, holds_above=False, bounds=(1, n))
        ct = method_labels(df).get("ct", "ct").replace("ct", "CT", 1)  # "CT (1-D extension)" on a 1-D CNN
        rank_rule = (f"rank = mean of the ranks by objective norm and by cost (retraining's gradient evaluations / "
                     f"the method's), methods losing more than {UTILITY:.0%} test accuracy against retraining ranked last")
        out.append(decide(
            f"MSG and {ct} are the best methods", DEEP_UNLEARN, chapter,
            f"the worse of MSG's and CT's ranks among {n} methods is at most {top} (\"best\": at most one other "
            f"method ahead of either; the top third of a short list); {rank_rule}",
            "worse rank of MSG and CT", top + 0.5, ev, hv, budget, more_trials))
        # the conjunction's parts, so a reader sees which one decides it
        for key, name in (("msg", "MSG"), ("ct", ct)):
            stat = rank_of([key], True, worst=True)
            ev = evidence(full, stat, top + 0.5, holds_above=False, bounds=(1, n))
            hv = None if half is None else evidence(half, stat, top + 0.5, holds_above=False, bounds=(1, n))
            out.append(decide(
                f"{name} is among the best methods", DEEP_UNLEARN, chapter,
                f"{name}'s rank among {n} methods is at most {top} (one part of \"MSG and CT are the best\"); "
                f"{rank_rule}", f"rank of {name}", top + 0.5, ev, hv, budget, more_trials))
    if present(["ga", "srl"]):
        stat = rank_of(["ga", "srl"], False, worst=False)
        ev = evidence(full, stat, middle, holds_above=True, bounds=(1, n))
        hv = None if half is None else evidence(half, stat, middle, holds_above=True, bounds=(1, n))
        out.append(decide(
            "GA and SRL are weak baselines", DEEP_UNLEARN, chapter,
            f"the better of GA's and SRL's quality ranks among {n} methods is in the bottom half (> {middle:g}); "
            "quality = objective norm, utility-losing methods last",
            "better quality rank of GA and SRL", middle, ev, hv, budget, more_trials))
    simple = [m for m in ("ft", "ga", "srl") if m in methods]
    if "ngplus" in methods and simple:
        margin = baseline_margin(simple)
        ev = evidence(full, margin, 0.0, holds_above=True)
        hv = None if half is None else evidence(half, margin, 0.0, holds_above=True)
        out.append(decide(
            "NG+ is the baseline to beat", DEEP_UNLEARN, chapter,
            f"NG+'s objective norm is lower than each of {', '.join(simple)}'s (the smallest paired margin > 0) "
            f"while keeping its utility",
            "smallest margin of objective norm, simple baseline minus NG+ (-1: NG+ loses its utility)", 0.0, ev, hv, budget, more_trials))
    return scoped(out, scope_of(df))


# --------------------------------------------------------------------------- rankings across datasets


def ranking_transfer_verdicts(df_a: pd.DataFrame, df_b: pd.DataFrame, name_a: str, name_b: str, budget: str,
                              chapter: str = "text", n_boot: int = N_BOOT, seed: int = 0) -> list[Verdict]:
    """"Method rankings carry over from ``name_a`` to ``name_b``": Kendall's tau between the
    two tuned grids' quality rankings (objective norm, utility-losing methods last) over the
    methods both ran. The interval resamples the seeds of each grid independently; the claim
    holds when it lies above 0 (the rankings agree more than chance) and does not hold when
    it lies below 0."""
    from scipy.stats import kendalltau

    ta, tb = grid_tables(df_a), grid_tables(df_b)
    common = [m for m in ta.columns if m in tb.columns and m not in REFERENCES]
    if len(common) < 3:
        raise ValueError(f"Need at least 3 methods in both grids to compare rankings; common: {common}.")

    def ranking(t: Tables, m: Mapping[str, np.ndarray]) -> np.ndarray:
        keep = [t.col(c) for c in [*common, "retrain"]]
        sub = Tables([*common, "retrain"], {})
        mm = method_means({k: v[:, keep] for k, v in m.items()}, sub)
        return ranks(mm, with_cost=False)

    def means(t: Tables, pick: np.ndarray | None) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore"):
            if pick is None:
                return {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
            return {k: np.nanmean(a[pick], axis=1) for k, a in t.arrays.items()}

    ra, rb = ranking(ta, means(ta, None))[0], ranking(tb, means(tb, None))[0]
    est = float(kendalltau(ra, rb).statistic)
    rng = np.random.default_rng(seed)
    pa = rng.integers(0, ta.n_seeds, (n_boot, ta.n_seeds))
    pb = rng.integers(0, tb.n_seeds, (n_boot, tb.n_seeds))
    a, b = ranking(ta, means(ta, pa)), ranking(tb, means(tb, pb))
    draws = np.array([kendalltau(x, y).statistic for x, y in zip(a, b, strict=True)], float)
    lo, hi = np.clip(interval_from_draws(est, draws, min(ta.n_seeds, tb.n_seeds)), -1.0, 1.0)  # tau's range
    lo, hi = float(lo), float(hi)
    ev = Evidence(side(lo, hi, 0.0), est, lo, hi, min(ta.n_seeds, tb.n_seeds), True)
    return scoped([decide(
        f"Method rankings carry over from {name_a} to {name_b}", BOOK_TEXT, chapter,
        f"Kendall's tau between the quality rankings (objective norm; methods losing more than {UTILITY:.0%} test "
        f"accuracy last) of the {len(common)} methods both ran is above 0",
        "Kendall tau", 0.0, ev, None, budget)],
        f"{len(common)} methods, {name_a} and {name_b}")


BOOK_TEXT = "Pawelczyk et al. 2024, nabla-tau and Thudi et al. test text; does Deep Unlearn's picture carry over?"


__all__ = [
    "objective_norms", "grid_tables", "method_means", "TIES", "ranks", "ranking_table", "DEEP_UNLEARN",
    "rank_of", "baseline_margin", "deep_unlearn_verdicts", "ranking_transfer_verdicts", "BOOK_TEXT",
]
