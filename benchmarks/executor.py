"""Wall time of one grid: serially in one process against N local Dask workers.

The same :func:`unlearnlib.studies.experiment.run_grid` (default: mnist1d / cnn1d, methods
original, retrain, ft and ga, seeds 0-7, 8 training epochs: 16 model trainings and 32
result rows) runs twice in one invocation, each into a fresh store whose dataset cache is
filled before the clock starts:

- ``serial``: the Python API's default, every unit in this process, one torch thread;
- ``N local workers``: ``executor=DaskExecutor(n_workers=N)``, a LocalCluster of N worker
  processes with one torch thread each (the thread rule, :mod:`unlearnlib.studies.executors`).
  The clock includes starting the cluster and the workers' imports: what a user waits for.

Both runs' rows are compared (every column but the wall-clock ones) and the load average
is printed beside the times, since other processes on the machine slow either run, and so
is each worker's time inside tasks (Dask's task stream), which shows how much of the
parallel run the workers spent waiting.
On a 2-core machine the target is 1.7x with 2 workers (two hand-started 1-thread
processes sharing a store measured 1.76x).

Usage::

    python benchmarks/executor.py                          # 2 workers, seeds 0-7, 8 epochs
    python benchmarks/executor.py --workers 4 --seeds 0-15 --epochs 4

The last line is ``ratio (serial / N local workers): X.XXx`` (>1: the workers are faster).
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

    from distributed import get_task_stream

    from unlearnlib.studies.executors import DaskExecutor
    from unlearnlib.studies.experiment import parse_seeds, run_grid

    grid = dict(dataset=args.dataset, model=args.model, methods=args.methods, seeds=args.seeds,
                epochs=args.epochs, show_progress=False)
    seeds = parse_seeds(args.seeds)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPU(s), "
          f"{torch.get_num_threads()} torch thread(s) per process")
    print(f"grid: {args.dataset}/{args.model}, methods {args.methods}, {len(seeds)} seeds "
          f"({2 * len(seeds)} model trainings), {args.epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        serial_store = fresh_store(args.dataset, tmp, "serial")
        parallel_store = fresh_store(args.dataset, tmp, "parallel")

        print(f"serial start: {load()}")
        t = time.perf_counter()
        serial = run_grid(store=serial_store, **grid)
        t_serial = time.perf_counter() - t
        print(f"serial: {t_serial:.1f} s ({serial_store.misses} units computed); {load()}")

        t = time.perf_counter()
        with DaskExecutor(n_workers=args.workers) as ex:
            ex.client().wait_for_workers(args.workers)
            t_start = time.perf_counter() - t
            with get_task_stream(ex.client()) as stream:
                parallel = run_grid(store=parallel_store, executor=ex, **grid)
            t_parallel = time.perf_counter() - t
        print(f"{args.workers} local workers: {t_parallel:.1f} s, of which {t_start:.1f} s starting the cluster "
              f"({parallel_store.misses} units computed); {load()}")
        print(worker_busy(stream.data, t_parallel - t_start))

    wall = ["unlearn_seconds", "rte", "retrain_seconds"]
    try:
        pd.testing.assert_frame_equal(serial.drop(columns=wall), parallel.drop(columns=wall), check_exact=True)
        same = True
    except AssertionError:
        same = False
    print(f"rows identical (all but wall-clock columns): {same}")
    print(f"ratio (serial / {args.workers} local workers): {t_serial / t_parallel:.2f}x")


if __name__ == "__main__":  # the guard matters: Dask starts its workers by spawning this module
    main()
