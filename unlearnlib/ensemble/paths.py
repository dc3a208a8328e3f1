"""Which path runs a group of models (``auto``: calibrated on the CPU, see the package
docstring), in what chunks, and how models are grouped by subset size."""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..data import Split
from .fold import FOLD_LEAVES
from .optim import StackedSGD, _ce
from .stack import Ensemble, _chunks, arch_key, grouped_chunk

PATHS = ("auto", "grouped", "vmap", "loop")

_PATH_CACHE: dict[tuple, str] = {}
#: A batched path must beat the loop by this factor on the CPU to be chosen.
CPU_BATCHED_MARGIN = 1.15
#: Runs shorter than this (steps per model) use the loop on the CPU: calibrating costs more than it saves.
MIN_CALIBRATED_STEPS = 20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched_paths(ens: Ensemble) -> tuple[str, ...]:
    """The batched paths that can run ``ens``: grouped (if it folds) and vmap."""
    return ("grouped", "vmap") if ens.foldable else ("vmap",)


def _per_model_batches(ens: Ensemble, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, B, ...) and (K, B): ``y`` of shape (B,) means one batch ``x`` (B, ...) shared by all models."""
    K = len(ens)
    if y.dim() == 1:
        return x.expand(K, *x.shape).contiguous(), y.expand(K, *y.shape).contiguous()
    if y.shape[0] != K or x.shape[:2] != y.shape:
        raise ValueError(f"Need one batch per model: x (K, B, ...) and y (K, B) with K={K}; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}.")
    return x, y


def _loop_step(ens: Ensemble, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One ``training.train`` step of each of the K models (copies), model k on batch k."""
    models = [ens.model(k).train() for k in range(len(ens))]
    opts = [torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4) for m in models]

    def step() -> None:
        for k, (m, opt) in enumerate(zip(models, opts, strict=True)):
            loss = F.cross_entropy(m(x[k]), y[k])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return step


def _batched_step(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, path: str) -> Callable[[], None]:
    """One step of all K models (copies) on their K batches, by ``path``, in the chunks
    of models that training by that path uses (:func:`_default_chunk`)."""
    parts = _chunks(range(len(ens)), _default_chunk(path, ens, x) or len(ens))
    works = [(ens.select(rows).requires_grad_(True), x[rows], y[rows]) for rows in parts]
    opts = [StackedSGD(w.params, 0.9, 5e-4) for w, _, _ in works]

    def step() -> None:
        for (work, xc, yc), opt in zip(works, opts, strict=True):
            _ce(work.forward(xc, path=path), yc).sum().backward()
            opt.step(1e-3)

    return step


def _default_chunk(path: str, ens: Ensemble, x: torch.Tensor) -> int | None:
    """Models per batched step when the caller gives no ``chunk``: :func:`grouped_chunk` for
    the grouped path on the CPU, else all (None)."""
    return grouped_chunk(ens, x) if path == "grouped" and ens.device.type == "cpu" else None


def calibrate(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, n_steps: int = 3,
              paths: Sequence[str] | None = None) -> dict[str, float]:
    """Seconds per training step of all K models, for each path.

    Like with like: every path runs forward, backward and an SGD update of the
    same K models (throw-away copies; the ensemble is not touched) on the same
    K batches, ``x`` (K, B, ...) and ``y`` (K, B) (or one batch (B, ...), (B,)
    for all); the loop steps K separate models, as ``train_ensemble``'s loop does.
    Each path takes one warm-up step, then ``n_steps`` timed steps interleaved
    across paths (so a neighbour's load falls on all of them); the fastest is kept.
    With one CPU thread the clock is this process's CPU time: time the core spent
    on other processes is no property of a path (on a 2-core machine at load 6 the
    wall-clock calibration picked the loop for 64 cnn1d models at batch 256 where
    CPU time measured grouped 1.3x faster). Paths default to
    :func:`batched_paths` plus ``"loop"``.
    """
    x, y = _per_model_batches(ens, x, y)
    paths = tuple(paths or (*batched_paths(ens), "loop"))
    steps = {p: _loop_step(ens, x, y) if p == "loop" else _batched_step(ens, x, y, p) for p in paths}
    for step in steps.values():
        step()
    clock = time.process_time if ens.device.type == "cpu" and torch.get_num_threads() == 1 else time.perf_counter
    best = dict.fromkeys(paths, math.inf)
    for _ in range(n_steps):
        for p, step in steps.items():
            _sync(ens.device)
            t = clock()
            step()
            _sync(ens.device)
            best[p] = min(best[p], clock() - t)
    return best


def pick_path(times: dict[str, float]) -> str:
    """The fastest batched path if it beats the loop by :data:`CPU_BATCHED_MARGIN`, else the loop."""
    batched = min((p for p in times if p != "loop"), key=times.__getitem__)
    return batched if times[batched] * CPU_BATCHED_MARGIN < times["loop"] else "loop"


def choose_path(path: str, ens: Ensemble, x: torch.Tensor, y: torch.Tensor, steps: int) -> str:
    """Resolve ``auto`` (see the module docstring); check an explicit path against the model.

    ``x``, ``y``: one batch per model, (K, B, ...) and (K, B), as the run will
    see them (or a single batch (B, ...), (B,) shared by all), for the calibration.
    """
    if path not in PATHS:
        raise ValueError(f"Unknown path {path!r}; allowed: {', '.join(PATHS)}.")
    if path == "grouped" and not ens.foldable:
        raise ValueError(f"path='grouped' needs a model of {', '.join(t.__name__ for t in FOLD_LEAVES)} "
                         f"in a plain chain; {type(ens.base).__name__} does not fold. Use 'vmap' or 'loop'.")
    if path != "auto":
        return path
    if len(ens) == 1:
        return "loop"
    if ens.device.type == "cuda":
        return "vmap"
    if steps < MIN_CALIBRATED_STEPS:
        return "loop"
    x, y = _per_model_batches(ens, x, y)
    key = (arch_key(ens), tuple(x.shape), len(ens), str(ens.device), torch.get_num_threads())
    if key not in _PATH_CACHE:  # the first batched path only: grouped beat vmap in every CPU case measured
        _PATH_CACHE[key] = pick_path(calibrate(ens, x, y, paths=(batched_paths(ens)[0], "loop")))
    return _PATH_CACHE[key]


def _first_batches(data: Split, masks: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's first ``batch_size`` samples of its mask: (K, B, ...), (K, B) (for calibration)."""
    idx = torch.stack([torch.nonzero(m).squeeze(1)[:batch_size] for m in masks]).to(data.x.device)
    return data.x[idx], data.y[idx]


# --------------------------------------------------------------------------- grouping


def _check_masks(masks: torch.Tensor, k: int, n: int, what: str = "masks") -> torch.Tensor:
    masks = torch.as_tensor(masks).cpu()
    if masks.dtype != torch.bool or masks.shape != (k, n):
        raise ValueError(f"{what} must be a boolean tensor of shape (K, N) = ({k}, {n}); "
                         f"got {tuple(masks.shape)} {masks.dtype}.")
    return masks


def _groups(*counts: torch.Tensor) -> dict[tuple, list[int]]:
    """Model indices grouped by their subset sizes (models in a group share step shapes)."""
    out: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(c.tolist() for c in counts), strict=False)):
        out.setdefault(tuple(key), []).append(i)
    return out


def _oom_chunks(run: Callable[[list[int]], None], rows: list[int], chunk: int | None) -> None:
    """Run ``rows`` in chunks; on CUDA out-of-memory halve the chunk and retry."""
    size = chunk or len(rows)
    start = 0
    while start < len(rows):
        part = rows[start : start + size]
        try:
            run(part)
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            size = max(1, size // 2)
            torch.cuda.empty_cache()
            continue
        start += len(part)

