"""The metric registry (issue 35): every metric of the report, the comparison and the
scorecard declared exactly once; its functions accept sample weights, all-ones weights give
the unweighted value and integer weights the value of the repeated samples; every
registered function has a case with a known answer (here or where it already was)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnlib.evaluation import compare_to_reference, evaluate_model
from unlearnlib.evaluation import registry as reg
from unlearnlib.evaluation.forget_quality import ks_distance
from unlearnlib.evaluation.game import balanced_accuracy, roc_auc, tpr_at_low_fpr, weighted_roc
from unlearnlib.evaluation.klom import klom_percentile
from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set, tpr_at_fpr
from unlearnlib.evaluation.metrics import indiscernibility_to, mean_loss
from unlearnlib.evaluation.neurips import mean_example_score
from unlearnlib.models import build_model
from unlearnlib.studies import scorecard as sc

TESTS = Path(__file__).resolve().parent

#: Where each registered function's known-answer case lives (file, test): reused, not repeated.
KNOWN_ANSWER = {
    "unlearnlib.predict:accuracy_of": ("test_evaluation.py", "test_accuracy_loss_entropy_on_a_fixed_model"),
    "unlearnlib.evaluation.mia:population_mia": ("test_evaluation.py", "test_mia_separable_losses_is_near_one"),
    "unlearnlib.evaluation.metrics:indiscernibility": ("test_evaluation.py", "test_indiscernibility"),
    "unlearnlib.evaluation.metrics:indiscernibility_to": ("test_metric_registry.py",
                                                          "test_indiscernibility_to_closed_form"),
    "unlearnlib.evaluation.metrics:mean_loss": ("test_metric_registry.py", "test_closed_form_cases_of_the_weighted_functions"),
    "unlearnlib.evaluation.metrics:ratios": ("test_evaluation.py", "test_retdev_and_ratios_closed_form"),
    "unlearnlib.evaluation.metrics:retdev": ("test_evaluation.py", "test_retdev_and_ratios_closed_form"),
    "unlearnlib.evaluation.metrics:rte": ("test_evaluation.py", "test_retdev_and_ratios_closed_form"),
    "unlearnlib.evaluation.metrics:l2_distance": ("test_evaluation.py", "test_l2_distance_closed_form"),
    "unlearnlib.evaluation.relearning:relearning_attack": (
        "test_relearning.py", "test_a_model_equal_to_the_reference_relearns_exactly_like_it"),
    "unlearnlib.evaluation.game:balanced_accuracy": ("test_metric_registry.py",
                                                     "test_closed_form_cases_of_the_weighted_functions"),
    "unlearnlib.evaluation.game:tpr_at_low_fpr": ("test_metric_registry.py",
                                                  "test_closed_form_cases_of_the_weighted_functions"),
    "unlearnlib.evaluation.game:roc_auc": ("test_metric_registry.py", "test_closed_form_cases_of_the_weighted_functions"),
    "unlearnlib.evaluation.neurips:mean_example_score": ("test_neurips.py", "test_identical_samples_score_one"),
    "unlearnlib.evaluation.klom:klom_percentile": ("test_metric_registry.py",
                                                   "test_closed_form_cases_of_the_weighted_functions"),
    "unlearnlib.evaluation.forget_quality:ks_distance": ("test_metric_registry.py",
                                                         "test_closed_form_cases_of_the_weighted_functions"),
}


# --------------------------------------------------------------------------- declared once


def test_the_report_and_the_comparison_return_exactly_their_registered_metrics(splits):
    model = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0)
    m = evaluate_model(model, splits)
    assert tuple(m) == reg.keys("report")  # the same keys, in registry order
    assert tuple(compare_to_reference(m, m)) == reg.keys("comparison")


def test_select_refuses_a_metric_that_is_computed_but_not_registered_or_the_reverse():
    values = {k: 0.5 for k in reg.keys("comparison")}
    with pytest.raises(RuntimeError, match="computes extra"):
        reg.select("comparison", {**values, "extra": 1.0})
    with pytest.raises(RuntimeError, match="misses retdev"):
        reg.select("comparison", {k: v for k, v in values.items() if k != "retdev"})


def test_every_scorecard_test_is_one_registered_metric_with_its_label_group_and_direction():
    assert len(set(sc.TEST_KEYS)) == len(sc.TEST_KEYS)
    for t in sc.TESTS:
        m = reg.metric(t.key)
        assert (t.label, t.group, t.source, t.reads, t.direction, t.paper) == (
            m.label, m.group, m.resamples, m.reads, m.direction, m.source), t.key
        if m.bounds is not None:
            assert sc.VALUE_RANGE[t.key] == m.bounds
    assert set(sc.VALUE_RANGE) <= set(sc.TEST_KEYS)
    # the scorecard scores every shadow metric of the registry, and only those
    assert {t.key for t in sc.TESTS if t.source == "shadows"} == set(reg.keys("shadows"))


def test_a_key_registers_once_and_declarations_are_checked():
    with pytest.raises(ValueError, match="registered already"):
        reg.register(reg.metric("mia_test"))
    with pytest.raises(ValueError, match="direction"):
        dataclasses.replace(reg.metric("mia_test"), direction="up")
    with pytest.raises(ValueError, match="Unknown metric 'nope'"):
        reg.metric("nope")
    for m in reg.metrics():
        assert m.label and m.source and m.group, m.key


def test_every_registered_function_resolves_and_has_a_known_answer_case():
    fns = {m.fn for m in reg.metrics() if m.fn is not None}
    assert fns == set(KNOWN_ANSWER)
    for m in reg.metrics():
        if m.fn is not None:
            assert callable(m.function), m.key
    for fn, (path, name) in KNOWN_ANSWER.items():
        tree = ast.parse((TESTS / path).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (fn, path, name)


def test_every_shadow_metric_takes_weights():
    for m in reg.metrics("shadows"):
        assert m.weighted, m.key
        assert set(m.weights) <= set(inspect.signature(m.function).parameters), m.key
    assert reg.metric("forget_loss").weighted


# --------------------------------------------------------------------------- weights


def _tied(rng, n):
    return np.round(rng.normal(size=n), 1)  # many ties


def test_all_ones_weights_equal_the_unweighted_value_bit_for_bit():
    rng = np.random.default_rng(0)
    pos, neg = _tied(rng, 300) + 0.5, _tied(rng, 400)
    o_p, o_n = np.ones(300), np.ones(400)
    for f in (roc_auc, tpr_at_low_fpr):
        assert f(pos, neg).tobytes() == f(pos, neg, o_p, o_n).tobytes()
    assert balanced_accuracy(pos, neg, 0.2).tobytes() == balanced_accuracy(pos, neg, 0.2, o_p, o_n).tobytes()
    u, r = _tied(rng, 200) + 0.3, _tied(rng, 200)
    assert ks_distance(u, r).tobytes() == ks_distance(u, r, np.ones(200)).tobytes()
    h = rng.random(150)
    assert mean_example_score(h).tobytes() == mean_example_score(h, np.ones(150)).tobytes()
    assert mean_example_score(h)[0] == h.mean()
    v = np.r_[rng.random(50), np.nan]
    assert klom_percentile(v).tobytes() == klom_percentile(v, np.ones(51)).tobytes()
    loss = torch.rand(100, dtype=torch.float64)
    assert mean_loss(loss) == mean_loss(loss, torch.ones(100))


def test_integer_weights_equal_repeating_the_samples():
    rng = np.random.default_rng(1)
    pos, neg = _tied(rng, 300) + 0.5, _tied(rng, 400)
    wp, wn = rng.integers(0, 3, 300), rng.integers(0, 3, 400)
    rp, rn = np.repeat(pos, wp), np.repeat(neg, wn)
    y, s = np.r_[np.ones(len(rp)), np.zeros(len(rn))], np.r_[rp, rn]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert roc_auc(pos, neg, wp, wn)[0] == pytest.approx(roc_auc_score(y, s))
    assert tpr_at_low_fpr(pos, neg, wp, wn)[0] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01))
    assert balanced_accuracy(pos, neg, 0.2, wp, wn)[0] == pytest.approx(
        0.5 * ((rp > 0.2).mean() + (rn <= 0.2).mean()))
    u, r = _tied(rng, 200) + 0.3, _tied(rng, 200)
    w = rng.integers(0, 4, 200)
    assert ks_distance(u, r, w)[0] == pytest.approx(ks_2samp(np.repeat(u, w), np.repeat(r, w)).statistic)
    h = rng.random(150)
    wh = rng.integers(0, 4, 150)
    assert mean_example_score(h, wh)[0] == pytest.approx(np.repeat(h, wh).mean())
    v = np.array([1.0, 5.0, np.nan, 2.0, 9.0])
    out = klom_percentile(v, np.array([[1, 1, 1, 1, 1], [0, 3, 5, 1, 0]]))
    assert out[0] == pytest.approx(np.nanpercentile(v, 95)) and out[1] == pytest.approx(np.percentile([5, 5, 5, 2], 95))
    loss = torch.rand(100, dtype=torch.float64)
    wl = torch.randint(0, 4, (100,))
    assert mean_loss(loss, wl) == pytest.approx(float(loss.repeat_interleave(wl).mean()))
    # B weightings at once: one row each
    W = np.stack([np.ones(300), wp])
    np.testing.assert_allclose(roc_auc(pos, neg, W, np.stack([np.ones(400), wn])),
                               [roc_auc(pos, neg)[0], roc_auc(pos, neg, wp, wn)[0]], rtol=1e-12)


def test_closed_form_cases_of_the_weighted_functions():
    pos, neg = np.array([2.0, 3.0]), np.array([1.0, 2.0])
    # pairs (pos > neg): 2>1, 3>1, 3>2 and one tie (2, 2) counted 1/2: 3.5 / 4
    assert roc_auc(pos, neg)[0] == pytest.approx(0.875)
    assert tpr_at_low_fpr(pos, neg)[0] == pytest.approx(0.5)  # only 3 is above every negative
    assert balanced_accuracy(pos, neg, 1.5)[0] == pytest.approx(0.75)  # all positives, one negative
    assert balanced_accuracy(pos, neg, 1.5, np.array([1, 1]), np.array([3, 1]))[0] == pytest.approx(0.875)
    assert ks_distance(np.array([0.0, 1.0]), np.array([2.0, 3.0]))[0] == 1.0
    assert klom_percentile(np.array([0.0, 1.0, np.nan]), percentile=50.0)[0] == 0.5
    assert mean_example_score(np.array([1.0, 0.5]), np.array([1, 3]))[0] == pytest.approx(0.625)
    assert mean_loss(torch.tensor([1.0, 3.0]), torch.tensor([3.0, 1.0])) == pytest.approx(1.5)
    auc, low = weighted_roc(pos, np.ones(2), neg, np.ones(2))
    assert (auc[0], low[0]) == (roc_auc(pos, neg)[0], tpr_at_low_fpr(pos, neg)[0])


def test_indiscernibility_to_closed_form():
    assert indiscernibility_to(0.6, 0.6) == 1.0
    assert indiscernibility_to(0.7, 0.5) == pytest.approx(0.6)
    assert indiscernibility_to(0.1, 0.93) == 0.0  # clipped at 0
    assert indiscernibility_to(0.75, 0.5) == pytest.approx(0.5)  # = indiscernibility(0.75)


# --------------------------------------------------------------------------- the library's own values


@pytest.fixture(scope="module")
def shadow_arrays(splits):
    """A small shadow design with constructed outputs (unlearned rows keep a +1.5 shift of phi
    on every sample they trained on; the oracle rows none) and the scorecard's arrays of it."""
    sh = make_shadow_set(splits, ShadowConfig(k=6, population=0.2, targets=0.5, seed=3))
    rng = np.random.default_rng(0)
    M, N = sh.forget_masks.shape

    def outputs(role: str, shift: float) -> ShadowOutputs:
        phi = rng.normal(size=(M, N)) + shift * sh.row_in().numpy()
        return ShadowOutputs(role, phi.astype(np.float32), np.abs(rng.normal(size=(M, N))).astype(np.float32),
                             np.abs(rng.normal(size=(M, len(splits.test)))).astype(np.float32),
                             np.full(M, 0.99), np.full(M, 0.99), np.full(M, 0.9))

    return sh, sc.evaluate_shadows(sh, outputs("unlearned", 1.5), outputs("retrained-reference", 0.0), mode="online")


def test_registered_shadow_metrics_at_unit_weights_are_the_librarys_summaries(shadow_arrays):
    """At unit target weights the weight-aware definitions read what the library's own
    summaries (scikit-learn's AUC and ROC, scipy's KS test, the plain percentile and mean)
    read, to rounding."""
    sh, arrays = shadow_arrays
    w = np.zeros((1, sh.forget_masks.shape[1]))
    w[0, sh.is_target.numpy()] = 1.0
    for k in ("ulira_accuracy", "ulira_tpr", "rmia_auc", "neurips_f", "klom"):
        assert reg.metric(k).on_arrays(arrays, w)[0] == pytest.approx(float(arrays[f"{k}_point"]), abs=1e-12), k
    assert reg.metric("ks_distance").on_arrays(arrays, w)[0] == pytest.approx(float(arrays["fq_statistic"]))
    assert math.isfinite(float(arrays["fq_pvalue"]))
