"""Sentences generated from rows (unlearnlib.book.prose)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from unlearnlib.book import prose
from unlearnlib.studies import verdicts


def test_names():
    assert prose.names([]) == "none"
    assert prose.names([], empty="nothing") == "nothing"
    assert prose.names(["a"]) == "a"
    assert prose.names(["a", "b"]) == "a and b"
    assert prose.names(["a", "b", "c"], bold=True) == "**a**, **b** and **c**"


def test_shown_path_names_no_machine_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("UNLEARNLIB_STORE", raising=False)
    project, home = tmp_path / "repo", tmp_path / "home"
    assert prose.shown_path(project / ".store", project, home) == "./.store"
    assert prose.shown_path(project, project, home) == "."
    assert prose.shown_path(home / ".cache" / "unlearnlib", project, home) == "~/.cache/unlearnlib"
    # elsewhere: the folder as the reader named it
    assert prose.shown_path(tmp_path / "s", project, home) == str(tmp_path / "s")
    assert prose.shown_path(Path.home() / "x", project=tmp_path / "elsewhere") == "~/x"
    # a store named by $UNLEARNLIB_STORE outside both: the variable, not the folder
    monkeypatch.setenv("UNLEARNLIB_STORE", str(tmp_path / "store"))
    assert prose.shown_path(tmp_path / "store", project, home) == "$UNLEARNLIB_STORE"
    assert prose.shown_path(tmp_path / "store" / "results", project, home) == "$UNLEARNLIB_STORE/results"
    assert prose.shown_path(project / ".store", project, home) == "./.store"  # the project comes first


def _grid() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A grid of 2 methods x 2 settings x 5 seeds: msg's first setting breaks the model."""
    rows, refs = [], []
    for seed in range(5):
        refs += [{"method": "original", "seed": seed, "mia_test": 0.6, "test_acc": 0.94},
                 {"method": "retrain", "seed": seed, "mia_test": 0.5, "test_acc": 0.94}]
        for m, lr, mia, acc in [("ft", 0.001, 0.6, 0.94), ("ft", 0.1, 0.57, 0.94),
                                ("msg", 0.001, 0.51, 0.62), ("msg", 0.1, 0.52, 0.94)]:
            rows.append({"method": m, "seed": seed, "grid_lr": lr, "mia_test": mia + 0.001 * seed,
                         "test_acc": acc})
    return pd.DataFrame(rows), pd.DataFrame(refs)


def test_counted_share_and_sentence_agree_with_the_verdict():
    grid, refs = _grid()
    mia, acc = refs.groupby("method")["mia_test"].mean(), refs.groupby("method")["test_acc"].mean()
    s = grid.groupby(["method", "grid_lr"])[["mia_test", "test_acc"]].mean()
    s.index = s.index.set_names(["method", "lr"])
    s["raw"] = (mia["original"] - s["mia_test"]) / (mia["original"] - mia["retrain"])
    s["counted"] = prose.counted_share(s["raw"], s["test_acc"], acc["retrain"], verdicts.UTILITY)
    assert s.loc[("msg", 0.001), "raw"] > 0.8 and s.loc[("msg", 0.001), "counted"] == 0.0
    assert s.loc[("ft", 0.001), "counted"] == 0.0  # a negative raw share counts as 0
    claim = verdicts.hyperparameter_verdicts(grid, refs, "test")[0]
    text = prose.spread_sentence(s, "raw", "counted", verdicts.UTILITY, acc["retrain"], claim.estimate)
    spread = s.loc["msg", "counted"].max() - s.loc["msg", "counted"].min()
    assert np.isclose(claim.estimate, spread)
    assert f"**{spread:.3f}** (msg), the estimate of the verdict below" in text
    assert "1 of 4 settings lose more than 3 points" in text and "msg at lr 0.001 (test accuracy 0.620" in text
    assert "ft from 0.000 (lr 0.001)" in text


def test_spread_sentence_without_lost_settings():
    s = pd.DataFrame({"raw": [0.1, 0.5], "counted": [0.1, 0.5], "test_acc": [0.94, 0.94]},
                     index=pd.MultiIndex.from_tuples([("ft", 1), ("ft", 8)], names=["method", "epochs"]))
    text = prose.spread_sentence(s, "raw", "counted", 0.03, 0.94, estimate=0.7)
    assert "No setting loses more than 3 points" in text
    assert "the verdict below estimates 0.700" in text and "ft from 0.100 (epochs 1) to 0.500 (epochs 8)" in text


def test_disagreements_in_both_directions():
    readings = pd.DataFrame({"pop": ["not forgotten", "forgotten", "forgotten", "not forgotten", "forgotten",
                                     "not unlearning (utility lost)"],
                             "ulira": ["not forgotten", "forgotten", "not forgotten", "forgotten", "forgotten",
                                       "not unlearning (utility lost)"]},
                            index=["original", "retrain", "ft", "ga", "msg", "ct"])
    a, b = prose.disagreements(readings, "pop", "ulira")
    assert (a, b) == (["ft"], ["ga"])
    text = prose.disagreement_sentence(a, b, "the population loss-MIA", "U-LiRA", list(readings.index), "false sense")
    assert text == ("The population loss-MIA calls **ft** forgotten while U-LiRA does not (false sense). "
                    "U-LiRA calls **ga** forgotten while the population loss-MIA does not.")
    one = prose.disagreement_sentence(["ft"], [], "the population loss-MIA", "U-LiRA", ["ft"])
    assert one.endswith("No method is called forgotten by U-LiRA and not by the population loss-MIA.")
    agree = prose.disagreement_sentence([], [], "the population loss-MIA", "U-LiRA", ["ft", "ga"])
    assert agree == ("The population loss-MIA and U-LiRA agree on every method here (ft and ga): none passes "
                     "one and fails the other.")


def test_accuracy_bars_title_names_what_is_plotted():
    from unlearnlib.book import plots

    df = pd.DataFrame([{"method": m, "seed": 0, "retain_acc": 1.0, "forget_acc": 0.9, "test_acc": 0.9,
                        "mia_test": 0.55, "mia_entropy_test": 0.52} for m in ("original", "retrain")])
    default = plots.accuracy_bars(df).layout.title.text
    assert default.startswith("Retain accuracy (RA), forget accuracy (FA) and test accuracy (TA)<br>")
    fig = plots.accuracy_bars(df, ("forget_acc", "test_acc", "mia_test", "mia_entropy_test"))
    assert fig.layout.title.text.startswith(
        "Forget accuracy (FA), test accuracy (TA), loss-MIA forget vs test and entropy-MIA forget vs test<br>")
    assert "attack accuracy" in fig.layout.yaxis.title.text and default.find("MIA") < 0


def test_spread_sentence_with_equal_settings():
    s = pd.DataFrame({"raw": [-0.1, 0.0], "counted": [0.0, 0.0], "test_acc": [0.94, 0.94]},
                     index=pd.MultiIndex.from_tuples([("ft", 1), ("ft", 8)], names=["method", "epochs"]))
    text = prose.spread_sentence(s, "raw", "counted", 0.03, 0.94)
    assert "ft 0.000 at every setting" in text and "The largest spread is **0.000** (ft)." in text
