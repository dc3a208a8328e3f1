"""TOFU's forget quality: KS p-value of a per-sample statistic, unlearned vs retrained."""

from math import comb

import numpy as np
import pytest
import torch

from unlearnlib.evaluation.forget_quality import (
    forget_quality,
    forget_quality_of_models,
    forget_quality_on_shadows,
    per_sample_statistic,
)
from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set
from unlearnlib.models import build_model


def test_identical_samples_give_p_one():
    x = np.random.default_rng(0).normal(size=50)
    fq = forget_quality(x, x.copy())
    assert fq.pvalue == 1.0 and fq.statistic == 0.0 and fq.n == 50


def test_disjoint_samples_give_the_exact_two_sided_p():
    # D = 1: under the null, one of the two samples lies entirely below the other with
    # probability 2 / C(2n, n) (two orders out of C(2n, n) equally likely arrangements).
    n = 10
    fq = forget_quality(np.arange(n, dtype=float), np.arange(n, dtype=float) + 100.0)
    assert fq.statistic == 1.0
    assert fq.pvalue == pytest.approx(2 / comb(2 * n, n), rel=1e-9)


def test_a_shift_of_one_sd_is_detected_and_no_shift_is_not():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=400), rng.normal(size=400)
    assert forget_quality(a, b + 1.0).pvalue < 1e-6
    assert forget_quality(a, b).pvalue > 0.01


def test_several_models_are_averaged_per_sample():
    rng = np.random.default_rng(2)
    u, r = rng.normal(size=(5, 30)), rng.normal(size=(5, 30)) + 0.3
    assert forget_quality(u, r) == forget_quality(u.mean(0), r.mean(0))
    assert forget_quality(u, r).n == 30


def test_phi_loss_and_truth_ratio_give_the_same_p_for_one_pair(splits):
    # All three are strictly monotone in p_y and KS depends only on ranks (module docstring).
    a = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0).to(splits.device)
    b = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=1).to(splits.device)
    ps = [forget_quality_of_models(a, b, splits.forget, s).pvalue for s in ("phi", "loss", "truth_ratio")]
    assert ps[0] == pytest.approx(ps[1], abs=1e-12) and ps[0] == pytest.approx(ps[2], abs=1e-12)
    tr = per_sample_statistic(a, splits.forget, "truth_ratio")
    np.testing.assert_allclose(tr, np.exp(-per_sample_statistic(a, splits.forget, "phi")))


def test_quality_falls_with_the_distance_from_retraining(splits, refs):
    # retrained vs itself: 1; the original (trained on D_f) is closer to the retrained
    # model than an untrained one is. (Measured: original 0.08 on this tiny recipe; a
    # single model pair gives the KS test little power between two fitted models.)
    untrained = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0).to(splits.device)
    assert forget_quality_of_models(refs.retrained, refs.retrained, splits.forget).pvalue == 1.0
    orig = forget_quality_of_models(refs.original, refs.retrained, splits.forget).pvalue
    assert forget_quality_of_models(untrained, refs.retrained, splits.forget).pvalue < 1e-6 < orig < 1.0


def _outputs(shadows, phi: np.ndarray) -> ShadowOutputs:
    m = phi.shape[0]
    ones = np.ones(m)
    return ShadowOutputs("fake", phi, np.logaddexp(0, -phi), np.ones((m, 5)), ones, ones, ones)


def test_on_shadows_compares_rows_that_forgot_each_sample(splits):
    shadows = make_shadow_set(splits, ShadowConfig(k=8, partitions=2, population=0.25, targets=0.5))
    rng = np.random.default_rng(3)
    base = rng.normal(size=tuple(shadows.forget_masks.shape))
    forget = shadows.forget_masks.numpy()
    same = forget_quality_on_shadows(shadows, _outputs(shadows, base), _outputs(shadows, base.copy()))
    assert same.pvalue == 1.0 and same.n == int(forget.any(0).sum())
    # a shift on the forgotten entries only is found; the same shift elsewhere is ignored
    leaky = forget_quality_on_shadows(shadows, _outputs(shadows, base + 2.0 * forget), _outputs(shadows, base))
    elsewhere = forget_quality_on_shadows(shadows, _outputs(shadows, base + 2.0 * ~forget), _outputs(shadows, base))
    assert leaky.pvalue < 1e-6 and elsewhere.pvalue == 1.0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="one value per forget sample"):
        forget_quality(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        forget_quality(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="allowed: phi, loss, truth_ratio"):
        per_sample_statistic(torch.nn.Identity(), None, "entropy")


def test_on_shadow_runner_outputs(splits):
    from unlearnlib.shadows import ShadowRunner
    from unlearnlib.training import Recipe

    cfg = ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5, epochs=1)
    runner = ShadowRunner(splits, "cnn1d", cfg, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                          show_progress=False)
    ref = runner.outputs("retrained-reference")
    assert forget_quality_on_shadows(runner.shadows, ref, ref).pvalue == 1.0
    assert 0.0 <= forget_quality_on_shadows(runner.shadows, runner.outputs("ga", {"epochs": 1}), ref).pvalue <= 1.0
