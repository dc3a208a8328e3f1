"""Store keys do not move when code does (issue 35, item 2: shadows as their own layer).

A key is ``content_key(kind, spec)`` of what determines an entry; moving a class or a
function between modules must leave every spec, and so every key, as it was, or a
finished grid, a tuned entry or a scorecard would silently recompute. Each key below is
taken from the code path that reads or writes the entry (a store that records the
lookup and stops it, so nothing trains) and pinned as the string it had before the
shadows moved out of ``unlearnlib.evaluation.lira``. The numerics part of the keys
(device, threads, CPU kernels) is fixed, so the keys are the same on every machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from unlearnlib.models import build_model
from unlearnlib.store import Store, content_key

#: What ``unlearnlib.numerics.numerics`` says on the machine the keys were pinned on (fixed here).
NUMERICS = {"device": "cpu", "threads": 1, "cpu": "AVX2"}


class _Stop(Exception):
    pass


class RecordingStore(Store):
    """Records the key of every lookup; a model checkpoint of a role in ``answer`` comes
    back as a fresh (untrained) model, every other lookup stops with :class:`_Stop`."""

    def __init__(self, root, answer: dict[str, tuple[str, Any]] | None = None) -> None:
        super().__init__(root)
        self.keys: list[tuple[str, str]] = []
        self.answer = answer or {}

    def _record(self, kind: str, spec: dict) -> None:
        self.keys.append((kind, content_key(kind, spec)))

    def checkpoint(self, kind, spec, build):
        self._record(kind, spec)
        if kind == "models" and spec.get("role") in self.answer:
            name, splits = self.answer[spec["role"]]
            return build_model(name, splits.input_shape, splits.num_classes).state_dict(), {"seconds": 1.0}
        raise _Stop

    def rows(self, kind, spec, compute):
        self._record(kind, spec)
        raise _Stop

    def arrays(self, kind, spec, build):
        self._record(kind, spec)
        raise _Stop


def _key(store: RecordingStore, call) -> str:
    with pytest.raises(_Stop):
        call()
    return store.keys[-1][1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from unlearnlib.studies.experiment import Setup

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("unlearnlib.training.numerics", lambda device: dict(NUMERICS))
        yield Setup.create("mnist1d", "cnn1d", "random:0.1", store=Store(tmp_path_factory.mktemp("keys")),
                           show_progress=False)


@pytest.fixture(autouse=True)
def fixed_numerics(monkeypatch):
    monkeypatch.setattr("unlearnlib.training.numerics", lambda device: dict(NUMERICS))


def _refs(setup, store: RecordingStore):
    from unlearnlib.training import train_reference_models

    store.answer = {"original": ("cnn1d", setup.splits), "retrain": ("cnn1d", setup.splits)}
    refs = train_reference_models(setup.splits, "cnn1d", 0, setup.recipe, store, show_progress=False)
    store.answer = {}
    return refs


def test_grid_keys_are_pinned(setup, tmp_path):
    """The reference models, the retrained model's metrics and an ft row of seed 0
    (mnist1d / cnn1d / random:0.1, the default recipe)."""
    from unlearnlib.studies.experiment import reference_metrics, run_method

    store = RecordingStore(tmp_path)
    refs = _refs(setup, store)
    assert store.keys == [("models", "a3b2d7586b3d27c928b92750"), ("models", "2265bae0ece3ff5002a34953")]
    assert _key(store, lambda: reference_metrics(refs, setup.splits, store)) == "c60ce100e29294a3322a9932"
    assert _key(store, lambda: run_method("ft", refs, setup.splits, None, store)) == "c53e30d1da30c763730a4847"


def test_tuning_keys_are_pinned(setup):
    """A tuned entry's space fingerprint, its table key and an Optuna study's name."""
    from unlearnlib import methods
    from unlearnlib.studies import tuned
    from unlearnlib.studies.hpo import space_fingerprint, study_spec

    assert space_fingerprint(setup, "ft") == "114e96dff3ecc8ed0034d1ea"
    assert tuned.entry_key("mnist1d", "cnn1d", "random:0.1", "ft") == "mnist1d/cnn1d/random:0.1/ft"
    assert content_key("optuna", study_spec(setup, methods.get("ft"), 0, True)) == "c91412a80acab3f49f004701"


def test_shadow_and_scorecard_keys_are_pinned(setup, tmp_path):
    """U-LiRA's shadow models and outputs (:class:`ShadowRunner`) and the scorecard's
    shadow arrays and relearning row, for ft."""
    from unlearnlib.evaluation.lira import ShadowConfig
    from unlearnlib.shadows import ShadowRunner
    from unlearnlib.studies import scorecard as sc

    store = RecordingStore(tmp_path)
    runner = ShadowRunner(setup.splits, "cnn1d", ShadowConfig(k=4, seed=0), store, show_progress=False)
    got = {
        "originals": _key(store, runner.originals),
        "unlearned": _key(store, lambda: runner.unlearned("ft")),
        "outputs": _key(store, lambda: runner.outputs("ft")),
        "reference outputs": _key(store, lambda: runner.outputs("retrained-reference")),
        "scorecard shadow": _key(store, lambda: sc.shadow_arrays(runner, "ft")),
        "scorecard relearn": content_key("scorecard_relearn", sc.relearning_spec(setup, "ft", 0)),
    }
    assert got == {
        "originals": "380eedc939e3ed6b228df64a",
        "unlearned": "50d7e62814a9c2ea0ebdce0d",
        "outputs": "098d52272dacec59fcb02318",
        "reference outputs": "ca81dadba230e937afbb0dd9",
        "scorecard shadow": "f8ea4bfe543baf176484f338",
        "scorecard relearn": "f3aa030ebde31b02a0341a14",
    }
