"""Local torchvision datasets: tiny fake folders in the real on-disk formats."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnlib import data
from unlearnlib.datasets.torchvision_folder import MNIST_FILES

PER_BATCH = 10
PIXEL = 201  # a known byte written at a known position; must come back as PIXEL / 255


def _images(n: int, seed: int, shape: tuple[int, ...]) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[0, 0] = 0
    x.reshape(n, -1)[0, 1] = 255
    x.reshape(n, -1)[1, 5] = PIXEL
    return x


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root: Path) -> tuple[np.ndarray, list[int]]:
    """cifar-10-batches-py with 5 train batches + test batch; returns the first train batch."""
    folder = root / "cifar-10-batches-py"
    first = None
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x = _images(PER_BATCH, i, (3072,))
        y = [(i + j) % 10 for j in range(PER_BATCH)]
        _pickle(folder / name, {"batch_label": name, "data": x, "labels": y})
        first = first or (x, y)
    _pickle(folder / "batches.meta", {"label_names": [f"c{k}" for k in range(10)]})
    return first


def write_cifar100(root: Path) -> tuple[np.ndarray, list[int]]:
    folder = root / "cifar-100-python"
    out = None
    for i, name in enumerate(["train", "test"]):
        x = _images(PER_BATCH, 10 + i, (3072,))
        y = [(7 * j + i) % 100 for j in range(PER_BATCH)]
        _pickle(folder / name, {"data": x, "fine_labels": y, "coarse_labels": [0] * PER_BATCH})
        out = out or (x, y)
    _pickle(folder / "meta", {"fine_label_names": [f"f{k}" for k in range(100)]})
    return out


def _idx(path: Path, arr: np.ndarray) -> None:
    """Write a uint8 idx file: magic 0x0000_08_<ndim>, big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str) -> tuple[np.ndarray, np.ndarray]:
    raw = root / folder / "raw"
    x_tr, x_te = _images(12, 20, (28, 28)), _images(5, 21, (28, 28))
    y_tr, y_te = np.arange(12, dtype=np.uint8) % 10, np.arange(5, dtype=np.uint8)[::-1]
    for name, arr in zip(MNIST_FILES, [x_tr, y_tr, x_te, y_te], strict=True):
        _idx(raw / name, arr)
    return x_tr, y_tr


def _check_common(raw: data.RawDataset, n_train: int, n_test: int, shape: tuple[int, ...]) -> None:
    assert raw.x_train.shape == (n_train, *shape) and raw.x_test.shape == (n_test, *shape)
    for x in (raw.x_train, raw.x_test):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert raw.y_train.dtype == torch.long and raw.y_test.dtype == torch.long
    assert raw.input_shape == shape


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_round_trip(tmp_path: Path, name: str) -> None:
    x, y = (write_cifar10 if name == "cifar10" else write_cifar100)(tmp_path)
    raw = data.load_raw(name, str(tmp_path))
    n_train = PER_BATCH * (5 if name == "cifar10" else 1)
    _check_common(raw, n_train, PER_BATCH, (3, 32, 32))
    assert raw.num_classes == (10 if name == "cifar10" else 100)
    assert raw.y_train[:PER_BATCH].tolist() == y
    # Row-major CHW bytes of the pickle map exactly onto (C, H, W).
    expected = torch.from_numpy(x.reshape(-1, 3, 32, 32)).float() / 255
    assert torch.equal(raw.x_train[:PER_BATCH], expected)
    assert raw.x_train[1, 0, 0, 5].item() == torch.tensor(PIXEL / 255, dtype=torch.float32).item()
    assert raw.x_train[0, 0, 0, 0].item() == 0.0 and raw.x_train[0, 0, 0, 1].item() == 1.0
    assert data.augments(name) is True


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_round_trip(tmp_path: Path, name: str, folder: str) -> None:
    x, y = write_mnist(tmp_path, folder)
    raw = data.load_raw(name, str(tmp_path))
    _check_common(raw, 12, 5, (1, 28, 28))
    assert raw.num_classes == 10
    assert raw.y_train.tolist() == y.tolist() and raw.y_test.tolist() == [4, 3, 2, 1, 0]
    assert torch.equal(raw.x_train[:, 0], torch.from_numpy(x).float() / 255)
    assert raw.x_train[1, 0, 0, 5].item() == torch.tensor(PIXEL / 255, dtype=torch.float32).item()
    assert data.augments(name) is False


def test_load_splits_on_fake_cifar10(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    splits = data.load_splits("cifar10", data_root=str(tmp_path))
    assert sum(splits.sizes().values()) == 6 * PER_BATCH
    assert splits.sizes()["test"] == PER_BATCH
    assert splits.input_shape == (3, 32, 32) and splits.augment is True
    assert len(splits.forget) > 0 and len(splits.retain) > 0


def test_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path, "MNIST")
    monkeypatch.setenv("UNLEARNLIB_DATA", str(tmp_path))
    assert data.load_raw("mnist").x_train.shape == (12, 1, 28, 28)
    # An explicit data_root wins over the environment variable.
    with pytest.raises(FileNotFoundError):
        data.load_raw("mnist", str(tmp_path / "elsewhere"))


@pytest.mark.parametrize(
    "name,sub",
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("mnist", "MNIST/raw"),
        ("fashion_mnist", "FashionMNIST/raw"),
    ],
)
def test_missing_folder_names_path(tmp_path: Path, name: str, sub: str) -> None:
    root = tmp_path / "no-data-here"
    with pytest.raises(FileNotFoundError) as err:
        data.load_raw(name, str(root))
    msg = str(err.value)
    assert str(root / sub) in msg and "download=True" in msg and "UNLEARNLIB_DATA" in msg
    assert not root.exists()  # nothing was created, let alone downloaded


def test_partial_cifar_folder_lists_missing_file(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing: data_batch_3"):
        data.load_raw("cifar10", str(tmp_path))


def test_gzipped_mnist_gets_unpack_hint(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f"{f}.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="gunzip"):
        data.load_raw("mnist", str(tmp_path))
