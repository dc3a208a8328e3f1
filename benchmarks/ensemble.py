"""K models trained as one computation (unlearnlib.ensemble) vs the same math in a per-model loop.

Every side trains the same K models of one architecture, model k from
``build_model(..., seed=k)`` on its own random half of the data with its own
data-order seed, with the same recipe: ``path="grouped"`` (the K models folded
into one network: grouped convolutions, BatchNorm over K*C channels, a batched
matmul head; only for models that fold), ``path="vmap"`` (``torch.vmap`` +
``functional_call``) and ``path="loop"`` (``unlearnlib.training.train`` once
per model), all in this one process.

Before timing, a gradient check: one batch per model, the gradients of every
path against the per-model loop in fp64 (relative error over all of a model's
parameters, median and worst model): each path in fp32 (the fp32 loop's own
error is the scale of rounding; a model with an activation at a ReLU kink makes
the worst one ~1e-2 for every path alike) and each batched path in fp64 (the
same function: ~1e-16). Then the calibration behind ``path="auto"``
(:func:`unlearnlib.ensemble.calibrate`: one step of each path on the same K
models and batches, after a warm-up) and its pick. Then ``--repeats`` rounds of
full training runs, the paths alternating within a round so that load from other
processes falls on all of them; the fastest run of each path is reported, and
each round's ratio too. Throughput is reported against this machine's measured
fp32 matmul peak, with FLOPs of one training step counted by
``torch.utils.flop_counter``.

Usage::

    python benchmarks/ensemble.py                      # cnn1d on mnist1d, K=64, CPU-sized default
    UNLEARNLIB_THREADS=2 python benchmarks/ensemble.py --repeats 2   # import unlearnlib sets the threads
    python benchmarks/ensemble.py --device cuda
    python benchmarks/ensemble.py --model resnet18_cifar --synthetic-cifar 4096 --device cuda

Last line: ``ratio (grouped / loop): X.XXx`` (loop seconds / grouped seconds,
best run of each; > 1: batching wins), or ``ratio (vmap / loop)`` for a model
that does not fold. No thresholds: it only prints measurements.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from unlearnlib.data import Split, load_splits, resolve_device
from unlearnlib.ensemble import (
    GROUPED_CHUNK_BYTES,
    Ensemble,
    batched_paths,
    calibrate,
    grouped_chunk,
    pick_path,
    train_ensemble,
)
from unlearnlib.models import build_model
from unlearnlib.training import Recipe, default_recipe


def _load() -> str:
    """1, 5 and 15-minute load averages: other processes on the CPU change every timing here."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


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


def _cast(ens: Ensemble, dtype: torch.dtype) -> Ensemble:
    return Ensemble(ens.base, {k: v.to(dtype) for k, v in ens.params.items()},
                    {k: v.to(dtype) if v.is_floating_point() else v for k, v in ens.buffers.items()})


def _loop_grads(ens: Ensemble, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-model gradients of the mean cross-entropy, model k on batch k (in the ensemble's dtype)."""
    grads: dict[str, list[torch.Tensor]] = {n: [] for n in ens.params}
    for k in range(len(ens)):
        m = ens.model(k).train()
        F.cross_entropy(m(x[k]), y[k]).backward()
        for n, p in m.named_parameters():
            grads[n].append(p.grad)
    return {n: torch.stack(g) for n, g in grads.items()}


def _batched_grads(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, path: str) -> dict[str, torch.Tensor]:
    work = ens.clone().requires_grad_(True)
    out = work.forward(x, path=path)
    F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(len(ens), -1).mean(1).sum().backward()
    return {n: p.grad for n, p in work.params.items()}


def _rel_err(got: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Median and worst over models of ||g_k - ref_k|| / ||ref_k|| (all of model k's parameters)."""
    num = sum((got[n].double() - ref[n].double()).pow(2).flatten(1).sum(1) for n in ref)
    den = sum(ref[n].double().pow(2).flatten(1).sum(1) for n in ref)
    r = (num / den).sqrt()
    return r.median().item(), r.max().item()


def gradient_check(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, paths: list[str]) -> dict[str, tuple]:
    """Each path's gradients against the per-model loop in fp64: ``path`` in fp32 and
    ``path@fp64`` in fp64 (the same function: rounding only)."""
    e64, x64 = _cast(ens, torch.float64), x.double()
    ref = _loop_grads(e64, x64, y)
    errs = {"loop": _rel_err(_loop_grads(ens, x, y), ref)}
    for p in paths:
        if p != "loop":
            errs[p] = _rel_err(_batched_grads(ens, x, y, p), ref)
            errs[f"{p}@fp64"] = _rel_err(_batched_grads(e64, x64, y, p), ref)
    return errs


def max_abs_diff(a: Ensemble, b: Ensemble) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--k", type=int, default=64, help="number of models")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per model (default: 2 on CPU, 5 cnn1d GPU, 1 ResNet)")
    ap.add_argument("--model", default="cnn1d", help="cnn1d (mnist1d) or resnet18_cifar (with --synthetic-cifar)")
    ap.add_argument("--synthetic-cifar", type=int, default=0, metavar="N",
                    help="N random 3x32x32 images, 10 classes, instead of mnist1d")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=None, help="models per batched step (default: fit memory)")
    ap.add_argument("--paths", default="grouped,vmap,loop", help="paths to time (grouped is skipped where the model does not fold)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of full runs (paths alternate in each round)")
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
    ens0 = Ensemble.build(args.model, shape, 10, seeds, device)
    paths = [p for p in args.paths.split(",") if p == "loop" or p in batched_paths(ens0)]
    if "loop" not in paths or len(paths) < 2:
        raise SystemExit(f"--paths must include loop and a batched path this model can run; got {paths}.")

    print(f"torch {torch.__version__} | python {platform.python_version()} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({torch.get_num_threads()} threads; set UNLEARNLIB_THREADS) | load average {_load()}"))
    print(f"data {dataset}: {N} samples, each model trains on {N // 2} | model {args.model} | K={K} | "
          f"epochs {recipe.epochs} | batch {recipe.batch_size} | SGD lr {recipe.lr} {recipe.schedule} | paths {paths}")
    peak = matmul_peak(device)
    flops_step = step_flops(args.model, data, 10, recipe.batch_size)
    steps = recipe.epochs * -(-(N // 2) // recipe.batch_size)
    total_flops = flops_step * steps * K
    print(f"matmul peak (fp32, measured): {peak:,.0f} GFLOP/s | one training step: {flops_step / 1e9:.3f} GFLOP "
          f"| total work: {total_flops / 1e12:.2f} TFLOP ({steps} steps x {K} models)")

    # each model's first batch: the gradient check and the calibration behind path="auto"
    idx = torch.stack([torch.nonzero(m).squeeze(1)[: recipe.batch_size] for m in masks]).to(device)
    x0, y0 = data.x[idx], data.y[idx]
    errs = gradient_check(ens0, x0, y0, paths)
    print("gradient check against the fp64 per-model loop (relative error, median / worst model; fp32 unless @fp64): "
          + ", ".join(f"{p} {med:.1e} / {worst:.1e}" for p, (med, worst) in errs.items()))
    if "grouped" in paths and device.type == "cpu" and args.chunk is None:
        print(f"grouped path on the CPU: {grouped_chunk(ens0, x0)} models per step "
              f"(activations within {GROUPED_CHUNK_BYTES / 2**20:.0f} MiB)")
    cal = calibrate(ens0, x0, y0, n_steps=2, paths=paths)
    print(f"calibration (all {K} models, per step): " + ", ".join(f"{p} {t * 1e3:.1f} ms" for p, t in cal.items())
          + f" -> path='auto' on {device.type} would pick {pick_path(cal) if device.type == 'cpu' else 'vmap'}")

    times: dict[str, list[float]] = {p: [] for p in paths}
    final: dict[str, Ensemble] = {}
    for r in range(args.repeats):
        for path in paths:
            ens = Ensemble.build(args.model, shape, 10, seeds, device)
            sync(device)
            t, c = time.perf_counter(), time.process_time()
            train_ensemble(ens, data, masks, recipe, seeds, path=path, chunk=args.chunk)
            sync(device)
            times[path].append(time.perf_counter() - t)
            final[path] = ens
            print(f"round {r + 1} {path:>8}: {times[path][-1]:8.2f} s (process CPU {time.process_time() - c:6.2f} s) | "
                  f"{K * recipe.epochs / times[path][-1]:8.2f} model-epochs/s | "
                  f"{total_flops / times[path][-1] / 1e9:10,.1f} GFLOP/s "
                  f"({100 * total_flops / times[path][-1] / 1e9 / peak:.1f}% of peak)")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    main_path = "grouped" if "grouped" in paths else next(p for p in paths if p != "loop")
    for p in paths:
        if p != "loop":
            per_round = ", ".join(f"{lt / t:.2f}x" for lt, t in zip(times["loop"], times[p], strict=True))
            print(f"{p}: best {min(times[p]):.2f} s vs loop {min(times['loop']):.2f} s; per round {per_round}; "
                  f"trained weights vs loop: max abs diff {max_abs_diff(final[p], final['loop']):.1e}")
    if device.type == "cpu":
        print(f"load average at the end: {_load()}")
    print(f"ratio ({main_path} / loop): {min(times['loop']) / min(times[main_path]):.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
