"""The one loop shared by every loss-based unlearning method.

Most methods differ only in the loss they minimise over a forget batch and a
retain batch (OpenUnlearning's GradDiff is ``gamma * forget_loss + alpha *
retain_loss``; NPO overrides only that function). This loop owns everything
else: batching by index on the device, which set drives an epoch, the
optimiser and its schedule, the BatchNorm mode, gradient masks and frozen
entries, and the compute budget.

Part of the engine (beside :mod:`unlearnlib.training`, whose optimisers and schedules it
uses), not of the methods: the relearning attack
(:mod:`unlearnlib.evaluation.relearning`) fine-tunes with it too, and evaluation imports
nothing above the engine (issue 35). Moved here from ``unlearnlib.methods._loop``, which
re-exports it for the method modules. Every gradient it takes is counted in
:mod:`unlearnlib.cost`.

A method whose loss is a function of the model's outputs on its batches declares it once
as data, an :class:`Objective` (the loss, the streams it reads, its driver and schedule),
registered with the method: :func:`run_objective` runs it here, one model at a time, and
:mod:`unlearnlib.ensemble` runs the same declaration for K stacked models (issue 35: the
engine no longer restates ft's, ga's and ngplus's losses). Both draw their batches from
one plan, :func:`batch_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from . import cost as _cost
from .data import Split, index_batches
from .training import make_optimizer, make_schedule


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


# --------------------------------------------------------------------------- the batch plan

#: One step's rows: (driver rows, side rows or None), CPU index tensors into each set.
PlanStep = tuple[torch.Tensor, "torch.Tensor | None"]


def _cycle_idx(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless reshuffled index batches of ``range(n)`` (a fresh ``randperm`` when exhausted)."""
    while True:
        yield from index_batches(n, batch_size, gen)


def batch_plan(n_drive: int, n_side: int | None, epochs: float, batch_size: int, seed: int
               ) -> Iterator[list[PlanStep]]:
    """The batches of one run, epoch by epoch: lists of (driver rows, side rows) index pairs.

    The one batch order of the loop (:func:`run_loop`) and of the many-model engine
    (:mod:`unlearnlib.ensemble`). One generator seeded with ``seed`` draws, in this order,
    the driver's ``randperm`` at each epoch start and, when ``n_side`` is given, the side
    set's batch of each step (cycled: reshuffled when exhausted). The run lasts
    ``ceil(epochs * ceil(n_drive / batch_size))`` steps; the last epoch may be partial.
    Epochs are drawn lazily, so a run stopped early draws no further.
    """
    gen = torch.Generator().manual_seed(seed)
    total = int(math.ceil(epochs * math.ceil(n_drive / batch_size)))
    side = _cycle_idx(n_side, batch_size, gen) if n_side else None
    done = 0
    while done < total:
        steps: list[PlanStep] = []
        for idx in index_batches(n_drive, batch_size, gen):
            if done >= total:
                break
            steps.append((idx, next(side) if side else None))
            done += 1
        yield steps


def loop_plan(n_drive: int, n_side: int | None, epochs: float, batch_size: int, seed: int) -> list[PlanStep]:
    """Every step of :func:`batch_plan` in one list (the epochs joined)."""
    return [step for epoch in batch_plan(n_drive, n_side, epochs, batch_size, seed) for step in epoch]


# --------------------------------------------------------------------------- losses as data

STREAMS = ("retain", "forget", "union")


class RunRandom:
    """The random draws of one run that belong to its method, not to its batch order: one
    generator per device, each seeded with the run's ``seed + 1`` and created on first use
    (``srl``'s relabelling and ``amnesiac``'s wrong labels draw on the CPU, ``ngd``'s
    gradient noise on the data's device). The many-model engine keeps one per model."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._gens: dict[str, torch.Generator] = {}

    def gen(self, device: torch.device | str = "cpu") -> torch.Generator:
        key = str(torch.device(device))
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed + 1)
        return self._gens[key]


class Outputs(Protocol):
    """What an :class:`Objective`'s loss reads: the model's outputs on the step's batch of
    each stream it declares (``"retain"``, ``"forget"``, or ``"union"``: shuffled
    D_r u D_f), computed on first use in the order the loss asks for them (BatchNorm in
    train mode updates its statistics in that order). In the loop these are one model's
    (a loss is a scalar); in the ensemble engine K models' (a loss is a (K,) tensor, one
    per model).

    ``ce(stream, labels)`` takes other labels than the batch's when given;
    ``is_forget("union")`` marks the union batch's forget rows; ``random_labels(stream)``
    draws uniform labels over the classes for the stream's batch from the run's CPU
    generator (:class:`RunRandom`); ``noise_dot(sigma)`` is ``<theta, sigma * xi>`` over
    the trainable parameters with fresh standard-normal ``xi`` from the run's generator on
    the data's device, whose gradient is the Gaussian noise ``sigma * xi``."""

    def logits(self, stream: str) -> torch.Tensor: ...
    def labels(self, stream: str) -> torch.Tensor: ...
    def ce(self, stream: str, labels: torch.Tensor | None = None) -> torch.Tensor: ...
    def is_forget(self, stream: str) -> torch.Tensor: ...
    def random_labels(self, stream: str) -> torch.Tensor: ...
    def noise_dot(self, sigma: float) -> torch.Tensor: ...
    def sq_dist_to_start(self) -> torch.Tensor: ...


@dataclass(frozen=True)
class Objective:
    """A loss-driven method's loss as data, read by :func:`run_objective` (one model) and
    by :mod:`unlearnlib.ensemble` (K models as one computation).

    - ``loss(out, hp)``: the per-batch loss from :class:`Outputs` ``out`` and the method's
      resolved hyperparameters ``hp``, e.g. ``lambda out, hp: -out.ce("forget")``.
    - ``reads``: the streams it reads, ``retain`` and / or ``forget``, or ``union`` alone;
      the driver is one of them, and the other (if read) is cycled beside it.
    - ``driver``: the set whose batches make an epoch (``retain``, ``forget`` or ``union``:
      shuffled D_r u D_f, forget rows marked by :meth:`Outputs.is_forget`).
    - ``schedule``: the learning-rate schedule's name (:func:`~unlearnlib.training.make_schedule`).
    - ``momentum``, ``optimizer``: SGD with momentum 0.9 unless said otherwise; an
      ``optimizer`` hyperparameter overrides it.
    - ``anchor``: the hyperparameter weighting a proximal term to the starting weights;
      where it is non-zero the run keeps them for :meth:`Outputs.sq_dist_to_start`.
    - ``relabel_forget(y, num_classes, gen)``: new labels for the forget set, drawn once
      before the run from the run's CPU generator (:class:`RunRandom`), e.g. ``amnesiac``'s
      random wrong labels.

    The hyperparameters ``epochs``, ``lr`` and ``batch_size`` are required;
    ``weight_decay`` (default 0) and ``bn_mode`` (default ``train``) are read if present.
    """

    loss: Callable[[Outputs, Mapping[str, Any]], torch.Tensor]
    reads: tuple[str, ...]
    driver: str = "retain"
    schedule: str = "constant"
    momentum: float = 0.9
    optimizer: str = "sgd"
    anchor: str | None = None
    relabel_forget: Callable[[torch.Tensor, int, torch.Generator], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.reads or not set(self.reads) <= set(STREAMS) or len(set(self.reads)) != len(self.reads):
            raise ValueError(f"Objective.reads must name streams among {STREAMS}, each once; got {self.reads!r}.")
        if "union" in self.reads and len(self.reads) != 1:
            raise ValueError(f"An objective reading the union batch reads nothing else; got {self.reads!r}.")
        if self.driver not in self.reads:
            raise ValueError(f"The driver {self.driver!r} must be a stream the loss reads, {self.reads!r}.")

    @property
    def side(self) -> str | None:
        """The stream cycled beside the driver, if the loss reads one."""
        return next((s for s in self.reads if s != self.driver), None)

    def config(self, hp: Mapping[str, Any]) -> LoopConfig:
        """The loop settings of a run with hyperparameters ``hp``."""
        return LoopConfig(
            hp["epochs"], hp["lr"], hp["batch_size"], momentum=self.momentum,
            weight_decay=hp.get("weight_decay", 0.0), optimizer=hp.get("optimizer", self.optimizer),
            schedule=self.schedule, driver=self.driver, use_forget=self.side == "forget",
            use_retain=self.side == "retain", bn_mode=hp.get("bn_mode", "train"),
        )

    def anchored(self, hp: Mapping[str, Any]) -> bool:
        """Whether a run with ``hp`` needs the starting weights (a non-zero proximal weight)."""
        return bool(self.anchor and hp.get(self.anchor))


class ModelOutputs:
    """:class:`Outputs` of one model on one step's batches (the loop's)."""

    def __init__(self, model: nn.Module, batches: Mapping[str, Batch | None],
                 start: list[torch.Tensor] | None = None, rng: RunRandom | None = None,
                 num_classes: int | None = None, device: torch.device | None = None) -> None:
        self.model, self.batches, self.start = model, batches, start
        self.rng, self.num_classes, self.device = rng, num_classes, device
        self._logits: dict[str, torch.Tensor] = {}

    def logits(self, stream: str) -> torch.Tensor:
        if stream not in self._logits:
            self._logits[stream] = self.model(self.batches[stream].x)
        return self._logits[stream]

    def labels(self, stream: str) -> torch.Tensor:
        return self.batches[stream].y

    def ce(self, stream: str, labels: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(self.logits(stream), self.labels(stream) if labels is None else labels)

    def is_forget(self, stream: str) -> torch.Tensor:
        mask = self.batches[stream].is_forget
        if mask is None:
            raise ValueError(f"The {stream} batch marks no forget rows; only the union batch does.")
        return mask

    def random_labels(self, stream: str) -> torch.Tensor:
        if self.rng is None or self.num_classes is None:
            raise ValueError("random_labels needs the run's generator and its number of classes.")
        y = self.batches[stream].y
        return torch.randint(0, self.num_classes, y.shape, generator=self.rng.gen("cpu")).to(y.device)

    def noise_dot(self, sigma: float) -> torch.Tensor:
        if self.rng is None:
            raise ValueError("noise_dot needs the run's generator.")
        gen = self.rng.gen(self.device if self.device is not None else "cpu")
        params = [p for p in self.model.parameters() if p.requires_grad]
        # d/dtheta <theta, sigma * xi> = sigma * xi: Gaussian gradient noise through the loss
        return sum((p * sigma * torch.randn(p.shape, generator=gen, device=gen.device)).sum() for p in params)

    def sq_dist_to_start(self) -> torch.Tensor:
        if self.start is None:
            raise ValueError("This objective declares no anchor; the starting weights were not kept.")
        return sum((p - p0).pow(2).sum() for p, p0 in zip(self.model.parameters(), self.start, strict=True))


def run_objective(model: nn.Module, retain: Split, forget: Split, objective: Objective,
                  hp: Mapping[str, Any], seed: int, num_classes: int | None = None, **kwargs: Any) -> LoopLog:
    """Minimise ``objective`` with hyperparameters ``hp`` in place: :func:`run_loop` with the
    objective's settings (:meth:`Objective.config`); ``kwargs`` go to :func:`run_loop`.
    ``num_classes`` is needed by objectives that draw labels (``random_labels``,
    ``relabel_forget``)."""
    start = [p.detach().clone() for p in model.parameters()] if objective.anchored(hp) else None
    rng = RunRandom(seed)
    if objective.relabel_forget is not None:
        if num_classes is None:
            raise ValueError("An objective that relabels the forget set needs num_classes.")
        forget = Split(forget.x, objective.relabel_forget(forget.y, num_classes, rng.gen("cpu")), forget.index)
    device = retain.x.device
    union = objective.driver == "union"

    def loss_fn(m: nn.Module, f: Batch | None, r: Batch | None) -> torch.Tensor:
        batches = {"union": r} if union else {"forget": f, "retain": r}
        return objective.loss(ModelOutputs(m, batches, start, rng, num_classes, device), hp)

    return run_loop(model, retain, forget, loss_fn, objective.config(hp), seed, **kwargs)


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
    side_name = ("forget" if cfg.driver == "retain" and cfg.use_forget else
                 "retain" if cfg.driver == "forget" and cfg.use_retain else None)
    side = {"forget": forget, "retain": retain, None: None}[side_name]
    if side is not None and len(side) == 0 and total > 0:
        raise ValueError(f"The {side_name} set is empty; nothing to cycle beside the {cfg.driver} set.")
    fixed_values = {n: named[n].detach()[m].clone() for n, m in (keep_fixed or {}).items()}
    n_retain = len(retain)
    log = LoopLog()
    model.train(cfg.bn_mode == "train")
    epoch = 0
    plan = batch_plan(len(drive), len(side) if side is not None else None, cfg.epochs, cfg.batch_size, seed)
    for epoch_steps in plan:
        for idx, side_idx in epoch_steps:
            rows = idx.to(drive.y.device)
            main = Batch(drive.x[rows], drive.y[rows])
            if cfg.driver == "union":
                main = Batch(main.x, main.y, rows >= n_retain)
            other = None
            if side_idx is not None:
                side_rows = side_idx.to(side.y.device)
                other = Batch(side.x[side_rows], side.y[side_rows])
            fb = main if cfg.driver == "forget" else (other if side_name == "forget" else None)
            rb = main if cfg.driver in ("retain", "union") else (other if side_name == "retain" else None)
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
