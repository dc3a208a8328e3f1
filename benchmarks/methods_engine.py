"""Every tunable method over K seeds: the many-model engine vs the per-seed loop (issue 36).

``unlearnlib bench methods_engine`` (= ``python benchmarks/methods_engine.py``). The K
originals (``build_model(..., seed=s)`` trained on D_r u D_f of mnist1d, one per seed,
by :func:`unlearnlib.ensemble.train_ensemble`; not timed) are unlearned by every tunable
method at its default hyperparameters (``--quick``: at most 2 epochs), seed ``s`` giving
model ``s`` its ``UnlearnData.seed``, two ways in this one process on one torch thread:

- loop: ``methods.get(key)(model_s, data_s, **hp)`` for each seed in turn (the grid's
  per-seed rows);
- engine: :func:`unlearnlib.ensemble.unlearn_ensemble` over the K seeds with
  ``path="auto"`` (its calibration, on the clock, decides grouped / vmap / loop; ``--path``
  forces a batched path).

Methods the engine does not batch (:data:`unlearnlib.ensemble.unlearn.NOT_BATCHED`)
would run the same per-seed loop on both sides: they are run once, the time is counted
on both sides (ratio 1.00) and they are listed. For each batched method the two results
are compared: the largest weight difference over the K models and the largest test
accuracy difference.

Last line: ``ratio (engine / loop): X.XXx`` = total loop seconds / total engine seconds
over the whole grid (> 1: the engine is faster). No thresholds: it prints measurements.
"""

from __future__ import annotations

import os

os.environ.setdefault("UNLEARNLIB_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from unlearnlib import methods  # noqa: E402
from unlearnlib.data import Split, load_splits, resolve_device  # noqa: E402
from unlearnlib.ensemble import Ensemble, batched_methods, train_ensemble, unlearn_ensemble  # noqa: E402
from unlearnlib.ensemble import unlearn as _engine  # noqa: E402
from unlearnlib.ensemble.unlearn import NOT_BATCHED  # noqa: E402
from unlearnlib.training import default_recipe  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _quick(hp: dict) -> dict:
    """At most two epochs per phase (``--quick``); rni: no reset epochs, one fine epoch."""
    out = dict(hp)
    for k in ("epochs", "retain_epochs"):
        if k in out:
            out[k] = type(out[k])(min(out[k], 2))
    if "reset_epochs" in out:
        out["reset_epochs"] = min(out["reset_epochs"], 0)
    if "fine_epochs" in out:
        out["fine_epochs"] = min(out["fine_epochs"], 1)
    return out


def _max_diff(a: Ensemble, b: Ensemble) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa if sa[k].is_floating_point())


def _acc(e: Ensemble, test: Split) -> torch.Tensor:
    return (e.logits(test.x).argmax(-1) == test.y).double().mean(1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="K: seeds (models) per method")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--methods", default="all", help="all, or a comma-separated list of tunable methods")
    ap.add_argument("--quick", action="store_true", help="at most 2 epochs per method phase; originals 5 epochs")
    ap.add_argument("--forget", default="random:0.1", help="forget set spec (load_splits)")
    ap.add_argument("--path", default="auto", choices=("auto", "grouped", "vmap"),
                    help="the engine's path (auto: its calibration decides, as in the grid)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    tunable = [k for k in methods.available() if methods.get(k).search_space]
    keys = tunable if args.methods == "all" else args.methods.split(",")
    unknown = sorted(set(keys) - set(tunable))
    if unknown:
        raise SystemExit(f"Not tunable methods: {unknown}; allowed: {', '.join(tunable)}.")
    batched = set(batched_methods())

    splits = load_splits("mnist1d", args.forget, device=device)
    full = Split.concat(splits.retain, splits.forget)
    n_r, n_f, C = len(splits.retain), len(splits.forget), splits.num_classes
    K = args.seeds
    seeds = list(range(K))
    recipe = default_recipe("mnist1d")
    if args.quick:
        recipe = recipe.with_(epochs=5)
    init = Ensemble.build("cnn1d", splits.input_shape, C, seeds, device)
    originals = init.clone()
    all_rows = torch.ones(K, len(full), dtype=torch.bool)
    t0 = time.perf_counter()
    train_ensemble(originals, full, all_rows, recipe, seeds, path="auto")
    sync(device)
    t_train = time.perf_counter() - t0
    retain_masks = torch.zeros(K, len(full), dtype=torch.bool)
    retain_masks[:, :n_r] = True
    forget_masks = ~retain_masks
    data = [methods.UnlearnData(splits.retain, splits.forget, splits.val, C, seed=s,
                                init_state=init.model_state(k), train_recipe=recipe)
            for k, s in enumerate(seeds)]

    print(f"torch {torch.__version__} | python {platform.python_version()} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f" | torch threads {torch.get_num_threads()} | load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"mnist1d/cnn1d, forget {args.forget}: |D_r| {n_r}, |D_f| {n_f} | K={K} seeds | originals: "
          f"{recipe.epochs} epochs, trained in {t_train:.1f} s (not timed below) | "
          f"{'quick (<= 2 epochs per phase)' if args.quick else 'default hyperparameters'} | engine path {args.path}")

    def loop_run(key: str, hp: dict) -> tuple[Ensemble, float]:
        method = methods.get(key)
        sync(device)
        t = time.perf_counter()
        out = [method(originals.model(k), data[k], **hp) for k in range(K)]
        sync(device)
        return Ensemble.from_models(out), time.perf_counter() - t

    chosen: list[str] = []
    choose = _engine.choose_path

    def recording_choose(*a, **kw):  # which path the engine's calibration picked, for the report
        chosen.append(choose(*a, **kw))
        return chosen[-1]

    _engine.choose_path = recording_choose

    def engine_run(key: str, hp: dict) -> tuple[Ensemble, float]:
        chosen.clear()
        sync(device)
        t = time.perf_counter()
        out = unlearn_ensemble(key, originals, full, retain_masks, forget_masks, seeds, C, hp, init=init,
                               train_recipe=recipe, val=splits.val, model_name="cnn1d", path=args.path)
        sync(device)
        return out, time.perf_counter() - t

    # warm-up (not timed): one short batched and one per-model run
    engine_run("ft", {"epochs": 1})
    loop_run("ft", {"epochs": 1})

    print(f"{'method':<10} {'batched':<8} {'loop s':>8} {'engine s':>9} {'ratio':>7} {'max|dw|':>9} {'max|dacc|':>9}"
          "  engine path")
    total_loop = total_engine = nb_time = 0.0
    not_batched = []
    for key in keys:
        hp = methods.get(key).resolve_hparams(None)
        if args.quick:
            hp = _quick(hp)
        torch.manual_seed(0)  # methods drawing from the global RNG (surgery) start alike
        looped, t_loop = loop_run(key, hp)
        if key in batched:
            engined, t_eng = engine_run(key, hp)
            dw = _max_diff(engined, looped)
            dacc = (_acc(engined, splits.test) - _acc(looped, splits.test)).abs().max().item()
            extra = f"{dw:>9.1e} {dacc:>9.4f}  {','.join(chosen)}"
        else:
            t_eng = t_loop
            nb_time += t_loop
            not_batched.append(key)
            extra = f"{'-':>9} {'-':>9}"
        total_loop += t_loop
        total_engine += t_eng
        print(f"{key:<10} {'yes' if key in batched else 'no':<8} {t_loop:>8.2f} {t_eng:>9.2f} "
              f"{t_loop / t_eng:>6.2f}x {extra}", flush=True)
    print(f"not batched (per-seed loop on both sides, counted at ratio 1.00): {', '.join(not_batched) or 'none'}")
    for key in not_batched:
        print(f"  {key}: {NOT_BATCHED.get(key, '(no reason recorded)')}")
    b_loop, b_eng = total_loop - nb_time, total_engine - nb_time
    if b_eng > 0:
        print(f"batched methods only: loop {b_loop:.1f} s, engine {b_eng:.1f} s, ratio {b_loop / b_eng:.2f}x")
    print(f"whole grid: loop {total_loop:.1f} s, engine {total_engine:.1f} s; "
          "ratio = loop seconds / engine seconds over the whole grid (> 1: the engine is faster)")
    print(f"ratio (engine / loop): {total_loop / total_engine:.2f}x")


if __name__ == "__main__":
    main()
