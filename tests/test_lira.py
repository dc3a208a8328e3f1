"""LiRA / U-LiRA: the statistic, the Gaussian attack on known distributions, the shadow pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from unlearnlib.evaluation.lira import (
    ShadowConfig,
    ShadowOutputs,
    attack_metrics,
    decision_threshold,
    lira_scores,
    loo_gaussians,
    make_shadow_set,
    phi,
    population_mia_on_shadows,
    population_mia_per_shadow,
    tpr_at_fpr,
    ulira,
)
from unlearnlib.evaluation.neurips import neurips_score
from unlearnlib.shadows import ShadowRunner
from unlearnlib.store import Store
from unlearnlib.training import Recipe


def test_phi_is_stable_for_extreme_logits():
    z = torch.tensor([[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0], [-1e4, 1e4, 1e4]])
    y = torch.tensor([0, 1, 0])
    out = phi(z, y)
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(1000.0, abs=1e-3)       # log p_y ~ 0, log(1-p_y) ~ -1000
    assert out[1].item() == pytest.approx(math.log(1 / 3) - math.log(2 / 3), abs=1e-6)
    assert out[2].item() == pytest.approx(-2e4 - math.log(2), rel=1e-6)
    zm = torch.randn(50, 10, dtype=torch.float64) * 3
    ym = torch.randint(0, 10, (50,))
    p = torch.softmax(zm, 1).gather(1, ym[:, None]).squeeze(1)
    torch.testing.assert_close(phi(zm, ym), torch.log(p) - torch.log1p(-p))


def _game(delta: float, m: int = 64, n: int = 400, seed: int = 0):
    """phi ~ N(delta, 1) on models that trained on a sample, N(0, 1) otherwise."""
    rng = np.random.default_rng(seed)
    inside = rng.random((m, n)) < 0.5
    x = rng.normal(size=(m, n)) + delta * inside
    return x, inside


@pytest.mark.parametrize("mode", ["online", "fixed_variance", "offline"])
def test_lira_on_gaussians_matches_closed_form(mode):
    for delta in (0.0, 1.0, 6.0):
        x, inside = _game(delta)
        mu_i, v_i, _ = loo_gaussians(x, inside)
        mu_o, v_o, _ = loo_gaussians(x, ~inside)
        s = lira_scores(x, mu_i, v_i, mu_o, v_o, mode)
        auc = attack_metrics(s[inside], s[~inside])["auc"]
        # the optimal test between N(delta, 1) and N(0, 1) has AUC = Phi(delta / sqrt 2)
        assert auc == pytest.approx(norm.cdf(delta / math.sqrt(2)), abs=0.03), (mode, delta)


def test_attack_metrics_on_perfect_and_chance_scores():
    perfect = attack_metrics(np.array([2.0, 3.0]), np.array([-1.0, -2.0]))
    assert perfect["auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["tpr_at_0.1pct_fpr"] == 1.0
    rng = np.random.default_rng(0)
    chance = attack_metrics(rng.normal(size=5000), rng.normal(size=5000))
    assert abs(chance["auc"] - 0.5) < 0.03 and chance["tpr_at_1pct_fpr"] < 0.03


def test_loo_excludes_the_whole_split():
    x = np.array([[1.0], [3.0], [100.0]])
    mu, var, c = loo_gaussians(x, np.ones_like(x, bool), np.array([0, 0, 1]))
    assert mu[0, 0] == 100.0 and mu[2, 0] == 2.0 and c[0, 0] == 1
    assert var[2, 0] == 1.0                  # ML variance of {1, 3}
    assert np.isnan(var[0, 0])               # one observation: no variance (was the 1e-6 floor)


def test_single_observation_fit_takes_the_pooled_variance():
    # sample 0's out fit has one observation; the others have variances 1 and 3
    mu_o, var_o = np.array([0.0, 0.0, 0.0]), np.array([np.nan, 1.0, 3.0])
    mu_i, var_i = np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0])
    t = np.array([0.5, 0.5, 0.5])
    online = lira_scores(t, mu_i, var_i, mu_o, var_o, "online")
    want = norm.logpdf(0.5, 1.0, math.sqrt(2.0)) - norm.logpdf(0.5, 0.0, math.sqrt(2.0))  # pooled (1 + 3) / 2
    assert online[0] == pytest.approx(want)
    assert lira_scores(t, mu_i, var_i, mu_o, var_o, "offline")[0] == pytest.approx(norm.logcdf(0.5 / math.sqrt(2)))


def test_few_shadows_do_not_saturate_scores():
    # 8 models, each its own group: about 7/128 of the out fits hold one observation.
    # With the old 1e-6 floor their offline scores tie at log 1 = 0 for ~2.7% of the
    # negatives, so no threshold reached FPR < 1% with any TPR: TPR at 1% FPR was 0.
    x, inside = _game(2.0, m=8, n=2000)
    mu_i, v_i, _ = loo_gaussians(x, inside)
    mu_o, v_o, c_o = loo_gaussians(x, ~inside)
    assert ((c_o == 1) & ~inside).mean() > 0.02           # the case is present
    s = lira_scores(x, mu_i, v_i, mu_o, v_o, "offline")
    pos, neg = s[inside & np.isfinite(s)], s[~inside & np.isfinite(s)]
    assert (neg == 0.0).mean() < 0.01                      # no block of negatives tied at log 1 (old: ~3%)
    assert attack_metrics(pos, neg)["tpr_at_1pct_fpr"] > 0.02


def test_each_mode_reports_accuracy_at_its_own_threshold():
    # phi ~ N(1, 1) in, N(0, 1) out. Offline flags phi above the fitted out-mean
    # (Pr[Z <= phi] > 1/2): TNR = 1/2 and TPR = Phi(1 / sqrt(1 + 1/n_out)) with the
    # mean fitted to n_out ~ 32 values, so accuracy ~ 0.669 (Phi(1) = 0.841 for a known mean);
    # thresholding log-CDF scores at 0 gave exactly 0.5. Best accuracy ~ Phi(1/2) = 0.691.
    x, inside = _game(1.0)
    mu_i, v_i, _ = loo_gaussians(x, inside)
    mu_o, v_o, c_o = loo_gaussians(x, ~inside)
    n_out = np.mean(c_o[~inside])
    s = lira_scores(x, mu_i, v_i, mu_o, v_o, "offline")
    m = attack_metrics(s[inside], s[~inside], decision_threshold("offline"))
    want = 0.5 * (norm.cdf(1 / math.sqrt(1 + 1 / n_out)) + 0.5)
    assert m["accuracy"] == pytest.approx(want, abs=0.012)
    assert m["best_accuracy"] == pytest.approx(norm.cdf(0.5), abs=0.015) and m["best_accuracy"] >= m["accuracy"]
    # online: the likelihood ratio 1 is the Bayes rule here, accuracy ~ best ~ Phi(1/2)
    s = lira_scores(x, mu_i, v_i, mu_o, v_o, "online")
    m = attack_metrics(s[inside], s[~inside], decision_threshold("online"))
    assert m["accuracy"] == pytest.approx(norm.cdf(0.5), abs=0.02)
    assert decision_threshold("fixed_variance") == 0.0
    with pytest.raises(ValueError, match="allowed"):
        decision_threshold("two-sided")


def test_tpr_at_fpr_is_strictly_below_the_target():
    # 100 negatives, one scoring 10: the ROC has the points (0, 0.5) and (0.01, 1.0).
    # The authors' plot.py takes the last point with FPR < target: 0.5 (FPR <= target: 1.0).
    pos = np.r_[np.full(50, 20.0), np.full(50, 5.0)]
    neg = np.r_[10.0, -np.arange(1.0, 100.0)]
    assert attack_metrics(pos, neg)["tpr_at_1pct_fpr"] == 0.5
    assert tpr_at_fpr(np.array([0.0, 0.01, 0.02]), np.array([0.3, 0.6, 0.9]), 0.011) == 0.6


def test_shadow_set_design(splits):
    cfg = ShadowConfig(k=8, partitions=2, population=0.25, targets=0.5)
    s = make_shadow_set(splits, cfg)
    assert s.in_masks.shape == (8, len(s.pool)) and s.forget_masks.shape == (16, len(s.pool))
    assert (s.in_masks[:, ~s.is_target]).all()                       # the core is always in
    assert len(set(s.in_masks.sum(1).tolist())) == 1                 # equal sizes: one batched group
    assert not (s.forget_masks & s.retain_masks).any()
    assert (s.forget_masks & ~s.row_in()).sum() == 0                 # only trained samples are forgotten
    per_split = s.forget_masks.view(8, 2, -1).sum(1)                 # each in-target forgotten once per split
    assert torch.equal(per_split.bool(), s.in_masks & s.is_target)
    with pytest.raises(ValueError, match="at least 4"):
        ShadowConfig(k=2)


def _fake_outputs(shadows, shift: float, seed: int = 0) -> ShadowOutputs:
    rng = np.random.default_rng(seed)
    m, n = shadows.forget_masks.shape
    x = rng.normal(size=(m, n)) + shift * shadows.forget_masks.numpy()
    ones = np.ones(m)
    return ShadowOutputs("fake", x, -x, rng.normal(size=(m, 20)), ones, ones, ones)


def test_ulira_separates_only_when_unlearning_leaves_a_trace(splits):
    shadows = make_shadow_set(splits, ShadowConfig(k=32, partitions=2, population=0.25, targets=0.5))
    leaky = ulira(shadows, _fake_outputs(shadows, 4.0))
    clean = ulira(shadows, _fake_outputs(shadows, 0.0))
    assert leaky.metrics["accuracy"] > 0.9 and leaky.metrics["auc"] > 0.95
    assert abs(clean.metrics["accuracy"] - 0.5) < 0.05 and abs(clean.metrics["auc"] - 0.5) < 0.05
    # balanced game and per-sample accuracies for every target
    assert abs(leaky.metrics["n_positive"] / leaky.metrics["n_negative"] - 1) < 0.1
    assert np.nanmean(leaky.per_sample_accuracy) > 0.9
    assert leaky.metrics["threshold"] == 0.0
    ref = _fake_outputs(shadows, 0.0, seed=1)
    assert neurips_score(shadows, _fake_outputs(shadows, 0.0, seed=2), ref).forgetting_quality > \
        neurips_score(shadows, _fake_outputs(shadows, 4.0, seed=2), ref).forgetting_quality


def test_offline_ulira_accuracy_uses_the_out_median(splits):
    # shift 1 sd: flagged iff phi > fitted out-mean, accuracy ~ (Phi(1) + 1/2) / 2 = 0.67
    # (0.5 exactly, for every input, when offline scores were thresholded at 0)
    shadows = make_shadow_set(splits, ShadowConfig(k=32, partitions=2, population=0.25, targets=0.5))
    res = ulira(shadows, _fake_outputs(shadows, 1.0), mode="offline")
    assert res.metrics["threshold"] == math.log(0.5)
    assert res.metrics["accuracy"] == pytest.approx(0.5 * (norm.cdf(1.0) + 0.5), abs=0.025)
    assert np.nanmean(res.per_sample_accuracy) == pytest.approx(res.metrics["accuracy"], abs=0.02)
    assert res.metrics["best_accuracy"] >= res.metrics["accuracy"]
    clean = ulira(shadows, _fake_outputs(shadows, 0.0), mode="offline")
    assert abs(clean.metrics["accuracy"] - 0.5) < 0.03


def test_shadow_runner_trains_once_and_caches(splits, tmp_path):
    cfg = ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5, epochs=1)
    store = Store(tmp_path)
    runner = ShadowRunner(splits, "cnn1d", cfg, store, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                          show_progress=False)
    ga = runner.outputs("ga", {"epochs": 1})
    ref = runner.outputs("retrained-reference")
    orig = runner.outputs("original")
    assert ga.phi.shape == (4, len(runner.shadows.pool)) and np.isfinite(ga.phi).all()
    assert not np.allclose(ga.phi, orig.phi)
    misses = store.misses
    again = ShadowRunner(splits, "cnn1d", cfg, store, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                         show_progress=False)
    np.testing.assert_array_equal(again.outputs("ga", {"epochs": 1}).phi, ga.phi)
    assert store.misses == misses  # nothing recomputed
    per = population_mia_per_shadow(runner.shadows, orig, n_models=2)
    assert per.shape == (2,) and ((0.0 <= per) & (per <= 1.0)).all()
    assert population_mia_on_shadows(runner.shadows, orig, n_models=2) == per.mean()  # one definition, averaged
    assert ulira(runner.shadows, ga).metrics["n_targets"] >= 0
    assert 0.0 <= neurips_score(runner.shadows, ga, ref).forgetting_quality <= 1.0
