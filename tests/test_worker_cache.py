"""What a worker re-creates once per process (unlearnlib.studies.worker_cache), and the
done-checks of the units, in this process (no cluster)."""

from __future__ import annotations

import dataclasses

import pytest

from unlearnlib.data import load_splits
from unlearnlib.store import Store
from unlearnlib.studies import poisoning_study as P
from unlearnlib.studies import scorecard as sc
from unlearnlib.studies.worker_cache import Kept, splits_key, stored, worker_splits


def test_kept_makes_each_value_once_and_keeps_the_last_n():
    made = []
    kept = Kept(2)

    def make(k):
        return lambda: made.append(k) or k.upper()

    assert [kept.get(k, make(k)) for k in "aab"] == ["A", "A", "B"] and made == ["a", "b"]
    kept.get("a", make("a"))  # a is now the most recent: c drops b
    kept.get("c", make("c"))
    assert kept.get("a", make("a")) == "A" and made == ["a", "b", "c"]
    kept.get("b", make("b"))
    assert made == ["a", "b", "c", "b"]
    with pytest.raises(ZeroDivisionError):
        kept.get("d", lambda: 1 / 0)
    assert kept.get("d", make("d")) == "D"  # a failed make keeps nothing


def test_stored_is_done_when_every_entry_exists_and_not_while_unknown(tmp_path):
    store = Store(tmp_path)
    a, b = ("results", {"x": 1}), ("results", {"x": 2})
    store.rows(*a, lambda: [{"v": 1}])
    assert stored(store, [a])() and not stored(store, [a, b])()
    wanted: list = []
    done = stored(store, lambda: wanted[0] if wanted else None)  # asked when called
    assert not done()
    wanted.append([a])
    assert done()


def test_worker_splits_are_loaded_once_and_must_be_the_senders():
    splits = load_splits("digits", "fraction:0.05")
    key = splits_key(splits)
    assert worker_splits(key) is worker_splits(key)
    bad = dataclasses.replace(key, fingerprint="0" * 16)
    with pytest.raises(ValueError, match="gives other splits in this worker than the sender's") as e:
        worker_splits(bad, "a hint")
    assert "\n" not in str(e.value) and str(e.value).endswith("a hint.")


def test_the_scorecards_poisoning_units_share_one_seed_run_per_process(tmp_path, monkeypatch):
    """The poisons-and-references unit and every row of one seed load the seed's poisons and
    models once in a worker process; the done-checks follow the store."""
    setting = sc.PoisonSetting(dataset="digits", model="mlp", epochs=1)
    clean, store = sc.poison_clean_splits(setting), Store(tmp_path)
    keyed = P.SeedKeys(splits_key(clean, None, standardize=True), clean, setting.attack, setting.model, 0,
                       setting.fraction, dict(setting.params), sc._poison_recipe(setting), store, False)
    refs = stored(store, lambda: keyed.reference_entries(rows=False))
    assert not refs() and keyed.known() is None  # nothing is crafted to check
    runs = []
    real = P.seed_run
    monkeypatch.setattr(P, "seed_run", lambda *a: runs.append(a[3]) or real(*a))
    for key in (None, "original", "retrain"):
        sc.poison_unit(store, setting, key, *keyed.args)
    assert runs == [0] and refs()
    assert not stored(store, keyed.reference_entries())()  # the poisoning study's rows are not made here


def test_worker_caches_keep_one_setup_and_one_seed_run_per_thread_count(tmp_path, monkeypatch):
    """The thread count is part of the models' store keys, so a worker that serves senders
    with different thread counts must not hand one sender the models loaded for another."""
    import torch

    from unlearnlib.studies.experiment import setup_key, worker_setup
    from unlearnlib.training import default_recipe

    store = Store(tmp_path)
    key = setup_key("digits", "small_cnn", "random:0.1", 1, "cpu", None, store)
    source = splits_key(load_splits("digits", "fraction:0.02"))
    monkeypatch.setattr(P, "seed_run", lambda *a: object())  # what is cached, not what it holds
    monkeypatch.setattr(P, "worker_splits", lambda *a: None)
    run = (store, source, "gaussian", "small_cnn", 0, 0.02, {}, default_recipe("digits"), False)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        setup_1, run_1 = worker_setup(store, key), P.worker_run(*run)
        assert worker_setup(store, key) is setup_1 and P.worker_run(*run) is run_1  # kept
        torch.set_num_threads(2)
        assert worker_setup(store, key) is not setup_1 and P.worker_run(*run) is not run_1
    finally:
        torch.set_num_threads(old)


def test_a_worker_refuses_a_setup_whose_splits_are_not_the_senders(tmp_path):
    """The setup key carries the sender's splits fingerprint: a worker that loads other
    splits under the same arguments (another data folder behind the same path) says so in
    one line instead of computing rows under the sender's labels."""
    from unlearnlib.studies.experiment import Setup, worker_setup

    store = Store(tmp_path)
    sent = Setup.create("digits", "small_cnn", "random:0.1", 1, store=store, show_progress=False).task_key()
    assert sent.fingerprint is not None
    assert worker_setup(store, sent).splits.fingerprint() == sent.fingerprint
    with pytest.raises(ValueError, match=r"^load_splits\('digits'.*other splits in this worker.*same path\.$"):
        worker_setup(store, dataclasses.replace(sent, fingerprint="0" * len(sent.fingerprint)))
