"""The grouped ("folded") path: K models of a plain trunk as one wider network.

A convolution runs once with ``groups=K`` over K*C channels (model k owns channel block
k), BatchNorm normalises the K*C channels with a custom-autograd kernel
(:class:`_FoldedBatchNorm`), pooling and ReLU act per channel, and a linear layer is a
batched matmul over the K models. :func:`fold_plan` says which architectures fold.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models import Blocks, _Reshape

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

