"""Many models of one architecture trained as one computation (shadows and seeds).

LiRA (Carlini et al. 2022) and U-LiRA (Hayes et al. 2024, arXiv 2403.01218)
need tens to hundreds of shadow models; the NeurIPS 2023 unlearning challenge
score (Triantafillou et al. 2024) needs N retrained and N unlearned models. An
:class:`Ensemble` holds K models as stacked parameters and buffers
(``torch.func.stack_module_state``); one step runs all of them, by one of two
batched paths:

- ``grouped`` (the "folded" path): the K models become one wider network. A
  convolution runs once with ``groups=K`` over K*C channels (model k owns
  channel block k), BatchNorm normalises the K*C channels (each channel's
  statistics are one model's), pooling and ReLU act per channel (these folded
  activations are channels-last in memory, see :func:`_fold`), and a linear
  layer is a batched matmul over the K models. Only plain trunks of Conv1d/2d,
  BatchNorm1d/2d, ReLU, MaxPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Linear and
  the registry's reshape module fold (``cnn1d``, ``small_cnn``, ``mlp``); see
  :func:`fold_plan`. Others (ResNet-18) use vmap or the loop.
- ``vmap``: ``torch.vmap`` over ``torch.func.functional_call`` of the base model.

Semantics are those of the per-model code, exactly (up to floating-point
summation order):

- :func:`train_ensemble` does what :func:`unlearnlib.training.train` does for each
  model ``k`` on ``data.subset(masks[k])`` with data-order seed ``seeds[k]``: the
  same CPU generator calls (one ``randperm`` per epoch, then augmentation draws),
  the same per-step schedule (taken from :func:`~unlearnlib.training.make_schedule`),
  the same loss (cross-entropy, plus Thudi et al.'s SD term when the recipe has
  one) and ``torch.optim.SGD``'s update (weight decay added to the gradient,
  momentum buffer initialised with the first gradient, dampening 0, no Nesterov).
- :func:`unlearn_ensemble` does what ``methods.get(key)(model_k, data_k, **hp)``
  does; ``ft``, ``ga``, ``ngplus``, ``retrain`` and ``original`` run batched,
  every other registered method falls back to that per-model call.

BatchNorm: each model's running statistics are updated in place as a train-mode
``nn.BatchNorm`` updates them (momentum, unbiased running variance,
``num_batches_tracked`` + 1 per step), and eval mode normalises with them. The
vmap path passes the stacked buffers through ``functional_call``, so
``F.batch_norm`` updates one slice per model; the grouped path hands
``F.batch_norm`` the (K*C,) views of the stacked (K, C) buffers. The
alternative, ``torch.func.replace_all_batch_norm_modules_``, drops the running
statistics (eval mode would then use batch statistics) and would change what a
trained model predicts, so it is not used.

Models whose subsets differ in size cannot share a step (batch shapes differ),
so they are grouped by subset size and each group runs as one computation.

Path choice (``path="auto"``): on CUDA always vmap (measured 20x over the loop
for K=64 cnn1d on an H200; the grouped path is not measured there). On the CPU,
runs shorter than 20 steps use the loop; otherwise :func:`calibrate` times a
training step of the loop and of one batched path (grouped where the model
folds, else vmap) on the same K models (throw-away copies) and the same K
batches (grouped in the chunks of models it trains in, :func:`grouped_chunk`),
after a warm-up step of each, and picks the batched path only if it beats the
loop by :data:`CPU_BATCHED_MARGIN`, so the engine is not slower than the
per-model loop beyond the calibration itself. vmap is not timed where the model
folds: grouped was faster than vmap in every calibration measured (cnn1d, K = 4,
8, 16 and 64, batch 128 and 256, 1 and 2 threads) and in every 1-thread
training run (``benchmarks/ensemble.py`` times all three); the one exception
seen was a 2-thread run at load 5 to 7 on 2 cores (vmap 71 s, grouped 85 s, the
loop 458 s). Decisions are cached per (architecture, batch shape, K, device,
threads).
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
from .models import Blocks, _Reshape, build_model
from .training import Recipe, make_schedule, progress, sd_lambda_at, train

PATHS = ("auto", "grouped", "vmap", "loop")
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


# --------------------------------------------------------------------------- grouped (folded) layers

#: Leaf modules the grouped path can run (exact types: a subclass may change ``forward``).
FOLD_LEAVES = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool1d, nn.MaxPool2d,
               nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear, nn.Identity, _Reshape)


class _NotFoldable(Exception):
    pass


def _leaf_folds(m: nn.Module) -> bool:
    """Leaf options the grouped path implements (the registered models use only these)."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return m.padding_mode == "zeros"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return m.momentum is not None  # cumulative averaging would need each model's own step count
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        return not m.return_indices
    if isinstance(m, nn.Flatten):
        return m.start_dim == 1 and m.end_dim == -1
    return True


def _walk(m: nn.Module, prefix: str, out: list[tuple[str, nn.Module]]) -> None:
    if type(m) is Blocks and {n for n, _ in m.named_children()} == {"blocks"}:
        for i, b in enumerate(m.blocks):
            _walk(b, f"{prefix}blocks.{i}.", out)
    elif type(m) is nn.Sequential:
        for name, child in m.named_children():
            _walk(child, f"{prefix}{name}.", out)
    elif type(m) in FOLD_LEAVES and _leaf_folds(m):
        out.append((prefix, m))
    else:
        raise _NotFoldable(type(m).__name__)


def fold_plan(base: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The leaves of ``base`` in forward order with their state-dict prefixes, or ``None``
    when it does not fold (anything but a chain of :data:`FOLD_LEAVES` inside
    :class:`~unlearnlib.models.Blocks` / ``nn.Sequential``, e.g. ResNet's residual blocks)."""
    out: list[tuple[str, nn.Module]] = []
    try:
        _walk(base, "", out)
    except _NotFoldable:
        return None
    return out


def _fold(x: torch.Tensor, K: int) -> torch.Tensor:
    """(K, B, C, *S) per model -> (B, K*C, *S'): model k owns channels k*C .. (k+1)*C - 1.

    With spatial dimensions the result is 4-D and channels-last in memory ((B, H, W, K*C);
    a 1-D signal of length L becomes H=1, W=L), without them it is (B, K*C). For 22 cnn1d
    models at batch 128 (1 thread), oneDNN's grouped convolutions ran forward + backward
    1.6x faster than on the contiguous (B, K*C, L) (3.5x at one channel per group), and
    BatchNorm over these rows (:class:`_FoldedBatchNorm`) 2x faster than torch's kernel
    on the contiguous layout, whose inner loops run over L = 20, 10, 5 positions.
    """
    B, C, S = x.shape[1], x.shape[2], x.shape[3:]
    if not S:
        return x.transpose(0, 1).reshape(B, K * C)
    if len(S) == 1:
        x = x.unsqueeze(3)
    if len(S) > 2:
        raise ValueError(f"The grouped path folds 1-D and 2-D feature maps; got {len(S)}-D.")
    H, W = x.shape[3:]
    # contiguous(): a view with the right shape but other strides (C=1) would not be channels-last
    return x.permute(1, 3, 4, 0, 2).contiguous().view(B, H, W, K * C).permute(0, 3, 1, 2)


def _unfold(x: torch.Tensor, K: int, oned: bool) -> torch.Tensor:
    """Folded (B, K*C, *S') -> (K, B, C, *S) (a view where the memory allows; ``oned``
    drops the H=1 that :func:`_fold` gave a 1-D signal)."""
    B, C = x.shape[0], x.shape[1] // K
    if x.dim() == 2:
        return x.reshape(B, K, C).transpose(0, 1)
    H, W = x.shape[2:]
    x = x.permute(0, 2, 3, 1).reshape(B, H, W, K, C).permute(3, 0, 4, 1, 2)
    return x.squeeze(3) if oned else x


def _pair(v: Any, fill: int) -> Any:
    """A 1-D layer's size, stride, padding or dilation as the 2-D one over (H=1, W=L)."""
    if isinstance(v, str):  # padding "same" / "valid"
        return v
    return (fill, v if isinstance(v, int) else v[0])


def _rows(x: torch.Tensor) -> torch.Tensor:
    """Folded (B, K*C, *S') as (B * prod(S'), K*C): a view for channels-last memory."""
    return x if x.dim() == 2 else x.movedim(1, -1).reshape(-1, x.shape[1])


class _FoldedBatchNorm(torch.autograd.Function):
    """Train-mode batch norm of folded (B, K*C, *S') input, statistics over all but dim 1.

    ``F.batch_norm`` on channels-last input sums the rows one after another in fp32,
    which was 10x less accurate than its contiguous kernel (double accumulators) that
    the per-model loop runs (BatchNorm's output rel. error 8e-7 vs 6e-8 for 2,560 rows,
    weight gradients 1.5e-6 vs 6e-8) and made 15 of 64 cnn1d models drift from the loop
    by more than 1e-4 in one training run, where the fp32 loop drifts from the fp64 loop
    in 4. Here every channel's sum is torch's cascade reduction (drift: 6 of 64).
    Updates ``rm``/``rv`` as ``nn.BatchNorm`` does (unbiased variance) when given.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None,
                rm: torch.Tensor | None, rv: torch.Tensor | None, momentum: float, eps: float) -> torch.Tensor:
        rows = _rows(x)
        R = rows.shape[0]
        if x.dim() not in (2, 4):
            raise ValueError(f"Folded BatchNorm input must be 2-D or 4-D; got {x.dim()}-D.")
        if R < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {R}.")
        mean = rows.sum(0) / R
        xc = rows - mean
        var = (xc * xc).sum(0) / R
        invstd = (var + eps).rsqrt()
        if rm is not None:
            rm.mul_(1 - momentum).add_(mean, alpha=momentum)
            rv.mul_(1 - momentum).add_(var, alpha=momentum * R / (R - 1))
        ctx.save_for_backward(xc, invstd, w)
        ctx.shape = x.shape
        scale = invstd if w is None else invstd * w
        # written in place into a channels-last tensor (not a view of one made here: a
        # view could not take the in-place ReLU that follows)
        out = torch.empty_like(x, memory_format=torch.channels_last if x.dim() == 4 else torch.contiguous_format)
        torch.mul(xc, scale, out=_rows(out)) if b is None else torch.addcmul(b, xc, scale, out=_rows(out))
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        xc, invstd, w = ctx.saved_tensors
        g = _rows(grad)
        R = xc.shape[0]
        gb = g.sum(0)
        gxhat = (g * xc).sum(0) * invstd  # the weight's gradient
        scale = invstd if w is None else invstd * w
        # dx = scale * (g - mean(g) - xhat * mean(g * xhat))
        gx = torch.addcmul(-gb * (scale / R), xc, -gxhat * invstd * (scale / R)).addcmul_(g, scale)
        if len(ctx.shape) > 2:
            B, KC, *S = ctx.shape
            gx = gx.view(B, *S, KC).movedim(-1, 1)
        need = ctx.needs_input_grad
        return gx, gxhat if need[1] else None, gb if need[2] else None, None, None, None, None


def _grouped_batch_norm(m: nn.Module, prefix: str, params: dict, buffers: dict, x: torch.Tensor,
                        train: bool) -> torch.Tensor:
    """``nn.BatchNorm*d.forward`` of K models at once on folded (B, K*C, *S') input."""
    rm, rv = buffers.get(prefix + "running_mean"), buffers.get(prefix + "running_var")
    w, b = params.get(prefix + "weight"), params.get(prefix + "bias")
    w, b = (None if w is None else w.reshape(-1)), (None if b is None else b.reshape(-1))
    if not train and rm is not None:  # eval: no reductions, the native kernel is as exact
        return F.batch_norm(x, rm.view(-1), rv.view(-1), w, b, False, m.momentum, m.eps)
    if train and m.track_running_stats:
        buffers[prefix + "num_batches_tracked"].add_(1)
    if not train:
        rm = rv = None
    return _FoldedBatchNorm.apply(x, w, b, None if rm is None else rm.view(-1),
                                  None if rv is None else rv.view(-1), m.momentum, m.eps)


def _grouped_linear(w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """K linear layers as one batched matmul: x (K, B, *, D), w (K, O, D), b (K, O)."""
    K, lead, d = x.shape[0], x.shape[1:-1], x.shape[-1]
    x2 = x.reshape(K, -1, d)
    wt = w.transpose(1, 2)
    y = torch.bmm(x2, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x2, wt)
    return y.reshape(K, *lead, w.shape[1])


def _grouped_conv(m: nn.Module, prefix: str, params: dict, x: torch.Tensor, K: int) -> torch.Tensor:
    """K convolutions as one with ``groups=K`` on folded input (1-D ones as 2-D over H=1)."""
    w, b = params[prefix + "weight"], params.get(prefix + "bias")
    b = None if b is None else b.reshape(-1)
    if isinstance(m, nn.Conv1d):
        return F.conv2d(x, w.reshape(-1, w.shape[2], 1, w.shape[3]), b, _pair(m.stride, 1),
                        _pair(m.padding, 0), _pair(m.dilation, 1), m.groups * K)
    return F.conv2d(x, w.reshape(-1, *w.shape[2:]), b, m.stride, m.padding, m.dilation, m.groups * K)


def _grouped_pool(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Max or adaptive average pooling on folded input (per channel, so per model)."""
    if isinstance(m, nn.MaxPool1d):
        return F.max_pool2d(x, _pair(m.kernel_size, 1), _pair(m.stride, 1), _pair(m.padding, 0),
                            _pair(m.dilation, 1), m.ceil_mode)
    if isinstance(m, nn.MaxPool2d):
        return F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
    if isinstance(m, nn.AdaptiveAvgPool1d):
        return F.adaptive_avg_pool2d(x, _pair(m.output_size, 1))
    return F.adaptive_avg_pool2d(x, m.output_size)


_FOLDED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool1d, nn.MaxPool2d,
                  nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


def _grouped_forward(plan: list[tuple[str, nn.Module]], params: dict[str, torch.Tensor],
                     buffers: dict[str, torch.Tensor], x: torch.Tensor, train: bool) -> torch.Tensor:
    """Run K folded models on x (K, B, ...) -> logits (K, B, C).

    Activations are either stacked (K, B, ...) or folded (see :func:`_fold`); each
    layer converts to the layout it needs (convolution, BatchNorm and pooling act
    on channels: folded; linear layers and reshapes act per model: stacked).
    """
    K = x.shape[0]
    folded = oned = False
    fresh = False  # x is a layer's output that no backward saved (a ReLU may overwrite it)
    for prefix, m in plan:
        if isinstance(m, _FOLDED_LAYERS):
            if not folded:
                oned = x.dim() == 4
                x, folded = _fold(x, K), True
        elif isinstance(m, (nn.Flatten, nn.Linear, _Reshape)) and folded:
            x, folded = _unfold(x, K, oned), False
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            x = _grouped_conv(m, prefix, params, x, K)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            x = _grouped_batch_norm(m, prefix, params, buffers, x, train)
        elif isinstance(m, nn.ReLU):  # in place as the module is, but never on the caller's input
            x, fresh = F.relu(x, inplace=m.inplace and fresh), False
            continue
        elif isinstance(m, _POOLS):
            x = _grouped_pool(m, x)
        elif isinstance(m, nn.Flatten):
            x = x.flatten(2)
        elif isinstance(m, nn.Linear):
            x = _grouped_linear(params[prefix + "weight"], params.get(prefix + "bias"), x)
        elif isinstance(m, _Reshape):
            x = x.reshape(K, x.shape[1], *m.shape)
        fresh = fresh or not isinstance(m, (nn.Flatten, nn.Identity, _Reshape))
    return _unfold(x, K, oned) if folded else x


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


# --------------------------------------------------------------------------- path choice

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
    ``path``: ``auto`` (see the module docstring), ``grouped``, ``vmap`` or ``loop``.
    ``chunk`` bounds how many models share one batched step (default: all, but
    :func:`grouped_chunk` for the grouped path on the CPU; on CUDA out-of-memory
    halves it).
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
        sub = ens.select(rows)
        first = _first_batches(data, masks[rows], recipe.batch_size)
        chosen = choose_path(path, sub, *first, steps)
        log.paths[(n,)] = chosen
        if chosen == "loop":
            for i in progress(rows, "train (loop)", enabled=show_progress):
                m = ens.model(i)
                out = train(m, data.subset(torch.nonzero(masks[i]).squeeze(1)), recipe, int(seeds[i]),
                            show_progress=False)
                ens.assign([i], Ensemble.from_models([m]))
                log.steps[i] = out.steps
        else:
            def run(part: list[int], path: str = chosen) -> None:
                work = ens.select(part)
                _train_batched(work, data, masks[part], recipe, [int(seeds[i]) for i in part], path,
                               show_progress)
                ens.assign(part, work)

            _oom_chunks(run, rows, chunk or _default_chunk(chosen, sub, first[0]))
            for i in rows:
                log.steps[i] = steps
    _sync(data.x.device)
    log.seconds = time.perf_counter() - start
    return log


def _train_batched(
    ens: Ensemble, data: Split, masks: torch.Tensor, recipe: Recipe, seeds: list[int], path: str,
    show_progress: bool,
) -> None:
    """One group (equal subset sizes) as one computation by ``path``; see :func:`train_ensemble`."""
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
    for epoch in progress(range(recipe.epochs), f"train ({path}, K={K})", enabled=show_progress):
        # the same generator call per model as training.train: one randperm per epoch
        order = torch.stack([r[torch.randperm(n, generator=g)] for r, g in zip(rows, gens, strict=False)]).to(dev)
        for s in range(0, n, recipe.batch_size):
            idx = order[:, s : s + recipe.batch_size]
            x, y = data.x[idx], data.y[idx]
            if recipe.augment:
                x = torch.stack([augment_batch(x[k], gens[k]) for k in range(K)])
            out = ens.forward(x, path=path)
            loss = _ce(out, y)
            if recipe.sd_lambda:  # training.sd_loss per model: sum_i std_c(z_ic) / (B * C)
                lam = sd_lambda_at(recipe.sd_lambda, recipe.sd_decay, epoch)
                loss = loss + lam * out.std(dim=2).sum(1) / (out.shape[1] * out.shape[2])
            loss.sum().backward()
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


def _unlearn_batched(
    key: str, ens: Ensemble, data: Split, retain_masks: torch.Tensor, forget_masks: torch.Tensor,
    hp: dict[str, Any], seeds: list[int], path: str,
) -> None:
    """Batched ft / ga / ngplus on one group (equal retain and forget sizes) by ``path``, in place."""
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
            loss = _ce(ens.forward(xd, train=train_bn, path=path), yd)
        elif key == "ga":
            loss = -_ce(ens.forward(xd, train=train_bn, path=path), yd)
        else:  # ngplus: retain forward first, then forget (BatchNorm statistics in the loop's order)
            retain_term = _ce(ens.forward(xd, train=train_bn, path=path), yd)
            if theta0 is not None:
                retain_term = retain_term + hp["lam"] / 2 * sum(
                    (p - theta0[n]).pow(2).flatten(1).sum(1) for n, p in ens.params.items())
            xf, yf = batch(side, [p[t][1] for p in plans])
            loss = hp["alpha"] * retain_term - (1 - hp["alpha"]) * _ce(ens.forward(xf, train=train_bn, path=path), yf)
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
            n_drive = int(drive[rows[0]].sum())
            steps = int(math.ceil(hp["epochs"] * math.ceil(n_drive / hp["batch_size"])))
            sub = out.select(rows)
            first = _first_batches(data, drive[rows], hp["batch_size"])
            chosen = choose_path(path, sub, *first, steps * (2 if key == "ngplus" else 1))
        if chosen != "loop":
            def run(part: list[int], path: str = chosen) -> None:
                work = out.select(part)
                _unlearn_batched(key, work, data, retain_masks[part], forget_masks[part], hp,
                                 [int(seeds[i]) for i in part], path)
                out.assign(part, work)

            _oom_chunks(run, rows, chunk or _default_chunk(chosen, sub, first[0]))
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
