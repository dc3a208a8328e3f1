"""Issue 34, one visual language: a colour-blind-safe colour and a marker per method, the same
on every page; many methods as small multiples; and the scorecard's dead KLOM column, traced
to its cause (too few models per side for KLOM's binned estimate) and named under the figure."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from unlearnlib import methods as registry
from unlearnlib.book import plots
from unlearnlib.book import scorecard_view as view
from unlearnlib.evaluation.klom import klom_values, max_klom, summarise
from unlearnlib.studies import scorecard as sc

REFS = ("original", "retrain")


# --------------------------------------------------------------------------- palette


def test_every_registered_method_has_its_own_colour_blind_safe_colour_and_marker():
    keys = registry.available()
    assert len([k for k in keys if k not in REFS]) >= 20  # the registry the book draws
    styles = plots.method_styles(keys)
    assert len(set(styles.values())) == len(keys)  # a unique (colour, marker) pair each
    okabe_ito = set(plots.OKABE_ITO.values())
    for m in keys:
        color, symbol = styles[m]
        if m in REFS:
            continue
        assert color in plots.METHOD_PALETTE and color in okabe_ito, (m, color)
        assert symbol in plots.METHOD_SYMBOLS, (m, symbol)
    # black is the retrained model's landmark, yellow vanishes on white: neither colours a method
    assert plots.OKABE_ITO["black"] not in plots.METHOD_PALETTE and plots.OKABE_ITO["yellow"] not in plots.METHOD_PALETTE
    # neighbours in the registry differ in colour AND marker
    methods = [k for k in keys if k not in REFS]
    for a, b in itertools.pairwise(methods):
        assert styles[a][0] != styles[b][0] and styles[a][1] != styles[b][1], (a, b)


def test_references_are_grey_and_black_landmarks():
    colors = plots.method_colors(["original", "retrain", "ft"])
    assert colors["original"] == "#7f7f7f" and colors["retrain"] == "#222222"
    assert colors["ft"] not in (colors["original"], colors["retrain"])


def test_a_method_keeps_its_colour_and_marker_whatever_the_page_shows():
    keys = [k for k in registry.available() if k not in REFS]
    whole = plots.method_styles(registry.available())
    rng = np.random.default_rng(0)
    for _ in range(20):
        subset = list(rng.choice(keys, size=int(rng.integers(1, len(keys))), replace=False))
        rng.shuffle(subset)
        part = plots.method_styles([*REFS, *subset])
        assert all(part[m] == whole[m] for m in part)


def _fraction_rows() -> pd.DataFrame:
    rows = []
    for m, shift in (("original", 0.0), ("retrain", 0.3), ("ft", 0.1), ("ga", 0.2), ("scrub", 0.25)):
        for seed in range(3):
            for frac in (0.03, 0.15, 0.3):
                rows.append({"method": m, "seed": seed, "fraction": frac, "forget": f"random:{frac}",
                             "dataset": "mnist1d", "model": "cnn1d", "mia_test": 0.6 - shift + 0.01 * seed,
                             "forget_acc": 1.0 - shift, "test_acc": 0.9})
    return pd.DataFrame(rows)


def test_line_figures_draw_each_method_with_its_marker():
    fig = plots.metric_vs_fraction(_fraction_rows(), ["mia_test", "forget_acc"])
    styles = plots.method_styles(["original", "retrain", "ft", "ga", "scrub"])
    assert len(fig.data) == 2 * 5
    for t in fig.data:
        assert "markers" in t.mode and (t.marker.color, t.marker.symbol) == styles[t.legendgroup], t.name


# --------------------------------------------------------------------------- small multiples


def _poison_rows(budgets=(0.02, 0.06, 0.1)) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for ref, v in (("original", -0.6), ("retrain", 0.1)):
            rows.append({"method": ref, "seed": seed, "budget": np.nan, "metric": v, "test_acc": 0.9})
        for m, v in (("gd", -0.5), ("ga", -0.1), ("scrub", 0.0)):
            for b in budgets:
                rows.append({"method": m, "seed": seed, "budget": b, "metric": v + b + 0.01 * seed, "test_acc": 0.88})
    return pd.DataFrame(rows)


def test_metric_grid_gives_each_method_its_own_panels_against_the_same_landmarks():
    """The poisoning chapter's figure: one column per method, one row per metric, the
    references drawn in every panel, y shared along a row."""
    metrics = {"metric": "GUS", "test_acc": "test accuracy"}
    fig = plots.metric_grid(_poison_rows(), "budget", metrics, "t", "budget (%)", methods=["gd", "ga", "scrub"],
                            x_scale=100)
    panels = {}
    for t in fig.data:
        panels.setdefault((t.xaxis, t.yaxis), []).append(t)
    assert len(panels) == 2 * 3
    styles = plots.method_styles(["gd", "ga", "scrub"])
    for traces in panels.values():
        refs = [t for t in traces if t.name in REFS]
        assert sorted(t.name for t in refs) == sorted(REFS)
        assert {t.name: t.line.color for t in refs} == {"original": "#7f7f7f", "retrain": "#222222"}
        (method,) = [t for t in traces if t.name not in REFS]
        assert (method.marker.color, method.marker.symbol) == styles[method.legendgroup]
        assert list(method.x) == [2.0, 6.0, 10.0]
    # one landmark legend entry each, method names as the first row's panel titles only
    assert sorted(t.name for t in fig.data if t.showlegend) == sorted(REFS)
    assert [a.text for a in fig.layout.annotations if a.text] == ["gd", "ga", "scrub"]
    # a row is one metric: its panels share the first panel's y axis
    assert fig.layout.yaxis2.matches == "y" and fig.layout.yaxis5.matches == "y4"
    assert fig.layout.yaxis.title.text == "GUS" and fig.layout.yaxis4.title.text == "test accuracy"


def test_metric_grid_with_one_budget_still_draws_the_landmarks_with_a_length():
    fig = plots.metric_grid(_poison_rows(budgets=(0.02,)), "budget", {"metric": "GUS"}, "t", "budget (%)",
                            x_scale=100)
    ref = next(t for t in fig.data if t.name == "retrain")
    assert ref.x[0] < 2.0 < ref.x[1]
    with pytest.raises(ValueError, match="no method"):
        plots.metric_grid(_poison_rows(), "budget", {"metric": "GUS"}, "t", "b", methods=["original"])
    with pytest.raises(ValueError, match="titles"):
        plots.small_multiples({"a": [], "b": []}, "t", "x", "y", titles=["a"])


# --------------------------------------------------------------------------- KLOM's dead column


def test_klom_cannot_tell_a_perfect_unlearning_from_none_at_the_quick_profiles_models_per_side():
    """The cause of "KLOM 11.5 for all 8 rows": with k shadow splits a forget point has about
    Binomial(k, 1/2) models per side. At N <= 2 the authors' binning drops the pooled maximum,
    so a side keeps one margin in one of 20 bins, which the other side rarely shares: the point
    reads log(1 + 1/eps) = 11.51, the ceiling, and at N = 4 little less. With the quick
    profile's 8 splits (14.5% of the forget points at N <= 2) the 95th percentile over the
    points sits within 6% of the ceiling whatever the unlearned models do, and a perfect
    unlearning (the oracles' own distribution) reads the ceiling exactly, as high as margins
    20 standard deviations off: the summary is the budget's, not the model's. With the
    authors' N = 100 the same code tells them apart, in order."""
    rng = np.random.default_rng(0)
    points = 4000

    def summaries(n_per_point: np.ndarray) -> list[float]:
        top = int(n_per_point.max())
        mask = np.arange(top)[:, None] < n_per_point[None, :]
        out = []
        for shift in (0.0, 1.0, 5.0, 20.0):  # unlearned margins this far from the oracles'
            u, o = rng.normal(size=(top, points)) + shift, rng.normal(size=(top, points))
            out.append(summarise(klom_values(u, o, mask, mask))[0])
        return out

    quick = summaries(rng.binomial(8, 0.5, points))
    assert min(quick) > 0.94 * max_klom() and quick[0] == pytest.approx(max_klom())
    authors = summaries(np.full(points, 100))
    assert authors[0] < 1.0 and all(np.diff(authors) > 0.5)  # the statistic varies where it can


def _heatmap_frame(klom_value=None) -> pd.DataFrame:
    rows = []
    for m, s in (("original", 0.0), ("retrain", 1.0), ("ft", 0.6)):
        for t in ("mia_test", "retdev", "klom"):
            v = s if t != "klom" or klom_value is None else klom_value
            rows.append({"method": m, "test": t, "label": sc.test_of(t).label, "value": v, "value_low": v,
                         "value_high": v, "score": s, "score_low": s, "score_high": s,
                         "reading": "pass" if s == 1.0 else "fail", "keeps_utility": True})
    return pd.DataFrame(rows)


def test_heatmap_names_dead_and_left_out_tests_under_the_figure():
    dead = view.heatmap_figure(_heatmap_frame(klom_value=11.51))
    assert "KLOM" not in list(dead.data[0].x) and len(dead.data[0].x) == 2
    assert "left out, the same value for every model: KLOM" in dead.layout.annotations[0].text
    frame = _heatmap_frame()
    frame = frame[frame["test"] != "klom"]  # as the quick profile computes it: KLOM left out before scoring
    fig = view.heatmap_figure(frame, left_out={"klom": "N = 4 models per side, its small-sample floor is its ceiling"})
    assert "KLOM" not in list(fig.data[0].x)
    assert "left out, KLOM: N = 4 models per side, its small-sample floor is its ceiling" in fig.layout.annotations[0].text
