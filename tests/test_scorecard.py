"""The scorecard's logic on constructed rows: normalisation (0 = original, 1 = retrained),
the pass / false-sense readings with the utility constraint, Kendall's tau on known
rankings, the shadow tests read through the metric registry (its weighted forms are pinned
in tests/test_metric_registry.py), and the verdicts on constructed draws."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scorecard_draws import constructed_draws

from unlearnlib.book import scorecard_view as view
from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set
from unlearnlib.studies import scorecard as sc
from unlearnlib.studies import verdicts as vd

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- normalisation


def test_normalise_maps_original_to_0_and_retrained_to_1_whatever_the_direction():
    # columns: original, retrain, a, b; row 0 a test that falls (MIA), row 1 one that rises
    v = np.array([[0.6, 0.5, 0.55, 0.45],
                  [0.10, 0.30, 0.20, 0.40]])
    s = sc.normalise(v, original=0, retrained=1)
    np.testing.assert_allclose(s, [[0, 1, 0.5, 1.5], [0, 1, 0.5, 1.5]])


def test_normalise_gives_nan_without_a_gap():
    s = sc.normalise(np.array([[0.7, 0.7, 0.6]]), 0, 1)
    assert np.isnan(s).all()


def _rows(values: dict[str, list[float]], ta: dict[str, float] | None = None, test: str = "mia_test") -> pd.DataFrame:
    """Full-data rows with one test's per-seed values (other tests NaN) and test accuracies."""
    ta = ta or {}
    rows = []
    for m, vals in values.items():
        for s, v in enumerate(vals):
            row = {k: math.nan for k in sc.TEST_KEYS if sc.test_of(k).source == "seeds"}
            rows.append({**row, "method": m, "seed": s, test: v, "test_acc": ta.get(m, 0.94)})
    return pd.DataFrame(rows)


def test_bootstrap_point_row_is_the_seed_mean_and_references_stay_at_0_and_1():
    rows = _rows({"original": [0.60, 0.62, 0.58], "retrain": [0.50, 0.52, 0.48], "ft": [0.55, 0.57, 0.53]})
    d = sc.bootstrap_values(rows, n_boot=50)
    v = d.values["mia_test"]
    np.testing.assert_allclose(v[0], [0.60, 0.50, 0.55])
    s = sc.scores(d)["mia_test"]
    np.testing.assert_allclose(s[:, 0], 0.0)
    np.testing.assert_allclose(s[:, 1], 1.0)
    np.testing.assert_allclose(s[:, 2], 0.5)  # ft is halfway in every seed, so in every resample
    assert d.n_boot == 50 and d.n_seeds == 3


def test_a_gap_that_changes_sign_over_seeds_is_unresolved():
    rows = _rows({"original": [0.6, 0.5, 0.6, 0.5, 0.55], "retrain": [0.5, 0.6, 0.5, 0.6, 0.55],
                  "ft": [0.55] * 5})
    d = sc.bootstrap_values(rows, n_boot=200)
    assert not sc.resolved_gaps(d)["mia_test"]
    assert np.isnan(sc.scores(d)["mia_test"]).all()
    steady = _rows({"original": [0.6, 0.61, 0.6, 0.59, 0.6], "retrain": [0.5, 0.51, 0.5, 0.49, 0.5],
                    "ft": [0.55] * 5})
    assert sc.resolved_gaps(sc.bootstrap_values(steady, n_boot=200))["mia_test"]


# --------------------------------------------------------------------------- readings

METHODS = ["original", "retrain", "honest", "shallow", "broken", "weak"]


def _scores(**per_test: list[float]) -> dict[str, np.ndarray]:
    """One draw of normalised scores per test (methods in METHODS order)."""
    return {k: np.array([v], float) for k, v in per_test.items()}


def _reading(score: dict[str, np.ndarray], keeps: list[bool]):
    return sc.classify(score, np.array([keeps]), METHODS)


def test_pass_every_test_and_false_sense_on_constructed_scores():
    # honest: like retraining everywhere; shallow: passes the loss-MIA, fails U-LiRA;
    # broken: like retraining but loses its utility; weak: fails the loss-MIA and U-LiRA
    score = _scores(mia_test=[0, 1, 1.05, 0.95, 1.0, 0.3],
                    ulira_accuracy=[0, 1, 0.9, 0.3, 1.0, 0.2],
                    l2_to_retrained=[0, 1, 0.85, 0.9, 1.0, 0.1])
    r = _reading(score, [True, True, True, True, False, True])
    every, false = sc.passes_every_test(r)[0], sc.false_sense(r)[0]
    assert dict(zip(METHODS, every, strict=True)) == {
        "original": False, "retrain": True, "honest": True, "shallow": False, "broken": False, "weak": False}
    assert dict(zip(METHODS, false, strict=True)) == {
        "original": False, "retrain": False, "honest": False, "shallow": True, "broken": False, "weak": False}
    # the utility constraint fails every test of the broken method, known or not
    assert r.known[0, 4].all() and not r.passed[0, 4].any()


def test_the_tolerance_band_is_two_sided():
    score = _scores(mia_test=[0, 1, 1.19, 1.21, 0.81, 0.79])
    r = _reading(score, [True] * 6)
    assert r.passed[0, :, 0].tolist() == [False, True, True, False, True, False]


def test_false_sense_needs_a_deeper_test_not_a_shallow_one():
    # failing forget accuracy or the verification error is not a per-sample, relearning or poisoning test
    score = _scores(mia_test=[0, 1, 1, 1, 1, 1], forget_acc=[0, 1, 0.2, 1, 1, 1],
                    l2_to_retrained=[0, 1, 1, 0.1, 1, 1], relearn_acc=[0, 1, 1, 1, 1, 0.4])
    r = _reading(score, [True] * 6)
    assert sc.false_sense(r)[0].tolist() == [False, False, False, False, False, True]


def test_unresolved_tests_count_nowhere_and_missing_ones_block_passing_every_test():
    nan = math.nan
    score = _scores(mia_test=[0, 1, 1, 1, 1, 1], klom=[nan] * 6,           # unresolved: ignored
                    ulira_accuracy=[0, 1, 1, nan, 1, 1])                   # not run for "shallow"
    r = _reading(score, [True, True, True, True, True, True])
    assert dict(zip(r.tests, r.resolved.tolist(), strict=True)) == {
        "mia_test": True, "ulira_accuracy": True, "klom": False}
    assert sc.passes_every_test(r)[0].tolist() == [False, True, True, False, True, True]
    assert not sc.false_sense(r)[0].any()  # a test that did not run is no failure
    assert not r.known[0, :, r.tests.index("klom")].any()


def test_poisoning_utility_fails_only_the_poison_test():
    score = _scores(mia_test=[0, 1, 1, 1, 1, 1], gus=[0, 1, 1, 1, 1, 1])
    poison_ok = np.array([[True, True, False, True, True, True]])
    r = sc.classify(score, np.array([[True] * 6]), METHODS, poison_utility=poison_ok)
    assert r.passed[0, 2].tolist() == [True, False]
    assert sc.false_sense(r)[0].tolist() == [False, False, True, False, False, False]


def test_utility_mask_is_three_points_of_test_accuracy():
    ta = np.array([[0.94, 0.94, 0.905, 0.911, 0.95]])
    assert sc.utility_mask(ta, retrained=1).tolist() == [[True, True, False, True, True]]


def test_utility_keepers_read_the_mean_over_seeds():
    rows = pd.DataFrame({"method": ["original", "retrain", "a", "b"] * 2, "seed": [0] * 4 + [1] * 4,
                         "test_acc": [0.95, 0.94, 0.93, 0.92, 0.95, 0.94, 0.93, 0.89]})
    assert sc.utility_keepers(rows) == ["a"]  # b: mean 0.905, 3.5 points below retraining's 0.94


# --------------------------------------------------------------------------- Kendall's tau


def test_kendall_tau_on_known_rankings():
    assert sc.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert sc.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair out of six: (5 - 1) / 6
    assert sc.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # tau-b with a tie in one ranking: 2 concordant pairs, 1 tied: 2 / sqrt(3 * 2)
    assert sc.kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(sc.kendall_tau([1, 2, math.nan], [1, 2, 3]))  # two items left
    assert math.isnan(sc.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_kendall_matrix_compares_rankings_by_distance_to_retraining():
    # scores of 4 methods; distance |s - 1| ranks them; t2 overshoots symmetrically (same ranking)
    score = {"t1": np.array([[0.0, 0.5, 0.9, 1.0]]), "t2": np.array([[2.0, 1.5, 1.1, 1.0]]),
             "t3": np.array([[1.0, 0.9, 0.5, 0.0]])}
    tau = sc.kendall_matrix(sc.distance_to_retrained(score))
    assert tau.loc["t1", "t2"] == pytest.approx(1.0)
    assert tau.loc["t1", "t3"] == pytest.approx(-1.0)
    assert np.allclose(np.diag(tau), 1.0) and np.allclose(tau, tau.T)


# --------------------------------------------------------------------------- the shadow tests' values


@pytest.fixture(scope="module")
def fake_shadows(splits):
    """A small shadow design with constructed outputs: the unlearned rows keep a +1.5 shift
    of phi on every sample they trained on, forgotten ones included (nothing forgotten), the
    oracle rows none."""
    sh = make_shadow_set(splits, ShadowConfig(k=6, population=0.2, targets=0.5, seed=3))
    rng = np.random.default_rng(0)
    M, N = sh.forget_masks.shape
    n_test = len(splits.test)

    def outputs(role: str, shift: float) -> ShadowOutputs:
        phi = rng.normal(size=(M, N)) + shift * sh.row_in().numpy()
        return ShadowOutputs(role, phi.astype(np.float32), np.abs(rng.normal(size=(M, N))).astype(np.float32),
                             np.abs(rng.normal(size=(M, n_test))).astype(np.float32),
                             np.full(M, 0.99), np.full(M, 0.99), np.full(M, 0.9))

    return sh, outputs("unlearned", 1.5), outputs("retrained-reference", 0.0)


def test_the_scorecard_has_no_own_copy_of_a_metric(fake_shadows, monkeypatch):
    """Issue 35: the shadow tests' weighted values are the metric registry's one definition
    (tests/test_metric_registry.py pins those against the library's summaries); the
    scorecard defines no metric function of its own and calls the registry's."""
    import inspect

    from unlearnlib.evaluation import registry as reg

    own = {n for n, f in inspect.getmembers(sc, inspect.isfunction) if f.__module__.startswith(sc.__name__)}
    assert own  # the package's own functions, from every part of it
    registered = {m.function.__name__ for m in reg.metrics() if m.fn is not None}
    assert not own & registered
    assert not own & {"weighted_roc", "ks_distance", "weighted_percentile", "per_target_means"}
    sh, out, ref = fake_shadows
    arrays = sc.evaluate_shadows(sh, out, ref, mode="online")
    w = np.zeros((1, out.phi.shape[1]))
    w[0, sh.is_target.numpy()] = 1.0
    v = sc.shadow_values(arrays, w)
    for k in reg.keys("shadows"):
        np.testing.assert_array_equal(v[k], reg.metric(k).on_arrays(arrays, w))
    # the shift is remembered: U-LiRA and RMIA see it, the KS distance to the oracle is large
    assert v["ulira_accuracy"][0] > 0.6 and v["rmia_auc"][0] > 0.6 and v["ks_distance"][0] > 0.3
    # a change of the registered definition is what the scorecard reads
    monkeypatch.setitem(reg.METRICS, "neurips_f", dataclasses.replace(
        reg.metric("neurips_f"), fn=lambda h, sample_weight: np.full(len(sample_weight), 0.123)))
    assert sc.shadow_values(arrays, w)["neurips_f"].tolist() == [0.123]


def test_target_bootstrap_is_paired_across_methods(fake_shadows):
    """The same method twice gives the same values in every draw (the targets are resampled once)."""
    sh, out, ref = fake_shadows
    arrays = sc.evaluate_shadows(sh, out, ref)
    rows = _rows({"original": [0.6] * 5, "retrain": [0.5] * 5, "ft": [0.55] * 5})
    d = sc.bootstrap_values(rows, {"original": arrays, "ft": arrays}, n_targets=out.phi.shape[1], n_boot=30)
    for k in ("ulira_accuracy", "rmia_auc", "ks_distance"):
        np.testing.assert_array_equal(d.values[k][:, 0], d.values[k][:, 2])
        assert np.isnan(d.values[k][:, 1]).all()
        assert np.ptp(d.values[k][1:, 0]) > 0  # the draws do resample
    # the point row scores every target the library scores
    for k in ("ulira_accuracy", "rmia_auc", "neurips_f", "klom"):
        assert d.values[k][0, 0] == pytest.approx(float(arrays[f"{k}_point"]), abs=1e-12), k


# --------------------------------------------------------------------------- KLOM's resolution


def _profile_shadow_set(splits, profile: str):
    """The shadow design of ``profile``'s scorecard: its parameters over the notebook's defaults."""
    import ast

    from unlearnlib.book import build as book

    nb = ROOT / "notebooks" / "scorecard.ipynb"
    params = {k: ast.literal_eval(v["default"]) for k, v in book.notebook_parameters(nb).items()}
    params.update(book.load_profiles(ROOT)[profile]["scorecard.ipynb"])
    assert (params["dataset"], params["forget"]) == ("mnist1d", "random:0.1")  # the fixture's splits
    return make_shadow_set(splits, ShadowConfig(k=params["shadow_k"], population=params["shadow_population"],
                                                targets=params["shadow_targets"]))


def test_klom_is_left_out_of_the_quick_profile_with_a_computed_reason_and_kept_in_full(splits):
    pytest.importorskip("papermill")
    from unlearnlib.evaluation.klom import max_klom

    quick = sc.klom_resolution(_profile_shadow_set(splits, "quick"))
    assert not quick.keep
    assert quick.floor > (1 - sc.KLOM_MIN_ROOM) * max_klom() and quick.ceiling == pytest.approx(max_klom())
    assert quick.n_median <= 4  # 8 shadow splits: about 4 models per side
    # the reason states the numbers it was decided on
    assert quick.reason.startswith("KLOM left out")
    for text in (f"N = {quick.n_median:g} models per side", f"read {quick.floor:.2f}", f"N = {quick.n_needed}"):
        assert text in quick.reason, text
    full = sc.klom_resolution(_profile_shadow_set(splits, "full"))
    assert full.keep and full.reason.startswith("KLOM kept")
    assert full.floor <= (1 - sc.KLOM_MIN_ROOM) * max_klom() and full.n_median > quick.n_needed


def test_left_out_tests_leave_every_reading_and_figure(fake_shadows):
    sh, out, ref = fake_shadows
    arrays = sc.evaluate_shadows(sh, out, ref)
    rows = _rows({"original": [0.6] * 5, "retrain": [0.5] * 5, "ft": [0.55] * 5})
    kept = sc.bootstrap_values(rows, {"original": arrays, "retrain": arrays, "ft": arrays},
                               n_targets=out.phi.shape[1], n_boot=20)
    d = sc.bootstrap_values(rows, {"original": arrays, "retrain": arrays, "ft": arrays},
                            n_targets=out.phi.shape[1], n_boot=20, leave_out=("klom",))
    assert "klom" in kept.values and "klom" not in d.values
    for k in d.values:  # the same resampling for the tests that stay
        np.testing.assert_array_equal(d.values[k], kept.values[k])
    score = sc.scores(d)
    reading = sc.classify(score, sc.utility_mask(d.test_acc, d.col("retrain")), d.methods)
    assert "klom" not in reading.tests
    frame = sc.scorecard_frame(d, score, reading)
    assert "klom" not in set(frame["test"])
    assert "KLOM" not in list(view.heatmap_figure(frame).data[0].x)
    with pytest.raises(ValueError, match="Unknown scorecard test"):
        sc.bootstrap_values(rows, n_boot=10, leave_out=("kloom",))


# --------------------------------------------------------------------------- verdicts


_draws = constructed_draws  # tests/scorecard_draws.py, shared with tests/test_scorecard_view.py


def test_verdicts_on_constructed_draws():
    d, r = _draws(5, shallow_mia=0.5)
    false, none = sc.scorecard_verdicts(d, r, "constructed")
    assert false.state == vd.HOLDS and false.estimate == 1   # shallow
    assert none.state == vd.FAILS and none.estimate == 1     # honest passes both tests
    assert none.scope == false.scope and none.scope.startswith(f"{len(d.methods) - 2} ")  # references aside
    assert none.scope.endswith(f"{int(r.resolved.sum())} of {len(r.tests)} tests resolved")
    # the population MIA catches both, and honest fails U-LiRA too (0.58: score 0.47)
    false, none = sc.scorecard_verdicts(*_draws(5, shallow_mia=0.6, honest_ulira=0.58, honest_mia=0.6),
                                        "constructed")
    assert false.state == vd.FAILS and none.state == vd.HOLDS
    d, r = _draws(3, shallow_mia=0.5)
    assert all(v.state == vd.UNTESTED for v in sc.scorecard_verdicts(d, r, "constructed"))



# --------------------------------------------------------------------------- t-scaled intervals


def _mia_draws(original: np.ndarray, retrain: np.ndarray, ft: np.ndarray, n_seeds: int = 5) -> sc.Draws:
    """Draws of the loss-MIA only (row 0 the estimate), the references and "ft"."""
    B1 = len(ft)
    vals = {"mia_test": np.c_[original, retrain, ft]}
    return sc.Draws(["original", "retrain", "ft"], vals, np.full((B1, 3), 0.94), np.full((B1, 3), np.nan),
                    n_seeds, 0, 0)


def test_intervals_are_the_percentile_half_widths_stretched_by_t_scale():
    # ft: estimate 0.505, resamples 0.480..0.520 in 41 even steps, so the 2.5% and 97.5%
    # quantiles are exactly 0.481 and 0.519 (positions 1 and 39 of 0..40)
    ft = np.r_[0.505, 0.48 + 0.001 * np.arange(41)]
    d = _mia_draws(np.full(42, 0.6), np.full(42, 0.5), ft)
    c = vd.t_scale(5)
    lo, hi = 0.505 - c * (0.505 - 0.481), 0.505 + c * (0.519 - 0.505)
    assert sc.reading._interval(ft, d.interval_seeds) == pytest.approx((lo, hi))
    r = sc.classify(sc.scores(d), sc.utility_mask(d.test_acc, 1), d.methods)
    row = sc.scorecard_frame(d, sc.scores(d), r).set_index("method").loc["ft"]
    assert (row.value_low, row.value_high) == pytest.approx((lo, hi))
    # the score (v - 0.6) / (0.5 - 0.6) is linear in v: the same interval, mapped and flipped
    assert (row.score_low, row.score_high) == pytest.approx(((hi - 0.6) / -0.1, (lo - 0.6) / -0.1))
    # the coarsest seed level sets the stretch; an accuracy's interval stays in [0, 1]
    assert dataclasses.replace(d, n_poison_seeds=3).interval_seeds == 3
    assert sc.reading._interval(np.r_[0.99, np.linspace(0.96, 1.0, 41)], 5, bounds=(0, 1))[1] == 1.0


def _score_draws(per_method: dict[str, dict[str, tuple[float, float]]], n_seeds: int = 5,
                 n_boot: int = 40) -> tuple[sc.Draws, sc.Reading]:
    """Draws whose scores are given directly: the references read 0 and 1 in every draw, so
    a method's value is its score; ``per_method[m][test] = (estimate, w)``: draw 0 the
    estimate, the resamples the estimate + ``n_boot`` evenly spaced offsets in [-w, w]."""
    methods = ["original", "retrain", *per_method]
    tests = list(dict.fromkeys(k for v in per_method.values() for k in v))
    B1 = n_boot + 1
    vals = {}
    for k in tests:
        cols = [np.zeros(B1), np.ones(B1)]
        for m in per_method:
            est, w = per_method[m][k]
            cols.append(np.r_[est, est + np.linspace(-w, w, n_boot)])
        vals[k] = np.c_[tuple(cols)]
    ta = np.full((B1, len(methods)), 0.9)
    d = sc.Draws(methods, vals, ta, np.full((B1, len(methods)), np.nan), n_seeds, 0, 0)
    return d, sc.classify(sc.scores(d), sc.utility_mask(ta, 1), methods)


def test_the_count_intervals_run_from_certain_to_possible_methods():
    # honest: like retraining on both tests (certainly passes both); shallow: passes the
    # loss-MIA, fails relearning clearly; edge: 0.85 on the MIA, whose interval crosses 0.8
    # (undecided), relearning passed; maybe: undecided MIA, relearning failed clearly
    d, r = _score_draws({"honest": {"mia_test": (1.0, 0.05), "relearn_acc": (1.0, 0.05)},
                         "shallow": {"mia_test": (1.0, 0.05), "relearn_acc": (0.3, 0.05)},
                         "edge": {"mia_test": (0.85, 0.05), "relearn_acc": (1.0, 0.05)},
                         "maybe": {"mia_test": (0.85, 0.05), "relearn_acc": (0.3, 0.05)}})
    inside, outside = sc.certain_readings(d, r, sc.ALPHA / 4)
    assert inside[2:].tolist() == [[True, True], [True, False], [False, True], [False, False]]
    assert outside[2:].tolist() == [[False, False], [False, True], [False, False], [False, True]]
    # every test: honest for certain, edge possibly (shallow and maybe fail relearning)
    assert sc.every_test_bounds(d, r) == (1.0, 2.0)
    # false sense: shallow for certain, maybe possibly (edge passes relearning for certain)
    assert sc.false_sense_bounds(d, r) == (1.0, 2.0)
    false, none = sc.scorecard_verdicts(d, r, "constructed")
    assert (false.estimate, false.low, false.high, false.state) == (2.0, 1.0, 2.0, vd.HOLDS)
    assert (none.estimate, none.low, none.high, none.state) == (2.0, 1.0, 2.0, vd.FAILS)
    assert "corrected for the number of tests and methods" in none.criterion


def test_a_failure_outside_only_at_the_uncorrected_tail_is_not_certain_among_6_tests():
    # "near" passes five tests for certain (no spread) and reads 0.6 on forget accuracy, whose
    # upper bound lies below 0.8 at 2.5% but not at 2.5% / 6: one of six tests that could
    # each fail it by chance is not a certain failure, so "no method passes every test"
    # cannot hold; with forget accuracy as the only test it is certain
    six = ("forget_acc", "retdev", "mia_test", "mia_entropy_test", "relearn_acc", "l2_to_retrained")
    near = {k: (1.0, 0.0) for k in six} | {"forget_acc": (0.6, 0.11)}
    d, r = _score_draws({"near": near}, n_boot=400)
    x = d.values["forget_acc"][:, 2]
    assert sc.score_bounds(x, 5, sc.ALPHA)[1] < 1 - sc.TOL < sc.score_bounds(x, 5, sc.ALPHA / 6)[1]
    assert sc.certain_readings(d, r, sc.ALPHA)[1][2].tolist() == [True] + [False] * 5
    assert sc.every_test_bounds(d, r) == (0.0, 1.0)
    assert sc.scorecard_verdicts(d, r, "constructed")[1].state != vd.HOLDS
    d1, r1 = _score_draws({"near": {"forget_acc": (0.6, 0.11)}}, n_boot=400)
    assert sc.every_test_bounds(d1, r1) == (0.0, 0.0)   # below 1/2: "none passes" holds


def test_score_bounds_are_resampled_bounds_and_extrapolate_below_the_draws_resolution():
    x = np.r_[0.5, 0.4 + 0.005 * np.arange(41)]   # 41 draws 0.40..0.60 around 0.5
    r = vd.Resampled(0.5, x[1:], 5)
    assert sc.score_bounds(x, 5, 0.025) == pytest.approx((r.bound(0.025, False), r.bound(0.025, True)))
    # 0.025 / 6 lies below 1 / 41: read at 1 / 41, stretched by the ratio of t_4 quantiles
    from scipy.stats import t

    c = t.ppf(1 - 0.025 / 6, 4) / t.ppf(1 - 1 / 41, 4)
    lo, hi = r.bound(1 / 41, False), r.bound(1 / 41, True)
    assert sc.score_bounds(x, 5, 0.025 / 6) == pytest.approx((0.5 - c * (0.5 - lo), 0.5 + c * (hi - 0.5)))
    # the estimate lies within its bounds even where every draw lies on one side of it
    assert sc.score_bounds(np.r_[0.3, np.linspace(0.4, 0.6, 40)], 5, 0.025)[0] == 0.3
    assert all(map(math.isnan, sc.score_bounds(x, 1, 0.025)))


def test_a_gap_the_percentile_interval_resolves_is_unresolved_at_5_seeds():
    # gap retrain - original: estimate -0.1, resamples -0.1 + [-0.08, 0.08]: the percentile
    # interval [-0.176, -0.024] excludes 0, the t-scaled one (x 1.58) reaches +0.02
    e = np.r_[0.0, np.linspace(-0.08, 0.08, 41)]
    d = _mia_draws(np.full(42, 0.6), 0.5 + e, np.full(42, 0.55))
    gap = d.values["mia_test"][:, 1] - d.values["mia_test"][:, 0]
    assert vd.interval_from_draws(gap[0], gap[1:], 5, interval="percentile")[1] < 0
    assert not sc.resolved_gaps(d)["mia_test"]
    assert np.isnan(sc.scores(d)["mia_test"]).all()
    # the same draws at 100 seeds (t_scale ~1.01) are resolved; at 1 seed there is no interval
    assert sc.resolved_gaps(dataclasses.replace(d, n_seeds=100))["mia_test"]
    assert not sc.resolved_gaps(dataclasses.replace(d, n_seeds=1))["mia_test"]


def test_a_methods_value_interval_covers_at_5_seeds_where_the_percentile_one_does_not():
    # 300 data sets of normal per-seed rows (5 seeds) through the scorecard's own bootstrap;
    # how often does ft's 95% value interval contain its true mean? Student's t interval
    # keeps ~0.95; the percentile interval of the same draws covers ~0.83 (Hesterberg 2015)
    rng = np.random.default_rng(1)
    mu, sd, n, reps = 0.55, 0.02, 5, 300
    t_hits = pct_hits = 0
    for i in range(reps):
        rows = _rows({"original": rng.normal(0.6, sd, n), "retrain": rng.normal(0.5, sd, n),
                      "ft": rng.normal(mu, sd, n)})
        v = sc.bootstrap_values(rows, n_boot=sc.N_BOOT, seed=i).values["mia_test"][:, 2]
        lo, hi = sc.reading._interval(v, n)
        t_hits += lo <= mu <= hi
        p_lo, p_hi = vd.interval_from_draws(v[0], v[1:], n, interval="percentile")
        pct_hits += p_lo <= mu <= p_hi
    assert t_hits / reps >= 0.90
    assert pct_hits / reps < 0.90  # the check has power: the old percentile interval fails it (0.85)


# --------------------------------------------------------------------------- counts and presentation


def test_training_counts_on_a_hand_counted_case():
    c = sc.training_counts(n_seeds=1, n_methods=1, n_relearn=1, k=4, n_shadow_methods=1,
                           n_poison_seeds=1, n_poison_methods=1)
    # shared: 2 full-data models + 12 shadows (originals, retrained, oracles) + 2 poisoning models;
    # unlearning: 1 + 1 (relearning) + 4 shadows + 1 poisoning
    assert c.loc["total", "trained, shared"] == 16 and c.loc["total", "unlearning runs, shared"] == 7
    # without: 6 tests x 2 models + 5 attacks x 8 shadows + 3 x 4 oracles + 2; unlearning 5 + 1 + 20 + 1
    assert c.loc["total", "trained, without sharing"] == 66
    assert c.loc["total", "unlearning runs, without sharing"] == 27


def test_the_chapters_budget_counts_what_it_ran():
    """The notebook's bookkeeping (issue 35): the verdicts' budget names every part of the run,
    and the training counts are :func:`training_counts` with KLOM's shadow test (and its
    oracles) counted only where KLOM is kept."""
    hp = {"original": ({}, "reference"), "retrain": ({}, "reference"), "ft": ({"lr": 0.1}, "shipped (5 trials x 1 seed(s))"),
          "ga": ({}, "defaults"), "ff": ({}, "defaults")}
    klom = sc.KlomResolution(False, 2.0, 1, 4, 11.5, 11.5, 9, "left out")
    budget = sc.Budget(hp, "3-7", ["ft", "ga", "ff"], 8, 15, "0-1", sc.poison_methods(["ft", "ga", "ff"]), 400, klom)
    assert budget.n_methods == 3
    assert budget.text == ("3 methods (1 shipped tuned, 2 defaults) on seeds 3-7; deeper tests for 3; 8 shadow splits x "
                           "15 epochs; poisoning on 2 seed(s); 400 bootstrap draws; KLOM left out (N = 2 models per side)")
    want = sc.training_counts(5, 3, 3, 8, 3, 2, 2, shadow_tests=4, oracle_tests=2)
    pd.testing.assert_frame_equal(budget.counts(), want)
    kept = dataclasses.replace(budget, klom=dataclasses.replace(klom, keep=True))
    assert not kept.text.endswith("per side)") and kept.counts().equals(sc.training_counts(5, 3, 3, 8, 3, 2, 2))
    assert klom.left_out == ("klom",) and kept.klom.left_out == ()


def test_method_selection_for_each_part_of_the_scorecard():
    from unlearnlib import methods as registry

    assert sc.method_keys("ga,ft") == ["original", "retrain", "ga", "ft"]
    assert sc.method_keys("retrain,ga") == ["original", "retrain", "ga"]
    every = sc.method_keys("all")
    assert every[:2] == list(sc.REFERENCES) and set(every) == set(registry.available()) | set(sc.REFERENCES)
    keys = ["original", "retrain", "ga", "ft", "ff"]
    assert sc.deeper_methods(keys, ["ft"], "utility") == ["ft"]
    assert sc.deeper_methods(keys, ["ft"], "all") == ["ga", "ft", "ff"]
    with pytest.raises(ValueError, match="deeper"):
        sc.deeper_methods(keys, ["ft"], "some")
    assert sc.poison_methods(["ga", "ff", "iu", "ft"]) == ["original", "retrain", "ga", "ft"]  # FF, IU unbudgeted
    assert sc.n_shipped({"a": ({}, "shipped (1 trials x 1 seed(s))"), "b": ({}, "defaults")}) == 1


def test_read_draws_is_scores_and_classify_with_both_utility_rules():
    d, _ = _draws(5, shallow_mia=0.5)
    d = dataclasses.replace(d, poison_acc=np.tile([0.9, 0.9, 0.5, 0.9], (len(d.test_acc), 1)), n_poison_seeds=5)
    d.values["gus"] = np.tile([0.0, 1.0, 1.0, 1.0], (len(d.test_acc), 1))
    score, reading = sc.read_draws(d)
    want = sc.classify(sc.scores(d), sc.utility_mask(d.test_acc, 1), d.methods,
                       poison_utility=sc.utility_mask(d.poison_acc, 1))
    assert score.keys() == sc.scores(d).keys()
    np.testing.assert_array_equal(reading.passed, want.passed)
    gus = reading.tests.index("gus")
    assert not reading.passed[0, 2, gus] and reading.passed[0, 3, gus]  # "shallow" lost the poisoning setting's utility


# --------------------------------------------------------------------------- the notebook


def test_notebook_is_commit_clean_and_parameterised():
    nb = json.loads((ROOT / "notebooks" / "scorecard.ipynb").read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb["cells"] if c["cell_type"] == "code")
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


TEST_PARAMS = {"methods": "ga,ft", "seeds": "0", "epochs": 2, "shadow_k": 4, "shadow_epochs": 1,
               "shadow_population": 0.1, "shadow_targets": 0.5, "relearn_steps": 3, "poison_seeds": "0",
               "poison_epochs": 2, "n_boot": 20}


@pytest.mark.slow
def test_notebook_runs_with_tiny_parameters(tmp_path, monkeypatch):
    pytest.importorskip("papermill")
    from unlearnlib.book import build as book

    monkeypatch.setenv("UNLEARNLIB_STORE", str(tmp_path / "store"))
    monkeypatch.setenv(vd.PUBLISH_ENV, str(tmp_path / "verdicts"))
    out = book.execute_notebook(ROOT / "notebooks" / "scorecard.ipynb", tmp_path / "s.ipynb", TEST_PARAMS,
                                cwd=ROOT / "notebooks", progress=False)
    nb = json.loads(Path(out).read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    html_out = "".join(o["data"].get("text/html", "") if isinstance(o["data"].get("text/html"), str)
                       else "".join(o["data"].get("text/html", [])) for c in nb["cells"]
                       for o in c.get("outputs", []) if "data" in o)
    assert "unlearnlib-scorecard" in html_out
    published = json.loads((tmp_path / "verdicts" / "scorecard.json").read_text())
    assert {v["claim"] for v in published["verdicts"]} == {
        "Population MIAs give a false sense of success", "No unlearning method passes every test"}
    assert (tmp_path / "verdicts" / "headline.plotly.json").is_file()
    # 4 shadow splits: KLOM is left out, with its reason printed, and the headline figure has no KLOM column
    text_out = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "KLOM left out: with 4 shadow splits" in text_out
    headline = json.loads((tmp_path / "verdicts" / "headline.plotly.json").read_text())
    assert "KLOM" not in headline["data"][0]["x"] and "U-LiRA accuracy" in headline["data"][0]["x"]


def test_no_resolved_test_shows_no_method_passing_every_test():
    """"Passes every test" over no resolved test is not a pass (all() of nothing is True)."""
    n_draws, methods, tests = 3, ["original", "retrain", "ft"], ["forget_acc", "mia_test"]
    reading = sc.Reading(methods, tests, np.zeros((n_draws, 3, 2), bool), np.zeros((n_draws, 3, 2), bool),
                         np.ones((n_draws, 3), bool), np.zeros(2, bool))
    assert not sc.passes_every_test(reading).any()
    resolved = dataclasses.replace(reading, resolved=np.array([True, False]),
                                   passed=np.ones((n_draws, 3, 2), bool))
    assert sc.passes_every_test(resolved).all()


def test_a_shadow_tests_interval_is_read_at_its_targets_not_the_seeds():
    d = sc.Draws(["original", "retrain"], {}, np.zeros((2, 2)), np.zeros((2, 2)), n_seeds=5, n_poison_seeds=10,
                 n_targets=400)
    shadow = next(t.key for t in sc.TESTS if t.source == "shadows")
    seeds = next(t.key for t in sc.TESTS if t.source == "seeds")
    assert d.sample_size(shadow) == 400 and d.sample_size(seeds) == 5 and d.interval_seeds == 5
