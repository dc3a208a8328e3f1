"""The load-independent cost: per-sample gradient evaluations, in closed form."""

from __future__ import annotations

import math

import pytest

from unlearnlib.methods import _cost
from unlearnlib.store import Store
from unlearnlib.studies.experiment import run_method


def test_counting_nests_and_closes():
    with _cost.counting() as outer:
        _cost.add(3)
        with _cost.counting() as inner:
            _cost.add(4)
    _cost.add(100)  # outside: counted nowhere
    assert outer[0] == 7 and inner[0] == 4


@pytest.mark.parametrize("key, rows_per_epoch", [("ft", "retain"), ("ga", "forget")])
def test_loop_methods_count_their_epochs_of_rows(refs, splits, session_store_env, key, rows_per_epoch):
    row = run_method(key, refs, splits, {"epochs": 2}, Store(session_store_env))[0]
    n = len(getattr(splits, rows_per_epoch))
    assert row["grad_evals"] == 2 * n
    assert row["cost_rte"] == pytest.approx(refs.recipe.epochs * len(splits.retain) / (2 * n))


def test_references_and_surgery(refs, splits, session_store_env):
    store = Store(session_store_env)
    assert run_method("retrain", refs, splits, None, store)[0]["cost_rte"] == 1.0
    assert math.isnan(run_method("original", refs, splits, None, store)[0]["cost_rte"])
    # SSD: two Fisher passes, every sampled row once (per-sample gradients)
    ssd = run_method("ssd", refs, splits, None, store)[0]
    assert ssd["grad_evals"] >= len(splits.forget) and ssd["cost_rte"] > 1
