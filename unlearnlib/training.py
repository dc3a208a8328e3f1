"""Training recipes and the index-batched, device-resident training loop.

Deep Unlearn (Cadet et al. 2024) trains the original and the retrained ("gold")
model with SGD (lr 0.1, momentum 0.9, weight decay 5e-4), batch 256, a cosine
schedule and cross-entropy: 182 epochs on CIFAR, 50 on MNIST-type data. The
original and the retrained model of one seed start from the SAME initial
weights and use the same data-order seed; only the data differ (D_r u D_f
against D_r).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split, Splits, augment_batch, index_batches
from .models import build_model
from .numerics import numerics
from .store import Store


@dataclass(frozen=True)
class Recipe:
    """Everything that determines how a model is trained (and so its cache key).

    ``sd_lambda`` adds Thudi et al. 2022's SD regulariser (arXiv 2109.13398),
    ``lam * sum_i std_c(z_ic) / (B * C)``, to the loss; ``sd_decay`` divides ``lam``
    by that factor every 10 epochs (1.0 = constant). ``sd_lambda = 0`` is plain CE.
    """

    epochs: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    schedule: str = "cosine"
    optimizer: str = "sgd"
    augment: bool = False
    sd_lambda: float = 0.0
    sd_decay: float = 1.0

    def __post_init__(self) -> None:
        if self.sd_lambda < 0 or self.sd_decay <= 0:
            raise ValueError(
                f"Need sd_lambda >= 0 (0 = off) and sd_decay > 0 (1 = no decay); "
                f"got {self.sd_lambda}, {self.sd_decay}."
            )

    def with_(self, **changes) -> "Recipe":
        """A copy with ``changes`` applied; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        d = asdict(self)
        # SD fields at their defaults are left out, so existing cache keys stay valid
        for k, default in (("sd_lambda", 0.0), ("sd_decay", 1.0)):
            if d[k] == default:
                del d[k]
        return d


#: Deep Unlearn's recipe for paper-scale data (CIFAR: 182 epochs; MNIST-type: 50).
DEEP_UNLEARN_CIFAR = Recipe(epochs=182, lr=0.1, augment=True)
DEEP_UNLEARN_MNIST = Recipe(epochs=50, lr=0.1)

#: Per-dataset defaults. The embedded sets use shorter runs that still fit the
#: training set (train accuracy 1.0), measured in the README's quality table.
DEFAULT_RECIPES: dict[str, Recipe] = {
    "mnist1d": Recipe(epochs=40, lr=0.05, batch_size=128),
    "digits": Recipe(epochs=30, lr=0.05, batch_size=64),
    "mnist5k": Recipe(epochs=20, lr=0.05, batch_size=128),
    # text_bag fits 0.97-0.99 of its training set at lr 0.1, 0.3 and 1.0 (3 seeds each)
    "rt_sentiment": Recipe(epochs=20, lr=0.3, batch_size=128),
    "cifar10": DEEP_UNLEARN_CIFAR,
    "cifar100": DEEP_UNLEARN_CIFAR,
    "mnist": DEEP_UNLEARN_MNIST,
    "fashion_mnist": DEEP_UNLEARN_MNIST,
}


def default_recipe(dataset: str) -> Recipe:
    return DEFAULT_RECIPES.get(dataset, DEEP_UNLEARN_MNIST)


# --------------------------------------------------------------------------- SD regulariser (Thudi et al. 2022)


def sd_loss(logits: torch.Tensor) -> torch.Tensor:
    """``sum_i std_c(z_ic) / (B * C)``: per-sample standard deviation of the logits across
    classes, summed over the batch and divided by the number of logit entries.

    ``torch.std``'s default (unbiased, ``correction=1``) is used, as a PyTorch
    implementation of Thudi et al. 2022's regulariser would.
    """
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"sd_loss needs logits of shape (batch, classes >= 2); got {tuple(logits.shape)}.")
    return logits.std(dim=1).sum() / logits.numel()


def sd_lambda_at(lam: float, decay: float, epoch: int) -> float:
    """The regulariser weight in (0-based) ``epoch``: ``lam / decay ** (epoch // 10)``."""
    if decay <= 0:
        raise ValueError(f"sd_decay must be > 0 (1.0 = no decay); got {decay}.")
    return lam / decay ** (epoch // 10)


#: A batch loss ``(logits, targets) -> scalar`` (mean over the batch).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def training_loss(recipe: "Recipe", epoch: int = 0) -> LossFn:
    """The batch loss ``recipe`` trains with in (0-based) ``epoch``: mean cross-entropy,
    plus ``sd_lambda_at(...) * sd_loss(logits)`` when the recipe has the SD regulariser
    (Thudi et al. 2022's ``std_loss``). :func:`train` uses it, so a Hessian or a gradient
    of "the training loss" (Unrolling SGD's proxy, ``sgu``) matches training exactly."""
    lam = sd_lambda_at(recipe.sd_lambda, recipe.sd_decay, epoch) if recipe.sd_lambda else 0.0

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y)
        if lam:
            loss = loss + lam * sd_loss(logits)
        return loss

    return loss_fn


# --------------------------------------------------------------------------- optimisers


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW; the error lists what is allowed."""
    params = [p for p in params if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}; allowed: sgd, adam, adamw.")


def make_schedule(
    opt: torch.optim.Optimizer, kind: str, total_steps: int, eta_min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate schedule: ``cosine`` (to ``eta_min_ratio``), ``constant``,
    ``linear`` (decay to 0) or ``warmup_linear`` (first half up, second half down)."""
    total = max(1, total_steps)

    def cosine(step: int) -> float:
        return eta_min_ratio + (1 - eta_min_ratio) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))

    def warmup_linear(step: int) -> float:
        half = max(1, total // 2)
        return (step + 1) / half if step < half else max(0.0, (total - step) / max(1, total - half))

    fns: dict[str, Callable[[int], float]] = {
        "cosine": cosine,
        "constant": lambda s: 1.0,
        "linear": lambda s: max(0.0, 1 - s / total),
        "warmup_linear": warmup_linear,
    }
    if kind not in fns:
        raise ValueError(f"Unknown schedule {kind!r}; allowed: {', '.join(fns)}.")
    return torch.optim.lr_scheduler.LambdaLR(opt, fns[kind])


# --------------------------------------------------------------------------- training loop


@dataclass
class TrainLog:
    """What a training run did: wall time, SGD steps, and optionally its batch order."""

    seconds: float
    steps: int
    epochs: int
    batch_order: list[torch.Tensor] = field(default_factory=list)


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool = True):
    """tqdm.auto progress bar (notebook widget or terminal), or the bare iterable."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def train(
    model: nn.Module,
    data: Split,
    recipe: Recipe,
    seed: int,
    show_progress: bool = True,
    record_order: bool = False,
    skip_batches: set[int] | None = None,
    shuffle: bool = True,
) -> TrainLog:
    """Train ``model`` in place on ``data`` (tensors already on the model's device).

    Batches are index tensors drawn from a CPU generator seeded with ``seed``, so
    the data order depends on the seed alone, not on the device. With
    ``record_order`` the batch indices are kept (``TrainLog.batch_order``);
    ``skip_batches`` drops the batches with those global step numbers while
    keeping everything else identical (used to replay a run minus one batch).
    ``shuffle=False`` visits the rows in their order every epoch (an unshuffled loader,
    as Unrolling SGD's fine-tuning uses); the generator then only drives augmentation.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    steps_per_epoch = math.ceil(len(data) / recipe.batch_size)
    sched = make_schedule(opt, recipe.schedule, recipe.epochs * steps_per_epoch)
    model.train()
    log = TrainLog(0.0, 0, recipe.epochs)
    step = 0
    start = time.perf_counter()
    for epoch in progress(range(recipe.epochs), "train", enabled=show_progress):
        loss_fn = training_loss(recipe, epoch)
        for idx in index_batches(len(data), recipe.batch_size, gen, shuffle=shuffle):
            if record_order:
                log.batch_order.append(idx)
            if skip_batches and step in skip_batches:
                step += 1
                with warnings.catch_warnings():
                    # the skipped batch's learning rate goes unused, as it should: the later steps
                    # keep the full run's rates. torch warns about exactly that when the first
                    # batch is the one skipped (no optimizer step yet)
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                            category=UserWarning)
                    sched.step()
                continue
            dev_idx = idx.to(data.x.device)
            x, y = data.x[dev_idx], data.y[dev_idx]
            if recipe.augment:
                x = augment_batch(x, gen)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            log.steps += 1
    if data.x.is_cuda:
        torch.cuda.synchronize()
    log.seconds = time.perf_counter() - start
    model.eval()
    return log


# --------------------------------------------------------------------------- reference models


@dataclass
class ReferenceModels:
    """The original model (trained on D_r u D_f) and the retrained gold model (D_r only)
    of one seed, both from the same initial weights; ``init_state`` is that start."""

    original: nn.Module
    retrained: nn.Module
    init_state: dict[str, torch.Tensor]
    original_seconds: float
    retrain_seconds: float
    recipe: Recipe
    model_name: str
    seed: int


def model_spec(splits: Splits, model_name: str, recipe: Recipe, seed: int) -> dict:
    """Everything that determines a trained reference model (its store key).

    ``arch`` hashes the module structure, so changing a model's definition
    invalidates its checkpoints instead of failing to load them; ``numerics`` (device
    type, CPU threads) keeps runs whose floating-point results differ apart.
    """
    arch = build_model(model_name, splits.input_shape, splits.num_classes)
    return {
        "arch": hashlib.sha256(repr(arch).encode()).hexdigest()[:12],
        "numerics": numerics(splits.device),
        "dataset": splits.dataset,
        "forget": splits.forget_spec,
        "split": splits.fingerprint(),
        "model": model_name,
        "recipe": recipe.as_dict(),
        "seed": seed,
    }


def train_reference_models(
    splits: Splits,
    model_name: str,
    seed: int,
    recipe: Recipe | None = None,
    store: Store | None = None,
    show_progress: bool = True,
) -> ReferenceModels:
    """Train (or load from ``store``) the original and the retrained model of ``seed``."""
    recipe = recipe or default_recipe(splits.dataset)
    store = store or Store()
    device = splits.device
    init = build_model(model_name, splits.input_shape, splits.num_classes, seed=seed)
    init_state = copy.deepcopy(init.state_dict())
    spec = model_spec(splits, model_name, recipe, seed)

    def fit(data: Split) -> Callable[[], tuple[dict, dict]]:
        def build() -> tuple[dict, dict]:
            m = copy.deepcopy(init).to(device)
            log = train(m, data, recipe, seed, show_progress=show_progress)
            return m.state_dict(), {"seconds": log.seconds, "steps": log.steps, "device": str(device)}

        return build

    # The original never depends on the forget set: keyed by the training set alone,
    # it is trained once per seed for all forget sets of a dataset.
    original_spec = {**{k: v for k, v in spec.items() if k not in ("forget", "split")},
                     "train": splits.train_fingerprint(), "role": "original"}
    models, seconds = [], []
    for key, data in ((original_spec, splits.train), ({**spec, "role": "retrain"}, splits.retain)):
        state, meta = store.checkpoint("models", key, fit(data))
        m = copy.deepcopy(init)
        m.load_state_dict(state)
        models.append(m.to(device).eval())
        seconds.append(float(meta["seconds"]))
    return ReferenceModels(
        models[0], models[1], init_state, seconds[0], seconds[1], recipe, model_name, seed
    )
