"""Shared helpers of the weight-surgery methods (CT, MSG, CFW, PRMQ, FF, IU, SSD, CF-k, EU-k, RNI).

- which layers a surgery touches: convolutions, the classifier head, the last k blocks;
- re-initialisation as in Deep Unlearn (Kaiming conv, Xavier linear, BN 1/0);
- per-sample gradients with ``torch.func`` (vmap over samples, model in eval mode),
  diagonal Fisher information from them, and a flattened gradient matrix for IU;
- a fine-tune on D_r with step decay of the learning rate, run by the shared loop.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from ..models import model_blocks
from . import STD_SPACE, Float, Int, UnlearnData, _cost
from ._loop import Batch, LoopConfig, LossFn, run_loop

CONV = (nn.Conv1d, nn.Conv2d)
BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d)

# --------------------------------------------------------------------------- which layers


def conv_modules(model: nn.Module, method: str) -> list[tuple[str, nn.Module]]:
    """Named 1-D/2-D convolutions of ``model``; a model without any is an error."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, CONV)]
    if not convs:
        raise ValueError(
            f"{method} needs convolution layers (Conv1d/Conv2d), but {type(model).__name__} has none; "
            "use a convolutional model (cnn1d, small_cnn, resnet18, resnet18_cifar)."
        )
    return convs


def weight_layers(model: nn.Module, method: str) -> list[tuple[str, nn.Module]]:
    """The convolutions of ``model``; for a model without any (an MLP), its Linear layers.

    The fallback is our extension for conv-free models (the poisoning chapter's MLP):
    Linear weights are the MLP's only weight matrices, so a surgery that re-initialises
    or rescales "the convolution weights" acts on them instead.
    """
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, CONV)]
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not (convs or linears):
        raise ValueError(f"{method} needs convolution or Linear layers; {type(model).__name__} has neither.")
    return convs or linears


def first_weight_layer(model: nn.Module, method: str) -> tuple[str, nn.Module]:
    """The model's first convolution in module order; for a model without any, its first
    Embedding or Linear layer: the layer that reads the input (a text model's token
    table, an MLP's input projection)."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, CONV)]
    firsts = convs or [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Embedding, nn.Linear))]
    if not firsts:
        raise ValueError(f"{method} needs a convolution, Embedding or Linear layer; {type(model).__name__} has none.")
    return firsts[0]


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The classifier head: the Linear layers of the model's last block (or its last Linear)."""
    try:
        last = model_blocks(model)[-1]
        heads = [m for m in last.modules() if isinstance(m, nn.Linear)]
    except ValueError:
        heads = []
    if not heads:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(f"{type(model).__name__} has no Linear classifier head.")
        heads = linears[-1:]
    return heads


def batch_norm_parameters(model: nn.Module) -> set[str]:
    """Names of the affine parameters of BatchNorm layers (found by type, not by name)."""
    return {
        f"{mn}.{pn}" if mn else pn
        for mn, m in model.named_modules() if isinstance(m, BATCH_NORM)
        for pn, _ in m.named_parameters(recurse=False)
    }


def last_k_blocks(model: nn.Module, k: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """Split the trunk into (trainable, frozen): the last ``k`` blocks with parameters
    plus the head are trainable; ``k`` is clipped to [1, number of trunk blocks]."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (the number of last blocks to train); got {k}.")
    blocks = model_blocks(model)
    head, trunk = blocks[-1], [b for b in blocks[:-1] if any(True for _ in b.parameters())]
    k = min(k, len(trunk))
    return trunk[len(trunk) - k:] + [head], trunk[: len(trunk) - k]


@contextmanager
def freeze(modules: list[nn.Module]) -> Iterator[None]:
    """Within the block, ``modules`` take no gradient (so backward stops before them)
    and stay in eval mode at every forward (their BatchNorm statistics do not move);
    ``requires_grad`` is restored afterwards."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    def to_eval(module: nn.Module, args: tuple) -> None:
        module.eval()  # returns None: the inputs pass unchanged

    hooks = [m.register_forward_pre_hook(to_eval) for m in modules]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
        for h in hooks:
            h.remove()


@torch.no_grad()
def reinit_(module: nn.Module, reset_running_stats: bool = True) -> None:
    """Deep Unlearn's re-initialisation: Kaiming-uniform (fan_out, relu) convolutions,
    Xavier-uniform linear layers, zero biases, BatchNorm weight 1 / bias 0.

    ``reset_running_stats`` also resets the BatchNorm running mean / variance to 0 / 1;
    Deep Unlearn's ``init_weights`` leaves them as they were (``False``)."""
    for m in module.modules():
        if isinstance(m, CONV):
            nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, BATCH_NORM):
            if reset_running_stats:
                m.reset_running_stats()
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def fan_in(weight: torch.Tensor) -> int:
    return int(weight[0].numel())


# --------------------------------------------------------------------------- per-sample gradients


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def per_sample_grads(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str] | None = None
) -> dict[str, torch.Tensor]:
    """Gradients of CE(model(x_i), y_i) for every row i, as ``{name: (B, *shape)}``.

    The model must be in eval mode (BatchNorm uses its running statistics, so one
    sample's gradient does not depend on the others).
    """
    from torch.func import functional_call, grad, vmap

    names = names if names is not None else [n for n, p in model.named_parameters() if p.requires_grad]
    named = dict(model.named_parameters())
    params = {n: named[n].detach() for n in names}
    rest = {n: p.detach() for n, p in named.items() if n not in params}
    rest.update({n: b for n, b in model.named_buffers()})

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**p, **rest},), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    _cost.add(len(y))
    return vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)


def grad_chunk_size(model: nn.Module, budget_elems: int = 2**26) -> int:
    """Samples per vmap chunk so that one chunk of per-sample gradients stays near 256 MiB."""
    n_params = sum(p.numel() for p in model.parameters())
    return int(max(1, min(256, budget_elems // max(1, n_params))))


@torch.no_grad()
def fisher_diagonal(model: nn.Module, split: Split, chunk: int | None = None) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: mean over samples of the squared per-sample CE gradient."""
    was_training = model.training
    model.eval()
    chunk = chunk or grad_chunk_size(model)
    out = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for s in _chunks(len(split), chunk):
        with torch.enable_grad():
            g = per_sample_grads(model, split.x[s], split.y[s], list(out))
        for n in out:
            out[n] += g[n].pow(2).sum(0)
    model.train(was_training)
    return {n: v / max(1, len(split)) for n, v in out.items()}


def flat_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Per-sample gradients flattened and concatenated in parameter order: (B, P)."""
    chunk = chunk or grad_chunk_size(model)
    names = [n for n, _ in model.named_parameters()]
    rows = []
    for s in _chunks(len(y), chunk):
        g = per_sample_grads(model, x[s], y[s], names)
        rows.append(torch.cat([g[n].reshape(g[n].shape[0], -1) for n in names], 1).detach())
    return torch.cat(rows)


def summed_batch_mean_grads(model: nn.Module, split: Split, sign: float, batch_size: int) -> None:
    """Accumulate ``sign * sum over consecutive batches of grad(mean CE over the batch)``
    into ``.grad`` (no zero_grad): what a reference's ``for batch in loader: loss.backward()``
    accumulates. Each batch weighs as much as any other, so a sample in a batch of B weighs 1/B."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    for s in _chunks(len(split), batch_size):
        (F.cross_entropy(model(split.x[s]), split.y[s]) * sign).backward()
        _cost.add(s.stop - s.start)


def mean_grad(model: nn.Module, split: Split, sign: float = 1.0, chunk: int = 512) -> None:
    """Accumulate ``sign * grad of mean CE over split`` into ``.grad`` (no zero_grad)."""
    n = len(split)
    for s in _chunks(n, chunk):
        loss = F.cross_entropy(model(split.x[s]), split.y[s], reduction="sum") * (sign / n)
        loss.backward()
        _cost.add(s.stop - s.start)


# --------------------------------------------------------------------------- fine-tuning

#: The dimensions of Deep Unlearn's CF-k / EU-k search that have an effect there (its
#: ``sgda_learning_rate``, ``momentum`` and ``training_epoch_factor`` are searched but unused).
FK_SPACE = {"lr": STD_SPACE["lr"], "batch_size": STD_SPACE["batch_size"], "epochs": STD_SPACE["epochs"],
            "k": Int(1, 10), "lam": Float(1e-5, 1e-1, log=True), "decay_rate": Float(0.0, 1.0)}


def proximal_ce_loss(params: list[nn.Parameter], lam: float, transform: Callable | None = None) -> LossFn:
    """``loss(m, f, r) = CE(m(transform(r.x)), r.y) + lam/2 * ||params - anchor||^2`` with the
    anchor the values of ``params`` now (the reference's ``l2_penalty`` to ``model_init``,
    a copy taken when ``fk_finetune`` starts)."""
    anchor = [p.detach().clone() for p in params]

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out = F.cross_entropy(m(transform(r.x) if transform else r.x), r.y)
        if lam:
            out = out + lam / 2 * sum((p - p0).pow(2).sum() for p, p0 in zip(params, anchor, strict=True))
        return out

    return loss


def remaining_budget(data: UnlearnData, used: int) -> int | None:
    """What is left of ``data.max_sample_grads`` after ``used`` per-sample gradients."""
    return None if data.max_sample_grads is None else max(0, data.max_sample_grads - used)


def step_decay_epochs(epochs: int, decay_rate: float, fractions=(0.5, 0.8, 0.9)) -> list[tuple[int, float]]:
    """Segments ``(n_epochs, lr_factor)`` of the step decay of SCRUB's and Deep Unlearn's
    ``fk_finetune``: epoch e (0-based) runs at ``decay_rate ** m``, m the number of
    milestones int(f * epochs) it exceeds. E = 10: 6 epochs at 1, 3 at 0.1, 1 at 0.01;
    the first epoch always runs at the full rate (E = 1: no decay)."""
    milestones = [int(f * epochs) for f in fractions]
    factors = [decay_rate ** sum(e > m for m in milestones) for e in range(epochs)]
    segments: list[tuple[int, float]] = []
    for f in factors:
        if segments and segments[-1][1] == f:
            segments[-1] = (segments[-1][0] + 1, f)
        else:
            segments.append((1, f))
    return segments


def step_decay_finetune(
    model: nn.Module,
    data: UnlearnData,
    loss_fn: Callable[[nn.Module, Batch | None, Batch], torch.Tensor],
    params: list[nn.Parameter],
    epochs: int,
    lr: float,
    batch_size: int,
    decay_rate: float,
    bn_mode: str,
) -> None:
    """Plain SGD (momentum 0, no weight decay) on D_r for ``epochs`` epochs, the learning
    rate following :func:`step_decay_epochs` epoch by epoch (one run of the shared loop)."""
    epochs = int(epochs)
    factors = [f for n_ep, f in step_decay_epochs(epochs, decay_rate) for _ in range(n_ep)]

    def schedule(step: int, steps_per_epoch: int) -> float:
        return factors[min(step // steps_per_epoch, len(factors) - 1)] if factors else 1.0

    cfg = LoopConfig(epochs, lr, batch_size, momentum=0.0, weight_decay=0.0,
                     schedule=schedule, driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss_fn, cfg, data.seed,
             max_sample_grads=data.max_sample_grads, params=params)
