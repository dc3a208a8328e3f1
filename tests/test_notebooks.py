"""Every published chapter notebook runs under papermill with the ``test`` profile's
tiny parameters (the benchmark notebook is covered in test_book.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("papermill")  # absent on a bare GPU machine

from unlearnlib.book import build as book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["methods.ipynb", "explore.ipynb", "ulira.ipynb", "unrolling_sgd.ipynb", "poisoning.ipynb",
            "nabla_tau.ipynb", "certified.ipynb"]


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


def _write_fake_cifar10(root: Path, per_batch: int = 100) -> None:
    """cifar-10-batches-py in torchvision's on-disk format (pickled dicts of uint8 rows)."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        x[:, :1024] = (labels[:, None] * 25).astype(np.uint8)  # a learnable red channel
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": x, "labels": labels.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{k}" for k in range(10)]}, f)


@pytest.mark.slow
def test_poisoning_notebook_on_a_cifar10_folder(tmp_path, monkeypatch):
    """The poisoning chapter on CIFAR-10 as torchvision stores it (a small fake folder):
    3-channel 32 px images through every attack, with a conv model."""
    monkeypatch.setenv("UNLEARNLIB_STORE", str(tmp_path / "store"))
    _write_fake_cifar10(tmp_path / "data")
    params = {
        "dataset": "cifar10", "model_name": "small_cnn", "data_root": str(tmp_path / "data"), "epochs": 2,
        "attacks": ["gaussian", "targeted", "labelflip", "backdoor"],
        "fractions": {"gaussian": 0.05, "targeted": 0.05, "labelflip": 0.1, "backdoor": 0.05},
        "attack_params": {"gaussian": {"eps": 0.5}, "targeted": {"n_targets": 1, "eps": 0.5, "steps": 5},
                          "labelflip": {}, "backdoor": {"target": 0, "size": 4}},
        "methods_wanted": ["gd", "ct", "msg"], "budgets": [0.1],
    }
    out = book.execute_notebook(ROOT / "notebooks" / "poisoning.ipynb", tmp_path / "p.ipynb", params,
                                cwd=ROOT / "notebooks", progress=False)
    nb = json.loads(Path(out).read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "backdoor: poisoned" in text and "No unlearning method removes the poisons" in shown
