"""Figures of the chapters *Unrolling SGD* and *Poisoning* (the numbers come from
:mod:`unlearnlib.studies.unrolling` and :mod:`unlearnlib.studies.poisoning_study`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from . import plots


def proxy_scatter(traj: pd.DataFrame) -> go.Figure:
    """The unlearning-error proxy against the verification error of sgu, every trajectory point
    (colour: learning rate; symbol: loss), on log axes."""
    return px.scatter(traj.assign(lr=traj["lr"].astype(str)), x="proxy", y="ve_sgu", color="lr", symbol="loss",
                      log_x=True, log_y=True, hover_data=["seed", "step", "sigma", "test_acc"],
                      labels={"proxy": "unlearning-error proxy e", "ve_sgu": "verification error of sgu",
                              "lr": "learning rate"},
                      title="Proxy against verification error (every seed, step, loss and learning rate)")


def trajectory_lines(traj: pd.DataFrame) -> go.Figure:
    """Verification error, proxy and test accuracy along fine-tuning, mean over seeds, one
    panel per quantity (colour: loss; dash: learning rate), each panel with its own y axis."""
    means = traj.groupby(["lr", "loss", "step"], as_index=False)[["ve_sgu", "proxy", "test_acc"]].mean()
    fig = px.line(means.melt(id_vars=["lr", "loss", "step"], var_name="metric"),
                  x="step", y="value", color="loss", line_dash="lr", facet_col="metric", markers=True,
                  title="Verification error, proxy and test accuracy along fine-tuning (mean over seeds)")
    fig.update_yaxes(matches=None, showticklabels=True)
    return fig


def methods_scatter(rows: pd.DataFrame) -> go.Figure:
    """Verification error (L2 to retrained) against the population MIA, one point per method
    and seed, in the book's method colours."""
    return px.scatter(rows, x="l2_to_retrained", y="mia_test", color="method",
                      hover_data=["seed", "forget_acc", "test_acc"],
                      color_discrete_map=plots.method_colors(list(dict.fromkeys(rows["method"]))),
                      labels={"l2_to_retrained": "verification error (L2 to retrained)",
                              "mia_test": "population MIA (forget vs test)"},
                      title="Verification error and population MIA per method")


#: The poisoning chapter's name for each attack metric, and a note on how to read it.
POISON_LABELS = {"gus": "GUS (mean I_z)", "adv_rate": "adversarial-label rate", "acc_drop": "accuracy drop vs clean",
                 "asr": "backdoor success rate"}
POISON_NOTES = {"gus": " (0 = never seen)"}


def poisoning_grids(df: pd.DataFrame, attacks: Sequence[str], metrics: Mapping[str, str], methods: Sequence[str],
                    fractions: Mapping[str, float], n_seeds: int) -> list[go.Figure]:
    """One :func:`~unlearnlib.book.plots.metric_grid` per attack of the poisoning rows ``df``
    (``metrics``: attack -> its metric key): the attack's metric, test accuracy and the
    population MIA (rows) of each method (columns) against the budget."""
    figs = []
    for attack in attacks:
        label = POISON_LABELS[metrics[attack]]
        rows = {"metric": label, "test_acc": "test accuracy", "mia_test": "population MIA"}
        figs.append(plots.metric_grid(
            df[df["attack"] == attack], "budget", rows, methods=methods, x_scale=100,
            x_title="budget (% of training compute)",
            title=f"{attack} poisoning ({fractions[attack]:.0%} poisons, {n_seeds} seeds)<br><sup>rows: "
                  f"{label}{POISON_NOTES.get(metrics[attack], '')}, test accuracy, population MIA "
                  "(loss, poisons vs test); dotted: original (grey), retrained (black)</sup>"))
    return figs
