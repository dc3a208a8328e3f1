"""The shipped tuned-hyperparameter table (``unlearnlib/tuned/hparams.json``) applies to the
code it ships with, covers every tunable method of the default setting, and its recorded
objectives are what its hyperparameters give when rerun here (issue 13)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnlib import methods as registry
from unlearnlib.store import Store
from unlearnlib.studies import hpo, tuned

DEFAULT = ("mnist1d", "cnn1d", "random:0.1")
TEXT = ("rt_sentiment", "text_bag", "random:0.1")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> hpo.Setup:
    """The default setting with the dataset's own recipe (what the table was tuned on)."""
    return hpo.Setup.create(*DEFAULT, store=Store(tmp_path_factory.mktemp("tuned-store")), show_progress=False)


@pytest.fixture(scope="module")
def text_setup(tmp_path_factory: pytest.TempPathFactory) -> hpo.Setup:
    """The text chapter's setting (issue 16), with its dataset's recipe."""
    return hpo.Setup.create(*TEXT, store=Store(tmp_path_factory.mktemp("tuned-text-store")), show_progress=False)


def _chapter_methods(notebook: str) -> list[str]:
    """The ``methods`` parameter of a book chapter (its parameters cell, as papermill sees it)."""
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / notebook).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "methods" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{notebook} has no methods parameter")


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


def test_every_method_of_the_text_chapter_has_an_entry_that_applies_here(text_setup: hpo.Setup) -> None:
    wanted = [m for m in _chapter_methods("text.ipynb") if m in _tunable()]
    assert wanted, "the text chapter runs no tunable method"
    missing = [m for m in wanted if tuned.entry_key(*TEXT, m) not in tuned.load()]
    assert not missing, f"no shipped rt_sentiment entry for {missing}"
    stale = [m for m in wanted if hpo.shipped_entry(text_setup, m) is None]
    assert not stale, f"shipped rt_sentiment entries that no longer apply: {stale}"


def test_entries_state_their_budget_and_provenance() -> None:
    for key, e in tuned.load().items():
        trials = sum(e["complete_trials"].values())
        assert 0 < trials <= e["trials_per_seed"] * len(e["tuning_seeds"]), key  # failed trials do not count
        for s in e["tuning_seeds"]:
            assert len(e["convergence"][str(s)]) == e["complete_trials"][str(s)], key
        # rerun on seeds 0-9 (tuned on 0, or on 0-2 for the text entries) or on 10 seeds disjoint
        # from the tuning seeds (issue 32's protocol: tuned on 0-2, rerun on 3-12)
        held = sorted(set(map(int, e["rerun"])) - set(map(int, e["tuning_seeds"])))
        assert len(held) >= 7 and e["held_out"]["seeds"] == held, key
        assert len(e["commit"]) >= 40 and e["numerics"]["threads"] == 1, key
        assert len(e["splits"]) == 16, key  # the exact rows it was tuned on (Splits.fingerprint)


def test_an_entry_applies_only_to_the_splits_and_method_version_it_was_tuned_on(
        setup: hpo.Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 30: fraction:F entries tuned on the old draw (F of the pool with D_v) and MSG/CT
    entries tuned before their fixes must not apply: the lookup checks the exact splits and
    the method's version (part of the space fingerprint)."""
    import dataclasses

    entry = hpo.shipped_entry(setup, "ft")
    assert entry is not None
    path = tmp_path / "table.json"
    tuned.write_entries({tuned.entry_key(*DEFAULT, "ft"): entry}, path)
    assert hpo.shipped_entry(setup, "ft", str(path)) is not None  # the same entry applies from any table
    tuned.write_entries({tuned.entry_key(*DEFAULT, "ft"): {**entry, "splits": "0" * 16}}, path)
    assert hpo.shipped_entry(setup, "ft", str(path)) is None  # other rows
    ft = registry.get("ft")
    monkeypatch.setitem(registry._REGISTRY, "ft", dataclasses.replace(ft, version=ft.version + 1))
    assert hpo.shipped_entry(setup, "ft") is None


def _check_reproduced(entry: dict, got: float) -> None:
    """Rerunning an entry on its tuning seed gives its recorded objective norm where torch
    runs the same CPU kernels as the tuning machine (same seed and threads give the same
    numbers). On another kernel path a per-seed norm is a fresh draw: training amplifies
    rounding differences (measured on one machine, ft's seed-0 norm on mnist1d was 0.017,
    0.023 and 0.081 on its AVX512, AVX2 and AVX2-with-MKL-AVX2 paths against 0.042
    recorded), so there the rerun must fall inside the entry's own recorded spread over
    rerun seeds 0-9 (mean +- 3 sd), which a stale or mis-applied entry leaves."""
    seed = str(entry["from_seed"])
    if entry.get("cpu_capability") == torch.backends.cpu.get_cpu_capability():
        assert got == pytest.approx(entry["per_seed"][seed], abs=5e-3)
    else:
        rerun = np.array(list(entry["rerun"].values()))
        mean, sd = rerun.mean(), rerun.std(ddof=1)
        assert abs(got - mean) <= 3 * sd, (
            f"rerun norm {got:.4f} outside the recorded spread {mean:.4f} +- 3 x {sd:.4f} "
            f"(tuned on {entry.get('cpu_capability') or 'an unrecorded'} CPU kernel path)")


@pytest.mark.parametrize("method", ["ft", "msg"])
def test_a_shipped_objective_is_reproduced_by_rerunning_its_hyperparameters(setup: hpo.Setup, method: str) -> None:
    entry = hpo.shipped_entry(setup, method)
    assert entry is not None
    _check_reproduced(entry, hpo.setup_norm(setup, method)(entry["hparams"], int(entry["from_seed"])))


@pytest.mark.parametrize("method", ["ft", "scrub"])
def test_a_shipped_text_objective_is_reproduced(text_setup: hpo.Setup, method: str) -> None:
    """The same check on the text table's entries (rt_sentiment / text_bag)."""
    entry = hpo.shipped_entry(text_setup, method)
    assert entry is not None
    _check_reproduced(entry, hpo.setup_norm(text_setup, method)(entry["hparams"], int(entry["from_seed"])))



def test_the_tuning_reports_name_ct_on_a_1d_model_as_its_extension(setup: hpo.Setup) -> None:
    """Issue 30: the methods chapter's provenance and convergence tables say what ran on cnn1d."""
    from unlearnlib.studies import tuning_report

    entry = hpo.shipped_entry(setup, "ct")
    sel = hpo.Selection(entry["hparams"], entry["objective"], {0: entry["objective"]}, "shipped", 0)
    results = {"ct": hpo.TuneResult("ct", entry["hparams"], selection=sel), "ft": hpo.TuneResult("ft", {}, tuned=False)}
    assert list(tuning_report.provenance_table(results, setup).index) == ["ct (1-D extension)"]
    assert set(tuning_report.convergence_frame(results, setup)["method"]) == {"ct (1-D extension)"}
