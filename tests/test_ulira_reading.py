"""The per-sample chapter's logic (issue 35 item 7): its table, the undertrained flag, the
readings by the scorecard's rule, and the shadow-attack table of the text and nabla-tau
chapters; the chapter's figures on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unlearnlib.evaluation.lira import ShadowConfig, ShadowOutputs, make_shadow_set
from unlearnlib.studies import scorecard
from unlearnlib.studies import ulira_reading as ur

NAMES = {"original": "original", "retrain": "retrain", "good": "good", "fooled": "fooled", "broken": "broken",
         "deep": "deep"}


def _table(pop, ul, ta) -> pd.DataFrame:
    return pd.DataFrame({"population MIA (forget vs test)": pop, "U-LiRA accuracy": ul, "TA": ta},
                        index=pd.Index(list(NAMES.values()), name="method"))


def test_t_half_width_is_students_interval():
    from scipy import stats

    v = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    expected = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert ur.t_half_width(v) == pytest.approx(expected)
    assert np.isnan(ur.t_half_width(np.array([1.0, np.nan])))


def test_readings_follow_the_scorecard_rule():
    #            original retrain good  fooled broken deep
    pop = [0.70, 0.50, 0.52, 0.51, 0.50, 0.65]
    ul = [0.80, 0.50, 0.53, 0.75, 0.50, 0.52]
    ta = [0.90, 0.88, 0.87, 0.88, 0.70, 0.88]
    r = ur.readings(_table(pop, ul, ta), NAMES)
    f = r.frame
    assert list(f.columns) == ["test accuracy", *ur.SAYS]
    assert f.loc["original", "population MIA says"] == ur.NOT_FORGOTTEN
    assert f.loc["retrain", "U-LiRA says"] == ur.FORGOTTEN
    assert f.loc["good"].tolist()[1:] == [ur.FORGOTTEN, ur.FORGOTTEN]        # s = 0.9 and 0.9
    assert f.loc["fooled"].tolist()[1:] == [ur.FORGOTTEN, ur.NOT_FORGOTTEN]  # U-LiRA s = 0.17
    assert f.loc["broken"].tolist()[1:] == [ur.UTILITY_LOST, ur.UTILITY_LOST]  # 18 points below retrain
    assert f.loc["deep"].tolist()[1:] == [ur.NOT_FORGOTTEN, ur.FORGOTTEN]    # population s = 0.25
    assert r.population_only == ["fooled"] and r.ulira_only == ["deep"]
    assert r.compared == ["good", "fooled", "broken", "deep"]
    # the same call as the scorecard: the false sense of success is scorecard.false_sense
    keys = list(NAMES)
    score = {"mia_test": scorecard.normalise(np.array([pop]), 0, 1),
             "ulira_accuracy": scorecard.normalise(np.array([ul]), 0, 1)}
    reading = scorecard.classify(score, scorecard.utility_mask(np.array([ta]), 1), keys)
    fs = scorecard.false_sense(reading)[0]
    assert [k for k, x in zip(keys, fs, strict=True) if x] == ["fooled"]


def test_readings_tolerance_and_missing_references():
    t = _table([0.70, 0.50, 0.55, 0.5, 0.5, 0.5], [0.8, 0.5, 0.5, 0.5, 0.5, 0.5], [0.9] * 6)
    assert ur.readings(t, NAMES).frame.loc["good", "population MIA says"] == ur.NOT_FORGOTTEN  # s = 0.75
    assert ur.readings(t, NAMES, tol=0.3).frame.loc["good", "population MIA says"] == ur.FORGOTTEN
    assert ur.readings(t.drop("original"), {k: v for k, v in NAMES.items() if k != "original"}) is None
    flat = _table([0.5] * 6, [0.8, 0.5, 0.5, 0.5, 0.5, 0.5], [0.9] * 6)  # no population gap: no reading
    assert (ur.readings(flat, NAMES).frame["population MIA says"] == ur.UNRESOLVED).all()


def test_undertrained_flags_methods_above_the_original():
    t = _table([0.5] * 6, [0.5] * 6, [0.80, 0.90, 0.81, 0.83, 0.70, 0.85])
    above = ur.undertrained(t, NAMES)
    assert above.to_dict() == {"fooled": 0.83, "deep": 0.85}  # retrain is a reference; 0.81 within 0.02
    assert ur.undertrained(t, {k: v for k, v in NAMES.items() if k != "original"}).empty


def _fake(shadows, shift: float, acc: float, seed: int = 0) -> ShadowOutputs:
    rng = np.random.default_rng(seed)
    m, n = shadows.forget_masks.shape
    x = rng.normal(size=(m, n)) + shift * shadows.forget_masks.numpy()
    return ShadowOutputs("fake", x, -x, rng.normal(size=(m, 20)), np.ones(m), np.ones(m), np.full(m, acc))


def test_attack_run_and_shadow_table_on_fake_shadows(splits):
    shadows = make_shadow_set(splits, ShadowConfig(k=16, partitions=1, population=0.25, targets=0.5))
    outputs = {"original": _fake(shadows, 4.0, 0.90), "retrain": _fake(shadows, 0.0, 0.88, 1),
               "leaky": _fake(shadows, 4.0, 0.80, 2)}
    names = {m: m for m in outputs}
    run = ur.attack_run(shadows, outputs, _fake(shadows, 0.0, 0.88, 3), names, {"leaky": "shipped"})
    t = run.table
    assert t.loc["original", "U-LiRA accuracy"] > 0.9 > 0.6 > t.loc["retrain", "U-LiRA accuracy"]
    assert t.loc["leaky", "hyperparameters"] == "shipped" and t.loc["original", "hyperparameters"] == "-"
    assert run.retrained_test_acc == pytest.approx(0.88)
    assert t["keeps utility"].tolist() == [True, True, False]  # 0.80 < 0.88 - 0.03
    assert set(run.spread["leaky"]) == {"population MIA (forget vs test)", "U-LiRA accuracy"}
    small = ur.shadow_attack_table(shadows, outputs)
    assert small["U-LiRA accuracy"].to_dict() == pytest.approx(t["U-LiRA accuracy"].to_dict())
    assert list(small.columns) == ["U-LiRA accuracy", "U-LiRA AUC", "TPR @ 1% FPR", "population MIA", "FA", "TA"]

    from unlearnlib.book import ulira_figures as figs

    assert len(figs.per_sample_figure(run.results, names).data) == 3
    assert len(figs.score_figure(run.results, names, "online").data) == 6  # two games per method
    assert len(figs.roc_figure(run.results, names).data) == 4  # and chance
    dots = figs.attacks_figure(run).data
    assert [len(d.x) for d in dots] == [3, 3] and list(dots[1].y) == pytest.approx(t["U-LiRA accuracy"].tolist())
    rule, sentence = figs.readings_markdown(ur.readings(t, names), run)
    assert "within 0.2 of 1" in rule and "0.880" in rule
    assert "agree on every method here (leaky)" in sentence  # leaky lost its utility: no attack calls it forgotten


def test_binned_shares_ignore_nan():
    from unlearnlib.book.ulira_figures import binned

    assert binned(np.array([0.1, 0.1, 0.9, np.nan]), np.array([0.0, 0.5, 1.0])).tolist() == [2 / 3, 1 / 3]
    assert binned(np.array([np.nan]), np.array([0.0, 1.0])).tolist() == [0.0]


def test_shadow_attacks_runs_each_method_with_its_hyperparameters(splits, monkeypatch):
    import unlearnlib.shadows

    shadows = make_shadow_set(splits, ShadowConfig(k=8, partitions=1, population=0.25, targets=0.5))
    asked = {}

    class FakeRunner:
        def __init__(self, splits, model, config, store, show_progress=True):
            self.shadows, self.config = shadows, config

        def outputs_many(self, hparams, ex):
            asked.update(hparams)
            return {m: _fake(shadows, 4.0 if m == "original" else 0.0, 0.9, i) for i, m in enumerate(hparams)}

    monkeypatch.setattr(unlearnlib.shadows, "ShadowRunner", FakeRunner)
    table, runner = ur.shadow_attacks(splits, "cnn1d", shadows.config, None, {"ft": {"lr": 0.1}}, ["original", "ft"])
    assert asked == {"original": None, "ft": {"lr": 0.1}}
    assert table.index.tolist() == ["original", "ft"] and table.loc["original", "U-LiRA accuracy"] > 0.9
    n_in, n_forget = int(shadows.in_masks[0].sum()), int(shadows.forget_masks[0].sum())
    assert ur.shadow_caption(runner.shadows) == (f"8 shadow splits of {n_in} training rows; {n_forget} forgotten "
                                                 "per unlearned shadow")
    assert ur.names_of(["original", "ft"], "cnn1d") == {"original": "original", "ft": "ft"}


def test_captions_and_summary(splits):
    from unlearnlib.book import ulira_figures as figs

    shadows = make_shadow_set(splits, ShadowConfig(k=8, partitions=1, population=0.25, targets=0.5))
    n_in, n_forget = int(shadows.in_masks[0].sum()), int(shadows.forget_masks[0].sum())
    assert ur.forgotten_caption(shadows, 2.4) == f"8 shadows, {n_forget} forgotten of {n_in} per shadow: 2 s"
    text = figs.summary_markdown("online", 8, 1, "mnist1d", "cnn1d", 0, ["ga", "ft"])
    assert text.startswith("This chapter measured U-LiRA (online LiRA), the NeurIPS 2023 score and the population "
                           "loss-MIA on one shadow set (8 splits x 1 partition(s) of mnist1d / cnn1d, shadow seed 0) "
                           "for ga and ft,")
    above = pd.Series({"ft": 0.91})
    assert figs.undertrained_sentence(above, 0.85, 1) == (
        "**The shadow models look undertrained** (1 epochs): ft reaches test accuracy 0.910, above the original "
        "shadows' 0.850, so these methods partly keep training; read the attacks below with that in mind.")
    assert figs.undertrained_sentence(above.iloc[:0], 0.85, 1) == ""


def test_a_gap_within_its_interval_reads_nothing():
    pop = [0.70, 0.50, 0.52, 0.51, 0.50, 0.65]
    ul = [0.52, 0.50, 0.53, 0.75, 0.50, 0.52]
    t = _table(pop, ul, [0.9] * 6)
    spread = {m: {"population MIA (forget vs test)": (0.01, 8), "U-LiRA accuracy": (0.03, 100)} for m in NAMES}
    # population gap 0.2 > hypot(0.01, 0.01); U-LiRA gap 0.02 < hypot(0.03, 0.03) = 0.042
    assert ur.resolved(t, spread, "original", "retrain") == {"population MIA (forget vs test)": True,
                                                             "U-LiRA accuracy": False}
    r = ur.readings(t, NAMES, spread)
    assert (r.frame["U-LiRA says"] == ur.UNRESOLVED).all()
    assert r.frame.loc["good", "population MIA says"] == ur.FORGOTTEN
    assert r.population_only == [] and r.ulira_only == []  # an unread test fails no one
    from unlearnlib.book import ulira_figures as figs

    run = ur.AttackRun(t, spread, {}, NAMES, 0.9)
    assert figs.readings_markdown(r, run)[1] == ("The two attacks cannot be compared here: the original-retrained gap "
                                                 "of U-LiRA is not resolved at this budget (more shadow splits or "
                                                 "targets would resolve it).")
    # without the spread the same small U-LiRA gap is read, and "fooled" fails it
    assert ur.readings(t, NAMES).population_only == ["good", "fooled"]
    spread["original"]["U-LiRA accuracy"] = (float("nan"), 1)
    assert not ur.resolved(t, spread, "original", "retrain")["U-LiRA accuracy"]
