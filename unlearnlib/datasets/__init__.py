"""The dataset registry: name -> loader ``f(data_root) -> RawDataset``.

A dataset module in this package registers its loaders with
:func:`register_dataset`; modules are discovered automatically (as
:mod:`unlearnlib.methods` discovers methods), so adding a dataset touches its
own module and nothing else, and no module imports the registry's users back.

- ``embedded``: datasets shipped with installed packages (``mnist1d``, ``digits``, ``mnist5k``);
- ``torchvision_folder``: CIFAR-10/100, MNIST and Fashion-MNIST from a local folder.

Splits, forget specs and batching live in :mod:`unlearnlib.data`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import torch

#: Every random choice of a split uses this seed (Deep Unlearn: 123).
SPLIT_SEED = 123


@dataclass(frozen=True)
class RawDataset:
    """A dataset as loaded: train and test tensors plus a description."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


Loader = Callable[[str | None], RawDataset]
_DATASETS: dict[str, Loader] = {}
_AUGMENT: dict[str, bool] = {}
_LOADED = False


def register_dataset(name: str, augment: bool = False) -> Callable[[Loader], Loader]:
    """Register a loader ``f(data_root) -> RawDataset`` under ``name``; ``augment`` says
    whether its models train with crop + flip augmentation (CIFAR)."""

    def deco(fn: Loader) -> Loader:
        _DATASETS[name] = fn
        _AUGMENT[name] = augment
        return fn

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def available_datasets() -> list[str]:
    """Registered dataset names, the embedded ones first."""
    _load_all()
    embedded = [n for n, fn in _DATASETS.items() if fn.__module__ == f"{__name__}.embedded"]
    return embedded + [n for n in _DATASETS if n not in embedded]


def augments(name: str) -> bool:
    """Whether models of dataset ``name`` train with augmentation."""
    _load_all()
    return _AUGMENT.get(name, False)


def check_dataset(name: str) -> None:
    """Raise ``ValueError`` naming the allowed datasets unless ``name`` is registered."""
    if name not in available_datasets():
        raise ValueError(f"Unknown dataset {name!r}; allowed: {', '.join(available_datasets())}.")


def load_raw(name: str, data_root: str | None = None) -> RawDataset:
    """Load a registered dataset; torchvision sets need a local folder."""
    check_dataset(name)
    return _DATASETS[name](data_root)


__all__ = ["SPLIT_SEED", "RawDataset", "register_dataset", "available_datasets", "augments",
           "check_dataset", "load_raw"]
