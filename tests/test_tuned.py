"""Issue 32: every shipped tuned entry carries its held-out figure (the rerun objective over
the seeds it was not tuned on, with a 95% interval) and flags the hyperparameters that lie
on a bound of their search space; the methods chapter's tables report them."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from unlearnlib import methods as registry
from unlearnlib.methods import Choice, Epochs, Float, Int
from unlearnlib.store import Store
from unlearnlib.studies import hpo, tuned, tuning_report

DEFAULT = ("mnist1d", "cnn1d", "random:0.1")

# --------------------------------------------------------------------------- bound flags


def _log_value(low: float, high: float, share: float) -> float:
    """The value ``share`` of the way from ``low`` to ``high`` on the log scale."""
    return math.exp(math.log(low) + share * (math.log(high) - math.log(low)))


@pytest.mark.parametrize("share, flag", [(0.019, "low"), (0.021, None), (0.5, None), (0.979, None),
                                         (0.981, "high"), (0.0, "low"), (1.0, "high")])
def test_a_log_uniform_value_is_flagged_within_2_percent_of_a_bound_on_the_log_scale(share, flag) -> None:
    space = {"lr": Float(1e-5, 1e-1, log=True)}
    got = hpo.bound_flags(space, {"lr": _log_value(1e-5, 1e-1, share)})
    assert got == ({"lr": flag} if flag else {})


def test_the_log_scale_decides_not_the_linear_one() -> None:
    """0.084 is 1.9% of the four decades below 0.1 (flagged on the log scale) but 16% of
    the linear range below it; 2e-4 is 0.2% of the linear range above 1e-5 but a third of
    the decades up (a linear measure would call it 'low')."""
    top = _log_value(1e-5, 1e-1, 0.981)
    assert hpo.bound_flags({"lr": Float(1e-5, 1e-1, log=True)}, {"lr": top}) == {"lr": "high"}
    assert hpo.bound_flags({"lr": Float(1e-5, 1e-1)}, {"lr": top}) == {}
    assert hpo.bound_flags({"lr": Float(1e-5, 1e-1, log=True)}, {"lr": 2e-4}) == {}
    assert hpo.bound_flags({"lr": Float(1e-5, 1e-1)}, {"lr": 2e-4}) == {"lr": "low"}


@pytest.mark.parametrize("value, flag", [(0.015, "low"), (0.025, None), (0.5, None), (0.975, None),
                                         (0.985, "high")])
def test_a_linear_value_is_flagged_within_2_percent_of_its_range(value, flag) -> None:
    got = hpo.bound_flags({"alpha": Float(0.0, 1.0)}, {"alpha": value})
    assert got == ({"alpha": flag} if flag else {})


def test_integer_epochs_at_the_cap_and_categoricals() -> None:
    """Epochs resolved at 20% of 40 training epochs run 1..8: 8 is the cap, 1 the floor; a
    categorical is never flagged, whatever its value; names outside the space (fixed
    hyperparameters) and missing ones are ignored."""
    space = {"epochs": Epochs().resolve(40), "batch_size": Choice(64, 128, 256), "k": Int(0, 100)}
    assert space["epochs"].high == 8
    assert hpo.bound_flags(space, {"epochs": 8, "batch_size": 256, "k": 50, "bn_mode": "train"}) \
        == {"epochs": "high"}
    assert hpo.bound_flags(space, {"epochs": 1, "batch_size": 64}) == {"epochs": "low"}
    assert hpo.bound_flags(space, {"epochs": 4, "k": 99}) == {"k": "high"}
    assert hpo.bound_flags(space, {"epochs": 4, "k": 3}) == {}
    assert hpo.bound_flags({"epochs": Epochs().resolve(4)}, {"epochs": 1}) == {}  # 1..1: no room to search
    ft = registry.get("ft").space(40)
    assert hpo.bound_flags(ft, {"lr": 0.1, "weight_decay": 1e-5, "batch_size": 64, "epochs": 8}) \
        == {"lr": "high", "weight_decay": "low", "epochs": "high"}


def test_the_tolerance_is_a_parameter() -> None:
    space = {"lr": Float(1e-5, 1e-1, log=True)}
    v = _log_value(1e-5, 1e-1, 0.95)
    assert hpo.bound_flags(space, {"lr": v}) == {}
    assert hpo.bound_flags(space, {"lr": v}, tol=0.1) == {"lr": "high"}


# --------------------------------------------------------------------------- held-out objective


def _t975(df: int) -> float:
    """Student's t 97.5% quantile in closed form for 2 degrees of freedom."""
    assert df == 2
    q = 0.975
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def test_held_out_excludes_the_tuning_seeds_and_has_a_student_t_interval() -> None:
    entry = {"objective": 0.05, "tuning_seeds": [0, 1],
             "rerun": {"0": 0.0, "1": 100.0, "2": 0.1, "3": 0.2, "4": 0.4}}
    h = tuned.held_out(entry)
    assert h["seeds"] == [2, 3, 4]  # the tuning seeds' reruns (one absurd) do not count
    mean = 0.7 / 3
    sd = math.sqrt(((0.1 - mean) ** 2 + (0.2 - mean) ** 2 + (0.4 - mean) ** 2) / 2)
    half = _t975(2) * sd / math.sqrt(3)
    assert _t975(2) == pytest.approx(4.302653, abs=1e-6)
    assert h["mean"] == pytest.approx(mean, abs=1e-5)
    assert h["low"] == pytest.approx(mean - half, abs=1e-5)
    assert h["high"] == pytest.approx(mean + half, abs=1e-5)
    assert tuned.optimism(entry) == pytest.approx(mean - 0.05, abs=1e-5)
    narrow = tuned.held_out(entry, level=0.5)  # t_{0.75, 2} = 0.5 / sqrt(0.375)
    assert narrow["high"] - narrow["mean"] == pytest.approx(0.5 / math.sqrt(0.375) * sd / math.sqrt(3), abs=2e-5)


def test_held_out_below_two_seeds_has_no_interval() -> None:
    one = tuned.held_out({"objective": 0.1, "tuning_seeds": [0, 1, 2],
                          "rerun": {"0": 0.1, "1": 0.1, "2": 0.1, "3": 0.3}})
    assert one["seeds"] == [3] and one["mean"] == 0.3
    assert math.isnan(one["low"]) and math.isnan(one["high"])
    none = tuned.held_out({"objective": 0.1, "tuning_seeds": [0], "rerun": {"0": 0.1}})
    assert none["seeds"] == [] and math.isnan(none["mean"]) and math.isnan(none["low"])
    same = tuned.held_out({"objective": 0.1, "tuning_seeds": [0], "rerun": {"1": 0.2, "2": 0.2}})
    assert (same["low"], same["mean"], same["high"]) == (0.2, 0.2, 0.2)  # no spread, no width


def test_with_derived_stores_missing_bounds_as_null_and_flags_from_the_recipe_epochs() -> None:
    entry = {"method": "ft", "recipe": {"epochs": 40}, "objective": 0.1, "tuning_seeds": [0],
             "hparams": {"lr": 0.1, "weight_decay": 1e-3, "batch_size": 256, "epochs": 8, "bn_mode": "train"},
             "rerun": {"0": 0.1, "1": 0.2}}
    got = hpo.with_derived(entry)
    assert got["held_out"] == {"seeds": [1], "mean": 0.2, "low": None, "high": None}
    assert got["at_bound"] == {"lr": "high", "epochs": "high"}
    assert {k: v for k, v in got.items() if k not in ("held_out", "at_bound")} == entry
    assert hpo.with_derived({**entry, "recipe": {"epochs": 80}})["at_bound"] == {"lr": "high"}  # cap is 16


def test_make_entry_writes_held_out_and_at_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new entry carries both fields, by the same formula as the backfill (no training:
    the reference metrics are stubbed)."""
    setup = hpo.Setup.create(*DEFAULT, store=Store(tmp_path), show_progress=False)
    ref = {"retain_acc": 0.9, "forget_acc": 0.8, "val_acc": 0.8, "mia_val": 0.5}
    monkeypatch.setattr(hpo.shipped, "reference_metrics", lambda *a, **k: ref)
    monkeypatch.setattr(setup, "refs", lambda seed: None)
    rows = pd.DataFrame([{"seed": s, "retain_acc": 0.9, "forget_acc": 0.8 + 0.03 * s, "val_acc": 0.8,
                          "mia_val": 0.5} for s in range(5)])
    hp = {"lr": 0.1, "weight_decay": 1e-3, "batch_size": 64, "epochs": 8, "bn_mode": "train"}
    sel = hpo.Selection(hp, 0.0, {0: 0.0}, "search", 0)
    result = hpo.TuneResult("ft", hp, seeds=[hpo.SeedResult(0, hp, (0.0,) * 4, 0.0, 3, 3, "s")],
                            selection=sel, n_trials=3)
    entry = hpo.make_entry(result, setup, rows, 1.0)
    assert entry["held_out"]["seeds"] == [1, 2, 3, 4]
    assert entry["held_out"]["mean"] == pytest.approx(0.01 * 2.5, abs=1e-5)  # |FA - FA_R| / 3 = 0.01 s
    assert entry["at_bound"] == {"lr": "high", "epochs": "high"}
    assert entry == hpo.with_derived(entry)


def test_every_shipped_entry_carries_its_derived_fields_as_recomputed() -> None:
    """The backfill cannot drift: held_out and at_bound are what :func:`hpo.with_derived`
    computes from the entry's recorded fields, and the held-out seeds are not tuning seeds."""
    table = tuned.load()
    assert len(table) >= 62
    for key, e in table.items():
        assert "held_out" in e and "at_bound" in e, key
        assert hpo.with_derived(e) == e, key
        h = e["held_out"]
        assert h["seeds"] and not set(h["seeds"]) & set(e["tuning_seeds"]), key
        assert h["low"] <= h["mean"] <= h["high"], key


# --------------------------------------------------------------------------- the chapter's tables


def test_shipped_table_lists_every_entry_of_a_setting_by_held_out_objective() -> None:
    t = tuning_report.shipped_table(*DEFAULT)
    keys = [k.split("/")[-1] for k in tuned.load() if k.startswith("/".join(DEFAULT) + "/")]
    assert len(t) == len(keys) >= 20
    assert list(t.columns) == ["budget", "tuned objective", "held-out objective", "95% low", "95% high",
                               "held-out seeds", "optimism", "at a bound"]
    assert "ct (1-D extension)" in t.index and "ct" not in t.index  # labels as the chapter names them
    assert t["held-out objective"].is_monotonic_increasing
    assert (t["95% low"] <= t["held-out objective"]).all() and (t["held-out objective"] <= t["95% high"]).all()
    assert ((t["optimism"] - (t["held-out objective"] - t["tuned objective"])).abs() < 1e-9).all()
    # rerun 0-9 tuned on seed 0, or rerun 3-12 tuned on 0-2: the seeds that were not tuning seeds
    held = {k.split("/")[-1]: len(tuned.held_out(e)["seeds"]) for k, e in tuned.load().items()
            if k.startswith("/".join(DEFAULT) + "/")}
    assert (t["held-out seeds"] >= 9).all() and sorted(t["held-out seeds"]) == sorted(held.values())
    entry = tuned.load()[tuned.entry_key(*DEFAULT, "ft")]
    assert t.loc["ft", "held-out objective"] == entry["held_out"]["mean"]
    assert t.loc["ft", "at a bound"] == tuning_report.bound_text(entry["at_bound"])
    assert t.loc["ft", "budget"] == tuning_report.shipped_budget(entry)
    assert tuning_report.shipped_table("mnist1d", "cnn1d", "random:0.7").empty


def test_provenance_table_reports_the_held_out_objective_and_the_bound_flags(tmp_path: Path) -> None:
    setup = hpo.Setup.create(*DEFAULT, store=Store(tmp_path), show_progress=False)
    results = {"original": hpo.TuneResult("original", {}, tuned=False)}
    for key in ("ft", "msg"):
        entry = hpo.shipped_entry(setup, key)
        assert entry is not None
        sel = hpo.Selection(entry["hparams"], entry["objective"], {0: entry["objective"]}, "shipped", 0)
        results[key] = hpo.TuneResult(key, entry["hparams"], selection=sel)
    results["ga"] = hpo.TuneResult("ga", {"lr": 1e-5}, selection=hpo.Selection({"lr": 1e-5}, 0.3, {0: 0.3}, "search", 0))
    prov = tuning_report.provenance_table(results, setup)
    assert {"objective (tuning seeds)", "held-out objective", "at a bound"} <= set(prov.columns)
    assert list(prov.index) == ["ft", "msg", "ga"]  # untuned references are not listed
    ft = tuned.load()[tuned.entry_key(*DEFAULT, "ft")]
    h = ft["held_out"]
    assert prov.loc["ft", "held-out objective"] == f"{h['mean']:.4f} [{h['low']:.4f}, {h['high']:.4f}]"
    assert prov.loc["ft", "at a bound"] == tuning_report.bound_text(ft["at_bound"])
    assert prov.loc["msg", "at a bound"] == "epochs (high)"
    assert prov.loc["ga", "at a bound"] == "lr (low)"  # the hyperparameters that ran, shipped or not
    assert tuning_report.bound_text({"lr": "high", "epochs": "high"}) == "lr (high), epochs (high)"
    assert tuning_report.bound_text({}) == "-" and tuning_report.held_out_text(None) == "-"
