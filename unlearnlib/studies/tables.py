"""Tidy result frames as tables: methods in registry order, ``mean ± std`` over seeds.

Used by the studies (fraction study, tuning) and by the book's figures alike, so it
lives below both.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def method_order(df: pd.DataFrame) -> list[str]:
    """The methods present in ``df``: registry order first, unknown keys after, in order seen."""
    from .. import methods as registry

    present = list(dict.fromkeys(df["method"]))
    known = [m for m in registry.available() if m in present]
    return known + [m for m in present if m not in known]


def check_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in ["method", "seed", *columns] if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {missing} of run_grid's result frame; "
                         f"got {list(df.columns)}.")
    if df.empty:
        raise ValueError(f"{what} got an empty frame; run run_grid first.")


def _std(x: pd.Series) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def summary_table(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("retain_acc", "forget_acc", "test_acc", "mia_test", "mia_val",
                              "indisc", "retdev", "rte", "unlearn_seconds", "l2_to_retrained"),
    digits: int = 3,
) -> pd.DataFrame:
    """``mean ± std`` over seeds per method (registry order), as strings ready to display.

    The spaces around ``±`` are non-breaking, so a narrow HTML column does not wrap a cell.

    RTE of ``original`` is shown as ``–`` (it does no unlearning, so its time is ~0).
    """
    metrics = [m for m in metrics if m in df.columns]
    check_columns(df, metrics, "summary_table")
    order = method_order(df)
    g = df.groupby("method")
    out = pd.DataFrame(index=pd.Index(order, name="method"))
    out["seeds"] = g["seed"].nunique().reindex(order)
    for m in metrics:
        mean, std = g[m].mean().reindex(order), g[m].apply(_std).reindex(order)
        fmt = "{:.%dg}" % digits if m in ("rte", "unlearn_seconds") else "{:.%df}" % digits
        out[m] = [
            "–" if (m == "rte" and meth == "original") or not np.isfinite(a)
            else fmt.format(a) + (f"\u00a0±\u00a0{fmt.format(b)}" if n > 1 else "")
            for meth, a, b, n in zip(order, mean, std, out["seeds"], strict=True)
        ]
    return out.rename(index=method_labels(df))


def method_labels(df: pd.DataFrame) -> dict[str, str]:
    """``{key: label}`` for the methods of ``df`` whose report name differs from their key on
    the frame's one model (:meth:`unlearnlib.methods.Method.label`: CT on ``cnn1d`` is
    ``ct (1-D extension)``); empty without a single ``model`` value."""
    from .. import methods as registry

    models = df["model"].unique() if "model" in df.columns else []
    if len(models) != 1:
        return {}
    known = set(registry.available())
    labels = {m: registry.get(m).label(str(models[0])) for m in df["method"].unique() if m in known}
    return {m: lab for m, lab in labels.items() if lab != m}


__all__ = ["method_order", "check_columns", "summary_table", "method_labels"]
