"""The certified chapter's study (issue 37): the bound checks on a constructed problem catch
the broken mechanisms and pass the certified ones, the attacks' statistics are the attacks'
definitions, and the verdicts follow from the checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnlib.certified import descent_to_delete as d2d
from unlearnlib.evaluation.lira import lira_scores
from unlearnlib.store import Store
from unlearnlib.studies import certified_study as cs


def _features(n: int = 300, d: int = 8, seed: int = 0) -> cs.Features:
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(10, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 10, (200,), generator=g)
    xt = centres[yt] + torch.randn(200, d, generator=g, dtype=torch.float64)
    return cs.Features(x, y, torch.arange(n - 15, n), xt, yt, torch.arange(100))


@pytest.mark.parametrize("bad", [{"epsilons": ()}, {"epsilons": (0.0,)}, {"delta": 1.0}, {"mechanisms": ("sgd",)},
                                 {"n_models": 2}, {"broken_factor": 1.0}, {"dataset": "cifar10"}])
def test_a_bad_plan_is_refused_in_one_line(bad):
    with pytest.raises(ValueError) as e:
        cs.CertifiedPlan(**bad)
    assert "\n" not in str(e.value)


def test_d2d_batch_noise_is_k_single_deletion_sensitivities():
    one = d2d.noise_scale(1.0, 1e-5, 500, 20, 0.05, 20.0)
    assert d2d.noise_scale(1.0, 1e-5, 500, 20, 0.05, 20.0, deletions=1) == one  # the paper's formula
    # k deletions: k times the single-deletion noise at n - k + 1 rows
    assert d2d.noise_scale(1.0, 1e-5, 500, 20, 0.05, 20.0, deletions=10) == pytest.approx(
        10 * d2d.noise_scale(1.0, 1e-5, 491, 20, 0.05, 20.0), rel=1e-12)
    f = _features()
    head = d2d.train(f.x, f.y, 10, 1.0, 1e-5, deletions_per_update=5)
    with pytest.raises(ValueError, match="at most 5"):
        head.remove_batch(f.forget)


def test_the_attack_statistics_are_the_attacks_definitions():
    rng = np.random.default_rng(0)
    su = {"phi_forget": rng.normal(2.0, 0.5, (20, 6)), "phi_population": rng.normal(0.0, 1.0, (20, 30))}
    sr = {"phi_forget": rng.normal(0.0, 0.5, (20, 6)), "phi_population": rng.normal(0.0, 1.0, (20, 30))}
    target = {"phi_forget": np.vstack([np.full((1, 6), 2.0), np.zeros((1, 6))]),
              "phi_population": np.zeros((2, 30))}
    st = cs.attack_statistics(target, su, sr)
    np.testing.assert_allclose(st["loss"], np.log1p(np.exp(-target["phi_forget"])).mean(1))
    mi, vi = su["phi_forget"].mean(0), su["phi_forget"].var(0)
    mo, vo = sr["phi_forget"].mean(0), sr["phi_forget"].var(0)
    np.testing.assert_allclose(st["ulira"], lira_scores(target["phi_forget"], mi, vi, mo, vo).sum(1))
    assert st["ulira"][0] > 0 > st["ulira"][1]  # a target like the unlearned shadows reads "in"
    assert ((0 <= st["rmia"]) & (st["rmia"] <= 1)).all() and st["rmia"][0] > st["rmia"][1]


def test_the_checks_pass_the_certified_mechanisms_and_catch_the_broken_ones(tmp_path):
    """End to end on a constructed problem: no certified check exceeds its bound beyond
    sampling error, the noise-free variants are caught, so the verdict holds."""
    plan = cs.CertifiedPlan(epsilons=(1.0,), n_models=30, n_shadows=10, newton_lam=0.1, d2d_steps=20)
    r = cs.run(plan, Store(tmp_path / "store"), show_progress=False, feats=_features())
    cert = r.checks[r.checks["variant"] == cs.CERTIFIED]
    broken = r.checks[r.checks["variant"] == cs.UNDER_NOISED]
    assert not cert["violated"].any(), cert
    assert broken.groupby("mechanism")["violated"].any().all(), broken
    v = cs.bound_verdict(r, "constructed", "test")
    assert v.state == "holds" and v.threshold == 0.0 and v.holds_above is False
    assert v.estimate == v.low == v.high == cert["lower"].max() < 0  # the deciding bound, below 0
    # the same run again reads every model set back from the store
    again = cs.run(plan, Store(tmp_path / "store"), show_progress=False, feats=_features())
    pd.testing.assert_frame_equal(again.checks, r.checks)


def _result(violated_cert: bool, caught: bool) -> cs.CertifiedResult:
    rows = []
    for mech in ("newton", "d2d"):
        for variant, viol in ((cs.CERTIFIED, violated_cert and mech == "d2d"), (cs.UNDER_NOISED, caught)):
            rows.append({"mechanism": mech, "variant": variant, "epsilon": 1.0, "attack": "loss",
                         "excess": 0.5 if viol else 0.0, "lower": 0.1 if viol else -0.3, "tpr": 0.5, "fpr": 0.0,
                         "direction": ">=", "n_unlearned": 30, "n_retrained": 30, "violated": viol})
    price = pd.DataFrame([{"mechanism": m, "epsilon": 1.0, "n_models": 4, "test_acc_values": [0.80, 0.81, 0.82, 0.81]}
                          for m in ("newton", "d2d")])
    ref = pd.DataFrame([{"mechanism": "reference", "test_acc": 0.90}])
    return cs.CertifiedResult(cs.CertifiedPlan(), pd.DataFrame(rows), pd.DataFrame(), price, ref, 0.0)


@pytest.mark.parametrize("violated, caught, state", [(False, True, "holds"), (True, True, "does not hold"),
                                                     (False, False, "inconclusive at this budget")])
def test_the_bound_verdict_follows_the_checks(violated, caught, state):
    assert cs.bound_verdict(_result(violated, caught), "s", "b").state == state


def test_the_price_verdict_is_the_drop_against_the_head_without_noise():
    v = cs.price_verdict(_result(False, True), "newton", "s", "b")
    assert v.estimate == pytest.approx(0.09)  # 0.90 - mean(0.80, 0.81, 0.82, 0.81)
    assert v.low < v.estimate < v.high and v.state == "does not hold"  # 9 points, well above 5
    assert math.isclose(v.threshold, cs.PRICE_THRESHOLD)


def test_the_chapter_sentences_are_computed_from_the_rows():
    from unlearnlib.book import certified_view as view

    r = _result(violated_cert=True, caught=True)
    assert view.checks_sentence(r).startswith("Of 2 certified checks, **1** exceed")
    assert "newton: loss; d2d: loss" in view.checks_sentence(r)
    assert view.checks_table(r).loc[("d2d", "loss"), "eps 1"].endswith("VIOLATED")
    r.estimates = pd.DataFrame([{"mechanism": "newton", "variant": cs.CERTIFIED, "epsilon": 1.0, "neurips_max": 2.0,
                                 "neurips_median": 0.5, "null_max": 1.5, "null_median": 0.4, "share_above": 0.1,
                                 "null_share_above": 0.1}])
    assert "in 1 of 1 certified configurations" in view.estimates_sentence(r)
    assert "not a bound" in view.estimates_sentence(r)  # the null (true epsilon 0) reads 1.5 > 1
    r.estimates.loc[0, "null_max"] = 0.5
    assert "below the certificate here" in view.estimates_sentence(r)
    r.scorecard = pd.DataFrame([{"mechanism": "newton", "epsilon": 1.0, "loss AUC": 0.55, "ulira AUC": 0.38,
                                 "rmia AUC": 0.5, "KLOM": 3.5, "KLOM floor": 3.3, "forget quality": 0.9,
                                 "NeurIPS F": 0.2, "test_acc - retrained head": -0.01},
                                {"mechanism": "d2d", "epsilon": 1.0, "loss AUC": 0.5, "ulira AUC": 0.5,
                                 "rmia AUC": 0.5, "KLOM": 3.2, "KLOM floor": 3.3, "forget quality": 1.0,
                                 "NeurIPS F": 0.9, "test_acc - retrained head": 0.0}])
    text = view.scorecard_sentence(r)
    assert "within 0.12 of chance" in text and "ulira AUC on newton" in text
    assert "1 of 2 configurations sit above it" in text and "at least 0.90" in text
    assert "from 0.20 (newton at epsilon 1) to 0.90" in text


def test_the_model_set_tests_read_identical_sets_as_indistinguishable():
    """KLOM of two draws of one distribution sits at its small-sample floor's scale, TOFU's
    forget quality near 1, and F of zero estimates is 1; a shifted set reads far worse."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 400)), rng.normal(size=(30, 400))
    same = cs.model_set_tests(a, b, np.zeros(400))
    assert same["forget quality"] > 0.05 and same["NeurIPS F"] == 1.0
    assert abs(same["KLOM"] - same["KLOM floor"]) < 0.5
    shifted = cs.model_set_tests(a + 3.0, b, np.full(400, 3.0))
    assert shifted["KLOM"] > same["KLOM"] + 3 and shifted["forget quality"] < 1e-6 and shifted["NeurIPS F"] < 0.1
