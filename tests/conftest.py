"""Shared fixtures. Everything runs on the CPU unless UNLEARNLIB_TEST_DEVICE says
otherwise (benchmarks/gpu_check.sh runs the suite with ``cuda``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest
import torch

# One process unless a test asks for workers: the command line's default (a local Dask
# cluster of cores / threads workers) would start a cluster in every CLI test;
# tests/test_executors.py and tests/test_store_concurrent.py start theirs explicitly.
os.environ.setdefault("UNLEARNLIB_WORKERS", "1")

from unlearnlib.data import load_splits  # noqa: E402
from unlearnlib.store import Store  # noqa: E402
from unlearnlib.training import Recipe, train_reference_models  # noqa: E402

#: A short recipe that still fits mnist1d's training set almost perfectly.
FAST_RECIPE = Recipe(epochs=12, lr=0.05, batch_size=128)


def pytest_report_header() -> str:
    """Which of torch's CPU kernel paths this run uses (``make test-kernels`` forces another)."""
    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    return (f"torch CPU kernels: {torch.backends.cpu.get_cpu_capability()}"
            + (f" (ATEN_CPU_CAPABILITY={forced})" if forced else ""))


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(os.environ.get("UNLEARNLIB_TEST_DEVICE", "cpu"))


@pytest.fixture(scope="session", autouse=True)
def session_store_env(tmp_path_factory: pytest.TempPathFactory):
    """One store per test session (the mnist1d arrays are generated once into it)."""
    root = tmp_path_factory.mktemp("store")
    old = os.environ.get("UNLEARNLIB_STORE")
    os.environ["UNLEARNLIB_STORE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("UNLEARNLIB_STORE", None)
    else:
        os.environ["UNLEARNLIB_STORE"] = old


@pytest.fixture(scope="session")
def splits(device, session_store_env):
    return load_splits("mnist1d", "random:0.1", device=device)


@pytest.fixture(scope="session")
def refs(splits, session_store_env):
    """Original and retrained cnn1d of seed 0 (trained once per session)."""
    return train_reference_models(splits, "cnn1d", 0, FAST_RECIPE, Store(session_store_env), show_progress=False)


def _entry_spec(path: Path) -> dict:
    """The spec a store entry was written under: a result's JSON or a model's meta record."""
    if path.suffix == ".json":
        return json.loads(path.read_text())["spec"]
    return json.loads(torch.load(path, weights_only=True)["meta"])["spec"]


@pytest.fixture(scope="session")
def find_entry() -> Callable[..., Path]:
    """``find_entry(store_root, kind, **spec_fields)``: the one entry of ``kind`` ("models",
    "results") whose spec has those fields; fails unless exactly one matches."""
    def find(root: Path, kind: str, **match) -> Path:
        hits = [p for p in (root / kind).glob("*.*") if p.suffix in (".pt", ".json")
                and all(_entry_spec(p).get(k) == v for k, v in match.items())]
        assert len(hits) == 1, (kind, match, hits)
        return hits[0]
    return find


@pytest.fixture
def no_tf32():
    """Exact comparisons on CUDA: TF32 convolutions would differ between the engine's paths
    (tests/test_ensemble.py, tests/test_methods_engine.py)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture(scope="module")
def pool(splits):
    """400 training rows: the many-model engine's tests train on them."""
    return splits.train.subset(torch.arange(400))
