"""Plotly figure builders shared by the notebooks and the book.

Every builder takes the tidy result frame of :func:`unlearnlib.studies.experiment.run_grid`
(one row per method and seed) and returns a :class:`plotly.graph_objects.Figure`
that shows the spread over seeds (one small point per seed) next to the mean.

Display with :func:`show` (or ``fig.show()``; importing this module inside a
Jupyter kernel makes the ``"unlearnlib"`` renderer the default). It emits two
representations of the same figure:

- ``application/vnd.plotly.v1+json``, which JupyterLab renders interactively
  with its built-in plotly extension;
- ``text/html`` from ``fig.to_html(full_html=False, include_plotlyjs=False)``:
  a ``<div>`` and a ``Plotly.newPlot`` call, *without* the 3.5 MB of
  plotly.js. The Jupyter Book (myst-nb picks ``text/html``) ships plotly.js
  once as a static file (``_config.yml``: ``html_js_files``; copied there by
  :func:`unlearnlib.book.build_book`, see :func:`plotly_js_path`), so every
  page stays small and every figure stays interactive.

>>> from unlearnlib import plots                           # doctest: +SKIP
>>> plots.show(plots.retdev_vs_rte(df))                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.io.base_renderers import PlotlyRenderer

from ..studies.tables import check_columns as _check_columns
from ..studies.tables import method_order, summary_table

__all__ = [
    "retdev_vs_rte", "mia_comparison", "accuracy_bars", "summary_table", "forgetting_summary",
    "metric_vs_fraction",
    "method_order", "method_colors",
    "show", "BookRenderer", "RENDERER", "plotly_js_path",
]

#: Name of the plotly renderer registered by this module.
RENDERER = "unlearnlib"

#: Display names of the metric columns.
LABELS = {
    "retain_acc": "retain accuracy (RA)",
    "forget_acc": "forget accuracy (FA)",
    "val_acc": "validation accuracy (VA)",
    "test_acc": "test accuracy (TA)",
    "mia_test": "MIA forget vs test",
    "mia_val": "MIA forget vs val",
    "retdev": "RetDev",
    "rte": "RTE",
    "mia_entropy_test": "entropy-MIA forget vs test",
    "forget_loss": "forget loss L_f",
    "val_loss": "validation loss (tau)",
}

_FIXED_COLORS = {"original": "#7f7f7f", "retrain": "#222222"}
_METRIC_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


# --------------------------------------------------------------------------- helpers


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """A stable colour per method: grey for ``original``, black for ``retrain``."""
    palette = [c for c in qualitative.Plotly if c not in _FIXED_COLORS.values()]
    out, i = {}, 0
    for m in methods:
        if m in _FIXED_COLORS:
            out[m] = _FIXED_COLORS[m]
        else:
            out[m] = palette[i % len(palette)]
            i += 1
    return out


def _subtitle(df: pd.DataFrame) -> str:
    parts = []
    for col in ("dataset", "model", "forget"):
        if col in df.columns and df[col].nunique() == 1:
            parts.append(f"{col} {df[col].iloc[0]}")
    parts.append(f"{df['seed'].nunique()} seed(s)")
    return ", ".join(parts)


def _std(x: pd.Series) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def _padded(lo: Sequence[float], hi: Sequence[float], pad: float = 0.08) -> list[float] | None:
    """A y range around the data (plotly's autorange would start grouped markers at 0)."""
    lo_, hi_ = [v for v in lo if np.isfinite(v)], [v for v in hi if np.isfinite(v)]
    if not lo_ or not hi_:
        return None
    a, b = min(lo_), max(hi_)
    span = (b - a) or max(abs(b), 1e-3)
    return [a - pad * span, b + pad * span]


def _grouped_dots(
    df: pd.DataFrame,
    metrics: Sequence[str],
    title: str,
    yaxis_title: str,
    methods: Sequence[str] | None = None,
    include: Sequence[float] = (),
) -> go.Figure:
    """Methods on x, one offset group per metric: mean ± std (big marker) and each seed (dots)."""
    methods = list(methods) if methods is not None else method_order(df)
    fig = go.Figure()
    lo, hi = list(include), list(include)
    for i, metric in enumerate(metrics):
        color = _METRIC_COLORS[i % len(_METRIC_COLORS)]
        label = LABELS.get(metric, metric)
        g = df[df["method"].isin(methods)].groupby("method")[metric]
        mean = g.mean().reindex(methods)
        std = g.apply(_std).reindex(methods)
        lo += [(mean - std).min(), g.min().min()]
        hi += [(mean + std).max(), g.max().max()]
        fig.add_trace(go.Scatter(
            x=methods, y=mean.values, name=label, legendgroup=metric, offsetgroup=metric,
            mode="markers", marker=dict(symbol="line-ew", size=26, color=color,
                                        line=dict(width=3, color=color)),
            error_y=dict(type="data", array=std.values, visible=True, thickness=1.5, width=6),
            customdata=np.stack([std.values], axis=1),
            hovertemplate=f"%{{x}}<br>{label}: %{{y:.3f}} ± %{{customdata[0]:.3f}} (mean ± std)"
                          "<extra></extra>",
        ))
        pts = df[df["method"].isin(methods)]
        fig.add_trace(go.Scatter(
            x=pts["method"], y=pts[metric], name=f"{label} (seeds)", legendgroup=metric,
            offsetgroup=metric, showlegend=False, mode="markers",
            marker=dict(size=7, color=color, opacity=0.6, line=dict(width=0)),
            customdata=pts[["seed"]].values,
            hovertemplate=f"%{{x}}, seed %{{customdata[0]}}<br>{label}: %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(
        title=dict(text=f"{title}<br><sup>{_subtitle(df)}</sup>"),
        scattermode="group", scattergap=0.5,
        xaxis=dict(title="method", categoryorder="array", categoryarray=methods),
        yaxis=dict(title=yaxis_title, range=_padded(lo, hi)),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        template="plotly_white", margin=dict(t=110),
    )
    return fig


# --------------------------------------------------------------------------- figures


def retdev_vs_rte(df: pd.DataFrame) -> go.Figure:
    """RetDev against run-time efficiency (RTE, log scale), one colour per method.

    Each seed is a small point; the big marker is the mean RetDev (error bar:
    std over seeds) at the geometric mean RTE (RTE is a ratio, so it is averaged
    on the log axis it is drawn on). ``original`` is left out: it does no
    unlearning, so its RTE (retrain time over ~0 s) is meaningless. ``retrain``
    sits at RTE = 1, RetDev = 0 by definition: the dotted line marks the cost of
    retraining; the best methods are low (close to the retrained model) and to
    the right (much cheaper).

    Parameters
    ----------
    df : run_grid's tidy result frame (needs ``method``, ``seed``, ``retdev``, ``rte``).
    """
    _check_columns(df, ["retdev", "rte"], "retdev_vs_rte")
    d = df[df["method"] != "original"]
    d = d[np.isfinite(d["rte"]) & (d["rte"] > 0)]
    methods = method_order(d)
    colors = method_colors(method_order(df))
    fig = go.Figure()
    for m in methods:
        g = d[d["method"] == m]
        fig.add_trace(go.Scatter(
            x=g["rte"], y=g["retdev"], mode="markers", name=m, legendgroup=m, showlegend=False,
            marker=dict(size=7, color=colors[m], opacity=0.5),
            customdata=g[["seed"]].values,
            hovertemplate=f"{m}, seed %{{customdata[0]}}<br>RTE %{{x:.3g}}<br>RetDev %{{y:.4f}}<extra></extra>",
        ))
        gm_rte = float(np.exp(np.log(g["rte"]).mean()))
        fig.add_trace(go.Scatter(
            x=[gm_rte], y=[g["retdev"].mean()], mode="markers", name=m, legendgroup=m,
            marker=dict(size=15, color=colors[m], symbol="diamond", line=dict(width=1, color="white")),
            error_y=dict(type="data", array=[_std(g["retdev"])], visible=True, thickness=1.5, width=6),
            customdata=[[_std(g["retdev"])]],
            hovertemplate=(f"<b>{m}</b> (mean of {len(g)} seed(s))<br>RTE %{{x:.3g}} (geometric mean)"
                           "<br>RetDev %{y:.4f} ± %{customdata[0]:.4f}<extra></extra>"),
        ))
    by = d.groupby("method")["retdev"]
    top = float(max(d["retdev"].max(), (by.mean() + by.apply(_std)).max())) if len(d) else 0.0
    top = top if math.isfinite(top) and top > 0 else 1.0
    fig.add_vline(x=1, line=dict(dash="dot", color="#888"), annotation_text="retraining cost",
                  annotation_position="top left")
    fig.update_layout(
        title=dict(text=f"Closeness to the retrained model vs. speed-up<br><sup>{_subtitle(df)}</sup>"),
        xaxis=dict(type="log", title="RTE = retraining time / unlearning time (log scale)"),
        yaxis=dict(title="RetDev = |RR−1| + |FR−1| + |TR−1|", range=[-0.06 * top, 1.12 * top]),
        template="plotly_white", legend=dict(title="method"), margin=dict(t=90),
    )
    return fig


def mia_comparison(df: pd.DataFrame) -> go.Figure:
    """Loss-based population MIA of the original, the retrained model and each method.

    Two series per method, forget set vs test set and forget set vs validation
    set: mean ± std over seeds and one point per seed. The dashed line at 0.5
    is chance: an attacker cannot tell the forget set from unseen data, which
    is what a retrained model achieves up to noise. The original model, which
    trained on the forget set, sits above it.

    Parameters
    ----------
    df : run_grid's tidy result frame (needs ``method``, ``seed``, ``mia_test``, ``mia_val``).
    """
    _check_columns(df, ["mia_test", "mia_val"], "mia_comparison")
    fig = _grouped_dots(df, ["mia_test", "mia_val"],
                        "Membership inference on the forget set (0.5 = cannot tell)",
                        "attack accuracy (MIA)", include=[0.5])
    fig.add_hline(y=0.5, line=dict(dash="dash", color="#888"), annotation_text="chance (0.5)",
                  annotation_position="bottom right")
    return fig


def accuracy_bars(df: pd.DataFrame, metrics: Sequence[str] = ("retain_acc", "forget_acc", "test_acc")) -> go.Figure:
    """Retain, forget and test accuracy (RA, FA, TA) per method: mean ± std and each seed.

    Unlearning should bring FA down to the retrained model's FA (not to zero:
    the retrained model still generalises to the forget set about as well as
    to the test set) while keeping RA and TA.

    Parameters
    ----------
    df : run_grid's tidy result frame.
    metrics : accuracy columns to show, in order.
    """
    _check_columns(df, list(metrics), "accuracy_bars")
    return _grouped_dots(df, list(metrics), "Accuracy on the retain, forget and test sets", "accuracy")


# --------------------------------------------------------------------------- tables and text


def forgetting_summary(df: pd.DataFrame) -> str:
    """One Markdown paragraph, computed from ``df``: original vs retrained FA and MIA.

    Says how far apart the original and the retrained model are on the forget
    set (accuracy and loss-MIA forget vs test), i.e. how much there is to
    unlearn, and which method ends closest to the retrained model (RetDev).
    """
    _check_columns(df, ["forget_acc", "test_acc", "mia_test"], "forgetting_summary")
    mean = df.groupby("method")[["forget_acc", "test_acc", "mia_test", "retdev"]].mean()
    n = df["seed"].nunique()
    if not {"original", "retrain"} <= set(mean.index):
        return ("Run with both `original` and `retrain` among the methods to compare the "
                "original model with the retrained one.")
    o, r = mean.loc["original"], mean.loc["retrain"]
    gap_fa = (o["forget_acc"] - r["forget_acc"]) * 100
    gap_mia = (o["mia_test"] - r["mia_test"]) * 100
    text = (
        f"Averaged over {n} seed{'s' if n > 1 else ''}, the original model classifies "
        f"**{o['forget_acc']:.1%}** of the forget set correctly, the retrained model, which never saw it, "
        f"**{r['forget_acc']:.1%}** (its test accuracy is {r['test_acc']:.1%}): a gap of "
        f"{gap_fa:+.1f} percentage points that unlearning has to close. "
        f"The loss-based membership attack (forget vs test) reaches **{o['mia_test']:.3f}** on the "
        f"original model and **{r['mia_test']:.3f}** on the retrained one "
        f"({gap_mia:+.1f} points; 0.5 is chance)"
    )
    sd = df.groupby("method")["mia_test"].apply(_std)
    se = 100 * math.sqrt((sd.get("original", 0.0) ** 2 + sd.get("retrain", 0.0) ** 2) / n)
    text += ", so the original model measurably remembers the forget set." if gap_mia > max(2 * se, 1.0) else (
        ", so on this setting the attack can barely tell the two apart; "
        "differences between methods below are within that noise.")
    others = mean.drop(index=["original", "retrain"], errors="ignore")
    if len(others):
        best = others["retdev"].idxmin()
        text += (f" Of the {len(others)} unlearning method{'s' if len(others) > 1 else ''}, "
                 f"`{best}` ends closest to the retrained model (RetDev {others.loc[best, 'retdev']:.3f}, "
                 f"original: {o['retdev']:.3f}).")
    return text


# --------------------------------------------------------------------------- display


class BookRenderer(PlotlyRenderer):
    """Plotly renderer emitting the plotly JSON bundle *and* HTML without plotly.js.

    JupyterLab renders ``application/vnd.plotly.v1+json``; the Jupyter Book
    renders ``text/html``, whose ``Plotly.newPlot`` call uses the plotly.js the
    book loads once per page from its static folder.
    """

    def to_mimebundle(self, fig_dict: dict) -> dict[str, Any]:
        bundle = super().to_mimebundle(dict(fig_dict))
        config = {"responsive": True, "displaylogo": False, **self.config}
        bundle["text/html"] = pio.to_html(
            fig_dict, config=config, full_html=False, include_plotlyjs=False, validate=False,
        )
        return bundle


def metric_vs_fraction(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("forget_acc", "test_acc", "mia_test", "mia_entropy_test"),
    log_y: Sequence[str] = ("rte",),
    cols: int = 2,
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """One panel per metric against the forget fraction (nabla-tau's 3/15/30% protocol).

    ``df`` needs a ``fraction`` column (rows with NaN, e.g. class forgetting, are
    left out). Each method is a line through its mean over seeds with the standard
    deviation as error bars; ``retrain`` (black, dotted) is the target. Panels of
    ``log_y`` metrics use a log y axis; ``labels`` names panels beyond :data:`LABELS`.
    """
    _check_columns(df, ["fraction", *metrics], "metric_vs_fraction")
    from plotly.subplots import make_subplots

    d = df[np.isfinite(df["fraction"].astype(float))]
    if d.empty:
        raise ValueError("metric_vs_fraction: no rows with a finite forget fraction.")
    order = method_order(d)
    colors = method_colors(order)
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(rows, cols, subplot_titles=[{**LABELS, **(labels or {})}.get(m, m) for m in metrics],
                        horizontal_spacing=0.1, vertical_spacing=0.14)
    for i, metric in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        for m in order:
            g = d[d["method"] == m].groupby("fraction")[metric]
            mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
            line = dict(color=colors[m], dash="dot", width=3) if m in _FIXED_COLORS else dict(color=colors[m])
            fig.add_trace(go.Scatter(
                x=100 * mean.index.to_numpy(), y=mean.to_numpy(), error_y=dict(type="data", array=std.to_numpy()),
                mode="lines+markers", name=m, legendgroup=m, showlegend=i == 0, line=line,
                hovertemplate=f"{m}<br>forget %{{x:g}}%<br>{metric} %{{y:.3f}}<extra></extra>"), r, c)
        if metric in log_y:
            fig.update_yaxes(type="log", row=r, col=c)
    fig.update_xaxes(title_text="forget set (% of the training data)")
    fig.update_layout(height=330 * rows, template="plotly_white", legend=dict(title="method"),
                      title=f"Metrics against the forget fraction ({_subtitle(d.drop(columns='forget'))})")
    return fig


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def show(fig: go.Figure) -> None:
    """Display ``fig``: interactive in JupyterLab and in the built book, plotly.js not inlined.

    Outside a Jupyter kernel (a plain script or terminal), falls back to
    ``fig.show()`` with plotly's own default renderer (usually the browser).
    """
    if not _in_kernel():
        fig.show(renderer=None if pio.renderers.default != RENDERER else "browser")
        return
    from IPython.display import display

    display(pio.renderers[RENDERER].to_mimebundle(fig.to_dict()), raw=True)


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled with the installed plotly (copied into the book once)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}; reinstall plotly (pip install plotly).")
    return path


pio.renderers[RENDERER] = BookRenderer()
if _in_kernel():
    # Only inside a kernel: a mimetype renderer cannot display from a plain script.
    pio.renderers.default = RENDERER

