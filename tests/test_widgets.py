"""The ipywidgets explorer and the static one-hyperparameter sweep (unlearnlib.book.widgets)."""

from __future__ import annotations

import math

import pytest

w = pytest.importorskip("ipywidgets")  # absent on a bare GPU machine
pytest.importorskip("optuna")
import pytest

from unlearnlib import methods as registry
from unlearnlib.book.widgets import Explorer, control_for, default_values, sweep, sweep_figure
from unlearnlib.methods import Choice, Float, Int
from unlearnlib.store import Store


def test_control_for_each_kind_starts_at_the_clipped_default():
    lr = control_for("lr", Float(1e-5, 1e-1, log=True), 0.5)
    assert isinstance(lr, w.FloatLogSlider)
    assert (lr.min, lr.max, lr.base) == (-5, -1, 10) and lr.value == pytest.approx(0.1)
    a = control_for("alpha", Float(0.0, 1.0), 0.95)
    assert type(a) is w.FloatSlider and a.value == pytest.approx(0.95)
    e = control_for("epochs", Int(1, 8), 10)
    assert isinstance(e, w.IntSlider) and (e.min, e.max, e.value) == (1, 8, 8)
    b = control_for("batch_size", Choice(64, 128, 256), 256)
    assert isinstance(b, w.Dropdown) and list(b.options) == [64, 128, 256] and b.value == 256


@pytest.fixture(scope="module")
def explorer(session_store_env):
    return Explorer(method="ngplus", epochs=12, store=Store(session_store_env))


def test_explorer_builds_controls_matching_the_search_space(explorer):
    space = registry.get("ngplus").space(12)
    assert list(explorer.controls) == list(space)
    kinds = {k: type(c) for k, c in explorer.controls.items()}
    assert kinds == {"lr": w.FloatLogSlider, "weight_decay": w.FloatLogSlider, "batch_size": w.Dropdown,
                     "epochs": w.IntSlider, "alpha": w.FloatSlider}  # NG+ does not search its lam (issue 12)
    assert explorer.controls["epochs"].max == 3  # ceil(0.2 * 12)
    assert explorer.hparams()["alpha"] == pytest.approx(0.95)
    assert [k for _, k in explorer.method.options] == registry.available()
    assert ("ct (1-D extension)", "ct") in explorer.method.options  # the label CT has on a 1-D CNN
    explorer.method.value = "original"  # no hyperparameters: no controls
    assert explorer.controls == {} and "no hyperparameters" in explorer.params_box.children[-1].value
    explorer.method.value = "ga"
    assert list(explorer.controls) == list(registry.get("ga").space(12))


def test_run_updates_the_table_and_figure(explorer, refs):
    explorer.method.value = "ga"
    explorer.controls["lr"].value = 1e-3
    explorer.controls["epochs"].value = 1
    row = explorer.run()
    assert row["method"] == "ga" and '"lr":0.001' in row["hparams"]
    assert "<table" in explorer.table.value and "ga" in explorer.table.value
    explorer.controls["lr"].value = 1e-2
    explorer.run()
    assert len(explorer.history) == 2 and explorer.table.value.count("</tr>") == 3  # header + 2 runs
    names = [t.name for t in explorer.figure.data]
    assert names == ["ga", "original", "retrain"] and len(explorer.figure.data[0].x) == 2


def test_sweep_reruns_one_hyperparameter(refs, session_store_env):
    df = sweep("ga", "lr", [1e-5, 1e-1], seeds=[0], epochs=12, store=Store(session_store_env),
               hparams={"epochs": 3}, show_progress=False)
    runs = df[df["method"] == "ga"]
    assert list(runs["value"]) == [1e-5, 1e-1] and (runs["param"] == "lr").all()
    assert runs["hparams"].str.contains('"epochs":3').all()
    assert set(df["method"]) == {"ga", "original", "retrain"} and df[df.method == "retrain"]["value"].isna().all()
    assert runs["forget_acc"].iloc[0] > runs["forget_acc"].iloc[1]  # a larger ascent step forgets more
    fig = sweep_figure(df)
    assert len(fig.data) == 5 and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="no hyperparameter 'nope'; allowed: epochs, lr"):
        sweep("ga", "nope", [1], seeds=[0], epochs=12, store=Store(session_store_env))


def test_default_values_span_the_search_range():
    lr = default_values("ft", "lr", n=5)
    assert lr[0] == pytest.approx(1e-5) and lr[-1] == pytest.approx(1e-1)
    assert math.log10(lr[1]) == pytest.approx(-4)
    assert default_values("ft", "batch_size") == [64, 128, 256]
    assert default_values("ft", "epochs", n=8, train_epochs=40) == list(range(1, 9))
