"""RMIA (Zarifzadeh et al. 2024), offline, on U-LiRA's shadows and game."""

import numpy as np
import pytest

from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set, ulira
from unlearnlib.evaluation.rmia import A_GRID, rmia, rmia_scores, tune_a


def _direct_scores(p, mean_out, pz, mean_z, a, gamma):
    """The paper's score written out: Pr_z(LR(x, z) > gamma), one (row, sample) at a time."""
    out = np.zeros(p.shape)
    for r in range(p.shape[0]):
        prz = 0.5 * ((1 + a) * mean_z[r] + (1 - a))
        for n in range(p.shape[1]):
            prx = 0.5 * ((1 + a) * mean_out[r, n] + (1 - a))
            lr = (p[r, n] / prx) / (pz[r] / prz)
            out[r, n] = np.mean(lr > gamma)
    return out


def test_scores_are_the_fraction_of_population_beaten():
    rng = np.random.default_rng(0)
    p, mean_out = rng.random((4, 30)), rng.random((4, 30))
    pz, mean_z = rng.random((4, 50)), rng.random((4, 50))
    for a, gamma in ((0.0, 1.0), (0.3, 1.0), (1.0, 2.0)):
        np.testing.assert_array_equal(rmia_scores(p, mean_out, pz, mean_z, a, gamma),
                                      _direct_scores(p, mean_out, pz, mean_z, a, gamma))


def _outputs(shadows, delta: float, model_sd: float = 0.0, seed: int = 0, nz: int = 300) -> ShadowOutputs:
    """phi = sample difficulty + model offset + noise (+ delta where the row forgot the sample),
    in the low-confidence regime (phi ~ -3) where p = sigmoid(phi) ~ exp(phi); the same
    model offsets act on the population (test) samples."""
    rng = np.random.default_rng(seed)
    m, n = shadows.forget_masks.shape
    b = rng.normal(0.0, model_sd, size=(m, 1)) if model_sd else np.zeros((m, 1))
    phi = rng.normal(-3.0, 1.0, n) + b + 0.3 * rng.normal(size=(m, n)) + delta * shadows.forget_masks.numpy()
    phi_z = rng.normal(-3.0, 1.0, nz) + b + 0.3 * rng.normal(size=(m, nz))
    ones = np.ones(m)
    return ShadowOutputs("fake", phi, np.logaddexp(0, -phi), np.logaddexp(0, -phi_z), ones, ones, ones)


@pytest.fixture(scope="module")
def shadows(splits):
    return make_shadow_set(splits, ShadowConfig(k=16, partitions=2, population=0.25, targets=0.5))


def test_references_are_the_out_rows_of_other_splits(shadows):
    # (row, sample) pairs recomputed by hand from the definitions. Row 5's split-mate
    # (row 4, the other partition of the same split) is made extreme: a reference set
    # that let it in (leave-one-ROW-out) would move row 5's scores.
    out = _outputs(shadows, 1.0, seed=1)
    out.phi[4], out.test_loss[4] = 8.0, 1e-6
    res = rmia(shadows, out, a=0.4)
    p = 1 / (1 + np.exp(-out.phi))
    pz = np.exp(-out.test_loss)
    never = ~shadows.row_in().numpy()
    r = 5
    refs = shadows.split_of != shadows.split_of[r]
    mean_z = pz[refs].mean(0)
    for kind in (res.positive, res.negative):
        for n in np.flatnonzero(kind[r])[:3]:
            mean_out = p[refs & never[:, n], n].mean()
            want = _direct_scores(p[r:r + 1, n:n + 1], np.array([[mean_out]]), pz[r:r + 1], mean_z[None],
                                  0.4, 1.0)
            assert res.scores[r, n] == pytest.approx(want[0, 0], abs=1e-12)


def test_no_signal_gives_chance(shadows):
    res = rmia(shadows, _outputs(shadows, 0.0))
    assert abs(res.metrics["auc"] - 0.5) < 0.04 and abs(res.metrics["accuracy"] - 0.5) < 0.04
    assert res.mode == "rmia-offline" and res.metrics["threshold"] == 0.5


def test_a_planted_signal_is_found(shadows):
    res = rmia(shadows, _outputs(shadows, 2.0))
    assert res.metrics["auc"] > 0.95 and res.metrics["tpr_at_1pct_fpr"] > 0.5
    assert np.nanmean(res.per_sample_accuracy) == pytest.approx(res.metrics["accuracy"], abs=0.03)
    assert abs(res.metrics["n_positive"] / res.metrics["n_negative"] - 1) < 0.1


def test_at_least_as_strong_as_offline_lira_under_model_level_shifts(shadows):
    # Each model has its own confidence offset (sd 1.5 in phi) on all its samples. LiRA's
    # out-Gaussian absorbs the offsets as variance; RMIA divides them out by comparing x
    # with population samples under the same model (Zarifzadeh et al., Sec. 3).
    # At low FPR, gamma = 1 ties many pairs at score 1 (module docstring); the paper's
    # gamma = 2 spreads them.
    out = _outputs(shadows, 0.5, model_sd=1.5, seed=2)
    lira = ulira(shadows, out, mode="offline").metrics
    ours = rmia(shadows, out).metrics
    assert ours["auc"] >= lira["auc"] + 0.1
    sharp = rmia(shadows, out, gamma=2.0).metrics
    assert sharp["auc"] >= lira["auc"] + 0.1 and sharp["tpr_at_1pct_fpr"] >= lira["tpr_at_1pct_fpr"]


def test_tuning_a_never_reads_the_target_split(shadows):
    # Split 0's a is tuned on split 1's rows, with references outside splits {0, 1}. Give
    # split 0's rows sample difficulties of their own: per-sample normalisation by the
    # references then hurts, and an a tuned on those rows drops (split 1's does).
    out = _outputs(shadows, 1.0, seed=3)
    a = tune_a(shadows, out)
    assert set(a.tolist()) <= set(A_GRID)
    rows0 = shadows.split_of == 0
    changed = _outputs(shadows, 1.0, seed=3)
    rng = np.random.default_rng(9)
    n = changed.phi.shape[1]
    changed.phi[rows0] = (rng.normal(-3.0, 1.0, n) + 0.3 * rng.normal(size=(int(rows0.sum()), n))
                          + shadows.forget_masks.numpy()[rows0])
    b = tune_a(shadows, changed)
    assert b[0] == a[0]
    assert b[1] < a[1]  # what a tuning that read split 0's own rows would have seen


def test_bad_input_is_rejected(shadows):
    out = _outputs(shadows, 0.0)
    with pytest.raises(ValueError, match="a must be a number in"):
        rmia(shadows, out, a=1.5)
    with pytest.raises(ValueError, match="a must be a number in"):
        rmia(shadows, out, a="auto")
    with pytest.raises(ValueError, match="gamma > 0"):
        rmia(shadows, out, a=0.3, gamma=0.0)
    bad = ShadowOutputs("bad", out.phi[:, :5], out.loss[:, :5], out.test_loss, *([np.ones(len(out.phi))] * 3))
    with pytest.raises(ValueError, match="do not match"):
        rmia(shadows, bad, a=0.3)


def test_on_shadow_runner_outputs(splits):
    # the engine's real outputs (phi on the pool, losses on D_t) go in as they come
    from unlearnlib.evaluation.lira import ShadowRunner
    from unlearnlib.training import Recipe

    cfg = ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5, epochs=1)
    runner = ShadowRunner(splits, "cnn1d", cfg, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                          show_progress=False)
    res = rmia(runner.shadows, runner.outputs("ga", {"epochs": 1}))
    assert 0.0 <= res.metrics["auc"] <= 1.0 and res.metrics["n_positive"] > 0
    assert np.isfinite(res.scores[res.positive | res.negative]).all()
