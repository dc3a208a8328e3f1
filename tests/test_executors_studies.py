"""Executors (issue 18) for the Unrolling SGD and poisoning studies: their units on two
real Dask workers (a LocalCluster on 127.0.0.1) give the serial results.

Each study runs a tiny configuration serially in one store and on the workers in a fresh
one; the frames are compared in every column but the wall-clock ``seconds``. While the
results are read back here, the functions that compute them trip a wire in this process,
so every unit must have run on the workers.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

pytest.importorskip("distributed")

from unlearnlib.data import load_raw, load_splits, make_splits
from unlearnlib.store import Store
from unlearnlib.studies import executors
from unlearnlib.studies import poisoning_study as P
from unlearnlib.studies import unrolling as U
from unlearnlib.studies.experiment import Setup
from unlearnlib.studies.worker_cache import worker_splits
from unlearnlib.training import Recipe

#: Columns that measure wall time.
WALL = ["seconds"]
SEEDS = [0, 1]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=WALL, errors="ignore"), b.drop(columns=WALL, errors="ignore"),
                                  check_exact=True)


def _tripwire(monkeypatch: pytest.MonkeyPatch, *targets: str) -> None:
    """Make every ``module.attribute`` of ``targets`` fail when called in this process."""
    def tripped(*args, **kwargs):
        raise AssertionError("a unit was computed in the calling process, not on a worker")

    for target in targets:
        monkeypatch.setattr(target, tripped)


@pytest.fixture(scope="module")
def ex():
    """One LocalCluster of two worker processes for the module."""
    with executors.DaskExecutor(n_workers=2) as e:
        e.client().wait_for_workers(2)
        yield e


# --------------------------------------------------------------------------- Unrolling SGD

TINY = Recipe(epochs=1, lr=0.05, batch_size=256)
LOSSES = {"CE": 0.0, "CE + SD": 1.0}
LRS = [0.01]
TRAJ = dict(epochs=1, measure_steps=[4, 8], batch_size=256, unlearn_batch=3, hessian_rows=64, power_iters=3)


def _unrolling(splits, store: Store, executor) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """What the chapter does: compute_units, then its serial loops (sigma rows, trajectories)."""
    setup = Setup(splits, "cnn1d", TINY, store, show_progress=False)  # the pretraining recipe: TINY
    ran = U.compute_units(setup, SEEDS, LOSSES, LRS, TRAJ["epochs"], TRAJ["measure_steps"],
                          batch_size=TRAJ["batch_size"], unlearn_batch=TRAJ["unlearn_batch"],
                          hessian_rows=TRAJ["hessian_rows"], power_iters=TRAJ["power_iters"], executor=executor)
    pre = {(name, s): U.pretrain(splits, "cnn1d", s, TINY.with_(sd_lambda=lam), store)
           for name, lam in LOSSES.items() for s in SEEDS}
    sigma = pd.DataFrame([U.sigma_row(pre[(name, s)], splits, name, store, TRAJ["hessian_rows"], TRAJ["power_iters"])
                          for name in LOSSES for s in SEEDS])
    traj = pd.DataFrame([r for s in SEEDS for lr in LRS for lam in LOSSES.values()
                         for r in U.trajectory_rows(splits, "cnn1d", s, lr, lam, pretrain_recipe=TINY, store=store,
                                                    **TRAJ)])
    return ran, sigma, traj


def test_unrolling_units_on_workers_give_the_serial_rows(ex, splits, tmp_path, monkeypatch):
    ran, sigma, traj = _unrolling(splits, Store(tmp_path / "serial"), "serial")
    assert ran == 0 and len(traj) == len(SEEDS) * len(LRS) * len(LOSSES) * len(TRAJ["measure_steps"])
    _tripwire(monkeypatch, "unlearnlib.training.train", "unlearnlib.studies.unrolling.train",
              "unlearnlib.studies.unrolling.finetune_trajectory", "unlearnlib.studies.unrolling.top_hessian_eigenvalue")
    store = Store(tmp_path / "dask")
    ran, sigma_d, traj_d = _unrolling(splits, store, ex)
    # per seed: 2 pretrained checkpoints, their 2 sigma rows and 2 trajectories (1 learning rate)
    assert ran == len(SEEDS) * 3 * len(LOSSES)
    assert store.misses > 0  # the workers' misses, reported back
    _same(sigma, sigma_d)
    _same(traj, traj_d)
    misses = store.misses
    assert _unrolling(splits, store, ex)[0] == 0 and store.misses == misses


def test_unrolling_workers_refuse_splits_they_cannot_recreate(splits):
    key = dataclasses.replace(U.splits_key(splits), fingerprint="0" * 16)
    with pytest.raises(ValueError, match="gives other splits in this worker"):
        U.worker_splits(key)
    assert U.worker_splits(U.splits_key(splits)).fingerprint() == splits.fingerprint()


# --------------------------------------------------------------------------- poisoning

ATTACKS = ["gaussian", "labelflip"]  # labelflip trains the clean model too
FRACTIONS = {"gaussian": 0.05, "labelflip": 0.1}
POISON = dict(budgets=[0.05, 0.1], recipe=Recipe(epochs=3, lr=0.05, batch_size=64), show_progress=False)


def _attacks(clean, store: Store, executor=None) -> pd.DataFrame:
    return P.run_attacks(clean, ATTACKS, "mlp", SEEDS, ["gd", "ga"], FRACTIONS, {"gaussian": {"eps": 0.5}},
                         executor=executor, store=store, **POISON)


def test_poisoning_units_run_on_the_scheduler_a_kernel_inherits(ex, tmp_path, monkeypatch):
    """As a book kernel runs the chapter: no executor given, ``$UNLEARNLIB_SCHEDULER`` set."""
    clean = P.clean_splits("digits", "fraction:0.05", standardize=True)
    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    serial = _attacks(clean, Store(tmp_path / "serial"))
    monkeypatch.setenv(executors.SCHEDULER_ENV, ex.scheduler_address())
    _tripwire(monkeypatch, "unlearnlib.training.train", "unlearnlib.studies.poisoning_study.train",
              "unlearnlib.studies.poisoning_study.evaluate", "unlearnlib.poisoning.craft_poisons")
    store = Store(tmp_path / "dask")
    rows = _attacks(clean, store)
    assert store.misses > 0  # the workers' misses, reported back
    _same(serial, rows)
    assert set(rows["method"]) == {"original", "retrain", "clean", "gd", "ga"}
    misses = store.misses
    _same(serial, _attacks(clean, store))
    assert store.misses == misses  # the second run computed nothing


def test_clean_splits_keep_the_chapter_keys_and_workers_check_them():
    """clean_splits gives the chapter's former splits (same store keys); a worker re-creates
    them, and load_splits' splits, from their key and refuses splits it cannot re-create."""
    raw = load_raw("digits")
    mean, std = raw.x_train.mean(), raw.x_train.std()
    old = make_splits(dataclasses.replace(raw, x_train=(raw.x_train - mean) / std, x_test=(raw.x_test - mean) / std),
                      "fraction:0.05")
    clean = P.clean_splits("digits", "fraction:0.05", standardize=True)
    assert clean.fingerprint() == old.fingerprint() and P.clean_key(clean).standardize
    assert worker_splits(P.clean_key(clean)).fingerprint() == old.fingerprint()
    plain = load_splits("digits", "fraction:0.05")
    assert worker_splits(P.clean_key(plain)).fingerprint() == plain.fingerprint()
    with pytest.raises(ValueError, match="gives other splits in this worker than the sender's"):
        worker_splits(P.clean_key(old))  # standardised, but keyed as load_splits'


def test_text_backdoor_units_run_on_the_scheduler_a_kernel_inherits(ex, tmp_path, monkeypatch):
    """The text chapter's poisoning section (rt_sentiment / text_bag, backdoor), as its
    kernel runs it: no executor given, ``$UNLEARNLIB_SCHEDULER`` set. The workers re-create
    the token splits from their key and give the serial rows."""
    from unlearnlib.training import default_recipe

    clean = load_splits("rt_sentiment", "fraction:0.02")
    kw = dict(fraction=0.02, budgets=[0.1], recipe=default_recipe("rt_sentiment").with_(epochs=1),
              show_progress=False)
    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    serial = P.run_attack(clean, "backdoor", "text_bag", [0], ["ga"], store=Store(tmp_path / "serial"), **kw)
    monkeypatch.setenv(executors.SCHEDULER_ENV, ex.scheduler_address())
    _tripwire(monkeypatch, "unlearnlib.training.train", "unlearnlib.studies.poisoning_study.train",
              "unlearnlib.studies.poisoning_study.evaluate", "unlearnlib.poisoning.craft_poisons")
    store = Store(tmp_path / "dask")
    rows = P.run_attack(clean, "backdoor", "text_bag", [0], ["ga"], store=store, **kw)
    assert store.misses > 0
    _same(serial, rows)
    assert list(rows["method"]) == ["original", "retrain", "ga"]
