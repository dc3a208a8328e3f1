"""ipywidgets explorers: move a method's hyperparameters and watch the metrics.

:class:`Explorer` shows a method picker, one control per hyperparameter of the
method's search space (Deep Unlearn's shared space, Cadet et al. 2024, arXiv
2410.01276: log-uniform floats get a ``FloatLogSlider``, other floats a
``FloatSlider``, integers an ``IntSlider``, categorical values a ``Dropdown``)
and a Run button. Run unlearns the cached original model of the chosen seed
(:func:`unlearnlib.studies.experiment.run_method`, so a setting tried before is
instant), appends the row to a table and redraws a RetDev-vs-indiscernibility
figure with the original and retrained models as landmarks.

For the static book, :func:`sweep` precomputes a one-hyperparameter sweep and
:func:`sweep_figure` draws it, so readers without a kernel still see how a
hyperparameter moves the metrics.

>>> from unlearnlib.book.widgets import Explorer, sweep, sweep_figure
>>> Explorer(method="ft")                                           # doctest: +SKIP
>>> df = sweep("ft", "lr", [1e-4, 1e-3, 1e-2, 1e-1], seeds="0,1")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import methods as registry
from ..methods import Param
from ..store import Store
from ..studies.experiment import parse_seeds, to_frame
from ..studies.hpo import Setup, check_param
from .plots import LOG_AXIS

#: Columns of the explorer's table, with their headers.
TABLE_COLUMNS = {
    "method": "method", "seed": "seed", "hparams": "hyperparameters", "retain_acc": "RA",
    "forget_acc": "FA", "test_acc": "TA", "mia_val": "MIA (val)", "indisc": "Indisc",
    "retdev": "RetDev", "rte": "RTE",
}


def control_for(name: str, p: Param, default: Any = None) -> w.ValueWidget:
    """The ipywidget for one search-space entry, starting at ``default`` (clipped into range)."""
    check_param(name, p)
    style = {"description_width": "initial"}
    if p.kind == "categorical":
        value = default if default in p.choices else p.choices[0]
        return w.Dropdown(options=list(p.choices), value=value, description=name, style=style)
    lo, hi = float(p.low), float(p.high)
    value = lo if default is None else min(max(float(default), lo), hi)
    if p.kind == "int":
        return w.IntSlider(value=int(round(value)), min=int(lo), max=int(hi), step=1,
                           description=name, style=style, continuous_update=False)
    if p.log:
        return w.FloatLogSlider(value=value, base=10, min=math.log10(lo), max=math.log10(hi),
                                step=(math.log10(hi) - math.log10(lo)) / 100, description=name,
                                style=style, readout_format=".2e", continuous_update=False)
    return w.FloatSlider(value=value, min=lo, max=hi, step=(hi - lo) / 100 or 0.01,
                         description=name, style=style, readout_format=".3f", continuous_update=False)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class Explorer:
    """Pick a method, set its hyperparameters, Run, compare with earlier runs.

    Parameters
    ----------
    dataset, model, forget, epochs, device, data_root, store :
        as for :func:`unlearnlib.studies.experiment.run_grid`; the reference models are
        trained (or read from the store) on the first Run.
    method : the method shown first (any key of :func:`unlearnlib.methods.available`).
    seed : the model seed shown first.
    """

    def __init__(
        self, dataset: str = "mnist1d", model: str = "cnn1d", method: str = "ft", seed: int = 0,
        forget: str = "random:0.1", epochs: int | None = None, device: str = "cpu",
        data_root: str | None = None, store: Store | None = None,
    ) -> None:
        registry.get(method)  # fail early, listing what is allowed
        self.setup = Setup.create(dataset, model, forget, epochs, device, data_root, store,
                                  show_progress=False)
        self.history: list[dict] = []
        # (label, key): CT on a 1-D CNN shows as "ct (1-D extension)", the value stays the key
        self.method = w.Dropdown(options=[(registry.get(k).label(model), k) for k in registry.available()],
                                 value=method, description="method")
        self.seed = w.BoundedIntText(value=int(seed), min=0, max=10_000, description="seed")
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.status = w.HTML()
        self.table = w.HTML()
        self.plot = w.Output()
        self.controls: dict[str, w.ValueWidget] = {}
        self.params_box = w.VBox()
        self.figure: go.Figure = go.Figure()
        self.method.observe(lambda change: self._build_controls(), names="value")
        self.run_button.on_click(self.run)
        self._build_controls()
        self.widget = w.VBox([
            w.HBox([self.method, self.seed, self.run_button]), self.params_box, self.status,
            self.table, self.plot,
        ])

    # -- controls ---------------------------------------------------------------
    def _build_controls(self) -> None:
        m = registry.get(self.method.value)
        space = m.space(self.setup.recipe.epochs)
        defaults = m.resolve_hparams({}, self.setup.scale)
        self.controls = {k: control_for(k, p, defaults.get(k)) for k, p in space.items()}
        note = "" if self.controls else f"<i>{m.key} has no hyperparameters to tune.</i>"
        self.params_box.children = [*self.controls.values(), w.HTML(note)] if note else list(self.controls.values())

    def hparams(self) -> dict[str, Any]:
        """The current control values (the method's defaults fill in the rest)."""
        return {k: c.value for k, c in self.controls.items()}

    # -- running ----------------------------------------------------------------
    def run(self, _button: Any = None) -> dict:
        """Unlearn with the current settings, append the row, redraw table and figure."""
        key, seed = self.method.value, int(self.seed.value)
        self.status.value = f"running <b>{key}</b> on seed {seed} ..."
        try:
            row = self.setup.run(key, seed, self.hparams())
        except Exception as e:
            self.status.value = f"<span style='color:#c00'>{type(e).__name__}: {e}</span>"
            raise
        self.history.append(row)
        self.status.value = f"{key} on seed {seed}: {row['unlearn_seconds']:.2f} s"
        self._refresh(seed)
        return row

    def frame(self) -> pd.DataFrame:
        """Every run so far, one row each."""
        return to_frame(self.history)

    def _refresh(self, seed: int) -> None:
        df = self.frame()[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS)
        self.table.value = df.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0)
        refs = [self.setup.run(k, seed) for k in ("original", "retrain")]
        self.figure = explorer_figure(self.frame(), refs)
        if _in_kernel():
            from IPython.display import clear_output

            from .plots import show

            with self.plot:
                clear_output(wait=True)
                show(self.figure)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def explorer_figure(runs: pd.DataFrame, refs: Sequence[Mapping[str, Any]] = ()) -> go.Figure:
    """RetDev against indiscernibility for every run, with reference models as landmarks.

    The retrained model sits at RetDev 0; the ideal corner is low RetDev and
    Indisc close to the retrained model's.
    """
    fig = go.Figure()
    for key, g in runs.groupby("method", sort=False):
        fig.add_trace(go.Scatter(
            x=g["indisc"], y=g["retdev"], mode="markers+text", name=str(key),
            text=[str(i + 1) for i in g.index], textposition="top center", marker=dict(size=10),
            customdata=np.stack([g["seed"], g["hparams"]], axis=1),
            hovertemplate="%{fullData.name}, seed %{customdata[0]}<br>%{customdata[1]}"
                          "<br>Indisc %{x:.3f}<br>RetDev %{y:.3f}<extra></extra>",
        ))
    for r in refs:
        fig.add_trace(go.Scatter(
            x=[r["indisc"]], y=[r["retdev"]], mode="markers", name=r["method"],
            marker=dict(symbol="star", size=14, color="#222" if r["method"] == "retrain" else "#888"),
        ))
    fig.update_layout(
        title="Runs so far (number = run order)", template="plotly_white",
        xaxis=dict(title="indiscernibility of the val MIA (1 = attacker at chance)"),
        yaxis=dict(title="RetDev (0 = like the retrained model)"), height=420,
    )
    return fig


# --------------------------------------------------------------------------- static sweep


def default_values(method: str, param: str, n: int = 6, train_epochs: int = 40) -> list:
    """``n`` values spanning ``param``'s search range (log-spaced for log floats)."""
    p = _space_entry(method, param, train_epochs)
    if p.kind == "categorical":
        return list(p.choices)
    if p.kind == "int":
        return sorted(set(np.linspace(p.low, p.high, n).round().astype(int).tolist()))
    if p.log:
        return np.geomspace(p.low, p.high, n).tolist()
    return np.linspace(p.low, p.high, n).tolist()


def _space_entry(method: str, param: str, train_epochs: int) -> Param:
    space = registry.get(method).space(train_epochs)
    if param not in space:
        raise ValueError(f"{method!r} has no searchable hyperparameter {param!r}; "
                         f"allowed: {', '.join(space) or '(none)'}.")
    return space[param]


def sweep(
    method: str,
    param: str,
    values: Sequence[Any] | None = None,
    dataset: str = "mnist1d",
    model: str = "cnn1d",
    seeds: Sequence[int] | str | int = (0, 1, 2),
    forget: str = "random:0.1",
    epochs: int | None = None,
    device: str = "cpu",
    data_root: str | None = None,
    store: Store | None = None,
    hparams: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Rerun ``method`` with ``param`` set to each of ``values`` (other hyperparameters:
    ``hparams`` over the defaults) on every seed; cached rows plus ``param``/``value``.

    ``values=None`` spans the search range (:func:`default_values`). The ``retrain``
    and ``original`` rows of each seed come too (``value`` NaN), as landmarks.
    """
    m = registry.get(method)
    seeds = parse_seeds(seeds)
    setup = Setup.create(dataset, model, forget, epochs, device, data_root, store, show_progress)
    if param not in m.defaults:
        raise ValueError(f"{method!r} has no hyperparameter {param!r}; allowed: {', '.join(m.defaults) or '(none)'}.")
    values = list(values) if values is not None else default_values(method, param, train_epochs=setup.recipe.epochs)
    if not values:
        raise ValueError("sweep needs at least one value.")
    base = m.resolve_hparams(hparams, setup.scale)
    rows = []
    for seed in seeds:
        for ref in ("original", "retrain"):
            rows.append({**setup.run(ref, seed), "param": param, "value": math.nan})
        for v in values:
            rows.append({**setup.run(method, seed, {**base, param: v}), "param": param, "value": v})
    return to_frame(rows)


def sweep_figure(df: pd.DataFrame, metrics: Sequence[str] = ("retain_acc", "forget_acc", "test_acc", "indisc", "retdev")) -> go.Figure:
    """How one hyperparameter moves the metrics: mean ± std over seeds per value, with the
    retrained model's mean as a dotted line of the same colour."""
    from .plots import LABELS

    runs = df[df["value"].notna()]
    if runs.empty:
        raise ValueError("sweep_figure needs the rows of sweep(); got none with a value.")
    method, param = runs["method"].iloc[0], runs["param"].iloc[0]
    gold = df[df["method"] == "retrain"]
    g = runs.groupby("value")
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    fig = go.Figure()
    for i, metric in enumerate(metrics):
        c = colors[i % len(colors)]
        label = LABELS.get(metric, "indiscernibility" if metric == "indisc" else metric)
        mean, std = g[metric].mean(), g[metric].std().fillna(0.0)
        fig.add_trace(go.Scatter(
            x=mean.index, y=mean.values, error_y=dict(type="data", array=std.values), mode="lines+markers",
            name=label, legendgroup=metric, line=dict(color=c),
            hovertemplate=f"{param} %{{x:.3g}}<br>{label} %{{y:.3f}} ± %{{error_y.array:.3f}}<extra></extra>",
        ))
        if len(gold):
            fig.add_hline(y=float(gold[metric].mean()), line=dict(color=c, dash="dot", width=1))
    p = registry.get(method).search_space.get(param)
    numeric = pd.api.types.is_numeric_dtype(runs["value"])
    fig.update_layout(
        title=dict(text=f"{method}: sweeping {param}<br><sup>mean ± std over {runs['seed'].nunique()} seed(s); "
                        "dotted: the retrained model</sup>"),
        xaxis=dict(title=param, **(LOG_AXIS if p is not None and p.log else {"type": "linear" if numeric else "category"})),
        yaxis=dict(title="value"),
        template="plotly_white", margin=dict(t=90),
    )
    return fig


__all__ = ["Explorer", "control_for", "explorer_figure", "sweep", "sweep_figure", "default_values"]
