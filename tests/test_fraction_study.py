"""The forget-fraction study behind the nabla-tau chapter (issue 7) and the shared
original model it relies on."""

import math

import pandas as pd
import pytest
import torch

from unlearnlib.book.plots import metric_vs_fraction
from unlearnlib.data import load_splits
from unlearnlib.store import Store
from unlearnlib.studies import fraction_study as fs
from unlearnlib.training import Recipe, train_reference_models


def test_forget_specs_and_fractions():
    assert fs.forget_specs([0.03, 0.15, 0.3], 3) == ["fraction:0.03", "fraction:0.15", "fraction:0.3", "class:3"]
    assert fs.forget_specs([0.3], None) == ["fraction:0.3"]
    assert fs.fraction_of("fraction:0.3") == 0.3 and math.isnan(fs.fraction_of("class:3"))
    with pytest.raises(ValueError, match="Forget fraction must lie in"):
        fs.forget_specs([1.5], None)
    with pytest.raises(ValueError, match="at least one"):
        fs.forget_specs([], None)


def _frame(cases: dict[str, dict[str, tuple[float, ...]]]) -> pd.DataFrame:
    """Rows for two seeds per (forget, method) whose means are the given (MIA, TA[, FA])."""
    rows = []
    for spec, methods in cases.items():
        for method, (mia, ta, *fa) in methods.items():
            for seed, eps in ((0, -0.01), (1, 0.01)):
                rows.append({"forget": spec, "method": method, "seed": seed, "mia_test": mia + eps,
                             "test_acc": ta - eps, "forget_acc": (fa or [1.0])[0],
                             "fraction": fs.fraction_of(spec)})
    return pd.DataFrame(rows)


CASES = {
    # nabla_tau closes 80% of the MIA gap at -1 point of TA; ft is closer on MIA but
    # 10 points less accurate (no rival), ngplus is as accurate and further away.
    "fraction:0.3": {"original": (0.60, 0.90), "retrain": (0.50, 0.90), "nabla_tau": (0.52, 0.89),
                     "ft": (0.505, 0.79), "ngplus": (0.55, 0.90)},
    # nabla_tau barely moves: 10% of the gap closed.
    "fraction:0.03": {"original": (0.60, 0.90), "retrain": (0.50, 0.90), "nabla_tau": (0.59, 0.90),
                      "ft": (0.53, 0.90), "ngplus": (0.58, 0.90)},
}


def test_claims_table_closed_form():
    c = fs.claims_table(_frame(CASES))
    a = c.loc["fraction:0.3"]
    assert a.gap_original == pytest.approx(0.10) and a.gap == pytest.approx(0.02)
    assert a.gap_closed == pytest.approx(0.8) and a.ta_drop == pytest.approx(0.01)
    assert a.forgets and a.rivals_equal_acc == 1 and a.best_rival == "ngplus" and a.beats_rivals
    b = c.loc["fraction:0.03"]
    assert b.gap_closed == pytest.approx(0.1) and not b.forgets
    assert b.best_rival == "ft" and b.best_rival_gap == pytest.approx(0.03) and not b.beats_rivals
    text = fs.claims_markdown(c)
    assert '"Up to 30%" **does not hold** here: at 3%' in text
    assert '"No tuning needed" **does not hold** here on fraction:0.03' in text


def test_class_forgetting_judged_on_forget_accuracy():
    """The retrained model separates a missing class from the test set (MIA far from 0.5):
    class forgetting is judged on forget accuracy instead."""
    c = fs.claims_table(_frame({"class:3": {"original": (0.6, 0.9, 1.0), "retrain": (0.95, 0.85, 0.0),
                                            "nabla_tau": (0.6, 0.85, 0.3), "ngplus": (0.95, 0.7, 0.0)}}))
    a = c.loc["class:3"]
    assert a.metric == "forget_acc" and a.gap_closed == pytest.approx(0.7) and a.forgets
    assert a.rivals_equal_acc == 0 and a.best_rival is None and a.beats_rivals  # ngplus lost 15 points


def test_claims_markdown_when_both_hold():
    c = fs.claims_table(_frame({"fraction:0.3": CASES["fraction:0.3"]}))
    text = fs.claims_markdown(c)
    assert '"Up to 30%" **holds**' in text and '"No tuning needed" **holds**' in text


def test_claims_table_needs_references():
    df = _frame({"fraction:0.3": {"original": (0.6, 0.9), "nabla_tau": (0.5, 0.9)}})
    with pytest.raises(ValueError, match="no rows of 'retrain'"):
        fs.claims_table(df)


def test_study_table_mean_and_std():
    t = fs.study_table(_frame(CASES), {"mia_test": "loss-MIA"})
    assert t.loc[("fraction:0.3", "nabla_tau"), "loss-MIA"] == "0.520\u00a0±\u00a00.014"
    assert t.loc[("fraction:0.3", "nabla_tau"), "seeds"] == 2


def test_metric_vs_fraction_one_line_per_method_and_panel():
    df = pd.concat([_frame(CASES), _frame({"class:3": CASES["fraction:0.3"]})])
    fig = metric_vs_fraction(df, ["mia_test", "test_acc"])
    assert len(fig.data) == 2 * 5  # 5 methods x 2 panels; class rows have no fraction
    line = next(t for t in fig.data if t.name == "nabla_tau")
    assert list(line.x) == [3, 30] and line.y[1] == pytest.approx(0.52)
    lit = metric_vs_fraction(df, ["mia_test"], highlight="nabla_tau")  # the chapter's method stands out
    widths = {t.name: (t.line.width, t.opacity) for t in lit.data}
    assert widths["nabla_tau"] == (5, 1.0) and all(o < 1 for m, (_, o) in widths.items()
                                                   if m not in ("nabla_tau", "original", "retrain"))
    titled = metric_vs_fraction(df, ["mia_test", "test_acc"], labels={"test_acc": "TA here"})
    assert [a.text for a in titled.layout.annotations] == ["loss-MIA forget vs test", "TA here"]
    with pytest.raises(ValueError, match="no rows with a finite forget fraction"):
        metric_vs_fraction(_frame({"class:3": CASES["fraction:0.3"]}), ["mia_test"])


def test_original_is_shared_by_every_forget_set(tmp_path):
    """The original trains on D_r u D_f in index order, keyed by that set alone: one
    store entry serves every forget set, while each forget set gets its own retrain."""
    store = Store(tmp_path)
    recipe = Recipe(epochs=1, lr=0.05, batch_size=64)
    a, b = load_splits("digits", "fraction:0.1"), load_splits("digits", "class:2")
    assert torch.equal(a.train.index, b.train.index) and torch.equal(a.train.x, b.train.x)
    assert bool((a.train.index.diff() > 0).all())
    ra = train_reference_models(a, "mlp", 0, recipe, store, show_progress=False)
    rb = train_reference_models(b, "mlp", 0, recipe, store, show_progress=False)
    assert store.misses == 3 and store.hits == 1  # original once, two retrains
    sa, sb = ra.original.state_dict(), rb.original.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(ra.retrained.state_dict()[next(iter(sa))], rb.retrained.state_dict()[next(iter(sa))])


def test_run_fraction_study_rows_and_cache(tmp_path):
    store = Store(tmp_path)
    setups = fs.Setups("digits", "mlp", epochs=1, store=store, show_progress=False)
    kw = dict(forgets=["fraction:0.3"], seeds="1", n_trials=1)
    df, tuned = fs.run_fraction_study(setups, ["nabla_tau"], ["ft"], **kw)
    assert list(df["method"]) == ["original", "retrain", "nabla_tau", "ft"]
    assert list(df["tuned"]) == [False, False, False, True]
    assert (df["fraction"] == 0.3).all() and set(tuned) == {("random:0.1", "ft")}
    assert {"forget_loss", "val_loss", "mia_entropy_test"} <= set(df.columns)
    misses = store.misses
    df2, _ = fs.run_fraction_study(fs.Setups("digits", "mlp", epochs=1, store=store, show_progress=False),
                                   ["nabla_tau"], ["ft"], **kw)
    assert store.misses == misses  # everything came from the store
    pd.testing.assert_frame_equal(df.drop(columns="unlearn_seconds"), df2.drop(columns="unlearn_seconds"))
    with pytest.raises(ValueError, match="Unknown forget kind"):
        fs.run_fraction_study(setups, ["nabla_tau"], ["ft"], **{**kw, "forgets": ["half:0.3"]})
    with pytest.raises(ValueError, match=r"Evaluation seeds \[0\] are tuning seeds"):
        fs.run_fraction_study(fs.Setups("digits", "mlp", epochs=1, store=Store(tmp_path / "other"),
                                        show_progress=False), ["nabla_tau"], ["ft"], **{**kw, "seeds": "0-2"})


def test_tuned_methods_are_scored_on_held_out_seeds_only():
    """Issue 31: a method scored on the seed its hyperparameters were chosen on is optimistic
    there; evaluation seeds that are tuning seeds, of the search or of a shipped entry it
    starts from, are refused in one line that names held-out seeds."""
    from unlearnlib.studies.hpo import check_held_out

    check_held_out("0", "3-7")
    with pytest.raises(ValueError, match=r"Evaluation seeds \[0\] are tuning seeds \(tuned on \[0\]\).*e\.g\. 1-5"):
        check_held_out("0", "0-4")
    with pytest.raises(ValueError, match=r"\[1, 2\] are tuning seeds \(tuned on \[0, 1, 2\]\).*3-7"):
        check_held_out("0", "1-5", [{"tuning_seeds": [0, 1, 2]}, None])


def test_figures_of_many_methods_get_a_picker_and_small_multiples():
    """Issue 34: a figure of many methods has a dropdown that highlights one method (its
    traces as drawn, the others faded, the references never) and the means carry their
    names; overlapping curves of many methods become one panel per method."""
    import plotly.graph_objects as go

    from unlearnlib.book import plots

    df = pd.concat([_frame(CASES)])
    fig = metric_vs_fraction(df, ["mia_test"])
    menu = fig.layout.updatemenus[0]
    methods = [t.name for t in fig.data if t.name not in plots.LANDMARKS]
    assert [b.label for b in menu.buttons] == ["all methods", *methods]
    pick = next(b for b in menu.buttons if b.label == "nabla_tau").args[0]["opacity"]
    for t, o in zip(fig.data, pick, strict=True):
        assert o == (1.0 if t.name in ("nabla_tau", *plots.LANDMARKS) else 0.08), (t.name, o)
    few = plots.with_method_picker(go.Figure([go.Scatter(name="a"), go.Scatter(name="b")]))
    assert not few.layout.updatemenus  # two methods need no picker
    grid = plots.small_multiples({m: [go.Scatter(x=[0, 1], y=[0, i], name=m)] for i, m in enumerate("abcd")},
                                 "t", "x", "y", columns=3)
    assert [a.text for a in grid.layout.annotations] == list("abcd") and len(grid.data) == 4
    assert grid.data[3].xaxis == "x4" and grid.data[0].xaxis == "x"
