"""The per-sample chapter's figures and generated prose (chapter *U-LiRA*): per-sample accuracy
and score histograms, ROC curves, the population MIA against U-LiRA with intervals, and the
sentences that read them (:mod:`unlearnlib.studies.ulira_reading` computes the numbers)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from ..evaluation.lira import ULiRAResult
from ..studies.ulira_reading import AttackRun, Readings
from . import prose
from .plots import LOG_AXIS, method_colors, small_multiples


def binned(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Share of the finite ``values`` in each bin of ``bins`` (zeros when there are none)."""
    v = np.asarray(values, float)
    counts, _ = np.histogram(v[np.isfinite(v)], bins=bins)
    return counts / max(1, counts.sum())


def per_sample_figure(results: Mapping[str, ULiRAResult], names: Mapping[str, str]) -> go.Figure:
    """One panel per method: the share of targets at each per-sample U-LiRA accuracy
    (overlapping translucent histograms of many methods cannot be read)."""
    colors, edges = method_colors(list(results)), np.linspace(0, 1, 21)
    fig = small_multiples({names[m]: [go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=binned(r.per_sample_accuracy, edges),
                                             name=names[m], marker_color=colors[m], width=0.05, showlegend=False)]
                           for m, r in results.items()},
                          "Per-sample U-LiRA accuracy (0.5 = that sample is forgotten)",
                          "per-sample U-LiRA accuracy", "share of targets")
    fig.add_vline(x=0.5, line=dict(dash="dot", color="#222"))
    return fig


def score_figure(results: Mapping[str, ULiRAResult], names: Mapping[str, str], mode: str) -> go.Figure:
    """One panel per method with U-LiRA's two games: histograms of the scores of the forgotten
    targets (solid) and of the never-seen ones (dotted), pre-binned between the 1st and 99th
    percentile of all scores."""
    colors = method_colors(list(results))
    allscores = np.concatenate([np.r_[r.scores[r.positive], r.scores[r.negative]] for r in results.values()])
    lo, hi = np.nanpercentile(allscores[np.isfinite(allscores)], [1, 99])
    edges = np.linspace(lo, hi, 41)
    mid = (edges[:-1] + edges[1:]) / 2
    label = "log likelihood ratio" if mode != "offline" else "log Pr[out-model phi < phi]"
    return small_multiples({names[m]: [go.Scatter(x=mid, y=binned(np.clip(vals, lo, hi), edges), mode="lines",
                                                  name=game, line=dict(color=colors[m], dash=dash), legendgroup=game,
                                                  showlegend=False)
                                       for game, vals, dash in (("forgotten", r.scores[r.positive], None),
                                                                ("never seen", r.scores[r.negative], "dot"))]
                            for m, r in results.items()},
                           f"U-LiRA scores per (shadow, target) pair ({label}, 1st-99th percentile): "
                           "solid = forgotten targets, dotted = never seen", label, "share of pairs")


def roc_figure(results: Mapping[str, ULiRAResult], names: Mapping[str, str]) -> go.Figure:
    """Every method's U-LiRA ROC curve on log axes, with chance."""
    colors, grid = method_colors(list(results)), np.logspace(-4, 0, 120)
    fig = go.Figure()
    for m, r in results.items():
        fpr, tpr = r.roc()
        fig.add_trace(go.Scatter(x=grid, y=np.interp(grid, fpr, tpr), mode="lines", name=names[m],
                                 line=dict(color=colors[m])))
    fig.add_trace(go.Scatter(x=[1e-4, 1], y=[1e-4, 1], mode="lines", name="chance", line=dict(dash="dot", color="gray")))
    fig.update_layout(title="U-LiRA ROC curves", xaxis=dict(**LOG_AXIS, title="FPR"),
                      yaxis=dict(**LOG_AXIS, title="TPR"), template="plotly_white")
    return fig


def attacks_figure(run: AttackRun) -> go.Figure:
    """The population MIA and U-LiRA accuracy per method, each with its 95% Student-t
    interval (dots, not bars: a bar's length from an axis cut at 0.4 reads as size)."""
    attacks = ["population MIA (forget vs test)", "U-LiRA accuracy"]
    side = run.table[attacks].reset_index().melt(id_vars="method", var_name="attack", value_name="accuracy")
    fig = go.Figure([go.Scatter(x=g["method"], y=g["accuracy"], name=a, mode="markers", marker=dict(size=10),
                                error_y=dict(type="data", array=[run.spread[m][a][0] for m in g["method"]], visible=True),
                                customdata=[[run.spread[m][a][1]] for m in g["method"]],
                                hovertemplate="%{x}: %{y:.3f} ± %{error_y.array:.3f} (95%, n = %{customdata[0]})"
                                              "<extra>" + a + "</extra>")
                     for a, g in side.groupby("attack", sort=False)])
    fig.add_hline(y=0.5, line_dash="dot")
    n_pop, n_tg = ({v[a][1] for v in run.spread.values()} for a in attacks)
    fig.update_layout(title="Population MIA vs U-LiRA (0.5 = looks forgotten)<br><sup>95% Student-t intervals: over "
                            f"{prose.names(sorted(map(str, n_pop)))} shadow models (population MIA), over "
                            f"{prose.names(sorted(map(str, n_tg)))} targets (U-LiRA)</sup>",
                      yaxis=dict(title="attack accuracy"), template="plotly_white", margin=dict(t=90))
    return fig


def undertrained_sentence(above, ta_orig: float, shadow_epochs: int) -> str:
    """Markdown warning that the shadows look undertrained (``above``: label -> test accuracy
    of the methods beating the original shadows' ``ta_orig``); "" when there are none."""
    if not len(above):
        return ""
    return (f"**The shadow models look undertrained** ({shadow_epochs} epochs): " + prose.names(
        f"{m} reaches test accuracy {ta:.3f}" for m, ta in above.items()) + f", above the original shadows' "
        f"{ta_orig:.3f}, so these methods partly keep training; read the attacks below with that in mind.")


def readings_markdown(r: Readings | None, run: AttackRun) -> tuple[str, str]:
    """The rule the readings use, and the sentence naming the methods the two attacks
    disagree on (the population MIA alone: a false sense of privacy)."""
    if r is None:
        return ("Readings need the original and the retrained shadows (`original` and `retrain` in "
                "`methods_to_run`): the scorecard's rule normalises each attack between them.", "")
    rule = (f"Readings (the scorecard's rule): an attack calls a method *forgotten* when its accuracy closes the "
            f"original-retrained gap, i.e. the score (v - v_original) / (v_retrained - v_original) is within {r.tol:g} "
            f"of 1 (*no reading* where that gap is within its own 95% interval); *not unlearning* when the test "
            f"accuracy is more than {100 * r.utility:g} points below the retrained shadows' "
            f"({run.retrained_test_acc:.3f}).")
    from ..studies.ulira_reading import SAYS, UNRESOLVED

    unread = [say.removesuffix(" says") for say in SAYS if (r.frame[say] == UNRESOLVED).all()]
    if unread:
        return rule, (f"The two attacks cannot be compared here: the original-retrained gap of {prose.names(unread)} is "
                      "not resolved at this budget (more shadow splits or targets would resolve it).")
    return rule, prose.disagreement_sentence(
        r.population_only, r.ulira_only, "the population loss-MIA", "U-LiRA", r.compared,
        first_only_means="a false sense of privacy: the forget set as a whole resembles unseen data while its samples "
                         "are still recognisable by their own confidence, Hayes et al. 2024")


def summary_markdown(mode: str, k: int, partitions: int, dataset: str, model: str, seed: int, shown) -> str:
    """What the per-sample chapter measured (``shown``: the non-reference methods' labels) and
    where the claims it does not decide are decided."""
    return (f"This chapter measured U-LiRA ({mode} LiRA), the NeurIPS 2023 score and the population loss-MIA on one "
            f"shadow set ({k} splits x {partitions} partition(s) of {dataset} / {model}, shadow seed {seed}) for "
            f"{prose.names(shown)}, against the original and the retrained shadows. It computes no interval over seeds "
            f"and decides no claim. Whether a population MIA gives a false sense of success (a method passes it and "
            f"fails a per-sample test such as U-LiRA) is decided, with intervals over seeds and shadow targets, in the "
            f"chapter *The scorecard*; the chapter *nabla-tau* also measures U-LiRA, at a large forget set.")
