"""Logic moved out of the text and nabla-tau chapters (issue 35 item 7): the reference gaps
and the grid comparison (:mod:`unlearnlib.studies.carry_over`), the nabla-tau chapter's tables
(:mod:`unlearnlib.studies.fraction_study`) and their generated prose
(:mod:`unlearnlib.book.chapter_prose`), on constructed rows with known answers."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from unlearnlib.book import chapter_prose
from unlearnlib.store import Store
from unlearnlib.studies import carry_over, verdicts
from unlearnlib.studies import fraction_study as fs


def _refs(n_seeds: int = 5) -> pd.DataFrame:
    rows = []
    for s in range(n_seeds):
        rows.append({"method": "original", "seed": s, "forget_acc": 1.0, "mia_test": 0.6 + 0.01 * s, "test_acc": 0.9})
        rows.append({"method": "retrain", "seed": s, "forget_acc": 0.8, "mia_test": 0.5, "test_acc": 0.88})
        rows.append({"method": "ft", "seed": s, "forget_acc": 0.1, "mia_test": 0.1, "test_acc": 0.1})
    return pd.DataFrame(rows)


def test_reference_gaps_are_original_minus_retrained():
    g = carry_over.reference_gaps(_refs())
    assert g["forget-accuracy gap"] == "0.200 [0.200, 0.200]"  # the same gap on every seed
    assert g["test-accuracy gap"] == "0.020 [0.020, 0.020]"
    est, lo, hi = (float(x.strip("[],")) for x in g["loss-MIA gap"].split())
    assert est == pytest.approx(0.12) and lo < est < hi
    assert g["test accuracy (original / retrained)"] == "0.900 / 0.880" and g["seeds"] == 5


@dataclass
class _V:
    claim: str
    state: str

    def interval(self) -> str:
        return "0.1 [0, 0.2]"


def test_shared_ranks_rerank_the_common_methods(monkeypatch):
    ranks = {"a": pd.Series({"ft": 1.0, "ga": 2.0, "scrub": 3.0}), "b": pd.Series({"ga": 1.0, "ft": 5.0, "msg": 2.0})}
    monkeypatch.setattr(verdicts, "ranking_table", lambda df: pd.DataFrame({"quality rank": ranks[df]}))
    both = carry_over.shared_ranks({"a": "a", "b": "b"})
    assert both.index.tolist() == ["ft", "ga"]  # sorted by the first grid; scrub and msg ran in one only
    assert both.to_dict() == {"a": {"ft": 1.0, "ga": 2.0}, "b": {"ft": 2.0, "ga": 1.0}}


def test_compare_grids_shows_the_claims_before_naming_the_data(monkeypatch):
    monkeypatch.setattr(verdicts, "ranking_transfer_verdicts", lambda *a, **k: [_V("ranking carries over", "holds")])
    calls = []

    def du(df, half, budget, chapter):
        calls.append((df, half, budget, chapter))
        return [_V("simple baselines win", "fails" if df == "text-rows" else "holds")]

    monkeypatch.setattr(verdicts, "deep_unlearn_verdicts", du)
    monkeypatch.setattr(carry_over, "shared_ranks", lambda grids: list(grids))
    c = carry_over.compare_grids("text-rows", "text-half", "B1", "img-rows", "img-half", "B2", "rt", "mnist1d")
    assert calls == [("text-rows", "text-half", "B1", "text"), ("img-rows", "img-half", "B2", "text")]
    assert c.ranks == ["text", "mnist1d"]
    assert c.verdicts.to_dict() == {"on text": {"simple baselines win": "fails: 0.1 [0, 0.2]"},
                                    "on mnist1d": {"simple baselines win": "holds: 0.1 [0, 0.2]"}}
    assert [v.claim for v in c.claims] == ["ranking carries over", "simple baselines win (on text)"]


def test_grid_budget_reads_the_setup_of_the_grid(monkeypatch):
    from unlearnlib.studies import tuning_report

    monkeypatch.setattr(tuning_report, "budget_text", lambda r, s, n, ts, ss: f"{r} {s} {n} {ts} {ss}")
    text = carry_over.grid_budget("R", "the setup", 3, "0-1", "3-4", warm_start=True)  # a grid's options dict
    assert text == "R the setup 3 [0, 1] [3, 4]"


def test_run_both_budgets_runs_the_half_budget_quietly(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(fs, "run_fraction_study", lambda *a, **k: (calls.append((a, k)) or (f"rows {k.get('budget')}", "T")))
    setups = fs.Setups("digits", "mlp", store=Store(tmp_path))
    df, half, tuned = fs.run_both_budgets(setups, ["nabla_tau"], ["ft"], ["fraction:0.3"], "3-7", n_trials=2)
    assert (df, half, tuned) == ("rows None", "rows half", "T")
    assert calls[0][0][0] is setups and calls[0][0][1:] == (["nabla_tau"], ["ft"], ["fraction:0.3"], "3-7")
    assert calls[0][1] == {"n_trials": 2}
    quiet = calls[1][0][0]
    assert not quiet.show_progress and quiet.store is setups.store and setups.show_progress
    assert calls[1][1] == {"budget": "half", "n_trials": 2}


def test_tuned_table_lists_the_hyperparameters():
    tuned = {("fraction:0.3", "ft"): SimpleNamespace(tuned=True, source="shipped", hparams={"lr": 0.0123456, "epochs": 2}),
             ("fraction:0.3", "ga"): SimpleNamespace(tuned=False, source="defaults", hparams={})}
    t = fs.tuned_table(tuned, 4)
    assert t.loc["ft", "hyperparameters"] == "lr=0.0123, epochs=2"
    assert t["trials per seed here"].tolist() == [4, 0]
    assert t.loc["ga", "tuned on"] == "fraction:0.3"


def test_ascent_weights_follow_nabla_taus_rule():
    df = pd.DataFrame({"forget": ["fraction:0.3"] * 3 + ["class:3"], "fraction": [0.3, 0.3, 0.3, np.nan],
                       "method": ["original", "original", "ft", "original"],
                       "val_loss": [1.0, 1.2, 9.0, 5.0], "forget_loss": [0.5, 0.7, 9.0, 5.0]})
    t = fs.ascent_weights(df)
    assert t.index.tolist() == ["fraction:0.3"]  # class forgetting has no fraction
    r = t.loc["fraction:0.3"]
    assert r["alpha_0"] == pytest.approx(0.5) and r["tau = L_val (original)"] == pytest.approx(1.1)
    assert r["ascent weight 2 alpha_0 (tau - L_f)"] == pytest.approx(2 * 0.5 * 0.5)
    assert r["descent weight 1 - alpha_0"] == pytest.approx(0.5)


def test_outside_utility_names_the_broken_baselines():
    df = pd.DataFrame({"forget": ["f1"] * 4 + ["f2"] * 2, "method": ["retrain", "ft", "ga", "original", "retrain", "ga"],
                       "test_acc": [0.90, 0.89, 0.80, 0.5, 0.70, 0.675]})
    assert fs.outside_utility(df, 0.02) == [("f1", "ga", 0.80, 0.90), ("f2", "ga", 0.675, 0.70)]
    assert fs.outside_utility(df, 0.03) == [("f1", "ga", 0.80, 0.90)]
    text = chapter_prose.outside_utility_sentence(fs.outside_utility(df, 0.03), 0.03)
    assert text == ("**Outside the utility window** (3 points), so excluded from the comparisons: ga at f1 "
                    "(test accuracy 0.800 against 0.900 retrained).")
    assert chapter_prose.outside_utility_sentence([], 0.03) == ""


def test_baselines_budget_names_where_the_baselines_were_tuned(monkeypatch, tmp_path):
    setups = fs.Setups(store=Store(tmp_path))
    text = fs.baselines_budget(setups, ["fraction:0.3"], ["ft"], "each", 4, "0", "3-12", False)
    assert text == ("baselines tuned on each forget set (4 trials on seed(s) 0); nabla-tau at its defaults; "
                    "evaluated on seeds 3-12")
    from unlearnlib.studies import hpo

    monkeypatch.setattr(hpo.Setup, "create", classmethod(lambda cls, dataset, model, where, *a, **k: where))
    entries = {("fraction:0.3", "ft"): {"trials_per_seed": 100, "tuning_seeds": [0, 1, 2]}}
    monkeypatch.setattr(hpo, "shipped_entry", lambda setup, m: entries.get((setup, m)))
    text = fs.baselines_budget(setups, ["fraction:0.3", "class:3"], ["ft", "ga"], "each", 4, "0", "3-12", True)
    assert text.startswith("baselines tuned on each forget set (shipped table for 1/4 (100 trials on seeds 0,1,2) + 4 "
                           "trials on seed(s) 0)")
    text = fs.baselines_budget(setups, ["fraction:0.3"], ["ft"], "random:0.1", 4, "0", "3-12", True)
    assert "tuned on random:0.1 (shipped table for 0/1 + 4 trials" in text


def test_chapter_prose_reads_the_numbers():
    assert f"at least {verdicts.MIN_SEEDS} seeds" in chapter_prose.verdict_rule()
    crit = chapter_prose.nabla_tau_criteria()
    assert f"within {100 * verdicts.NT_UTILITY:g} points" in crit and f"more than {verdicts.EQUIVALENCE:g}." in crit
    u = pd.DataFrame({"U-LiRA accuracy": [0.6, 0.5, 0.55]}, index=["original", "retrain", "nabla_tau"])
    assert chapter_prose.ulira_at_fraction(u, 0.3, 16) == (
        "U-LiRA at 30%: attack accuracy 0.550 on nabla_tau's shadows against 0.500 on retrained and 0.600 on "
        "original shadows (16 shadow splits).")
    assert chapter_prose.ulira_at_fraction(u.drop("original"), 0.3, 16) == ""
    assert chapter_prose.ulira_at_fraction(None, None, 16) == ""
    splits = SimpleNamespace(retain=range(900), forget=range(100), val=range(50), test=range(60), input_shape=(64,))
    rows = pd.DataFrame({"method": ["retrain", "retrain", "ft"], "test_acc": [0.7, 0.8, 0.1]})
    assert "trained from scratch on 1,000 snippets" in chapter_prose.text_caveat(splits, rows)
    assert "(0.750 for the retrained model" in chapter_prose.text_caveat(splits, rows)
    line = chapter_prose.text_data_line("rt", splits)
    assert line.startswith("rt: |D_r| = 900, |D_f| = 100, |D_v| = 50, |D_t| = 60; vocabulary ")
    assert line.endswith("inputs of 64 tokens")


def test_gap_table_puts_the_grids_side_by_side():
    t = carry_over.gap_table({"text": _refs(), "images": _refs(6)})
    assert list(t.columns) == ["text", "images"] and t.loc["seeds"].tolist() == [5, 6]
    assert t.loc["forget-accuracy gap", "images"] == "0.200 [0.200, 0.200]"


def test_loss_ratio_and_the_text_intro():
    d = fs.with_loss_ratio(pd.DataFrame({"forget_loss": [1.0, 3.0], "val_loss": [2.0, 3.0]}))
    assert d["loss_ratio"].tolist() == [0.5, 1.0]
    assert chapter_prose.nabla_text_intro(0.3, ["ft", "ngplus"], "random:0.1") == (
        "nabla-tau at its defaults on a 30% random forget set (fraction:0.3) against ft and ngplus, tuned on "
        "random:0.1 and carried over to it, and retraining:")
