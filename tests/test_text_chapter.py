"""The text chapter (notebooks/text.ipynb): committed clean, and it runs end to end with tiny
parameters, publishing its verdicts for the dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnlib.studies import verdicts as vd

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "text.ipynb"

#: The ``test`` profile's parameters of the chapter (book/profiles.yml): three methods (the
#: ranking comparison needs three in both grids), one seed, two epochs, four shadows.
TEST_PARAMS = {"methods": ["ft", "ga", "ngplus"], "seeds": "1", "n_trials": 1, "compare_n_trials": 1, "epochs": 2,
               "ulira_k": 4, "ulira_methods": ["original", "retrain", "ft"], "shadow_epochs": 1,
               "poison_methods": ["gd"], "poison_budgets": [0.1], "nabla_baselines": ["ft"]}


def test_notebook_is_commit_clean_and_parameterised():
    nb = json.loads(NOTEBOOK.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb["cells"] if c["cell_type"] == "code")
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    names = {line.split("=")[0].strip() for line in "".join(params[0]["source"]).splitlines() if "=" in line}
    assert set(TEST_PARAMS) <= names


@pytest.mark.slow
def test_notebook_runs_with_tiny_parameters_and_publishes_its_verdicts(tmp_path, monkeypatch):
    pytest.importorskip("papermill")
    from unlearnlib.book import build as book

    monkeypatch.setenv("UNLEARNLIB_STORE", str(tmp_path / "store"))
    monkeypatch.setenv(vd.PUBLISH_ENV, str(tmp_path / "verdicts"))
    out = book.execute_notebook(NOTEBOOK, tmp_path / "t.ipynb", TEST_PARAMS, cwd=ROOT / "notebooks", progress=False)
    nb = json.loads(Path(out).read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    published = json.loads((tmp_path / "verdicts" / "text.json").read_text())
    claims = {v["claim"] for v in published["verdicts"]}
    assert "Method rankings carry over from mnist1d to rt_sentiment" in claims
    # Pawelczyk et al.'s findings and nabla-tau's, each said to be about text
    assert {"No unlearning method removes the poisons within the budget (on text)",
            "nabla-tau forgets random forget sets of up to 30% of the data (on text)"} <= claims
    # one seed tests no claim: the verdicts say so rather than guess
    assert {v["state"] for v in published["verdicts"]} == {vd.UNTESTED}
