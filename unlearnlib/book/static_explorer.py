"""An explorer that works without a kernel: a precomputed hyperparameter grid as one plotly figure.

The live explorer (:mod:`.widgets`) needs a Jupyter kernel. For the static book,
:func:`grid_rows` reruns each method over a small grid of two of its hyperparameters
(cached rows, like everything else; :func:`grids_rows` sends every method's missing runs
to the book's Dask workers at once), and :func:`explorer_html` draws them as one
figure: a dropdown picks the method, two sliders pick the hyperparameters, and the
bars of the chosen setting are redrawn beside the original's and the retrained
model's values (the landmarks). The sliders carry no plotly action of their own; a
few lines of script listen to them and show the matching trace, so any combination
of the two sliders (and the method) can be reached.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import methods as registry
from ..studies.tables import method_labels
from .plots import LABELS, method_colors

#: The metrics the explorer draws (all in [0, 1]).
METRICS = ("retain_acc", "forget_acc", "test_acc", "mia_test", "indisc")


def _settings(method: str, grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid`` as hyperparameters of ``method`` (names checked)."""
    m = registry.get(method)
    unknown = [p for p in grid if p not in m.defaults]
    if unknown:
        raise ValueError(f"{method!r} has no hyperparameter(s) {unknown}; allowed: {', '.join(m.defaults)}.")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def grid_rows(setup, method: str, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int],
              executor: Any = None) -> pd.DataFrame:
    """``method`` rerun at every combination of ``grid`` (other hyperparameters at their
    defaults scaled to the data) on every seed: cached rows plus one column per grid
    hyperparameter. ``setup`` is a :class:`unlearnlib.studies.hpo.Setup`; the missing runs
    go to ``executor``'s workers first (:func:`unlearnlib.studies.experiment.compute_rows`)."""
    return grids_rows(setup, [method], grid, seeds, executor)[method]


def grids_rows(setup, methods: Sequence[str], grid: Mapping[str, Sequence[Any]], seeds: Sequence[int],
               executor: Any = None, references: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """:func:`grid_rows` of every method in ``methods``, their missing runs (and the default
    runs of ``references``, e.g. ``("original", "retrain")``, read later with
    ``setup.run``) computed together on ``executor``'s workers (None: the scheduler of
    ``$UNLEARNLIB_SCHEDULER``, else nothing ahead), so every method's grid fills them at once."""
    from ..studies.experiment import compute_rows

    settings = {m: _settings(m, grid) for m in methods}
    wanted = [(m, s, hp) for m in methods for hp in settings[m] for s in seeds]
    compute_rows(setup, [*wanted, *((k, s, None) for s in seeds for k in references)], executor,
                 "explorer grid")
    return {m: pd.DataFrame([{**setup.run(m, s, hp), **{f"grid_{n}": v for n, v in hp.items()}}
                             for hp in settings[m] for s in seeds]) for m in methods}


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def explorer_figure(grids: Mapping[str, pd.DataFrame], refs: pd.DataFrame,
                    metrics: Sequence[str] = METRICS) -> tuple[go.Figure, dict]:
    """The figure and the index that maps (method, slider 1, slider 2) to its trace.

    ``grids[method]`` are :func:`grid_rows` frames with exactly two ``grid_*`` columns;
    ``refs`` holds the ``original`` and ``retrain`` rows of the same seeds."""
    labels = [LABELS.get(m, m) for m in metrics]
    colors = method_colors(list(grids))
    fig = go.Figure()
    index: dict[str, Any] = {"methods": [], "traces": {}, "params": {}, "values": {}}
    for name, ref in (("original", "#7f7f7f"), ("retrain", "#222222")):
        r = refs[refs["method"] == name]
        fig.add_trace(go.Scatter(
            x=labels, y=[r[m].mean() for m in metrics], mode="markers", name=f"{name} (landmark)",
            # an open symbol is stroked in marker.color (marker.line.color alone leaves plotly's
            # default colour cycle: the landmarks came out blue and red)
            marker=dict(symbol="line-ew-open", size=40, color=ref, line=dict(width=3, color=ref)),
            hovertemplate=f"{name}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
    names: dict[str, str] = {}
    for method, df in grids.items():
        name = names[method] = method_labels(df).get(method, method)  # "ct (1-D extension)" on cnn1d
        params = [c for c in df.columns if c.startswith("grid_")]
        if len(params) != 2:
            raise ValueError(f"The explorer needs exactly two grid hyperparameters; {method} has {params}.")
        vals = [sorted(df[p].unique().tolist()) for p in params]
        index["methods"].append(method)
        index["params"][method] = [p[len("grid_"):] for p in params]
        index["values"][method] = [[_fmt(v) for v in vs] for vs in vals]
        for i, a in enumerate(vals[0]):
            for j, b in enumerate(vals[1]):
                g = df[(df[params[0]] == a) & (df[params[1]] == b)]
                sd = [float(g[m].std(ddof=1)) if len(g) > 1 else 0.0 for m in metrics]
                index["traces"][f"{method}|{i}|{j}"] = len(fig.data)
                fig.add_trace(go.Bar(
                    x=labels, y=[g[m].mean() for m in metrics], name=name, marker_color=colors[method],
                    error_y=dict(type="data", array=sd), visible=False, showlegend=True,
                    customdata=np.array(sd)[:, None],
                    hovertemplate=(f"<b>{name}</b> {index['params'][method][0]}={_fmt(a)}, "
                                   f"{index['params'][method][1]}={_fmt(b)}<br>%{{x}}: %{{y:.3f}} ± "
                                   f"%{{customdata[0]:.3f}} over {g['seed'].nunique()} seed(s)<extra></extra>")))
    first = index["methods"][0]
    fig.data[index["traces"][f"{first}|0|0"]].visible = True
    p1, p2 = index["params"][first]
    v1, v2 = index["values"][first]
    fig.update_layout(
        title="Explore a method without a kernel: pick it, move its two hyperparameters",
        yaxis=dict(title="value (accuracies, MIA, indiscernibility)", range=[0, 1.05]), template="plotly_white",
        updatemenus=[dict(buttons=[dict(label=names[m], method="skip", args=[None]) for m in index["methods"]],
                          direction="down", x=0.0, xanchor="left", y=1.18, yanchor="top", active=0)],
        sliders=[dict(active=0, currentvalue=dict(prefix=f"{p1} = "), pad=dict(t=40), y=0,
                      steps=[dict(label=v, method="skip", args=[None]) for v in v1]),
                 dict(active=0, currentvalue=dict(prefix=f"{p2} = "), pad=dict(t=40), y=-0.25,
                      steps=[dict(label=v, method="skip", args=[None]) for v in v2])],
        margin=dict(t=120, b=190), height=620, barmode="group")
    return fig, index


#: Shows the trace of the chosen (method, slider 1, slider 2); ``{plot_id}`` is plotly's placeholder.
_SCRIPT = """
(function() {
  var gd = document.getElementById('{plot_id}');
  var idx = %s;
  function update() {
    var m = idx.methods[(gd.layout.updatemenus[0].active || 0)];
    var i = gd.layout.sliders[0].active || 0, j = gd.layout.sliders[1].active || 0;
    var vals = idx.values[m];
    i = Math.min(i, vals[0].length - 1); j = Math.min(j, vals[1].length - 1);
    var show = idx.traces[m + '|' + i + '|' + j];
    var vis = gd.data.map(function(t, k) { return k < 2 || k === show; });
    Plotly.restyle(gd, {visible: vis});
  }
  gd.on('plotly_sliderchange', update);
  gd.on('plotly_buttonclicked', function(e) {
    var m = idx.methods[e.active];
    var p = idx.params[m], v = idx.values[m];
    Plotly.relayout(gd, {
      'updatemenus[0].active': e.active,
      'sliders[0].steps': v[0].map(function(x) { return {label: x, method: 'skip', args: [null]}; }),
      'sliders[1].steps': v[1].map(function(x) { return {label: x, method: 'skip', args: [null]}; }),
      'sliders[0].currentvalue.prefix': p[0] + ' = ', 'sliders[1].currentvalue.prefix': p[1] + ' = ',
      'sliders[0].active': 0, 'sliders[1].active': 0}).then(update);
  });
})();
"""


def explorer_html(fig: go.Figure, index: Mapping) -> str:
    """``fig`` as an HTML ``<div>`` (plotly.js is loaded once by the book) with the script
    that wires its dropdown and sliders to the traces."""
    return fig.to_html(include_plotlyjs=False, full_html=False, post_script=_SCRIPT % json.dumps(index),
                       div_id="unlearnlib-static-explorer")


__all__ = ["grid_rows", "explorer_figure", "explorer_html", "METRICS"]
