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

import functools
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import PlotlyRenderer

from ..studies.tables import check_columns as _check_columns
from ..studies.tables import method_labels, method_order, summary_table

__all__ = [
    "retdev_vs_rte", "metric_vs_cost", "convergence_figure", "transfer_figure", "mia_comparison", "accuracy_bars", "summary_table", "forgetting_summary",
    "metric_vs_fraction", "metrics_title", "with_method_picker", "small_multiples", "LANDMARKS",
    "method_order", "method_colors", "method_symbols", "method_styles", "metric_grid", "LOG_AXIS",
    "OKABE_ITO", "METHOD_PALETTE", "METHOD_SYMBOLS",
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
    "mia_test": "loss-MIA forget vs test",
    "mia_val": "loss-MIA forget vs val",
    "retdev": "RetDev",
    "rte": "RTE (wall time)",
    "cost_rte": "cost ratio (gradient evaluations)",
    "indisc": "Indisc (val MIA)",
    "mia_entropy_test": "entropy-MIA forget vs test",
    "forget_loss": "forget loss L_f",
    "val_loss": "validation loss (tau)",
}

#: The references' landmarks: the original model grey, the retrained model (the target) black.
_FIXED_COLORS = {"original": "#7f7f7f", "retrain": "#222222"}
#: The Okabe-Ito colour-blind-safe palette (Okabe & Ito 2008, "Color Universal Design"), all eight.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
#: The methods' colours: Okabe-Ito without black (the retrained model's landmark) and yellow
#: (contrast 1.2:1 on the white background: a yellow line or marker all but vanishes).
METHOD_PALETTE = tuple(OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "reddish purple", "orange",
                                              "sky blue"))
#: The methods' markers: filled shapes that stay apart at 7 px. Their number (7) is coprime with
#: the palette's (6), so method i gets colour i mod 6 and marker i mod 7: neighbours in the
#: registry differ in both, and the first 42 methods all get distinct (colour, marker) pairs.
METHOD_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "pentagon", "star")
#: Colours of series that are not methods (metrics, seeds): Okabe-Ito too.
_METRIC_COLORS = [OKABE_ITO[c] for c in ("blue", "orange", "bluish green", "vermillion", "reddish purple")]
# kept under their old names for code that imported them
_PALETTE, _SYMBOLS = list(METHOD_PALETTE), list(METHOD_SYMBOLS)


# --------------------------------------------------------------------------- helpers


def _method_index(method: str) -> int:
    """The method's place in the registry (references left out), so its colour and marker are
    the same in every figure whatever subset the figure shows; an unregistered name gets a
    place after the registry's from its characters (stable too)."""
    from .. import methods as registry

    keys = [k for k in registry.available() if k not in _FIXED_COLORS]
    return keys.index(method) if method in keys else len(keys) + sum(map(ord, method)) % 40


#: Every log axis of the book: decades labelled as powers of ten, no minor labels ("2", "5"
#: beside each decade) and no SI prefixes ("10μ"), which read as data on a crowded axis.
LOG_AXIS = dict(type="log", minorloglabels="none", exponentformat="power")


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """A stable colour per method from :data:`METHOD_PALETTE` (Okabe-Ito; grey ``original``,
    black ``retrain``), the same in every figure whatever other methods it shows."""
    return {m: _FIXED_COLORS.get(m) or METHOD_PALETTE[_method_index(m) % len(METHOD_PALETTE)] for m in methods}


def method_symbols(methods: Sequence[str]) -> dict[str, str]:
    """A stable marker per method from :data:`METHOD_SYMBOLS` (circles for the references), so
    that with its colour (:func:`method_colors`) every registered method has its own pair."""
    return {m: "circle" if m in _FIXED_COLORS else METHOD_SYMBOLS[_method_index(m) % len(METHOD_SYMBOLS)]
            for m in methods}


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per method: :func:`method_colors` and :func:`method_symbols` together."""
    colors, symbols = method_colors(methods), method_symbols(methods)
    return {m: (colors[m], symbols[m]) for m in methods}


def _labelled(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """Name the methods of ``builder``'s figure by their report labels (trace names and
    category values), e.g. CT on ``cnn1d`` as ``ct (1-D extension)``
    (:func:`unlearnlib.studies.tables.method_labels`); colours stay keyed by method."""
    @functools.wraps(builder)
    def wrapper(df: pd.DataFrame, *args: Any, **kwargs: Any) -> go.Figure:
        fig = builder(df, *args, **kwargs)
        labels = method_labels(df)
        for trace in fig.data if labels else ():
            if trace.name in labels:
                trace.name = labels[trace.name]
            for axis in ("x", "y"):
                values = getattr(trace, axis, None)
                if values is not None and len(values) and isinstance(values[0], str):
                    setattr(trace, axis, [labels.get(v, v) for v in values])
        for menu in fig.layout.updatemenus if labels else ():  # a method picker's buttons
            for button in menu.buttons:
                button.label = labels.get(button.label, button.label)
        return fig

    return wrapper


#: Traces a method picker never fades: the references and the lines drawn for them.
LANDMARKS = ("original", "retrain", "retrained model", "same on both")


def with_method_picker(fig: go.Figure, faded: float = 0.08) -> go.Figure:
    """Add a dropdown that highlights one method (issue 34: a figure of many methods cannot
    be read): its traces stay as drawn, every other method's fade to ``faded`` opacity, the
    references (:data:`LANDMARKS`) never fade. A method is a trace's ``legendgroup`` (else its
    name); the button shows its trace name (the report label). Works in the static book (a
    plotly ``restyle``, no kernel). Figures of fewer than three methods are left as they are."""
    groups = [t.legendgroup or t.name for t in fig.data]
    label: dict[str, str] = {}
    for g, tr in zip(groups, fig.data, strict=True):
        if g and g not in LANDMARKS and (tr.name or "") not in LANDMARKS:
            label.setdefault(g, tr.name or g)
    if len(label) < 3:
        return fig
    base = [1.0 if tr.opacity is None else float(tr.opacity) for tr in fig.data]

    def opacities(pick: str | None) -> list[float]:
        return [b if pick is None or g == pick or g not in label else faded for g, b in zip(groups, base, strict=True)]

    buttons = [dict(label="all methods", method="restyle", args=[{"opacity": opacities(None)}])]
    buttons += [dict(label=name, method="restyle", args=[{"opacity": opacities(g)}]) for g, name in label.items()]
    fig.update_layout(updatemenus=[dict(type="dropdown", buttons=buttons, active=0, showactive=True, x=1.0,
                                        xanchor="right", y=1.0, yanchor="bottom", pad=dict(b=4),
                                        font=dict(size=11))])
    return fig


def small_multiples(panels: Mapping[str, Sequence[go.BaseTraceType]], title: str, x_title: str,
                    y_title: str | Sequence[str], columns: int = 3, panel_height: int = 200,
                    titles: Sequence[str] | None = None) -> go.Figure:
    """One panel per method (``panels``: panel title -> its traces), shared axes: overlapping
    histograms or curves of many methods become a grid a reader can compare.

    Panels fill the grid row by row; x axes are shared within a column, y axes within a row.
    ``y_title``: one title, or one per row (a grid whose rows are different metrics);
    ``titles``: the panels' titles where they differ from ``panels``' keys ("" for none)."""
    from plotly.subplots import make_subplots

    names = list(panels)
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    shown = list(titles) if titles is not None else names
    if len(shown) != len(names):
        raise ValueError(f"small_multiples: {len(shown)} titles for {len(names)} panels.")
    y_titles = [y_title] * rows if isinstance(y_title, str) else list(y_title)
    if len(y_titles) != rows:
        raise ValueError(f"small_multiples: {len(y_titles)} y titles for {rows} rows.")
    fig = make_subplots(rows, columns, subplot_titles=shown, shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=min(0.12, 0.5 / max(rows, 1)))
    for i, name in enumerate(names):
        for tr in panels[name]:
            fig.add_trace(tr, i // columns + 1, i % columns + 1)
    fig.update_xaxes(title_text=x_title, row=rows)
    for r, text in enumerate(y_titles, start=1):
        fig.update_yaxes(title_text=text, row=r, col=1)
    fig.update_layout(title=title, height=panel_height * rows + 130, template="plotly_white",
                      legend=dict(orientation="h", y=-0.12 if rows > 1 else -0.3, x=0))
    return fig


def metric_grid(df: pd.DataFrame, x: str, metrics: Mapping[str, str], title: str, x_title: str,
                methods: Sequence[str] | None = None, x_scale: float = 1.0,
                references: Sequence[str] = ("original", "retrain"), panel_height: int = 170) -> go.Figure:
    """Methods as small multiples (issue 34: many methods on one line chart cannot be read):
    one row per metric (``metrics``: column -> axis title), one column per method, each panel
    that method alone, its mean over seeds against ``x`` (times ``x_scale``) with the standard
    deviation as error bars, in its colour and marker; every panel of a row shares the y axis
    and shows the references' means (:data:`LANDMARKS`: the original model grey, the retrained
    model black, dotted), so each method is read against the same landmarks. Made for a
    handful of methods (one column each); ``methods`` default: the frame's, references left out.
    """
    _check_columns(df, ["method", x, *metrics], "metric_grid")
    present = set(df["method"])
    methods = [m for m in (methods if methods is not None else method_order(df))
               if m in present and m not in references]
    if not methods or not metrics:
        raise ValueError("metric_grid: no method (other than the references) or no metric to draw.")
    d = df[df["method"].isin(methods)]
    xs = x_scale * d[x].astype(float)
    lo, hi = float(xs.min()), float(xs.max())
    if lo == hi:  # one x value: the landmarks still need a visible length
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    colors, symbols = method_colors([*references, *methods]), method_symbols(methods)
    names = method_labels(df)
    panels: dict[str, list[go.BaseTraceType]] = {}
    titles: list[str] = []
    for r, (col, label) in enumerate(metrics.items()):
        refs = {ref: float(df.loc[df["method"] == ref, col].mean()) for ref in references if ref in present}
        for c, m in enumerate(methods):
            traces: list[go.BaseTraceType] = [go.Scatter(
                x=[lo, hi], y=[v, v], mode="lines", name=ref, legendgroup=ref, showlegend=r == 0 and c == 0,
                line=dict(color=colors[ref], dash="dot", width=2.5), hovertemplate=f"{ref}: {v:.3f}<extra></extra>")
                for ref, v in refs.items() if math.isfinite(v)]
            g = d[d["method"] == m].groupby(x)[col]
            mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
            name = names.get(m, m)
            traces.append(go.Scatter(
                x=x_scale * mean.index.to_numpy(float), y=mean.to_numpy(), customdata=std.to_numpy(),
                error_y=dict(type="data", array=std.to_numpy(), color=colors[m], thickness=1.5, width=4),
                mode="lines+markers", name=name, legendgroup=m, showlegend=False, line=dict(color=colors[m], width=2),
                marker=dict(symbol=symbols[m], size=8, color=colors[m], line=dict(width=1, color="white")),
                hovertemplate=f"<b>{name}</b><br>{x_title} %{{x:g}}<br>{label} %{{y:.3f}} ± %{{customdata:.3f}}"
                              " (mean ± std over seeds)<extra></extra>"))
            panels[f"{col}|{m}"] = traces
            titles.append(name if r == 0 else "")
    fig = small_multiples(panels, title, x_title, list(metrics.values()), columns=len(methods),
                          panel_height=panel_height, titles=titles)
    fig.update_yaxes(title_font=dict(size=11))
    rows = len(metrics)
    fig.update_xaxes(title_text=None, row=rows)  # once, under the middle column: narrow panels
    fig.update_xaxes(title_text=x_title, row=rows, col=(len(methods) + 1) // 2)
    return fig


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


COSTS = {"cost_rte": "retraining's gradient evaluations / the method's (log scale)",
         "rte": "RTE = retraining time / unlearning time (log scale)"}


@_labelled
def metric_vs_cost(df: pd.DataFrame, metric: str = "retdev", cost: str | None = None,
                   label: str | None = None, target: float | None = None) -> go.Figure:
    """``metric`` of each method against its cost ratio (log scale), one colour and marker per method.

    ``cost`` is ``cost_rte`` (retraining's per-sample gradient evaluations over the
    method's: load-independent; the default where the rows have it) or ``rte`` (wall
    time). Each seed is a small point; the big marker is the mean (error bar: std over
    seeds) at the geometric-mean cost (a ratio, averaged on the log axis it is drawn on).
    ``original`` is left out (it does no unlearning). ``target`` draws the retrained
    model's value as a dotted line (default: its mean of ``metric``).
    """
    cost = cost or ("cost_rte" if "cost_rte" in df.columns and df["cost_rte"].notna().any() else "rte")
    _check_columns(df, [metric, cost], "metric_vs_cost")
    label = label or LABELS.get(metric, metric)
    d = df[df["method"] != "original"]
    d = d[np.isfinite(d[cost]) & (d[cost] > 0)]
    colors, symbols = method_colors(method_order(df)), method_symbols(method_order(df))
    fig = go.Figure()
    for m in method_order(d):
        g = d[d["method"] == m]
        fig.add_trace(go.Scatter(
            x=g[cost], y=g[metric], mode="markers", name=m, legendgroup=m, showlegend=False,
            marker=dict(size=7, color=colors[m], symbol=symbols[m], opacity=0.45),
            customdata=g[["seed"]].values,
            hovertemplate=f"{m}, seed %{{customdata[0]}}<br>cost ratio %{{x:.3g}}<br>{label} %{{y:.4f}}<extra></extra>",
        ))
        sd = _std(g[metric])
        fig.add_trace(go.Scatter(
            x=[float(np.exp(np.log(g[cost]).mean()))], y=[g[metric].mean()], mode="markers+text", name=m, legendgroup=m,
            text=[method_labels(df).get(m, m)], textposition="top center", textfont=dict(size=10, color=colors[m]),
            marker=dict(size=15, color=colors[m], symbol=symbols[m], line=dict(width=1, color="white")),
            error_y=dict(type="data", array=[sd], visible=True, thickness=1.5, width=6),
            customdata=[[sd, len(g)]],
            hovertemplate=(f"<b>{m}</b> (mean of %{{customdata[1]}} seeds)<br>cost ratio %{{x:.3g}} (geometric mean)"
                           f"<br>{label} %{{y:.4f}} ± %{{customdata[0]:.4f}}<extra></extra>"),
        ))
    ref = df.loc[df["method"] == "retrain", metric]
    target = target if target is not None else (float(ref.mean()) if len(ref) else None)
    if target is not None and math.isfinite(target):
        fig.add_hline(y=target, line=dict(dash="dot", color="#222"), annotation_text="retrained model",
                      annotation_position="bottom right")
    fig.add_vline(x=1, line=dict(dash="dot", color="#888"), annotation_text="retraining cost",
                  annotation_position="top left")
    fig.update_layout(
        title=dict(text=f"{label} against cost<br><sup>{_subtitle(df)}</sup>"),
        xaxis=dict(**LOG_AXIS, title=COSTS.get(cost, cost)), yaxis=dict(title=label),
        template="plotly_white", legend=dict(title="method", orientation="h", y=-0.18, x=0), margin=dict(t=90),
        height=520 + 22 * math.ceil(len(method_order(d)) / 6),
    )
    return with_method_picker(fig)


def retdev_vs_rte(df: pd.DataFrame, cost: str | None = None) -> go.Figure:
    """RetDev against the cost ratio (:func:`metric_vs_cost`): low is close to the retrained
    model, right is cheap."""
    _check_columns(df, ["retdev", "rte"], "retdev_vs_rte")
    return metric_vs_cost(df, "retdev", cost, "RetDev = |RR−1| + |FR−1| + |TR−1|", target=0.0)


def convergence_figure(frame: pd.DataFrame, columns: int = 6) -> go.Figure:
    """Best objective norm after each trial, one panel per method and one line per tuning
    seed (solid: the shipped table's studies; dashed: this run's): a flat tail means the
    search had converged at that budget."""
    from plotly.subplots import make_subplots

    if frame.empty:
        raise ValueError("convergence_figure got no trials; tune first.")
    ms = method_order(frame)
    rows = math.ceil(len(ms) / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=ms, shared_yaxes=True,
                        horizontal_spacing=0.02, vertical_spacing=0.35 / rows)
    colors = _METRIC_COLORS
    for i, m in enumerate(ms):
        for (where, seed), g in frame[frame["method"] == m].groupby(["where", "seed"]):
            g = g.sort_values("trials")
            fig.add_trace(go.Scatter(
                x=g["trials"], y=g["best"], mode="lines", line=dict(color=colors[int(seed) % len(colors)],
                                                                    dash="solid" if where == "shipped" else "dash"),
                name=f"seed {seed} ({where})", legendgroup=f"{where}{seed}", showlegend=i == 0,
                hovertemplate=f"{m}, seed {seed} ({where})<br>after %{{x}} trials: %{{y:.4f}}<extra></extra>"),
                row=i // columns + 1, col=i % columns + 1)
    fig.update_yaxes(**LOG_AXIS)
    fig.update_layout(title="Search convergence: best objective norm against trials (log scale)",
                      height=220 * rows + 120, template="plotly_white", margin=dict(t=100),
                      legend=dict(orientation="h", y=1.02 + 0.1 / rows, x=0))
    return fig


def transfer_figure(table: pd.DataFrame) -> go.Figure:
    """Objective norm on the tuning seeds against held-out seeds, one marker per method; above
    the diagonal, a choice that was better on the seeds it was tuned on."""
    colors, symbols = method_colors(list(table.index)), method_symbols(list(table.index))
    fig = go.Figure()
    for m, r in table.iterrows():
        fig.add_trace(go.Scatter(x=[r["tuning seeds"]], y=[r["held-out seeds"]], mode="markers", name=m,
                                 marker=dict(size=12, color=colors[m], symbol=symbols[m]),
                                 hovertemplate=f"<b>{m}</b><br>tuning seeds %{{x:.4f}}<br>held-out %{{y:.4f}}<extra></extra>"))
    vals = table[["tuning seeds", "held-out seeds"]].to_numpy(float)
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="#888"),
                             name="same on both", hoverinfo="skip"))
    fig.update_layout(title="Do tuned hyperparameters transfer? Objective norm, tuning vs held-out seeds",
                      xaxis=dict(title="mean objective norm on the tuning seeds", **LOG_AXIS),
                      yaxis=dict(title="mean objective norm on held-out seeds", **LOG_AXIS),
                      template="plotly_white")
    return with_method_picker(fig)


@_labelled
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


def metrics_title(metrics: Sequence[str]) -> str:
    """A title naming what is plotted, from the metrics' display names (:data:`LABELS`):
    "Retain accuracy (RA), forget accuracy (FA) and test accuracy (TA)"."""
    labels = [LABELS.get(m, m) for m in metrics]
    text = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    return text[:1].upper() + text[1:]


@_labelled
def accuracy_bars(df: pd.DataFrame, metrics: Sequence[str] = ("retain_acc", "forget_acc", "test_acc"),
                  title: str | None = None) -> go.Figure:
    """Retain, forget and test accuracy (RA, FA, TA) per method: mean ± std and each seed.

    Unlearning should bring FA down to the retrained model's FA (not to zero:
    the retrained model still generalises to the forget set about as well as
    to the test set) while keeping RA and TA.

    Parameters
    ----------
    df : run_grid's tidy result frame.
    metrics : accuracy columns to show, in order (an MIA, an attack's accuracy, may be among them).
    title : the figure's title; default: the plotted metrics' names (:func:`metrics_title`).
    """
    _check_columns(df, list(metrics), "accuracy_bars")
    attacks = [m for m in metrics if not str(m).endswith("_acc")]
    yaxis = "accuracy" if not attacks else "accuracy (attack accuracy for the MIAs)"
    return _grouped_dots(df, list(metrics), title or metrics_title(metrics), yaxis)


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


@_labelled
def metric_vs_fraction(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("forget_acc", "test_acc", "mia_test", "mia_entropy_test"),
    log_y: Sequence[str] = ("rte",),
    cols: int = 2,
    labels: dict[str, str] | None = None,
    highlight: str | None = None,
) -> go.Figure:
    """One panel per metric against the forget fraction (nabla-tau's 3/15/30% protocol).

    ``df`` needs a ``fraction`` column (rows with NaN, e.g. class forgetting, are
    left out). Each method is a line through its mean over seeds with the standard
    deviation as error bars; ``retrain`` (black, dotted) is the target. Panels of
    ``log_y`` metrics use a log y axis; ``labels`` names panels beyond :data:`LABELS`.
    ``highlight``: the chapter's own method, drawn thick and opaque over the others (faded).
    """
    _check_columns(df, ["fraction", *metrics], "metric_vs_fraction")
    from plotly.subplots import make_subplots

    d = df[np.isfinite(df["fraction"].astype(float))]
    if d.empty:
        raise ValueError("metric_vs_fraction: no rows with a finite forget fraction.")
    order = method_order(d)
    colors, symbols = method_colors(order), method_symbols(order)
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(rows, cols, subplot_titles=[{**LABELS, **(labels or {})}.get(m, m) for m in metrics],
                        horizontal_spacing=0.1, vertical_spacing=0.14)
    for i, metric in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        for m in order:
            g = d[d["method"] == m].groupby("fraction")[metric]
            mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
            line = dict(color=colors[m], dash="dot", width=3) if m in _FIXED_COLORS else dict(color=colors[m])
            faded = highlight is not None and m not in (highlight, *_FIXED_COLORS)
            if m == highlight:
                line = dict(color=colors[m], width=5)
            fig.add_trace(go.Scatter(opacity=0.45 if faded else 1.0,
                x=100 * mean.index.to_numpy(), y=mean.to_numpy(), error_y=dict(type="data", array=std.to_numpy()),
                mode="lines+markers", name=m, legendgroup=m, showlegend=i == 0, line=line,
                marker=dict(symbol=symbols[m], size=9 if m == highlight else 7, color=colors[m]),
                hovertemplate=f"{m}<br>forget %{{x:g}}%<br>{metric} %{{y:.3f}}<extra></extra>"), r, c)
        if metric in log_y:
            fig.update_yaxes(**LOG_AXIS, row=r, col=c)
    with_method_picker(fig)
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

