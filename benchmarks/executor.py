"""Wall time of one grid: serially in one process against N local Dask workers.

The same :func:`unlearnlib.studies.experiment.run_grid` (default: mnist1d / cnn1d, methods
original, retrain, ft and ga, seeds 0-7, 8 training epochs: 16 model trainings and 32
result rows) runs four times in one invocation, each into a fresh store whose dataset cache
is filled before the clock starts:

- ``serial (cold process)``: the Python API's default, every unit in this process, one torch
  thread; this process has imported torch and unlearnlib but trained nothing, so its first
  unit pays the first-call costs (torch.optim imports ``torch._dynamo`` at its first step,
  the MIA imports scikit-learn), as a fresh ``unlearnlib run`` does;
- ``N local workers (cold)``: ``executor=DaskExecutor(n_workers=N)``, a LocalCluster of N
  worker processes with one torch thread each (the thread rule,
  :mod:`unlearnlib.studies.executors`). The clock includes starting the cluster and each
  worker's imports and first calls: what a user of ``unlearnlib run --workers N`` waits for.
  Meanwhile this process computes the first units itself (the executor's
  ``compute_while_starting``; ``--no-compute-while-starting`` turns it off);
- ``serial (warm process)`` and ``N local workers (warm cluster)``: the same with those
  once-per-process costs paid before the clock (this process has trained; the cluster is
  started and each worker warmed by :func:`warm_worker`), as in the book, which holds one
  cluster for all its chapters.

The rows of all four runs are compared (every column but the wall-clock ones) and the load
average is printed beside the times, since other processes on the machine slow either run.
The cold run prints when the workers were up and how many units this process computed
meanwhile; the warm run prints each worker's time inside tasks (Dask's task stream), which
shows how much of the parallel run the workers spent waiting.
On a 2-core machine the target is 1.7x with 2 workers (two hand-started 1-thread
processes sharing a store measured 1.76x). The cold ratio grows with the grid, since the
cluster's start (about 4-5 s on 2 cores, mostly the fork server's imports) is paid once.

Usage::

    python benchmarks/executor.py                          # 2 workers, seeds 0-7, 8 epochs
    python benchmarks/executor.py --workers 4 --seeds 0-15 --epochs 4

The last line is ``ratio (serial / N local workers): X.XXx cold (...), Y.YYx warm (...)``
(>1: the workers are faster).
No thresholds: it only prints measurements.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import pandas as pd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--model", default="cnn1d")
    p.add_argument("--methods", default="original,retrain,ft,ga")
    p.add_argument("--seeds", default="0-7", help="at least 8 seeds give the 16 model trainings of the issue")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-compute-while-starting", dest="overlap", action="store_false",
                   help="the cold run leaves every unit to the workers (this process waits for them)")
    return p.parse_args(argv)


def load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def fresh_store(dataset: str, tmp: str, name: str):
    """A new store with the dataset already cached (generation is not what is measured)."""
    from unlearnlib.data import load_splits
    from unlearnlib.datasets.embedded import dataset_cache
    from unlearnlib.store import Store

    store = Store(os.path.join(tmp, name))
    with dataset_cache(store.root):
        load_splits(dataset, "random:0.1")
    return store


def worker_busy(stream: list[dict], wall: float) -> str:
    """Where the workers' time went, from Dask's task stream: seconds inside tasks per
    worker against the wall time after the cluster started (the rest is waiting for work,
    or the main process reading the results back)."""
    busy: dict[str, float] = {}
    first: dict[str, float] = {}
    for task in stream:
        for span in task.get("startstops", ()):
            if span.get("action") == "compute":
                w = task["worker"]
                busy[w] = busy.get(w, 0.0) + span["stop"] - span["start"]
                first[w] = min(first.get(w, span["start"]), span["start"])
    if not busy:
        return "task stream: empty"
    start = min(first.values())
    parts = [f"{b:.1f} s busy ({100 * b / wall:.0f}%), first task at +{first[w] - start:.1f} s"
             for w, b in sorted(busy.items())]
    return f"workers after the start ({wall:.1f} s): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    from unlearnlib.studies.experiment import parse_seeds

    grid = dict(dataset=args.dataset, model=args.model, methods=args.methods, seeds=args.seeds,
                epochs=args.epochs, show_progress=False)
    seeds = parse_seeds(args.seeds)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPU(s), "
          f"{torch.get_num_threads()} torch thread(s) per process")
    print(f"grid: {args.dataset}/{args.model}, methods {args.methods}, {len(seeds)} seeds "
          f"({2 * len(seeds)} model trainings), {args.epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        stores = {name: fresh_store(args.dataset, tmp, name)
                  for name in ("serial", "parallel", "serial-warm", "parallel-warm")}

        # cold: this process has imported torch and unlearnlib but trained nothing yet (its
        # first unit pays the first-call costs, as in a fresh `unlearnlib run`); the cluster's
        # start and its workers' imports are on the clock
        serial, t_serial = timed_serial(grid, stores["serial"], "serial (cold process)")
        parallel, t_parallel = timed_parallel(grid, stores["parallel"], args.workers, warm=False,
                                              overlap=args.overlap)

        # warm: this process has trained now; the cluster is started and each worker warmed
        # before the clock, as the book holds one cluster for all its chapters
        serial_w, t_serial_w = timed_serial(grid, stores["serial-warm"], "serial (warm process)")
        parallel_w, t_parallel_w = timed_parallel(grid, stores["parallel-warm"], args.workers, warm=True)

    same = all(identical(a, b) for a, b in ((serial, parallel), (serial, serial_w), (serial, parallel_w)))
    print(f"rows identical in all four runs (all but wall-clock columns): {same}")
    print(f"ratio (serial / {args.workers} local workers): {t_serial / t_parallel:.2f}x cold (cluster start and "
          f"worker imports on the clock), {t_serial_w / t_parallel_w:.2f}x warm (a started, warmed cluster, "
          f"as the book holds one)")


def timed_serial(grid: dict, store, label: str) -> tuple[pd.DataFrame, float]:
    from unlearnlib.studies.experiment import run_grid

    print(f"{label} start: {load()}")
    t = time.perf_counter()
    rows = run_grid(store=store, **grid)
    seconds = time.perf_counter() - t
    print(f"{label}: {seconds:.1f} s ({store.misses} units computed); {load()}")
    return rows, seconds


def timed_parallel(grid: dict, store, workers: int, warm: bool, overlap: bool = True) -> tuple[pd.DataFrame, float]:
    from distributed import get_task_stream

    from unlearnlib.studies.executors import DaskExecutor
    from unlearnlib.studies.experiment import run_grid

    label = f"{workers} local workers ({'warm cluster' if warm else 'cold: cluster started on the clock'})"
    t = time.perf_counter()
    with DaskExecutor(n_workers=workers, compute_while_starting=overlap) as ex:
        if not warm:
            # run_grid starts the cluster when it finds units missing; meanwhile (overlap) this
            # process computes units itself until the workers are up
            rows = run_grid(store=store, executor=ex, **grid)
            seconds = time.perf_counter() - t
            up = f"{ex.start_seconds:.1f} s" if ex.start_seconds is not None else "the run (not up yet)"
            print(f"{label}: {seconds:.1f} s, the workers up after {up}, "
                  f"{ex.units_while_starting} units computed in this process meanwhile "
                  f"({store.misses} units computed in all); {load()}")
            return rows, seconds
        client = ex.client()
        addresses = list(client.scheduler_info()["workers"])
        client.gather([client.submit(warm_worker, workers=[a], allow_other_workers=False, pure=False)
                       for a in addresses])
        print(f"cluster started and warmed in {time.perf_counter() - t:.1f} s (off the clock); {load()}")
        t = time.perf_counter()
        with get_task_stream(client) as stream:
            rows = run_grid(store=store, executor=ex, **grid)
        seconds = time.perf_counter() - t
    print(f"{label}: {seconds:.1f} s ({store.misses} units computed); {load()}")
    print(worker_busy(stream.data, seconds))
    return rows, seconds


def warm_worker() -> float:
    """In a worker: what a unit's first call pays once per process, paid here instead. The
    fork server's imports (:mod:`unlearnlib.studies.worker_preload`: present already in a
    forked worker, imported here in a spawned one), one optimizer step and one scikit-learn
    fit (the population MIA's). Returns its seconds."""
    t = time.perf_counter()
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    import unlearnlib.studies.worker_preload  # noqa: F401

    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(8, 1, 16)).sum().backward()
    opt.step()
    LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2)
    return time.perf_counter() - t


def identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    wall = ["unlearn_seconds", "rte", "retrain_seconds"]
    try:
        pd.testing.assert_frame_equal(a.drop(columns=wall), b.drop(columns=wall), check_exact=True)
        return True
    except AssertionError:
        return False


if __name__ == "__main__":  # the guard matters: Dask starts its workers by spawning this module
    main()
