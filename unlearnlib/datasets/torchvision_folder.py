"""torchvision image datasets read from a local folder; nothing is downloaded.

Registers ``cifar10``, ``cifar100`` (32 px, trained with crop+flip augmentation),
``mnist`` and ``fashion_mnist``: the image classification sets of the Deep
Unlearn benchmark (Cadet et al. 2024, arXiv 2410.01276), with their official
train/test splits. The folder is the ``data_root`` argument, else the
environment variable ``UNLEARNLIB_DATA``, else ``~/data``; it must hold the
files in torchvision's layout::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}
    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte          (unpacked)
    <root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte   (unpacked)

Missing files raise :class:`FileNotFoundError` naming the path and how to get
the data, before anything is read; a file that is there but cannot be read (truncated,
corrupt, not in torchvision's format) raises :class:`ValueError` naming that file. Inputs come back as float32 (N, C, H, W) in
[0, 1] (a stored byte ``v`` becomes ``v / 255``), labels as int64; per-channel
normalisation is left to the model.

The CIFAR loaders use torchvision's own classes, but check only that the batch
files *exist*, not their MD5 checksums (a subclass overrides
``_check_integrity`` and drops the metadata MD5; see :func:`_cifar_classes`), so a
re-pickled or reduced copy in the same format loads as well.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import RawDataset, register_dataset

DATA_ENV = "UNLEARNLIB_DATA"


def data_root_path(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``data_root``, else ``$UNLEARNLIB_DATA``, else ``~/data``."""
    root = data_root or os.environ.get(DATA_ENV) or Path.home() / "data"
    return Path(root).expanduser()


def _require(folder: Path, files: list[str], tv_class: str, root: Path) -> None:
    """Raise FileNotFoundError unless every file in ``files`` exists under ``folder``."""
    missing = [f for f in files if not (folder / f).is_file()]
    if not missing:
        return
    gz = [f for f in missing if (folder / f"{f}.gz").is_file()]
    hint = (
        f"\nFound compressed copies of {', '.join(gz)}: unpack them with `gunzip -k {folder}/*.gz`."
        if gz
        else ""
    )
    absent = "none of them exist" if len(missing) == len(files) else f"missing: {', '.join(missing)}"
    raise FileNotFoundError(
        f"{tv_class} data not found: looked in {folder} for {', '.join(files)} ({absent}).{hint}\n"
        "unlearnlib never downloads. On a machine with internet, run\n"
        f"    python -c \"import torchvision; torchvision.datasets.{tv_class}('{root}', download=True)\"\n"
        f"and copy the folder here, or point --data-root / ${DATA_ENV} at a folder that holds it."
    )


def _read_cifar_batch(path: Path, meta_key: str | None = None) -> None:
    """Unpickle one CIFAR batch/meta file and check what torchvision reads from it; raises on
    a bad file. A batch needs ``data`` (N x 3072 bytes) and as many labels (``labels``, or
    CIFAR-100's ``fine_labels``); the meta file (``meta_key`` given) needs its class names."""
    import pickle

    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    if not isinstance(entry, dict):
        raise ValueError(f"holds a {type(entry).__name__}, not a dict")
    if meta_key is not None:
        if meta_key not in entry:
            raise ValueError(f"has no {meta_key!r} entry")
        return
    if "data" not in entry:
        raise ValueError("has no 'data' entry")
    n = len(np.asarray(entry["data"]).reshape(-1, 3, 32, 32))
    key = next((k for k in ("labels", "fine_labels") if k in entry), None)
    if key is None:
        raise ValueError(f"has no {'fine_labels' if 'coarse_labels' in entry else 'labels'!r} entry "
                         "(nor any other labels)")
    if len(entry[key]) != n:
        raise ValueError(f"has {len(entry[key])} {key} for {n} images")


def _read_idx(path: Path) -> None:
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    read_sn3_pascalvincent_tensor(str(path), strict=True)


def _load_checked(load: Callable[[], Any], folder: Path, files: list[str],
                  read: Callable[[Path], None], tv_class: str) -> Any:
    """Run torchvision's loader; when it fails, name the file that cannot be read.

    Unpickling/parsing errors of torchvision name no file; each file is read on its
    own to find the culprit, and a ``ValueError`` names it and what to do.
    """
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - diagnosed below, re-raised if no file is bad
        for name in files:
            try:
                read(folder / name)
            except Exception as bad:  # noqa: BLE001
                why = str(bad).splitlines()[0][:120] if str(bad) else ""
                raise ValueError(
                    f"{tv_class} file {folder / name} cannot be read ({type(bad).__name__}: {why}): "
                    "it is truncated or corrupt, or not in torchvision's format; replace it with a fresh copy of "
                    "the dataset "
                    "(unlearnlib never downloads)."
                ) from e
        raise


def _tensors(
    images: np.ndarray | torch.Tensor, labels: list[int] | torch.Tensor, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images -> float32 (N, C, H, W) in [0, 1]; labels -> int64."""
    x = torch.as_tensor(np.asarray(images))
    x = x.permute(0, 3, 1, 2) if channels_last else x.unsqueeze(1)
    x = x.to(torch.float32).div_(255.0).contiguous()
    return x, torch.as_tensor(labels, dtype=torch.long)


# --------------------------------------------------------------------------- CIFAR


@functools.cache
def _cifar_classes() -> tuple[type, type]:
    """torchvision's CIFAR10/CIFAR100 with existence checks in place of MD5 checks.

    Built lazily so importing unlearnlib does not import torchvision.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    class _LocalCIFAR10(CIFAR10):
        """CIFAR10 that checks only that the batch files exist (no MD5), never downloads."""

        meta = {**CIFAR10.meta, "md5": None}  # check_integrity(path, None) = exists

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    class _LocalCIFAR100(_LocalCIFAR10):
        base_folder = CIFAR100.base_folder
        train_list = CIFAR100.train_list
        test_list = CIFAR100.test_list
        meta = {**CIFAR100.meta, "md5": None}

    return _LocalCIFAR10, _LocalCIFAR100


def _load_cifar(name: str, data_root: str | None, hundred: bool) -> RawDataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    tv = CIFAR100 if hundred else CIFAR10
    root = data_root_path(data_root)
    files = [f for f, _ in tv.train_list + tv.test_list] + [tv.meta["filename"]]
    _require(root / tv.base_folder, files, tv.__name__, root)
    cls = _cifar_classes()[int(hundred)]
    meta = tv.meta["filename"]
    train, test = _load_checked(
        lambda: [cls(str(root), train=t, download=False) for t in (True, False)], root / tv.base_folder, files,
        lambda p: _read_cifar_batch(p, tv.meta["key"] if p.name == meta else None), tv.__name__)
    x_tr, y_tr = _tensors(train.data, train.targets, channels_last=True)
    x_te, y_te = _tensors(test.data, test.targets, channels_last=True)
    return RawDataset(name, x_tr, y_tr, x_te, y_te, 100 if hundred else 10)


@register_dataset("cifar10", augment=True)
def load_cifar10(data_root: str | None = None) -> RawDataset:
    """CIFAR-10: 50,000 train / 10,000 test RGB 32x32 images, 10 classes."""
    return _load_cifar("cifar10", data_root, hundred=False)


@register_dataset("cifar100", augment=True)
def load_cifar100(data_root: str | None = None) -> RawDataset:
    """CIFAR-100: 50,000 train / 10,000 test RGB 32x32 images, 100 fine classes."""
    return _load_cifar("cifar100", data_root, hundred=True)


# --------------------------------------------------------------------------- MNIST

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def _load_mnist_like(name: str, data_root: str | None, fashion: bool) -> RawDataset:
    from torchvision.datasets import MNIST, FashionMNIST

    tv = FashionMNIST if fashion else MNIST
    root = data_root_path(data_root)
    _require(root / tv.__name__ / "raw", MNIST_FILES, tv.__name__, root)
    train, test = _load_checked(
        lambda: [tv(str(root), train=t, download=False) for t in (True, False)],
        root / tv.__name__ / "raw", MNIST_FILES, _read_idx, tv.__name__)
    x_tr, y_tr = _tensors(train.data, train.targets, channels_last=False)
    x_te, y_te = _tensors(test.data, test.targets, channels_last=False)
    return RawDataset(name, x_tr, y_tr, x_te, y_te, 10)


@register_dataset("mnist")
def load_mnist(data_root: str | None = None) -> RawDataset:
    """MNIST: 60,000 train / 10,000 test grey 28x28 digits (C=1), 10 classes."""
    return _load_mnist_like("mnist", data_root, fashion=False)


@register_dataset("fashion_mnist")
def load_fashion_mnist(data_root: str | None = None) -> RawDataset:
    """Fashion-MNIST: 60,000 train / 10,000 test grey 28x28 articles (C=1), 10 classes."""
    return _load_mnist_like("fashion_mnist", data_root, fashion=True)
