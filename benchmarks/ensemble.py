"""K models trained as one computation (unlearnlib.ensemble) vs the same math in a per-model loop.

Both sides train K models of one architecture, model k from ``build_model(..., seed=k)``
on its own random half of the data with its own data-order seed, with the same
recipe: ``path="vmap"`` (stacked parameters, ``torch.vmap`` + ``functional_call``,
SGD on the stacked tensors) against ``path="loop"`` (``unlearnlib.training.train``
once per model). Each side runs once, after a short warm-up of both (the CPU
calibration of :func:`unlearnlib.ensemble.calibrate`, whose choice for ``path="auto"``
is printed too). Throughput is reported against this machine's measured fp32 matmul
peak (one large ``torch.matmul``), with FLOPs of one training step counted by
``torch.utils.flop_counter``.

Usage::

    python benchmarks/ensemble.py                      # cnn1d on mnist1d, K=64, CPU-sized default
    python benchmarks/ensemble.py --device cuda
    python benchmarks/ensemble.py --model resnet18_cifar --synthetic-cifar 4096 --device cuda

Last line: ``ratio (batched / loop): X.XXx`` (loop seconds / batched seconds; > 1: batching wins).
No thresholds: it only prints measurements.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from unlearnlib.data import Split, load_splits, resolve_device
from unlearnlib.ensemble import _PATH_CACHE, Ensemble, arch_key, calibrate, train_ensemble
from unlearnlib.models import build_model
from unlearnlib.training import Recipe, default_recipe


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device) -> float:
    """Measured fp32 GFLOP/s of a large square matmul (best of a few)."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(3 if device.type == "cuda" else 2):
        sync(device)
        t = time.perf_counter()
        for _ in range(5 if device.type == "cuda" else 1):
            torch.matmul(a, b)
        sync(device)
        best = min(best, (time.perf_counter() - t) / (5 if device.type == "cuda" else 1))
    return 2 * n**3 / best / 1e9


def step_flops(model_name: str, data: Split, num_classes: int, batch: int) -> int:
    """FLOPs of one forward + backward of one model on one batch."""
    m = build_model(model_name, tuple(data.x.shape[1:]), num_classes, seed=0).to(data.x.device).train()
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(m(data.x[:batch]), data.y[:batch]).backward()
    return fc.get_total_flops()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--k", type=int, default=64, help="number of models")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per model (default: 2 on CPU, 5 cnn1d GPU, 1 ResNet)")
    ap.add_argument("--model", default="cnn1d", help="cnn1d (mnist1d) or resnet18_cifar (with --synthetic-cifar)")
    ap.add_argument("--synthetic-cifar", type=int, default=0, metavar="N",
                    help="N random 3x32x32 images, 10 classes, instead of mnist1d")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=None, help="models per vmap step (default: fit memory)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)

    if args.synthetic_cifar:
        g = torch.Generator().manual_seed(0)
        n = args.synthetic_cifar
        data = Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g),
                     torch.arange(n)).to(device)
        recipe = Recipe(epochs=1, lr=0.1, batch_size=256)
        dataset = f"synthetic-cifar {n}"
    else:
        splits = load_splits("mnist1d", device=device)
        data = splits.train
        recipe = default_recipe("mnist1d")
        dataset = "mnist1d (D_r u D_f)"
    default_epochs = 2 if device.type == "cpu" else (1 if args.model.startswith("resnet") else 5)
    recipe = recipe.with_(epochs=args.epochs or default_epochs, batch_size=args.batch_size)
    K, N = args.k, len(data)
    g = torch.Generator().manual_seed(1)
    masks = torch.zeros(K, N, dtype=torch.bool)
    for k in range(K):  # each model trains on its own random half
        masks[k, torch.randperm(N, generator=g)[: N // 2]] = True
    seeds = list(range(K))
    shape = tuple(data.x.shape[1:])

    print(f"torch {torch.__version__} | python {platform.python_version()} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads)"))
    print(f"data {dataset}: {N} samples, each model trains on {N // 2} | model {args.model} | K={K} | "
          f"epochs {recipe.epochs} | batch {recipe.batch_size} | SGD lr {recipe.lr} {recipe.schedule}")
    peak = matmul_peak(device)
    flops_step = step_flops(args.model, data, 10, recipe.batch_size)
    steps = recipe.epochs * -(-(N // 2) // recipe.batch_size)
    total_flops = flops_step * steps * K
    print(f"matmul peak (fp32, measured): {peak:,.0f} GFLOP/s | one training step: {flops_step / 1e9:.3f} GFLOP "
          f"| total work: {total_flops / 1e12:.2f} TFLOP ({steps} steps x {K} models)")

    # warm-up of both paths on one batch; also the calibration behind path="auto"
    ens0 = Ensemble.build(args.model, shape, 10, seeds[: min(K, 8)], device)
    x0, y0 = data.x[: recipe.batch_size], data.y[: recipe.batch_size]
    cal = calibrate(ens0, x0, y0, n_steps=2)
    print(f"warm-up/calibration (8 models, per step): vmap {cal['vmap'] * 1e3:.1f} ms, loop {cal['loop'] * 1e3:.1f} ms")

    times = {}
    for path in ("vmap", "loop"):
        ens = Ensemble.build(args.model, shape, 10, seeds, device)
        sync(device)
        t = time.perf_counter()
        log = train_ensemble(ens, data, masks, recipe, seeds, path=path, chunk=args.chunk)
        sync(device)
        times[path] = time.perf_counter() - t
        print(f"{'batched' if path == 'vmap' else 'loop':>8}: {times[path]:8.2f} s | "
              f"{K * recipe.epochs / times[path]:8.2f} model-epochs/s | "
              f"{total_flops / times[path] / 1e9:10,.1f} GFLOP/s ({100 * total_flops / times[path] / 1e9 / peak:.1f}% of peak)")
        del ens, log
        if device.type == "cuda":
            torch.cuda.empty_cache()
    auto = _PATH_CACHE.get((arch_key(ens0), tuple(x0.shape), K, str(device), torch.get_num_threads()))
    if device.type == "cpu":
        print(f"path='auto' on this CPU would pick: {auto or 'calibrated at run time'}")
    print(f"ratio (batched / loop): {times['loop'] / times['vmap']:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
