"""Every published chapter notebook runs under papermill with the ``test`` profile's
tiny parameters (the benchmark notebook is covered in test_book.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("papermill")  # absent on a bare GPU machine

from unlearnlib import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["methods.ipynb", "explore.ipynb", "ulira.ipynb", "unrolling_sgd.ipynb", "poisoning.ipynb",
            "nabla_tau.ipynb"]


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_is_commit_clean(name):
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_runs_with_test_profile(name, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLIB_STORE", str(tmp_path / "store"))
    params = book.load_profiles(ROOT)["test"][name]
    out = book.execute_notebook(ROOT / "notebooks" / name, tmp_path / name, params,
                                cwd=ROOT / "notebooks", progress=False)
    nb = json.loads(Path(out).read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # every chapter shows at least one figure or table computed by the run
    rich = [o for c in nb["cells"] for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert rich, f"{name} produced no HTML output (figure or table)"
