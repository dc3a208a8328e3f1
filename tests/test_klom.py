"""KLOM (Georgiev et al. 2024): binned KL(oracle || unlearned) of margins, per point."""

import numpy as np
import pytest
from scipy import stats

from unlearnlib.evaluation.klom import klom_on_shadows, klom_values, max_klom, small_sample_floor
from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set


def _authors_rules(p: np.ndarray, q: np.ndarray, bins=20, eps=1e-5, clip=100.0) -> float:
    """One point, written out step by step from data-unlearning-bench's compute_binned_KL_div:
    KL(p || q), eps on q's empty bins. Its pipeline (run.py) passes the oracles as p."""
    p, q = np.clip(p, -clip, clip), np.clip(q, -clip, clip)
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    if lo >= hi:
        hi = lo + 1
    edges = np.linspace(lo, hi, bins + 1)
    pi, qi = np.digitize(p, edges), np.digitize(q, edges)
    pc = np.array([np.sum(pi == i) for i in range(1, bins + 1)], dtype=float)
    qc = np.array([np.sum(qi == i) for i in range(1, bins + 1)], dtype=float)
    pp = pc / pc.sum() if pc.sum() > 0 else np.zeros(bins)
    qp = qc / qc.sum() if qc.sum() > 0 else np.zeros(bins)
    q_safe = np.where(pp > 0, np.maximum(qp, eps), qp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(stats.entropy(pk=pp, qk=q_safe))


def test_identical_distributions_give_zero():
    x = np.random.default_rng(0).normal(size=(50, 40)) * 5
    for include_max in (False, True):
        np.testing.assert_array_equal(klom_values(x, x.copy(), include_max=include_max), np.zeros(40))


def test_disjoint_distributions_give_the_largest_value_the_binning_allows():
    # the oracles (p) inside the first of 20 bins over [-5, 10], the unlearned models (q)
    # spread over the others: q's first bin is raised to eps, scipy renormalises q to
    # 1 + eps, so KL = log((1 + eps) / eps).
    rng = np.random.default_rng(1)
    p = -5.0 + 0.1 * rng.random(100)
    q = np.r_[10.0, rng.uniform(0.0, 10.0, 99)]
    p[0] = -5.0
    value = klom_values(q, p)[0]
    assert value == pytest.approx(np.log((1 + 1e-5) / 1e-5), rel=1e-12) == pytest.approx(max_klom())
    assert klom_values(p, q, direction="unlearned||oracle")[0] == pytest.approx(max_klom(), rel=1e-12)
    # nothing exceeds it, and spreading p over several empty-q bins gives less
    many = klom_values(rng.normal(size=(30, 500)) * 3, rng.normal(size=(30, 500)) * 3 + 4)
    assert np.nanmax(many) <= max_klom() + 1e-12
    spread = klom_values(q, np.linspace(-5.0, -1.0, 100))[0]
    assert 0 < spread < max_klom() - 1.0


def test_agrees_with_the_authors_rules_point_by_point():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(40, 300)) * rng.uniform(0.1, 30, 300) + rng.normal(0, 20, 300)
    o = rng.normal(size=(40, 300)) * rng.uniform(0.1, 30, 300) + rng.normal(0, 20, 300)
    u[:, :5] = 3.0                        # a constant point on one side
    u[:, 5:8], o[:, 5:8] = 7.0, 7.0       # constant on both: range [7, 8]
    o[:, 8] = 250.0                       # clipped to 100
    u[:, 9], o[:, 9] = 500.0, -1.0        # all of p at the pooled maximum: nothing counted -> NaN
    got = klom_values(u, o)  # the pipeline's order: the oracles as p
    want = np.array([_authors_rules(o[:, i], u[:, i]) for i in range(u.shape[1])])
    # a side all at the top edge of the bins (the pooled maximum; min == max: min + 1) has
    # nothing counted. When it is q's, the authors' scipy call renormalises q's eps floor over
    # p's bins and scores little (0 where p sits in one bin); here NaN (docstring)
    uc, oc = np.clip(u, -100, 100), np.clip(o, -100, 100)
    lo, hi = np.minimum(uc.min(0), oc.min(0)), np.maximum(uc.max(0), oc.max(0))
    top = np.where(lo < hi, hi, lo + 1)
    u_none, o_none = (uc == top).all(0), (oc == top).all(0)
    assert u_none[[0, 9]].all() and o_none[8] and not (u_none | o_none)[10:].any()
    assert np.isnan(got[u_none | o_none]).all()
    assert (want[u_none] < 1.0).all() and want[9] == 0.0  # q empty: the authors score little
    assert np.isnan(want[o_none]).all()                     # p empty: NaN for them too
    ok = ~(u_none | o_none)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=0)
    # the option, KL(unlearned || oracle): the authors' function with the unlearned side as p
    rev = klom_values(u, o, direction="unlearned||oracle")
    want = np.array([_authors_rules(u[:, i], o[:, i]) for i in range(u.shape[1])])
    assert np.isnan(rev[u_none | o_none]).all() and np.isnan(want[u_none]).all() and want[8] == 0.0
    np.testing.assert_allclose(rev[ok], want[ok], rtol=1e-12, atol=0)


def test_masks_select_the_models_of_each_point():
    rng = np.random.default_rng(3)
    u, o = rng.normal(size=(20, 30)), rng.normal(size=(25, 30)) + 1
    mu, mo = rng.random((20, 30)) < 0.6, rng.random((25, 30)) < 0.4
    mu[0], mo[0] = True, True
    got = klom_values(u, o, mu, mo)
    want = [_authors_rules(o[mo[:, i], i], u[mu[:, i], i]) for i in range(30)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    mu[:, 3] = False
    assert np.isnan(klom_values(u, o, mu, mo)[3])


def test_include_max_counts_the_pooled_maximum():
    # oracles p = {0, 1}, unlearned q = {0, 0.52}, 20 bins over [0, 1]. The authors' rule drops
    # p's 1 (the pooled maximum): p = bin 1 only, q = half in bin 1, half in bin 11, so KL = log 2.
    # Counting it puts half of p in bin 20, where q is raised to eps.
    p, q = np.array([0.0, 1.0]), np.array([0.0, 0.52])
    assert klom_values(q, p)[0] == pytest.approx(np.log(2.0), rel=1e-12)
    p_hist = np.r_[0.5, np.zeros(18), 0.5]
    q_safe = np.r_[0.5, np.zeros(9), 0.5, np.zeros(8), 1e-5]
    assert klom_values(q, p, include_max=True)[0] == pytest.approx(stats.entropy(p_hist, q_safe), rel=1e-12)
    assert klom_values(p, q, include_max=True, direction="unlearned||oracle")[0] == pytest.approx(
        stats.entropy(p_hist, q_safe), rel=1e-12)


def _outputs(phi: np.ndarray, role: str) -> ShadowOutputs:
    ones = np.ones(len(phi))
    return ShadowOutputs(role, phi, np.logaddexp(0, -phi), np.ones((len(phi), 5)), ones, ones, ones)


def test_on_shadows_separates_forget_retain_and_val_points(splits):
    shadows = make_shadow_set(splits, ShadowConfig(k=16, partitions=2, population=0.25, targets=0.5))
    rng = np.random.default_rng(4)
    unlearned = rng.normal(size=tuple(shadows.forget_masks.shape)) * 2
    forget = shadows.forget_masks.numpy()
    # only the forgotten entries differ: the oracles far below the unlearned models and inside
    # one bin, so every forget point takes the largest value (module docstring of klom)
    oracle = np.where(forget, -60.0 + 0.01 * rng.random(forget.shape), unlearned)
    res = klom_on_shadows(shadows, _outputs(unlearned, "u"), _outputs(oracle, "o"))
    assert res.meta["direction"] == "oracle||unlearned"
    assert res.summary["retain"] == 0.0 and res.summary["val"] == 0.0
    assert res.summary["forget"] == pytest.approx(max_klom(), rel=1e-9)
    targets = shadows.is_target.numpy()
    assert res.n["forget"] == int(forget.any(0).sum()) and res.n["val"] == int(targets.sum())
    assert res.n["retain"] == len(targets)  # every point is kept by some row
    assert np.isnan(res.values["forget"][~targets]).all()  # the core is never forgotten
    same = klom_on_shadows(shadows, _outputs(unlearned, "u"), _outputs(unlearned.copy(), "o"))
    assert all(v == 0.0 for v in same.summary.values())


def test_bad_input_is_rejected(splits):
    with pytest.raises(ValueError, match="same points"):
        klom_values(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="without NaN"):
        klom_values(np.full((3, 2), np.nan), np.zeros((3, 2)))
    shadows = make_shadow_set(splits, ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5))
    with pytest.raises(ValueError, match="shadow set has"):
        klom_on_shadows(shadows, _outputs(np.zeros((3, 3)), "u"), _outputs(np.zeros((3, 3)), "o"))


def test_on_shadow_runner_outputs(splits):
    # the engine's real outputs: the oracles against themselves give 0 everywhere
    from unlearnlib.shadows import ShadowRunner
    from unlearnlib.training import Recipe

    cfg = ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5, epochs=1)
    runner = ShadowRunner(splits, "cnn1d", cfg, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                          show_progress=False)
    ga, ref = runner.outputs("ga", {"epochs": 1}), runner.outputs("retrained-reference")
    assert all(v == 0.0 for v in klom_on_shadows(runner.shadows, ref, ref).summary.values())
    res = klom_on_shadows(runner.shadows, ga, ref)
    assert all(0.0 < v <= max_klom() for v in res.summary.values())


# --------------------------------------------------------------------------- direction


def _direction_case() -> tuple[np.ndarray, np.ndarray]:
    """Four unlearned and four oracle margins of one point whose 20 bins over [0, 20] (edges at
    the integers) give histograms written out by hand.

    unlearned {0.5, 0.5, 0.5, 20}: 20 is the pooled maximum, which the authors' rule does not
    count, so u = 1 in bin 1. oracle {0.5, 1.5, 1.5, 1.5}: o = 1/4 in bin 1, 3/4 in bin 2.
    """
    return np.array([0.5, 0.5, 0.5, 20.0]), np.array([0.5, 1.5, 1.5, 1.5])


def test_default_direction_is_kl_oracle_to_unlearned_with_the_floor_on_the_unlearned_side():
    # KL(o || u): u's empty bin 2 (where o has 3/4) is raised to eps, and scipy renormalises
    # u to 1 + eps: 1/4 log((1/4)(1 + eps)) + 3/4 log((3/4)(1 + eps) / eps).
    u, o = _direction_case()
    eps = 1e-5
    want = 0.25 * np.log(0.25 * (1 + eps)) + 0.75 * np.log(0.75 * (1 + eps) / eps)
    assert want == pytest.approx(8.072, abs=1e-3)
    assert klom_values(u, o)[0] == pytest.approx(want, rel=1e-12)
    assert klom_values(u, o, direction="oracle||unlearned")[0] == pytest.approx(want, rel=1e-12)


def test_the_other_direction_is_an_option():
    # KL(u || o): u sits in bin 1 only, where o has 1/4 (no floor needed): log 4.
    u, o = _direction_case()
    assert klom_values(u, o, direction="unlearned||oracle")[0] == pytest.approx(np.log(4.0), rel=1e-12)
    with pytest.raises(ValueError, match="direction"):
        klom_values(u, o, direction="symmetric")


def test_small_sample_floor_falls_with_n_towards_the_authors_figures():
    floors = [small_sample_floor(n, points=4000) for n in (4, 32, 100)]
    assert max_klom() - 1.0 < floors[0] <= max_klom() and 2.5 < floors[1] < 3.5 and 0.5 < floors[2] < 0.8
    # deterministic, and a design whose N varies reads it point by point
    assert small_sample_floor(32, points=4000) == floors[1]
    assert small_sample_floor(np.array([100, 4]), points=4000) > floors[2]
    with pytest.raises(ValueError, match="n >= 1"):
        small_sample_floor(0)
