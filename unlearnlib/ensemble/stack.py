"""The container: K models of one architecture as stacked tensors, and how many of them
the grouped path runs at once on the CPU (:func:`grouped_chunk`)."""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from ..models import build_model
from .fold import _grouped_forward, fold_plan


class Ensemble:
    """K models of one architecture as stacked tensors (leading dimension K).

    ``state_dict()`` has the keys of one model's state dict with a leading K
    dimension, so it can be stored as one checkpoint.
    """

    def __init__(self, base: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
        self.base = base  # skeleton on the meta device; holds no data
        self.params = params
        # contiguous, so the grouped path's (K*C,) views of BatchNorm statistics write through
        self.buffers = {k: v if v.is_contiguous() else v.contiguous() for k, v in buffers.items()}
        sizes = {v.shape[0] for v in [*params.values(), *buffers.values()]}
        if len(sizes) != 1:
            raise ValueError(f"Stacked tensors disagree on K: {sorted(sizes)}.")

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> "Ensemble":
        if not models:
            raise ValueError("Ensemble.from_models needs at least one model.")
        params, buffers = stack_module_state(list(models))
        params = {k: v.detach().clone() for k, v in params.items()}
        base = copy.deepcopy(models[0]).to("meta")
        return cls(base, params, {k: v.clone() for k, v in buffers.items()})

    @classmethod
    def build(
        cls, model_name: str, input_shape: tuple[int, ...], num_classes: int, seeds: Sequence[int],
        device: torch.device | str = "cpu",
    ) -> "Ensemble":
        """K freshly initialised models, model k as ``build_model(..., seed=seeds[k])``."""
        models = [build_model(model_name, input_shape, num_classes, seed=int(s)) for s in seeds]
        return cls.from_models(models).to(device)

    @classmethod
    def from_state_dict(
        cls, model_name: str, input_shape: tuple[int, ...], num_classes: int, state: dict[str, torch.Tensor]
    ) -> "Ensemble":
        base = build_model(model_name, input_shape, num_classes).to("meta")
        names = {n for n, _ in base.named_parameters()}
        params = {k: v.clone() for k, v in state.items() if k in names}
        buffers = {k: v.clone() for k, v in state.items() if k not in names}
        return cls(base, params, buffers)

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def to(self, device: torch.device | str) -> "Ensemble":
        return Ensemble(self.base, {k: v.to(device) for k, v in self.params.items()},
                        {k: v.to(device) for k, v in self.buffers.items()})

    def clone(self) -> "Ensemble":
        return Ensemble(self.base, {k: v.detach().clone() for k, v in self.params.items()},
                        {k: v.clone() for k, v in self.buffers.items()})

    def select(self, rows: Sequence[int] | torch.Tensor) -> "Ensemble":
        """The sub-ensemble of models ``rows`` (a copy)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        return Ensemble(self.base, {k: v[rows].detach().clone() for k, v in self.params.items()},
                        {k: v[rows].clone() for k, v in self.buffers.items()})

    def assign(self, rows: Sequence[int] | torch.Tensor, other: "Ensemble") -> None:
        """Write ``other``'s models into positions ``rows`` (in place)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        with torch.no_grad():
            for k, v in self.params.items():
                v[rows] = other.params[k].to(v.device)
            for k, v in self.buffers.items():
                v[rows] = other.buffers[k].to(v.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{k: v.detach() for k, v in self.params.items()}, **self.buffers}

    def model_state(self, k: int) -> dict[str, torch.Tensor]:
        return {name: v[k].detach().clone() for name, v in self.state_dict().items()}

    def model(self, k: int) -> nn.Module:
        """Model ``k`` as an ordinary module (a copy, on the ensemble's device)."""
        dtype = next(iter(self.params.values())).dtype  # an fp64 ensemble gives fp64 models
        m = copy.deepcopy(self.base).to_empty(device=self.device).to(dtype)
        m.load_state_dict(self.model_state(k))
        return m.eval()

    def models(self) -> list[nn.Module]:
        return [self.model(k) for k in range(len(self))]

    # -- compute --------------------------------------------------------------
    @property
    def foldable(self) -> bool:
        """Whether the grouped path can run this architecture (see :func:`fold_plan`)."""
        return fold_plan(self.base) is not None

    def forward(self, x: torch.Tensor, shared: bool = False, train: bool = True, path: str = "vmap") -> torch.Tensor:
        """Logits of every model, (K, B, C): ``x`` is (K, B, ...) or, with ``shared``, (B, ...) for all.

        ``train`` selects BatchNorm's mode (train: batch statistics, running
        statistics updated in place; eval: running statistics). ``path`` is
        ``"vmap"`` or ``"grouped"`` (same function, different kernels).
        """
        if path == "grouped":
            plan = fold_plan(self.base)
            if plan is None:
                raise ValueError(f"{type(self.base).__name__} does not fold into grouped layers; "
                                 "use path='vmap' or 'loop'.")
            if shared:
                x = x.expand(len(self), *x.shape)
            return _grouped_forward(plan, self.params, self.buffers, x, train)
        if path != "vmap":
            raise ValueError(f"Unknown forward path {path!r}; allowed: vmap, grouped.")
        self.base.train(train)

        def f(p: dict, b: dict, xi: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (p, b), (xi,))

        return torch.vmap(f, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1024, path: str = "auto") -> torch.Tensor:
        """Eval-mode logits of every model on the same inputs: (K, N, C).

        ``path="auto"``: grouped where the model folds on the CPU, in chunks of
        models sized by :func:`grouped_chunk` (64 cnn1d models on 2,040 samples, 1
        thread: 0.31 s against 2.0 s by vmap and 0.95 s grouped in one piece), else vmap.
        """
        if path == "auto":
            path = "grouped" if self.device.type == "cpu" and self.foldable else "vmap"
        parts = [range(len(self))]
        if path == "grouped" and self.device.type == "cpu":
            size = grouped_chunk(self, x[None, :batch_size])
            parts = [range(i, min(i + size, len(self))) for i in range(0, len(self), size)]
        out = []
        for rows in parts:
            sub = self if len(rows) == len(self) else self.select(list(rows))
            out.append(torch.cat([sub.forward(x[i : i + batch_size], shared=True, train=False, path=path)
                                  for i in range(0, len(x), batch_size)], dim=1))
        return torch.cat(out, dim=0)

    def requires_grad_(self, flag: bool = True) -> "Ensemble":
        for v in self.params.values():
            v.requires_grad_(flag)
        return self


def arch_key(ens: Ensemble) -> str:
    return hashlib.sha256(repr(ens.base).encode()).hexdigest()[:12]


#: The grouped path on the CPU runs at most this many bytes in one layer's activation at
#: once (models in chunks): on a 2-core EPYC with 32 MiB of L3 shared with other processes,
#: 64 cnn1d models at batch 128 (21 MB per activation in one piece) trained alike in chunks
#: of 8, 16, 22 (this budget) and 32 (3.1-3.3 s) and 1.3x slower in one piece, where
#: glibc hands the larger buffers back to the kernel and re-faults them (~550k page faults
#: per run against < 100); before the channels-last layout, batch 256 was 1.5x faster in
#: chunks of 16 than in one piece.
GROUPED_CHUNK_BYTES = 8 * 2**20


def _largest_activation_bytes(ens: Ensemble, x: torch.Tensor) -> int:
    """Bytes of the largest layer output of one model (model 0) on batch ``x[0]``."""
    m = ens.model(0)
    sizes = [x[0].numel() * x.element_size()]
    hooks = [mod.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() * out.element_size()))
             for mod in m.modules() if not list(mod.children())]
    try:
        with torch.no_grad():
            m(x[0])
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def grouped_chunk(ens: Ensemble, x: torch.Tensor) -> int:
    """Models per grouped step on the CPU: as many as keep one layer's activation within
    :data:`GROUPED_CHUNK_BYTES`, balanced over the chunks (``x``: (K or 1, B, ...) batches)."""
    K = len(ens)
    most = max(1, GROUPED_CHUNK_BYTES // _largest_activation_bytes(ens, x))
    return math.ceil(K / math.ceil(K / most))


def _chunks(rows: Sequence[int], size: int) -> list[list[int]]:
    rows = list(rows)
    return [rows[i : i + size] for i in range(0, len(rows), size)]

