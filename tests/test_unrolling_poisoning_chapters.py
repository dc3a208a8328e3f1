"""Logic moved out of the Unrolling SGD and poisoning chapters (issue 35 item 7): the
trajectory aggregations and the whole-forget-set comparison (:mod:`unlearnlib.studies.unrolling`),
the poisoning chapter's removal rule and tables (:mod:`unlearnlib.studies.poisoning_verdicts`,
:mod:`unlearnlib.studies.poisoning_study`), their figures and prose, on constructed rows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from unlearnlib.book import chapter_figures as figs
from unlearnlib.book import chapter_prose
from unlearnlib.studies import poisoning_study, unrolling
from unlearnlib.studies import poisoning_verdicts as pv


def test_measure_points_spread_over_the_epochs():
    assert unrolling.measure_points(100, 32, 2, 2) == (4, [2, 4, 6, 8])
    assert unrolling.measure_points(100, 32, 2, 3) == (4, [1, 3, 4, 5, 7, 8])
    assert unrolling.measure_points(10, 32, 1, 4) == (1, [1])  # never step 0
    assert unrolling.budget_text(3, 2, 2, 4) == "3 seeds x 2 learning rates x 2 losses, 4 steps each"


def _traj() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for lr in (0.01, 0.1):
            for loss, lam, f in (("CE", 0.0, 1.0), ("SD", 1.0, 0.5)):
                for step in (1, 2, 3):
                    ve = f * lr * step * (1 + seed)
                    rows.append({"seed": seed, "lr": lr, "loss": loss, "sd_lambda": lam, "step": step, "ve_sgu": ve,
                                 "ve_nothing": 2 * ve, "proxy": ve ** 2, "sigma": f, "distance": step,
                                 "test_acc": 0.5 + 0.1 * step, "power_converged": seed == 0})
    return pd.DataFrame(rows)


def test_trajectory_aggregations_have_known_answers():
    traj = _traj()
    means = unrolling.trajectory_means(traj)
    assert means.loc[(0.1, "CE", 2), "ve_sgu"] == pytest.approx(0.1 * 2 * 1.5)  # mean over seeds 1 and 2
    assert list(means.index[:2]) == [(0.01, "CE", 1), (0.01, "CE", 2)]  # the rows' order
    rho, n_within, n_pooled = unrolling.spearman_table(traj)
    assert (n_within, n_pooled) == (6, 12)
    assert list(rho.columns) == ["rho at lr 0.01", "rho at lr 0.1", "rho pooled"]
    assert np.allclose(rho.to_numpy(), 1.0)  # the proxy is monotone in ve
    ratios = unrolling.sd_ratios(traj)
    assert list(ratios.columns) == ["ve_sgu SD / plain", "proxy SD / plain", "sigma SD / plain"]
    assert np.allclose(ratios["ve_sgu SD / plain"], 0.5) and np.allclose(ratios["proxy SD / plain"], 0.25)
    gain = unrolling.sgu_gain(traj)
    assert gain.shape == (4, 3) and np.allclose(gain.to_numpy(), 0.5)


def test_pretrained_table_and_sigma_ratio():
    pre = pd.DataFrame({"loss": ["CE", "CE", "SD", "SD"], "seed": [0, 1, 0, 1], "test_acc": [0.8, 0.9, 0.7, 0.9],
                        "sigma (eval, own loss)": [4.0, 6.0, 2.0, 3.0], "sigma (train mode, CE)": [1.0, 1.0, 1.5, 1.5]})
    table, ratio = unrolling.pretrained_table(pre)
    assert table.loc["CE", "seeds"] == 2 and table.loc["SD", "test_acc_min"] == 0.7
    assert table.loc["CE", "test_acc_mean"] == pytest.approx(0.85)
    assert ratio["sigma_reference"] == pytest.approx(0.5) and ratio["sigma_old"] == pytest.approx(1.5)
    text = chapter_prose.unrolling_caveats(pre, _traj(), 8, "B", 6, 114, 32, "mnist1d", "cnn1d", 30)
    assert "pretrained CE 0.800-0.900; SD 0.700-0.900; after fine-tuning CE at lr 0.01 0.800-0.800" in text
    assert "Runs: 8 trajectories (B)" in text and "(50% of sigma estimates converged)" in text


def test_the_loops_call_the_library_once_per_setting(monkeypatch):
    monkeypatch.setattr(unrolling, "pretrain", lambda splits, m, s, recipe, store: (s, recipe.sd_lambda))
    monkeypatch.setattr(unrolling, "sigma_row", lambda pre, splits, name, *a: {"loss": name, "seed": pre[0], "lam": pre[1]})
    from unlearnlib.training import default_recipe

    rows = unrolling.pretrained_rows(None, "cnn1d", [0, 1], {"CE": 0.0, "SD": 1.0}, default_recipe("mnist1d"))
    assert rows.to_dict("records") == [{"loss": "CE", "seed": 0, "lam": 0.0}, {"loss": "CE", "seed": 1, "lam": 0.0},
                                       {"loss": "SD", "seed": 0, "lam": 1.0}, {"loss": "SD", "seed": 1, "lam": 1.0}]
    calls = []
    monkeypatch.setattr(unrolling, "trajectory_rows", lambda splits, m, s, lr, lam, e, steps, recipe, store, **kw:
                        calls.append(kw) or [{"seed": s, "lr": lr, "sd_lambda": lam, "step": t} for t in steps])
    traj = unrolling.trajectories(None, "cnn1d", [0], [0.1, 0.2], {"CE": 0.0, "SD": 1.0}, 1, [5, 10], None,
                                  batch_size=32)
    assert len(traj) == 8 and calls == [{"batch_size": 32}] * 4
    assert traj.groupby("loss")["sd_lambda"].first().to_dict() == {"CE": 0.0, "SD": 1.0}


def test_compare_methods_reads_each_row_once(monkeypatch):
    import torch

    from unlearnlib.studies import experiment

    wanted = []
    monkeypatch.setattr(experiment, "compute_rows", lambda setup, w, desc: wanted.extend(w))
    refs = {s: SimpleNamespace(original=torch.nn.Linear(1, 1, bias=False), init_state={"weight": torch.zeros(1, 1)})
            for s in (0, 1)}
    for s, r in refs.items():
        r.original.weight.data.fill_(3.0 + s)
    setup = SimpleNamespace(run=lambda k, s, hp: {"method": k, "seed": s, "hp": hp}, refs=lambda s: refs[s])
    rows, travelled = unrolling.compare_methods(setup, ["original", "sgu"], [0, 1], {"sgu": {"lr": 1.0}})
    assert wanted == [("original", 0, None), ("sgu", 0, {"lr": 1.0}), ("original", 1, None), ("sgu", 1, {"lr": 1.0})]
    assert rows["hp"].tolist() == [None, {"lr": 1.0}, None, {"lr": 1.0}]
    assert travelled == pytest.approx(3.5)


def _methods_rows() -> pd.DataFrame:
    return pd.DataFrame({"method": ["original", "sgu", "original", "sgu"], "seed": [0, 0, 1, 1],
                         "l2_to_retrained": [1.0, 0.8, 1.2, 1.0], "mia_test": [0.6, 0.55, 0.6, 0.5],
                         "forget_acc": [1.0, 0.9, 1.0, 0.9], "test_acc": [0.9, 0.8, 0.9, 0.85],
                         "unlearn_seconds": [0.0, 1.0, 0.0, 3.0]})


def test_method_summary_figures_and_sgu_caveat():
    rows = _methods_rows()
    s = unrolling.method_summary(rows)
    assert s.index.tolist() == ["original", "sgu"] and s.loc["sgu", ("unlearn_seconds", "mean")] == 2.0
    assert s.loc["sgu", ("l2_to_retrained", "std")] == pytest.approx(np.std([0.8, 1.0], ddof=1))
    text = chapter_prose.sgu_caveat(rows, 12.345)
    assert "over 2 seeds" in text and "12.3 (L2)" in text
    assert "test accuracy 0.825 against the original's 0.900, verification error 0.900 against doing nothing's 1.100" in text
    assert len(figs.methods_scatter(rows).data) == 2
    assert len(figs.proxy_scatter(_traj()).data) == 4  # lr x loss
    assert len(figs.trajectory_lines(_traj()).data) == 12  # (lr x loss) x 3 panels


def _method_table() -> pd.DataFrame:
    idx = pd.MultiIndex.from_tuples([("gaussian", "original"), ("gaussian", "retrain"), ("gaussian", "ga"),
                                     ("gaussian", "gd"), ("backdoor", "original"), ("backdoor", "retrain"),
                                     ("backdoor", "gd")], names=["attack", "method"])
    return pd.DataFrame({"share of the gap left": [1.0, 0.0, 0.05, 0.5, 1.0, 0.0, 0.1],
                         "test accuracy": [0.9, 0.9, 0.6, 0.88, 0.9, 0.89, 0.88],
                         "population MIA": [0.52, 0.5, 0.5, 0.51, 0.7, 0.5, 0.5],
                         "passes the MIA": [True, True, True, True, False, True, True]}, index=idx)


def test_removing_applies_finding_ones_threshold():
    t = _method_table()
    assert pv.removing(t).index.tolist() == [("gaussian", "ga"), ("backdoor", "gd")]  # 10% itself counts
    assert pv.removing(t, 0.06).index.tolist() == [("gaussian", "ga")]
    text = chapter_prose.poisoning_removed(t, pv.removing(t), 0.1, pv.REMOVED, pv.ACC_TOL, pv.MIA_TOL)
    assert text.startswith("Methods that remove a poison at 10% (at most 10% of the gap left), whatever their "
                           "accuracy: ga on gaussian (5% of the gap left, test accuracy 0.600 against 0.900 retrained); "
                           "gd on backdoor (10% of the gap left")
    assert "whatever their accuracy: none." in chapter_prose.poisoning_removed(t, pv.removing(t, 0.0), 0.1, 0.0, 0.05, 0.05)
    blind = pv.mia_blind_attacks(t)
    assert blind == ["gaussian"]
    assert "on gaussian (original 0.520 against retrained 0.500, within 0.05)" in \
        chapter_prose.poisoning_mia_blind(t, blind, 0.05)
    assert chapter_prose.poisoning_mia_blind(t, [], 0.05) == ""
    caveats = chapter_prose.poisoning_caveats("mlp", "mnist5k", 12, ["gaussian"], {"gaussian": 0.02}, t, ["gd"], 0.05)
    assert "(12 epochs)" in caveats and "reads 0.500 where chance is 0.5" in caveats and "SSD, one of" in caveats
    assert "SSD" not in chapter_prose.poisoning_caveats("mlp", "d", 1, ["backdoor"], {}, t, ["ssd"], 0.05)


def test_attack_table_shown_and_its_lines():
    table = pd.DataFrame([{c: 0.0 for c in pv.SHOWN_COLUMNS} | {"original": -0.2, "retrain": 0.0, "gap": -0.2,
                                                                 "gap low": -0.3, "gap high": -0.1, "best method": "gd",
                                                                 "share left (best)": 0.42, "extra": 1}],
                         index=pd.Index(["gaussian"], name="attack"))
    shown = pv.shown_attack_table(table)
    assert list(shown.columns) == list(pv.SHOWN_COLUMNS.values()) and "extra" not in shown
    assert chapter_prose.poisoning_attack_lines(table) == (
        "gaussian: poisoned -0.200, retrained 0.000 (gap -0.200 [-0.300, -0.100]); best method gd leaves 42% of the gap")
    crit = chapter_prose.poisoning_criteria(5, 0.1, 0.05)
    assert crit.startswith("At least 5 seeds.") and "\\min(0.05 - |" in crit and "0.5\\,(\\text{share left} - 0.1)" in crit


def test_hparams_shown_lists_each_method_once():
    df = pd.DataFrame({"method": ["original", "gd", "gd", "ga"], "hparams": [json.dumps({}),
                       json.dumps({"lr": 0.0123456, "epochs": 2}), json.dumps({"lr": 9.0}), json.dumps({})]})
    hp = poisoning_study.hparams_shown(df)
    assert hp.name == "hyperparameters" and hp.to_dict() == {"gd": "lr=0.0123, epochs=2", "ga": ""}


def test_poisoning_grids_one_figure_per_attack(monkeypatch):
    from unlearnlib.book import plots

    seen = []
    monkeypatch.setattr(plots, "metric_grid", lambda d, x, rows, **k: seen.append((set(d["attack"]), rows, k["title"])))
    df = pd.DataFrame({"attack": ["gaussian", "backdoor"]})
    out = figs.poisoning_grids(df, ["gaussian", "backdoor"], {"gaussian": "gus", "backdoor": "asr"}, ["gd"],
                               {"gaussian": 0.02, "backdoor": 0.05}, 3)
    assert len(out) == 2 and [s[0] for s in seen] == [{"gaussian"}, {"backdoor"}]
    assert seen[0][1] == {"metric": "GUS (mean I_z)", "test_acc": "test accuracy", "mia_test": "population MIA"}
    assert seen[0][2].startswith("gaussian poisoning (2% poisons, 3 seeds)<br><sup>rows: GUS (mean I_z) (0 = never seen)")
    assert "backdoor success rate, test" in seen[1][2]
