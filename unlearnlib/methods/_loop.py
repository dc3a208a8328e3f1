"""The one loop shared by every loss-based unlearning method.

Most methods differ only in the loss they minimise over a forget batch and a
retain batch (OpenUnlearning's GradDiff is ``gamma * forget_loss + alpha *
retain_loss``; NPO overrides only that function). This loop owns everything
else: batching by index on the device, which set drives an epoch, the
optimiser and its schedule, the BatchNorm mode, gradient masks and frozen
entries, and the compute budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn

from ..data import Split, index_batches
from ..training import make_optimizer, make_schedule
from . import _cost


class Batch(NamedTuple):
    """A batch of inputs and labels; ``is_forget`` marks forget rows in a union batch."""

    x: torch.Tensor
    y: torch.Tensor
    is_forget: torch.Tensor | None = None


LossFn = Callable[[nn.Module, "Batch | None", "Batch | None"], torch.Tensor]

DRIVERS = ("retain", "forget", "union")
BN_MODES = ("train", "eval")


@dataclass
class LoopConfig:
    """Optimisation settings of one run of the loop.

    ``driver`` names the set whose batches define an epoch: ``retain`` (forget
    batches cycle beside it when ``use_forget``), ``forget`` (retain batches cycle
    beside it when ``use_retain``) or ``union`` (shuffled D_r u D_f, with
    ``Batch.is_forget``). ``bn_mode`` is an explicit choice: ``train`` updates
    BatchNorm statistics (the default, as in training), ``eval`` freezes them.
    ``epochs`` may be fractional (PRMQ trains 3.2 epochs). ``schedule`` is a
    name understood by :func:`unlearnlib.training.make_schedule` or a callable
    ``factor(step, steps_per_epoch)`` for anything else (per-epoch LinearLR,
    step decay).
    """

    epochs: float
    lr: float
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = "sgd"
    schedule: str | Callable[[int, int], float] = "constant"
    driver: str = "retain"
    use_forget: bool = False
    use_retain: bool = False
    bn_mode: str = "train"
    eta_min_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.driver not in DRIVERS:
            raise ValueError(f"Unknown driver {self.driver!r}; allowed: {', '.join(DRIVERS)}.")
        if self.bn_mode not in BN_MODES:
            raise ValueError(f"Unknown bn_mode {self.bn_mode!r}; allowed: {', '.join(BN_MODES)}.")
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"Need epochs >= 0 and batch_size >= 1; got {self.epochs}, {self.batch_size}.")


@dataclass
class LoopLog:
    """What a run did; ``optimizer_state`` lets a later phase continue the same
    momentum / Adam moments (pass it back as ``run_loop(optimizer_state=...)``)."""

    steps: int = 0
    sample_grads: int = 0
    stopped_by_budget: bool = False
    optimizer_state: dict | None = None


def _cycle(split: Split, batch_size: int, gen: torch.Generator) -> Iterator[Batch]:
    """Endless reshuffled batches of ``split``."""
    while True:
        for idx in index_batches(len(split), batch_size, gen):
            idx = idx.to(split.y.device)
            yield Batch(split.x[idx], split.y[idx])


def run_loop(
    model: nn.Module,
    retain: Split,
    forget: Split,
    loss_fn: LossFn,
    cfg: LoopConfig,
    seed: int,
    grad_scale: dict[str, torch.Tensor] | None = None,
    keep_fixed: dict[str, torch.Tensor] | None = None,
    max_sample_grads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    params: list[nn.Parameter] | None = None,
    optimizer_state: dict | None = None,
) -> LoopLog:
    """Minimise ``loss_fn(model, forget_batch, retain_batch)`` in place.

    - ``grad_scale[name]`` multiplies that parameter's gradient entry-wise (MSG's
      1.0/0.1 scaling, SalUn's saliency mask).
    - ``keep_fixed[name]`` is a boolean mask of entries restored after every step,
      so neither weight decay nor momentum can move them (SalUn, frozen blocks).
    - ``max_sample_grads`` stops the run once that many per-sample gradients were
      computed (each batch row counts once per backward pass).
    - ``params`` restricts the optimiser to those parameters (default: all with
      ``requires_grad``).
    - ``optimizer_state`` (from a previous :class:`LoopLog`) restores the
      optimiser's per-parameter state (momentum buffers, Adam moments) while
      keeping this run's learning rate, so multi-phase methods keep one optimiser.
    """
    gen = torch.Generator().manual_seed(seed)
    named = dict(model.named_parameters())
    opt = make_optimizer(
        params if params is not None else model.parameters(),
        cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay,
    )
    if optimizer_state is not None:
        opt.load_state_dict({"state": optimizer_state, "param_groups": opt.state_dict()["param_groups"]})
    drive = {"retain": retain, "forget": forget, "union": Split.concat(retain, forget)}[cfg.driver]
    if len(drive) == 0:
        raise ValueError(f"The {cfg.driver} set is empty; nothing to iterate.")
    steps_per_epoch = math.ceil(len(drive) / cfg.batch_size)
    total = int(math.ceil(cfg.epochs * steps_per_epoch))
    if callable(cfg.schedule):
        user_schedule = cfg.schedule
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: user_schedule(step, steps_per_epoch))
    else:
        sched = make_schedule(opt, cfg.schedule, total, cfg.eta_min_ratio)
    side_forget = _cycle(forget, cfg.batch_size, gen) if cfg.driver == "retain" and cfg.use_forget else None
    side_retain = _cycle(retain, cfg.batch_size, gen) if cfg.driver == "forget" and cfg.use_retain else None
    fixed_values = {n: named[n].detach()[m].clone() for n, m in (keep_fixed or {}).items()}
    n_retain = len(retain)
    log = LoopLog()
    model.train(cfg.bn_mode == "train")
    epoch = 0
    while log.steps < total:
        for idx in index_batches(len(drive), cfg.batch_size, gen):
            if log.steps >= total:
                break
            rows = idx.to(drive.y.device)
            main = Batch(drive.x[rows], drive.y[rows])
            if cfg.driver == "union":
                main = Batch(main.x, main.y, rows >= n_retain)
            fb = main if cfg.driver == "forget" else (next(side_forget) if side_forget else None)
            rb = main if cfg.driver in ("retain", "union") else (next(side_retain) if side_retain else None)
            batch_rows = sum(len(b.y) for b in {id(b): b for b in (fb, rb) if b is not None}.values())
            if max_sample_grads is not None and log.sample_grads + batch_rows > max_sample_grads:
                log.stopped_by_budget = True
                break
            loss = loss_fn(model, fb, rb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            _cost.add(batch_rows)
            if grad_scale:
                for n, s in grad_scale.items():
                    if named[n].grad is not None:
                        named[n].grad.mul_(s)
            opt.step()
            sched.step()
            if fixed_values:
                with torch.no_grad():
                    for n, m in keep_fixed.items():
                        named[n][m] = fixed_values[n]
            log.steps += 1
            log.sample_grads += batch_rows
        if log.stopped_by_budget:
            break
        epoch += 1
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    model.eval()
    log.optimizer_state = opt.state_dict()["state"]
    return log
