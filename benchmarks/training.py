"""Epochs per second: unlearnlib's index-batched training loop against a DataLoader loop.

Both loops train the same architecture from the same initial weights on the same
data with the same optimiser, schedule, batch size and number of epochs, in one
process, one after the other:

- ``index-batched``: :func:`unlearnlib.training.train`. The whole split sits on the
  device; each step draws an index tensor and gathers the batch there.
- ``DataLoader``: a plain ``torch.utils.data.DataLoader`` over a ``TensorDataset``
  of CPU tensors (``shuffle=True``, default ``num_workers=0``), each batch moved to
  the device with ``.to(device)``: the textbook PyTorch loop.

Augmentation is off in both loops (the benchmark measures the loop, not the
augmentation). Each loop is warmed up once (one epoch on a throw-away copy of the
model) before timing; CUDA is synchronised before every clock read. With
``--repeats R`` the two loops alternate R times and the median of each is reported.

Usage::

    python benchmarks/training.py                         # mnist1d + cnn1d, auto device
    python benchmarks/training.py --device cuda --synthetic-cifar 10000 --epochs 2
    python benchmarks/training.py --dataset digits --epochs 10

The last line is ``ratio (index-batched / DataLoader): X.XXx`` (>1: the index-batched
loop is faster). No thresholds: it only prints measurements.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unlearnlib.data import Split, load_splits, resolve_device
from unlearnlib.models import build_model
from unlearnlib.training import Recipe, default_recipe, make_optimizer, make_schedule, train

#: The model each dataset is benchmarked with unless ``--model`` says otherwise.
DEFAULT_MODELS = {
    "mnist1d": "cnn1d",
    "digits": "small_cnn",
    "mnist5k": "small_cnn",
    "mnist": "small_cnn",
    "fashion_mnist": "small_cnn",
    "cifar10": "resnet18_cifar",
    "cifar100": "resnet18_cifar",
}

#: Default epochs per timed run: keeps the CPU default (mnist1d) run well under a minute.
DEFAULT_EPOCHS = 5


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataloader_train(model: nn.Module, data: Split, recipe: Recipe, seed: int, device: torch.device) -> None:
    """The textbook loop: DataLoader over CPU tensors, each batch copied to ``device``.

    ``data`` is the CPU copy of the split (made once, outside the timing). Same
    optimiser, per-step schedule, loss and ``zero_grad(set_to_none=True)`` as
    :func:`unlearnlib.training.train`.
    """
    ds = TensorDataset(data.x, data.y)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(ds, batch_size=recipe.batch_size, shuffle=True, generator=gen)
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    steps_per_epoch = math.ceil(len(ds) / recipe.batch_size)
    sched = make_schedule(opt, recipe.schedule, recipe.epochs * steps_per_epoch)
    model.train()
    for _ in range(recipe.epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def index_train(model: nn.Module, data: Split, recipe: Recipe, seed: int, device: torch.device) -> None:
    train(model, data, recipe, seed, show_progress=False)


def rate(v: float) -> str:
    """Epochs/s with enough digits for both fast (mnist1d on GPU) and slow (ResNet on CPU) runs."""
    return f"{v:8.2f}" if v >= 1 else f"{v:8.4f}"


def timed(fn, init: nn.Module, data: Split, recipe: Recipe, seed: int, device: torch.device) -> float:
    """Seconds for one full run of ``fn`` on a fresh copy of ``init`` (CUDA synchronised)."""
    model = copy.deepcopy(init).to(device)
    sync(device)
    start = time.perf_counter()
    fn(model, data, recipe, seed, device)
    sync(device)
    return time.perf_counter() - start


def synthetic_cifar(n: int, device: torch.device, seed: int = 0) -> tuple[Split, tuple[int, ...], int]:
    """``n`` random 3x32x32 images with random labels in 10 classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Split(x, y, torch.arange(n)).to(device), (3, 32, 32), 10


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist1d", help="registered dataset (default: mnist1d)")
    p.add_argument("--model", default=None, help="registered model (default: per dataset; cnn1d for mnist1d, resnet18_cifar for --synthetic-cifar)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs per timed run (default: {DEFAULT_EPOCHS})")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per loop, alternating; median reported (default: 3)")
    p.add_argument("--batch-size", type=int, default=None, help="override the dataset recipe's batch size")
    p.add_argument("--synthetic-cifar", type=int, default=None, metavar="N",
                   help="use N random 3x32x32 tensors (10 classes) and resnet18_cifar instead of a dataset")
    p.add_argument("--data-root", default=None, help="folder for torchvision datasets")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        p.error("--epochs and --repeats must be at least 1")

    device = resolve_device(args.device)
    if args.synthetic_cifar is not None:
        if args.synthetic_cifar < 1:
            p.error("--synthetic-cifar needs N >= 1")
        data, input_shape, num_classes = synthetic_cifar(args.synthetic_cifar, device, args.seed)
        name = f"synthetic-cifar({args.synthetic_cifar})"
        model_name = args.model or "resnet18_cifar"
        recipe = default_recipe("cifar10")
    else:
        splits = load_splits(args.dataset, data_root=args.data_root, device=device)
        data, input_shape, num_classes = splits.train, splits.input_shape, splits.num_classes
        name = args.dataset
        model_name = args.model or DEFAULT_MODELS.get(args.dataset, "mlp")
        recipe = default_recipe(args.dataset)
    recipe = recipe.with_(epochs=args.epochs, batch_size=args.batch_size, augment=False)
    if len(data) < recipe.batch_size:
        # BatchNorm needs >1 sample per batch; keep the benchmark meaningful on tiny data.
        recipe = recipe.with_(batch_size=max(2, len(data)))
    init = build_model(model_name, input_shape, num_classes, seed=args.seed)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__} | device {device} ({dev_name}) | threads {torch.get_num_threads()}")
    print(
        f"data {name}: {len(data)} samples {tuple(input_shape)} | model {model_name} | "
        f"batch {recipe.batch_size} ({math.ceil(len(data) / recipe.batch_size)} steps/epoch) | "
        f"{recipe.optimizer} lr {recipe.lr} {recipe.schedule} | epochs {recipe.epochs} x repeats {args.repeats}"
    )
    sys.stdout.flush()

    # (loop, the data it reads): device-resident split vs. its CPU copy for the DataLoader.
    loops = {"index-batched": (index_train, data), "DataLoader": (dataloader_train, data.to("cpu"))}
    warm = recipe.with_(epochs=1)
    for label, (fn, d) in loops.items():
        s = timed(fn, init, d, warm, args.seed, device)
        print(f"warm-up {label:<14} 1 epoch: {s:.3f} s")
    times: dict[str, list[float]] = {k: [] for k in loops}
    for r in range(args.repeats):
        # Alternate the order so slow drifts (thermal, other load) hit both loops alike.
        order = list(loops.items()) if r % 2 == 0 else list(reversed(loops.items()))
        for label, (fn, d) in order:
            s = timed(fn, init, d, recipe, args.seed, device)
            times[label].append(s)
            print(f"repeat {r + 1}/{args.repeats} {label:<14} {s:8.3f} s  {rate(recipe.epochs / s)} epochs/s")
        sys.stdout.flush()

    eps = {}
    for label, ts in times.items():
        med = statistics.median(ts)
        eps[label] = recipe.epochs / med
        spread = f" (best {rate(recipe.epochs / min(ts)).strip()}, worst {rate(recipe.epochs / max(ts)).strip()})" if len(ts) > 1 else ""
        print(f"{label:<14} {rate(eps[label])} epochs/s  median of {len(ts)}{spread}")
    print(f"ratio (index-batched / DataLoader): {eps['index-batched'] / eps['DataLoader']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
