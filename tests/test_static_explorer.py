"""The kernel-free explorer: one trace per (method, setting), the script that wires the
controls, and the verdict on whether hyperparameters change conclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unlearnlib.book.static_explorer import explorer_figure, explorer_html
from unlearnlib.studies import verdicts as V


def rows(shares: dict, seeds: int = 6, utility_loss: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MIA of method m at setting (lr, ep) closes ``shares[m][(lr, ep)]`` of the gap 0.58 -> 0.50."""
    rng = np.random.default_rng(0)
    grid, refs = [], []
    for s in range(seeds):
        refs += [{"method": "original", "seed": s, "mia_test": 0.58, "test_acc": 0.9, "forget_acc": 1.0, "retain_acc": 1.0, "indisc": 0.8},
                 {"method": "retrain", "seed": s, "mia_test": 0.50, "test_acc": 0.9, "forget_acc": 0.9, "retain_acc": 1.0, "indisc": 1.0}]
        for m, by in shares.items():
            for (lr, ep), share in by.items():
                drop = (utility_loss or {}).get((m, lr, ep), 0.0)
                grid.append({"method": m, "seed": s, "grid_lr": lr, "grid_epochs": ep, "forget_acc": 0.95,
                             "mia_test": 0.58 - 0.08 * share + rng.normal(0, 0.002), "test_acc": 0.9 - drop,
                             "retain_acc": 1.0, "indisc": 0.9})
    return pd.DataFrame(grid), pd.DataFrame(refs)


SETTINGS = [(0.001, 1), (0.001, 8), (0.1, 1), (0.1, 8)]


def test_one_trace_per_setting_and_a_script_that_reaches_every_combination():
    grid, refs = rows({"ft": dict.fromkeys(SETTINGS, 0.1), "ga": dict.fromkeys(SETTINGS, 0.2)})
    fig, index = explorer_figure({m: g for m, g in grid.groupby("method")}, refs)
    assert len(fig.data) == 2 + 2 * 4 and set(index["traces"]) == {f"{m}|{i}|{j}" for m in ("ft", "ga")
                                                                    for i in range(2) for j in range(2)}
    assert sum(bool(t.visible) for t in fig.data[2:]) == 1  # one setting drawn at a time
    assert index["params"]["ft"] == ["lr", "epochs"] and index["values"]["ft"][0] == ["0.001", "0.1"]
    html = explorer_html(fig, index)
    assert "plotly_sliderchange" in html and "plotly_buttonclicked" in html and '"ga|1|1": 9' in html


def test_the_landmarks_are_grey_and_black_and_log_axes_label_decades_only():
    """Issue 34: an open marker is stroked in marker.color, so the references' landmarks
    must set it (they came out plotly blue and red); every log axis of the book labels its
    decades as powers of ten, without minor labels or SI prefixes."""
    from unlearnlib.book import plots

    grid, refs = rows({"ft": dict.fromkeys(SETTINGS, 0.1)})
    fig, _ = explorer_figure({m: g for m, g in grid.groupby("method")}, refs)
    marks = {t.name: t.marker for t in fig.data[:2]}
    assert marks["original (landmark)"].color == marks["original (landmark)"].line.color == "#7f7f7f"
    assert marks["retrain (landmark)"].color == marks["retrain (landmark)"].line.color == "#222222"
    axis = plots.go.Figure(layout=dict(xaxis=plots.LOG_AXIS)).layout.xaxis
    assert (axis.type, axis.minorloglabels, axis.exponentformat) == ("log", "none", "power")


def test_ct_on_a_1d_model_is_named_as_its_extension_in_the_dropdown_and_the_legend():
    grid, refs = rows({"ct": dict.fromkeys(SETTINGS, 0.1), "ft": dict.fromkeys(SETTINGS, 0.2)})
    grid = grid.assign(model="cnn1d")
    fig, index = explorer_figure({m: g for m, g in grid.groupby("method")}, refs)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["ct (1-D extension)", "ft"]
    assert index["methods"] == ["ct", "ft"]  # the script still finds traces by key
    assert {t.name for t in fig.data[2:]} == {"ct (1-D extension)", "ft"}


def test_hyperparameters_change_the_verdict_only_when_a_setting_closes_the_gap_and_another_does_not():
    varies = {"ft": {(0.001, 1): 0.05, (0.001, 8): 0.1, (0.1, 1): 0.5, (0.1, 8): 0.95}}
    v = V.hyperparameter_verdicts(*rows(varies), "b")[0]
    assert v.state == V.HOLDS and v.estimate > 0.8
    flat = {"ft": dict.fromkeys(SETTINGS, 0.3)}
    assert V.hyperparameter_verdicts(*rows(flat), "b")[0].state == V.FAILS
    # the only setting that closes the gap breaks the model: it counts as closing nothing
    broken = V.hyperparameter_verdicts(*rows(varies, utility_loss={("ft", 0.1, 8): 0.2, ("ft", 0.1, 1): 0.2}), "b")[0]
    assert broken.state == V.FAILS
