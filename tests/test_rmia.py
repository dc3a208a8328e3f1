"""RMIA (Zarifzadeh et al. 2024), offline, on U-LiRA's shadows and game."""

import numpy as np
import pytest
import torch

from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set, ulira
from unlearnlib.evaluation.rmia import A_GRID, rmia, rmia_scores, tune_a
from unlearnlib.shadows import _outputs


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


def _fake_outputs(shadows, delta: float, model_sd: float = 0.0, seed: int = 0, nz: int = 300) -> ShadowOutputs:
    """phi = sample difficulty + model offset + noise (+ delta where the row forgot the sample),
    in the low-confidence regime (phi ~ -3) where p = sigmoid(phi) ~ exp(phi); the same
    model offsets act on the population (test) samples."""
    rng = np.random.default_rng(seed)
    m, n = shadows.forget_masks.shape
    b = rng.normal(0.0, model_sd, size=(m, 1)) if model_sd else np.zeros((m, 1))
    phi = rng.normal(-3.0, 1.0, n) + b + 0.3 * rng.normal(size=(m, n)) + delta * shadows.forget_masks.numpy()
    phi_z = rng.normal(-3.0, 1.0, nz) + b + 0.3 * rng.normal(size=(m, nz))
    ones = np.ones(m)
    return ShadowOutputs("fake", phi, np.logaddexp(0, -phi), np.logaddexp(0, -phi_z), ones, ones, ones,
                         test_phi=phi_z)


@pytest.fixture(scope="module")
def shadows(splits):
    return make_shadow_set(splits, ShadowConfig(k=16, partitions=2, population=0.25, targets=0.5))


def test_references_are_the_out_rows_of_other_splits(shadows):
    # (row, sample) pairs recomputed by hand from the definitions. Row 5's split-mate
    # (row 4, the other partition of the same split) is made extreme: a reference set
    # that let it in (leave-one-ROW-out) would move row 5's scores.
    out = _fake_outputs(shadows, 1.0, seed=1)
    out.phi[4], out.test_phi[4] = 8.0, 14.0
    res = rmia(shadows, out, a=0.4)
    p = 1 / (1 + np.exp(-out.phi))
    pz = 1 / (1 + np.exp(-out.test_phi))
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
    res = rmia(shadows, _fake_outputs(shadows, 0.0))
    assert abs(res.metrics["auc"] - 0.5) < 0.04 and abs(res.metrics["accuracy"] - 0.5) < 0.04
    assert res.mode == "rmia-offline" and res.metrics["threshold"] == 0.5


def test_a_planted_signal_is_found(shadows):
    res = rmia(shadows, _fake_outputs(shadows, 2.0))
    assert res.metrics["auc"] > 0.95 and res.metrics["tpr_at_1pct_fpr"] > 0.5
    assert np.nanmean(res.per_sample_accuracy) == pytest.approx(res.metrics["accuracy"], abs=0.03)
    assert abs(res.metrics["n_positive"] / res.metrics["n_negative"] - 1) < 0.1


def test_at_least_as_strong_as_offline_lira_under_model_level_shifts(shadows):
    # Each model has its own confidence offset (sd 1.5 in phi) on all its samples. LiRA's
    # out-Gaussian absorbs the offsets as variance; RMIA divides them out by comparing x
    # with population samples under the same model (Zarifzadeh et al., Sec. 3).
    # At low FPR, gamma = 1 ties many pairs at score 1 (module docstring); the paper's
    # gamma = 2 spreads them.
    out = _fake_outputs(shadows, 0.5, model_sd=1.5, seed=2)
    lira = ulira(shadows, out, mode="offline").metrics
    ours = rmia(shadows, out).metrics
    assert ours["auc"] >= lira["auc"] + 0.1
    sharp = rmia(shadows, out, gamma=2.0).metrics
    assert sharp["auc"] >= lira["auc"] + 0.1 and sharp["tpr_at_1pct_fpr"] >= lira["tpr_at_1pct_fpr"]


def test_tuning_a_never_reads_the_target_split(shadows):
    # Split 0's a is tuned on split 1's rows, with references outside splits {0, 1}. Give
    # split 0's rows sample difficulties of their own: per-sample normalisation by the
    # references then hurts, and an a tuned on those rows drops (split 1's does).
    out = _fake_outputs(shadows, 1.0, seed=3)
    a = tune_a(shadows, out)
    assert set(a.tolist()) <= set(A_GRID)
    rows0 = shadows.split_of == 0
    changed = _fake_outputs(shadows, 1.0, seed=3)
    rng = np.random.default_rng(9)
    n = changed.phi.shape[1]
    changed.phi[rows0] = (rng.normal(-3.0, 1.0, n) + 0.3 * rng.normal(size=(int(rows0.sum()), n))
                          + shadows.forget_masks.numpy()[rows0])
    b = tune_a(shadows, changed)
    assert b[0] == a[0]
    assert b[1] < a[1]  # what a tuning that read split 0's own rows would have seen


def test_bad_input_is_rejected(shadows):
    out = _fake_outputs(shadows, 0.0)
    with pytest.raises(ValueError, match="a must be a number in"):
        rmia(shadows, out, a=1.5)
    with pytest.raises(ValueError, match="a must be a number in"):
        rmia(shadows, out, a="auto")
    with pytest.raises(ValueError, match="gamma > 0"):
        rmia(shadows, out, a=0.3, gamma=0.0)
    bad = ShadowOutputs("bad", out.phi[:, :5], out.loss[:, :5], out.test_loss, *([np.ones(len(out.phi))] * 3))
    with pytest.raises(ValueError, match="do not match"):
        rmia(shadows, bad, a=0.3)
    bad = ShadowOutputs("bad", out.phi, out.loss, out.test_loss, *([np.ones(len(out.phi))] * 3),
                        test_phi=out.test_phi[:5])
    with pytest.raises(ValueError, match="do not match"):
        rmia(shadows, bad, a=0.3)


def test_outputs_without_test_phi_take_the_population_from_the_loss(shadows):
    # constructed outputs that carry only test losses: p = exp(-loss), in float64
    out = _fake_outputs(shadows, 1.0, seed=4)
    bare = ShadowOutputs("bare", out.phi, out.loss, out.test_loss, out.retain_acc, out.forget_acc, out.test_acc)
    np.testing.assert_array_equal(rmia(shadows, bare, a=0.4).scores, rmia(shadows, out, a=0.4).scores)
    with pytest.raises(ValueError, match="negative test losses"):
        rmia(shadows, ShadowOutputs("neg", out.phi, out.loss, -out.test_loss, *([np.ones(len(out.phi))] * 3)))


def test_on_shadow_runner_outputs(splits):
    # the engine's real outputs (phi on the pool, losses on D_t) go in as they come
    from unlearnlib.shadows import ShadowRunner
    from unlearnlib.training import Recipe

    cfg = ShadowConfig(k=4, partitions=1, population=0.1, targets=0.5, epochs=1)
    runner = ShadowRunner(splits, "cnn1d", cfg, recipe=Recipe(epochs=1, lr=0.05, batch_size=64),
                          show_progress=False)
    res = rmia(runner.shadows, runner.outputs("ga", {"epochs": 1}))
    assert 0.0 <= res.metrics["auc"] <= 1.0 and res.metrics["n_positive"] > 0
    assert np.isfinite(res.scores[res.positive | res.negative]).all()


class _FixedLogits:
    """Stands in for an Ensemble in :func:`~unlearnlib.shadows._outputs`: fixed
    float32 logits of every model row on the pool and on D_t."""

    def __init__(self, pool_x: torch.Tensor, pool: torch.Tensor, test: torch.Tensor) -> None:
        self.pool_x, self.pool, self.test = pool_x, pool, test

    def __len__(self) -> int:
        return len(self.pool)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool if x is self.pool_x else self.test


def _margin_logits(y: torch.Tensor, margin: torch.Tensor, classes: int) -> torch.Tensor:
    """float32 logits (M, N, C): ``margin`` (M, N) on the true class ``y``, 0 on the others."""
    z = torch.zeros(*margin.shape, classes)
    z.scatter_(-1, y.expand(margin.shape).unsqueeze(-1), margin.unsqueeze(-1).float())
    return z


@pytest.mark.parametrize("a", [0.0, 0.4, 1.0, "tune"])
def test_confident_points_are_ordered_not_tied(splits, shadows, a):
    # Issue 30, item 5. Every model is confident on every sample: logit margin 20 on the
    # pool, 30 on the samples a row forgot (it did not forget them); on the population
    # (D_t), margin 20 where the population index and the row have the same parity, 30
    # elsewhere, so each row's references (all rows of other splits, both partitions) have
    # mean (sigma(phi20) + sigma(phi30)) / 2 on every z. The outputs come from the logits
    # as the shadow runner makes them. From a margin of about 17 the float32 cross-entropy
    # is exactly 0, so exp(-loss) made every population signal exactly 1 and ties.
    m, n = shadows.forget_masks.shape
    test = splits.test
    pool_margin = torch.where(shadows.forget_masks, 30.0, 20.0)
    parity = (torch.arange(len(test))[None, :] % 2) == (torch.arange(m)[:, None] % 2)
    test_margin = torch.where(parity, 20.0, 30.0)
    ens = _FixedLogits(shadows.pool.x, _margin_logits(shadows.pool.y, pool_margin, splits.num_classes),
                       _margin_logits(test.y, test_margin, splits.num_classes))
    arrays = _outputs(ens, shadows, test, np.arange(m))
    out = ShadowOutputs("constructed", **{k: v.numpy() for k, v in arrays.items()})
    assert (out.test_loss == 0).all()  # the old population signal: exp(-0) = 1 everywhere
    res = rmia(shadows, out, a=a)
    # Closed form: with q = 1 - sigmoid(phi), Pr(x) = 1 - (1 + a) / 2 * mean_q. A negative x
    # (margin 20, OUT references 20) has ratio sigma20 / Pr_20, above a margin-20 z's
    # sigma20 / Pr_z (Pr_z > Pr_20) and below a margin-30 z's: it beats the population
    # points its model is less sure of, half of them. A positive x (margin 30) has
    # sigma30 / Pr_20 above every z's ratio: score 1.
    beats = parity.numpy().sum(1) / len(test)
    rows_neg, _ = np.nonzero(res.negative)
    np.testing.assert_array_equal(res.scores[res.negative], beats[rows_neg])
    np.testing.assert_array_equal(res.scores[res.positive], 1.0)
    assert res.metrics["auc"] == 1.0


def test_log_ratio_of_confident_points_has_its_closed_form():
    from unlearnlib.evaluation.rmia import log_pr_x, log_signal

    for phi_t, phi_ref in ((30.0, 20.0), (20.0, 30.0), (40.0, 35.0)):
        lp, lq = log_signal(np.array([phi_t, phi_ref]))
        p_ref, q_ref = np.exp(lp[1]), np.exp(lq[1])
        for a in (0.0, 0.4, 1.0):
            got = lp[0] - log_pr_x(np.array([p_ref]), np.array([q_ref]), a)[0]
            # log sigma(t) - log(1 - (1 + a) / 2 * e^-r) to first order in e^-t, e^-r
            want = 0.5 * (1 + a) * np.exp(-phi_ref) - np.exp(-phi_t)
            assert got == pytest.approx(want, rel=1e-6), (phi_t, phi_ref, a)
