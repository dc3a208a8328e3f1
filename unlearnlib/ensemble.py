"""Many models of one architecture trained as one computation (shadows and seeds).

LiRA (Carlini et al. 2022) and U-LiRA (Hayes et al. 2024, arXiv 2403.01218)
need tens to hundreds of shadow models; the NeurIPS 2023 unlearning challenge
score (Triantafillou et al. 2024) needs N retrained and N unlearned models. An
:class:`Ensemble` holds K models as stacked parameters and buffers
(``torch.func.stack_module_state``); one step runs all of them with
``torch.vmap`` over ``torch.func.functional_call``.

Semantics are those of the per-model code, exactly:

- :func:`train_ensemble` does what :func:`unlearnlib.training.train` does for each
  model ``k`` on ``data.subset(masks[k])`` with data-order seed ``seeds[k]``: the
  same CPU generator calls (one ``randperm`` per epoch, then augmentation draws),
  the same per-step schedule (taken from :func:`~unlearnlib.training.make_schedule`)
  and ``torch.optim.SGD``'s update (weight decay added to the gradient, momentum
  buffer initialised with the first gradient, dampening 0, no Nesterov).
- :func:`unlearn_ensemble` does what ``methods.get(key)(model_k, data_k, **hp)``
  does; ``ft``, ``ga``, ``ngplus``, ``retrain`` and ``original`` run batched,
  every other registered method falls back to that per-model call.

BatchNorm: the stacked buffers go through ``functional_call`` with the
parameters, so ``F.batch_norm`` updates each model's running statistics in place
inside ``vmap`` (one slice per model), as the per-model loop does. The
alternative, ``torch.func.replace_all_batch_norm_modules_``, drops the running
statistics (eval mode would then use batch statistics) and would change what a
trained model predicts, so it is not used.

Models whose subsets differ in size cannot share a step (batch shapes differ),
so they are grouped by subset size and each group runs as one computation.

Path choice (``path="auto"``): on CUDA always vmap; on the CPU a short
calibration (a few forward/backward steps of each path on throw-away copies)
picks vmap only if it is clearly faster than the loop, so the engine is never
slower than the per-model loop beyond the calibration itself. Decisions are
cached per (architecture, input shape, batch size, K, device, threads).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from .data import Split, augment_batch, index_batches
from .models import build_model
from .training import Recipe, make_schedule, progress, train

PATHS = ("auto", "vmap", "loop")
#: Methods whose unlearning step runs batched; the rest loop over ``methods.get(key)``.
BATCHED_METHODS = ("original", "retrain", "ft", "ga", "ngplus")


# --------------------------------------------------------------------------- the container


class Ensemble:
    """K models of one architecture as stacked tensors (leading dimension K).

    ``state_dict()`` has the keys of one model's state dict with a leading K
    dimension, so it can be stored as one checkpoint.
    """

    def __init__(self, base: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
        self.base = base  # skeleton on the meta device; holds no data
        self.params = params
        self.buffers = buffers
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
        m = copy.deepcopy(self.base).to_empty(device=self.device)
        m.load_state_dict(self.model_state(k))
        return m.eval()

    def models(self) -> list[nn.Module]:
        return [self.model(k) for k in range(len(self))]

    # -- compute --------------------------------------------------------------
    def forward(self, x: torch.Tensor, shared: bool = False, train: bool = True) -> torch.Tensor:
        """Logits of every model: ``x`` is (K, B, ...) or, with ``shared``, (B, ...) for all."""
        self.base.train(train)

        def f(p: dict, b: dict, xi: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (p, b), (xi,))

        return torch.vmap(f, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Eval-mode logits of every model on the same inputs: (K, N, C)."""
        chunks = [self.forward(x[i : i + batch_size], shared=True, train=False)
                  for i in range(0, len(x), batch_size)]
        return torch.cat(chunks, dim=1)

    def requires_grad_(self, flag: bool = True) -> "Ensemble":
        for v in self.params.values():
            v.requires_grad_(flag)
        return self


def arch_key(ens: Ensemble) -> str:
    return hashlib.sha256(repr(ens.base).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- optimiser


class StackedSGD:
    """``torch.optim.SGD`` (dampening 0, no Nesterov) applied to stacked parameters.

    Per parameter: ``g = grad + wd * p``; ``buf = g`` on the first step, else
    ``buf = momentum * buf + g``; ``p -= lr * buf``. The learning rate comes from
    the caller each step (the schedule is shared by every model of a group).
    """

    def __init__(self, params: dict[str, torch.Tensor], momentum: float, weight_decay: float):
        self.params = params
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.bufs: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, lr: float) -> None:
        names = [n for n, p in self.params.items() if p.grad is not None]
        params = [self.params[n] for n in names]
        grads = [p.grad for p in params]
        if not params:
            return
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if not self.bufs:  # first step: the buffer is the gradient itself
                self.bufs = {n: g.detach().clone() for n, g in zip(names, grads, strict=False)}
            else:
                bufs = [self.bufs[n] for n in names]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
            grads = [self.bufs[n] for n in names]
        torch._foreach_add_(params, grads, alpha=-lr)
        for p in params:
            p.grad = None


def lr_sequence(base_lr: float, schedule: str, total: int, eta_min_ratio: float = 0.0) -> list[float]:
    """The learning rates ``torch.optim.lr_scheduler.LambdaLR`` gives for steps 0..total-1,
    taken from :func:`unlearnlib.training.make_schedule` itself (same floats)."""
    dummy = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([dummy], lr=base_lr)
    sched = make_schedule(opt, schedule, total, eta_min_ratio)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _check_optimizer(name: str) -> None:
    if name != "sgd":
        raise ValueError(f"The batched path implements SGD only; got optimizer {name!r}. Use path='loop'.")


# --------------------------------------------------------------------------- path choice

_PATH_CACHE: dict[tuple, str] = {}
#: vmap must beat the loop by this factor on the CPU to be chosen.
CPU_VMAP_MARGIN = 1.15


def _time_steps(step: Callable[[], None], n: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t) / n


def calibrate(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, n_steps: int = 3) -> dict[str, float]:
    """Seconds per step for all K models: one vmap step vs K single-model steps.

    Runs forward, backward and an SGD update on throw-away copies with one batch
    ``x`` (B, ...) and labels ``y`` (B,); the ensemble itself is not touched.
    """
    work = ens.clone().requires_grad_(True)
    opt = StackedSGD(work.params, 0.9, 5e-4)
    xk = x.expand(len(work), *x.shape).contiguous()
    yk = y.expand(len(work), *y.shape).reshape(-1)

    def vmap_step() -> None:
        out = work.forward(xk)
        F.cross_entropy(out.reshape(-1, out.shape[-1]), yk, reduction="sum").backward()
        opt.step(1e-3)

    m = ens.model(0).train()
    sgd = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def loop_step() -> None:
        loss = F.cross_entropy(m(x), y)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    return {"vmap": _time_steps(vmap_step, n_steps, ens.device),
            "loop": _time_steps(loop_step, n_steps, ens.device) * len(ens)}


def choose_path(path: str, ens: Ensemble, x: torch.Tensor, y: torch.Tensor, steps: int) -> str:
    """Resolve ``auto``: vmap on CUDA; on the CPU calibrate (cached), loop for tiny runs."""
    if path not in PATHS:
        raise ValueError(f"Unknown path {path!r}; allowed: {', '.join(PATHS)}.")
    if path != "auto":
        return path
    if len(ens) == 1:
        return "loop"
    if ens.device.type == "cuda":
        return "vmap"
    if steps < 20:  # calibration would cost more than it can save
        return "loop"
    key = (arch_key(ens), tuple(x.shape), len(ens), str(ens.device), torch.get_num_threads())
    if key not in _PATH_CACHE:
        t = calibrate(ens, x, y)
        _PATH_CACHE[key] = "vmap" if t["vmap"] * CPU_VMAP_MARGIN < t["loop"] else "loop"
    return _PATH_CACHE[key]


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


# --------------------------------------------------------------------------- training


@dataclass
class EnsembleLog:
    """What an ensemble run did: wall time, steps per model and the path per group."""

    seconds: float
    steps: list[int]
    paths: dict[tuple, str]


def train_ensemble(
    ens: Ensemble,
    data: Split,
    masks: torch.Tensor,
    recipe: Recipe,
    seeds: Sequence[int],
    path: str = "auto",
    chunk: int | None = None,
    show_progress: bool = False,
) -> EnsembleLog:
    """Train every model of ``ens`` in place; model k on ``data.subset(masks[k])``.

    Equivalent to ``training.train(model_k, data.subset(masks[k]), recipe, seeds[k])``
    for each k. ``masks`` is a boolean (K, N) tensor over ``data``'s rows.
    ``chunk`` bounds how many models share one vmap step (default: all; on CUDA
    out-of-memory halves it).
    """
    _check_optimizer(recipe.optimizer)
    K, N = len(ens), len(data)
    masks = _check_masks(masks, K, N)
    if len(seeds) != K:
        raise ValueError(f"Need one data-order seed per model: {K} models, {len(seeds)} seeds.")
    if ens.device != data.x.device:
        raise ValueError(f"Ensemble is on {ens.device} but the data on {data.x.device}.")
    start = time.perf_counter()
    log = EnsembleLog(0.0, [0] * K, {})
    for (n,), rows in _groups(masks.sum(1)).items():
        if n == 0:
            raise ValueError("A model's training mask selects no sample.")
        steps = recipe.epochs * math.ceil(n / recipe.batch_size)
        first = data.subset(torch.nonzero(masks[rows[0]]).squeeze(1)[: recipe.batch_size])
        sub = ens.select(rows)
        chosen = choose_path(path, sub, first.x, first.y, steps)
        log.paths[(n,)] = chosen
        if chosen == "loop":
            for i in progress(rows, "train (loop)", enabled=show_progress):
                m = ens.model(i)
                out = train(m, data.subset(torch.nonzero(masks[i]).squeeze(1)), recipe, int(seeds[i]),
                            show_progress=False)
                ens.assign([i], Ensemble.from_models([m]))
                log.steps[i] = out.steps
        else:
            def run(part: list[int]) -> None:
                work = ens.select(part)
                _train_vmap(work, data, masks[part], recipe, [int(seeds[i]) for i in part], show_progress)
                ens.assign(part, work)

            _oom_chunks(run, rows, chunk)
            for i in rows:
                log.steps[i] = steps
    if data.x.is_cuda:
        torch.cuda.synchronize(data.x.device)
    log.seconds = time.perf_counter() - start
    return log


def _train_vmap(
    ens: Ensemble, data: Split, masks: torch.Tensor, recipe: Recipe, seeds: list[int], show_progress: bool
) -> None:
    """One group (equal subset sizes) as one computation; see :func:`train_ensemble`."""
    K = len(ens)
    rows = [torch.nonzero(m).squeeze(1) for m in masks]
    n = len(rows[0])
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    spe = math.ceil(n / recipe.batch_size)
    lrs = lr_sequence(recipe.lr, recipe.schedule, recipe.epochs * spe)
    ens.requires_grad_(True)
    opt = StackedSGD(ens.params, recipe.momentum, recipe.weight_decay)
    dev = data.x.device
    step = 0
    for _ in progress(range(recipe.epochs), f"train (vmap, K={K})", enabled=show_progress):
        # the same generator call per model as training.train: one randperm per epoch
        order = torch.stack([r[torch.randperm(n, generator=g)] for r, g in zip(rows, gens, strict=False)]).to(dev)
        for s in range(0, n, recipe.batch_size):
            idx = order[:, s : s + recipe.batch_size]
            x, y = data.x[idx], data.y[idx]
            if recipe.augment:
                x = torch.stack([augment_batch(x[k], gens[k]) for k in range(K)])
            out = ens.forward(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none")
            loss.view(K, -1).mean(1).sum().backward()
            opt.step(lrs[step])
            step += 1
    ens.requires_grad_(False)
    ens.base.eval()


# --------------------------------------------------------------------------- unlearning


def _cycle_idx(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index-only twin of ``methods._loop._cycle`` (same generator calls)."""
    while True:
        yield from index_batches(n, batch_size, gen)


def loop_plan(n_drive: int, n_side: int | None, epochs: float, batch_size: int, seed: int
              ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The (driver batch, side batch) index pairs ``methods._loop.run_loop`` draws.

    Replays its generator calls in the same order: the driver's ``randperm`` at
    each epoch start, then the side set's batch, reshuffled when exhausted.
    """
    gen = torch.Generator().manual_seed(seed)
    total = int(math.ceil(epochs * math.ceil(n_drive / batch_size)))
    side = _cycle_idx(n_side, batch_size, gen) if n_side else None
    plan: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    while len(plan) < total:
        for idx in index_batches(n_drive, batch_size, gen):
            if len(plan) >= total:
                break
            plan.append((idx, next(side) if side else None))
    return plan


def _ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy: (K, B, C), (K, B) -> (K,)."""
    K = out.shape[0]
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none").view(K, -1).mean(1)


def _loop_spec(key: str, hp: dict[str, Any]) -> dict[str, Any]:
    """What ft / ga / ngplus pass to ``run_loop`` (mirrors their modules)."""
    if key == "ft":
        return {"schedule": "cosine", "driver": "retain", "side": False}
    if key == "ga":
        return {"schedule": "constant", "driver": "forget", "side": False}
    if key == "ngplus":
        return {"schedule": "constant", "driver": "retain", "side": True}
    raise KeyError(key)


def _unlearn_vmap(
    key: str, ens: Ensemble, data: Split, retain_masks: torch.Tensor, forget_masks: torch.Tensor,
    hp: dict[str, Any], seeds: list[int],
) -> None:
    """Batched ft / ga / ngplus on one group (equal retain and forget sizes), in place."""
    spec = _loop_spec(key, hp)
    K = len(ens)
    dev = data.x.device
    retain_rows = torch.stack([torch.nonzero(m).squeeze(1) for m in retain_masks]).to(dev)
    forget_rows = torch.stack([torch.nonzero(m).squeeze(1) for m in forget_masks]).to(dev)
    drive, side = (retain_rows, forget_rows) if spec["driver"] == "retain" else (forget_rows, None)
    plans = [loop_plan(drive.shape[1], side.shape[1] if spec["side"] else None, hp["epochs"],
                       hp["batch_size"], s) for s in seeds]
    total = len(plans[0])
    lrs = lr_sequence(hp["lr"], spec["schedule"], total)
    theta0 = {k: v.detach().clone() for k, v in ens.params.items()} if hp.get("lam") else None
    ens.requires_grad_(True)
    opt = StackedSGD(ens.params, 0.9, hp["weight_decay"])
    train_bn = hp.get("bn_mode", "train") == "train"
    ar = torch.arange(K, device=dev)[:, None]

    def batch(rows: torch.Tensor, local: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = rows[ar, torch.stack(local).to(dev)]
        return data.x[idx], data.y[idx]

    for t in range(total):
        xd, yd = batch(drive, [p[t][0] for p in plans])
        if key == "ft":
            loss = _ce(ens.forward(xd, train=train_bn), yd)
        elif key == "ga":
            loss = -_ce(ens.forward(xd, train=train_bn), yd)
        else:  # ngplus: retain forward first, then forget (BatchNorm statistics in the loop's order)
            retain_term = _ce(ens.forward(xd, train=train_bn), yd)
            if theta0 is not None:
                retain_term = retain_term + hp["lam"] / 2 * sum(
                    (p - theta0[n]).pow(2).flatten(1).sum(1) for n, p in ens.params.items())
            xf, yf = batch(side, [p[t][1] for p in plans])
            loss = hp["alpha"] * retain_term - (1 - hp["alpha"]) * _ce(ens.forward(xf, train=train_bn), yf)
        loss.sum().backward()
        opt.step(lrs[t])
    ens.requires_grad_(False)
    ens.base.eval()


def unlearn_ensemble(
    key: str,
    ens: Ensemble,
    data: Split,
    retain_masks: torch.Tensor,
    forget_masks: torch.Tensor,
    seeds: Sequence[int],
    num_classes: int,
    hparams: dict[str, Any] | None = None,
    init: Ensemble | None = None,
    train_recipe: Recipe | None = None,
    val: Split | None = None,
    model_name: str | None = None,
    path: str = "auto",
    chunk: int | None = None,
    show_progress: bool = False,
) -> Ensemble:
    """Unlearn with method ``key`` in every model; returns a new ensemble.

    Model k forgets ``data.subset(forget_masks[k])`` and keeps
    ``data.subset(retain_masks[k])``, with ``seeds[k]`` as its ``UnlearnData.seed``;
    the result equals ``methods.get(key)(model_k, data_k, **hparams)``. ``init``
    (the initial weights) and ``train_recipe`` are needed by ``retrain``.
    Methods outside :data:`BATCHED_METHODS` (and any ``path="loop"``) run that
    per-model call.
    """
    from . import methods

    method = methods.get(key)
    hp = method.resolve_hparams(hparams)
    K, N = len(ens), len(data)
    retain_masks = _check_masks(retain_masks, K, N, "retain_masks")
    forget_masks = _check_masks(forget_masks, K, N, "forget_masks")
    if (retain_masks & forget_masks).any():
        raise ValueError("A sample is in both a model's retain and forget mask.")
    if len(seeds) != K:
        raise ValueError(f"Need one seed per model: {K} models, {len(seeds)} seeds.")
    if key == "retrain" and (init is None or train_recipe is None):
        raise ValueError("retrain needs `init` (the initial weights as an Ensemble) and `train_recipe`.")
    if key == "original":
        return ens.clone()
    if key == "retrain" and path != "loop":
        out = init.clone()
        train_ensemble(out, data, retain_masks, train_recipe, seeds, path=path, chunk=chunk,
                       show_progress=show_progress)
        return out
    out = ens.clone()
    batched = key in BATCHED_METHODS and path != "loop" and hp.get("optimizer", "sgd") == "sgd"
    for _, rows in _groups(retain_masks.sum(1), forget_masks.sum(1)).items():
        chosen = "loop"
        if batched:
            drive = forget_masks if key == "ga" else retain_masks
            first = data.subset(torch.nonzero(drive[rows[0]]).squeeze(1)[: hp["batch_size"]])
            n_drive = int(drive[rows[0]].sum())
            steps = int(math.ceil(hp["epochs"] * math.ceil(n_drive / hp["batch_size"])))
            chosen = choose_path(path, out.select(rows), first.x, first.y, steps * (2 if key == "ngplus" else 1))
        if chosen == "vmap":
            def run(part: list[int]) -> None:
                work = out.select(part)
                _unlearn_vmap(key, work, data, retain_masks[part], forget_masks[part], hp,
                              [int(seeds[i]) for i in part])
                out.assign(part, work)

            _oom_chunks(run, rows, chunk)
            continue
        for i in progress(rows, f"{key} (loop)", enabled=show_progress):
            ud = methods.UnlearnData(
                retain=data.subset(torch.nonzero(retain_masks[i]).squeeze(1)),
                forget=data.subset(torch.nonzero(forget_masks[i]).squeeze(1)),
                val=val if val is not None else data.subset(torch.zeros(0, dtype=torch.long)),
                num_classes=num_classes, seed=int(seeds[i]), model_name=model_name,
                init_state=init.model_state(i) if init is not None else None,
                train_recipe=train_recipe,
            )
            out.assign([i], Ensemble.from_models([method(out.model(i), ud, **hp)]))
    return out
