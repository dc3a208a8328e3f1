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
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from .datasets import (  # noqa: F401  (re-exported: the dataset registry)
    SPLIT_SEED,
    RawDataset,
    augments,
    available_datasets,
    check_dataset,
    load_raw,
    register_dataset,
)

VALIDATION_FRACTION = 0.15


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


# --------------------------------------------------------------------------- forget specs


@dataclass(frozen=True)
class ForgetSpec:
    """A parsed forget specification.

    - ``random:F``   forget a random fraction F of the non-validation pool D_r u D_f, the
      data the original model trains on (Deep Unlearn: 0.1)
    - ``fraction:F`` the same draw under nabla-tau's name: F of the training data the
      original model saw (its 3%, 15%, 30%), so ``fraction:F`` and ``random:F`` select
      the same rows. nabla-tau's reference draws its validation data from the test set;
      here D_v stays Deep Unlearn's held-out 15% of the pool (the same distribution), so
      the test set is never touched before the final evaluation
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
        n_f = int(round(spec.value * len(pool)))
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
        augment=augments(raw.name),
    )


def load_splits(
    dataset: str = "mnist1d",
    forget: str = "random:0.1",
    data_root: str | None = None,
    device: str | torch.device = "cpu",
    split_seed: int = SPLIT_SEED,
) -> Splits:
    """Load ``dataset`` and return its splits, resident on ``device``."""
    check_dataset(dataset)
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

