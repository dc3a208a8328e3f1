"""The shipped tuned-hyperparameter table (``unlearnlib/tuned/hparams.json``) applies to the
code it ships with, covers every tunable method of the default setting, and its recorded
objectives are what its hyperparameters give when rerun here (issue 13)."""

from __future__ import annotations

import pytest

from unlearnlib import methods as registry
from unlearnlib.store import Store
from unlearnlib.studies import hpo, tuned

DEFAULT = ("mnist1d", "cnn1d", "random:0.1")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> hpo.Setup:
    """The default setting with the dataset's own recipe (what the table was tuned on)."""
    return hpo.Setup.create(*DEFAULT, store=Store(tmp_path_factory.mktemp("tuned-store")), show_progress=False)


def _tunable() -> list[str]:
    return [k for k in registry.available() if not registry.get(k).reference and registry.get(k).search_space]


def test_every_tunable_method_has_an_entry_that_applies_here(setup: hpo.Setup) -> None:
    """A search space, default or recipe changed without retuning makes its entry stale:
    :func:`hpo.shipped_entry` then returns None and this test names the method."""
    table = tuned.load()
    missing = [m for m in _tunable() if tuned.entry_key(*DEFAULT, m) not in table]
    assert not missing, f"no shipped entry for {missing}"
    stale = [m for m in _tunable() if hpo.shipped_entry(setup, m) is None]
    assert not stale, f"shipped entries that no longer apply (space, defaults or recipe changed): {stale}"


def test_entries_state_their_budget_and_provenance() -> None:
    for key, e in tuned.load().items():
        trials = sum(e["complete_trials"].values())
        assert 0 < trials <= e["trials_per_seed"] * len(e["tuning_seeds"]), key  # failed trials do not count
        assert len(e["convergence"]["0"]) == e["complete_trials"]["0"], key
        assert sorted(map(int, e["rerun"])) == list(range(10)), key
        assert len(e["commit"]) >= 40 and e["numerics"]["threads"] == 1, key


@pytest.mark.parametrize("method", ["ft", "msg"])
def test_a_shipped_objective_is_reproduced_by_rerunning_its_hyperparameters(setup: hpo.Setup, method: str) -> None:
    """Rerunning the entry's hyperparameters on its tuning seed gives its recorded objective
    norm (the same seed and threads give the same numbers; a small tolerance for kernels of
    another CPU)."""
    entry = hpo.shipped_entry(setup, method)
    assert entry is not None
    seed = int(entry["from_seed"])
    got = hpo.setup_norm(setup, method)(entry["hparams"], seed)
    assert got == pytest.approx(entry["per_seed"][str(seed)], abs=5e-3)
