"""The scorecard's logic on constructed rows: normalisation (0 = original, 1 = retrained),
the pass / false-sense readings with the utility constraint, Kendall's tau on known
rankings, the weighted (bootstrap) forms of the shadow tests against the library's own
metrics, and the verdicts on constructed draws."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set, tpr_at_fpr
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


# --------------------------------------------------------------------------- weighted forms


def _tied_scores(rng, n):
    return np.round(rng.normal(size=n), 1)  # many ties


def test_weighted_roc_matches_sklearn_at_unit_weights_and_repetition_for_integer_weights():
    rng = np.random.default_rng(0)
    pos, neg = _tied_scores(rng, 300) + 0.5, _tied_scores(rng, 400)
    auc, low = sc.weighted_roc(pos, np.ones(300), neg, np.ones(400))
    y, s = np.r_[np.ones(300), np.zeros(400)], np.r_[pos, neg]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert auc[0] == pytest.approx(roc_auc_score(y, s))
    assert low[0] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01))
    wp, wn = rng.integers(0, 3, 300), rng.integers(0, 3, 400)
    auc_w, low_w = sc.weighted_roc(pos, wp, neg, wn)
    rp, rn = np.repeat(pos, wp), np.repeat(neg, wn)
    y2, s2 = np.r_[np.ones(len(rp)), np.zeros(len(rn))], np.r_[rp, rn]
    fpr2, tpr2, _ = roc_curve(y2, s2, drop_intermediate=False)
    assert auc_w[0] == pytest.approx(roc_auc_score(y2, s2))
    assert low_w[0] == pytest.approx(tpr_at_fpr(fpr2, tpr2, 0.01))


def test_ks_distance_matches_scipy_with_ties_and_weights():
    rng = np.random.default_rng(1)
    u, r = _tied_scores(rng, 200) + 0.3, _tied_scores(rng, 200)
    assert sc.ks_distance(u, r)[0] == pytest.approx(ks_2samp(u, r).statistic)
    w = rng.integers(0, 4, 200)
    assert sc.ks_distance(u, r, w)[0] == pytest.approx(ks_2samp(np.repeat(u, w), np.repeat(r, w)).statistic)


def test_weighted_percentile_is_the_percentile_of_the_resample():
    v = np.array([1.0, 5.0, np.nan, 2.0, 9.0])
    w = np.array([[1, 1, 1, 1, 1], [0, 3, 5, 1, 0]])
    out = sc.weighted_percentile(v, w, 95)
    assert out[0] == pytest.approx(np.nanpercentile(v, 95))
    assert out[1] == pytest.approx(np.percentile([5, 5, 5, 2], 95))


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


def test_shadow_values_at_unit_weights_are_the_library_metrics(fake_shadows):
    sh, out, ref = fake_shadows
    arrays = sc.evaluate_shadows(sh, out, ref, mode="online")
    w = np.zeros((1, out.phi.shape[1]))
    w[0, sh.is_target.numpy()] = 1.0
    v = sc.shadow_values(arrays, w)
    for k in ("ulira_accuracy", "ulira_tpr", "rmia_auc", "neurips_f", "klom"):
        assert v[k][0] == pytest.approx(float(arrays[f"{k}_point"]), abs=1e-12), k
    assert v["ks_distance"][0] == pytest.approx(float(arrays["fq_statistic"]))
    # the shift is remembered: U-LiRA and RMIA see it, the KS distance to the oracle is large
    assert v["ulira_accuracy"][0] > 0.6 and v["rmia_auc"][0] > 0.6 and v["ks_distance"][0] > 0.3


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
    assert "KLOM" not in list(sc.heatmap_figure(frame).data[0].x)
    with pytest.raises(ValueError, match="Unknown scorecard test"):
        sc.bootstrap_values(rows, n_boot=10, leave_out=("kloom",))


# --------------------------------------------------------------------------- verdicts


def _draws(n_seeds: int, shallow_mia: float, honest_ulira: float = 0.51,
           honest_mia: float = 0.5) -> tuple[sc.Draws, sc.Reading]:
    """Draws of the loss-MIA and U-LiRA: "shallow" keeps U-LiRA's original value (fails it),
    "honest" is near retraining on U-LiRA (score 0.93 at 0.51)."""
    methods = ["original", "retrain", "shallow", "honest"]
    B1 = 41
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.002, B1)  # noqa: E731
    vals = {k: np.full((B1, 4), np.nan) for k in sc.TEST_KEYS}
    vals["mia_test"] = np.c_[0.6 + noise(), 0.5 + noise(), shallow_mia + noise(), honest_mia + noise()]
    vals["ulira_accuracy"] = np.c_[0.65 + noise(), 0.5 + noise(), 0.64 + noise(), honest_ulira + noise()]
    ta = np.tile([0.95, 0.94, 0.94, 0.94], (B1, 1))
    d = sc.Draws(methods, vals, ta, np.full((B1, 4), np.nan), n_seeds, 0, 100)
    score = sc.scores(d)
    return d, sc.classify(score, sc.utility_mask(ta, 1), methods)


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
    assert sc._interval(ft, d.interval_seeds) == pytest.approx((lo, hi))
    r = sc.classify(sc.scores(d), sc.utility_mask(d.test_acc, 1), d.methods)
    row = sc.scorecard_frame(d, sc.scores(d), r).set_index("method").loc["ft"]
    assert (row.value_low, row.value_high) == pytest.approx((lo, hi))
    # the score (v - 0.6) / (0.5 - 0.6) is linear in v: the same interval, mapped and flipped
    assert (row.score_low, row.score_high) == pytest.approx(((hi - 0.6) / -0.1, (lo - 0.6) / -0.1))
    # the coarsest seed level sets the stretch; an accuracy's interval stays in [0, 1]
    assert dataclasses.replace(d, n_poison_seeds=3).interval_seeds == 3
    assert sc._interval(np.r_[0.99, np.linspace(0.96, 1.0, 41)], 5, bounds=(0, 1))[1] == 1.0


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
        lo, hi = sc._interval(v, n)
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


def _frame():
    d, r = _draws(5, shallow_mia=0.5)
    return sc.scorecard_frame(d, sc.scores(d), r, {"shallow": "defaults"})


def test_html_table_is_sortable_coloured_and_has_one_script():
    text = sc.html_table(_frame(), table_id="sc-test")
    assert text.count("<script>") == 1 and "getElementById('sc-test')" in text
    assert text.count("<tr>") == 5  # header + 4 methods
    green = sc.cell_color(1.0)
    assert f"background:{green}" in text  # the retrained model's own cells
    assert sc.cell_color(math.nan) == sc.GREY and sc.cell_color(0.0) != green


def test_ct_on_a_1d_model_is_named_as_the_extension_in_the_table_and_the_figure():
    """Issue 30: on cnn1d the scorecard's rows name CT "ct (1-D extension)"; on a 2-D CNN "ct"."""
    d, r = _draws(5, shallow_mia=0.5)
    d = dataclasses.replace(d, methods=["original", "retrain", "ct", "msg"])
    for model, want in (("cnn1d", "ct (1-D extension)"), ("small_cnn", "ct")):
        frame = sc.scorecard_frame(d, sc.scores(d), r, model=model)
        assert list(sc.heatmap_figure(frame).data[0].y) == ["original", "retrain", want, "msg"]
        assert f"<b>{want}</b>" in sc.html_table(frame)


def test_heatmap_marks_passes_and_unresolved_columns():
    fig = sc.heatmap_figure(_frame())
    h = fig.data[0]
    tests = list(h.x)
    retrain = list(h.y).index("retrain")
    assert h.text[retrain][tests.index("loss-MIA")].startswith("✓")
    assert h.text[retrain][tests.index("KLOM")] == "n/r"  # no KLOM values: unresolved
    assert "0 = original, 1 = retrained" in h.hovertext[0][0]


def test_heatmap_reads_at_a_glance():
    """Issue 34: colour is the distance from retraining (overshooting to 2 looks like staying
    at 0, never like the best), the text is clipped to the display scale with the raw value on
    hover, never "-0"; a test that reads the same for every model is left out and named; the
    utility mark is explained under the figure."""
    assert sc.cell_color(2.0) == sc.cell_color(0.0) and sc.cell_color(3.0) == sc.cell_color(-1.0)
    assert sc.cell_color(1.0) not in (sc.cell_color(0.0), sc.cell_color(2.0))
    assert sc.score_text(5.3) == ">3" and sc.score_text(-11.0) == "<-1" and sc.score_text(-0.0) == "0"
    assert sc.score_text(0.004) == "0.004" and sc._fmt(-0.0) == "0"
    frame = _frame()
    first = frame["test"].iloc[0]
    dead = frame.assign(value=np.where(frame["test"] == first, 11.5, frame["value"]))
    dead = dead.assign(keeps_utility=np.where(dead["method"] == "shallow", False, dead["keeps_utility"]))
    fig = sc.heatmap_figure(dead)
    label = sc.test_of(first).label
    assert label not in list(fig.data[0].x) and len(fig.data[0].x) == frame["test"].nunique() - 1
    note = fig.layout.annotations[0].text
    assert f"left out, the same value for every model: {label}" in note
    assert f"{sc.UTILITY_MARK}: the method loses more than 3% test accuracy" in note
    assert any(y.endswith(sc.UTILITY_MARK) for y in fig.data[0].y)
    texts = [x for row in fig.data[0].text for x in row]
    assert not any(x.lstrip("✓ ").startswith("-0") for x in texts)
    assert fig.layout.xaxis.side == "bottom"  # the title never runs into the test names


def test_markdown_table_has_a_row_per_method():
    md = sc.markdown_table(_frame())
    assert len(md.splitlines()) == 2 + 4 and "✓1" in md


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
