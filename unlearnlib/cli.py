"""The ``unlearnlib`` console script (also ``python -m unlearnlib``).

- ``unlearnlib run``      train/load, unlearn, evaluate; print a table, write tidy rows
- ``unlearnlib methods``  list the registered methods with their hyperparameters
- ``unlearnlib tune``     Deep Unlearn's Optuna search for one method, then rerun on more seeds
- ``unlearnlib book``     execute every notebook with a profile and build the HTML book
- ``unlearnlib bench``    run a script of ``benchmarks/``

``run``, ``tune`` and ``book`` compute the units that are not stored yet on worker
processes: ``--workers N`` local ones (default: ``$UNLEARNLIB_WORKERS``, else one per core;
1 = serially in this process) or ``--scheduler ADDRESS``, an existing Dask scheduler
(default ``$UNLEARNLIB_SCHEDULER``); see :mod:`unlearnlib.studies.executors`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import methods as registry


def _parse_hparams(text: str | None) -> dict | None:
    """``--hparams`` JSON -> dict (its structure is checked by GridConfig)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--hparams is not valid JSON ({e.msg} at character {e.pos}): {text!r}; give an "
                         'object of method keys to objects, e.g. \'{"ft": {"lr": 0.01}}\'.') from None


def _store(args: argparse.Namespace):
    """The store of ``--store`` (else the default), checked to be writable before anything runs."""
    from .store import Store

    store = Store(args.store) if args.store else Store()
    store.check_writable()
    return store


def _executor(args: argparse.Namespace):
    """The executor of ``--workers`` / ``--scheduler`` (checked before anything runs; a local
    cluster starts only when a unit is missing)."""
    from .studies.executors import from_options

    return from_options(args.workers, args.scheduler)


def _cmd_run(args: argparse.Namespace) -> int:
    from .studies.experiment import check_out, format_summary, run_grid, write_rows

    hparams = _parse_hparams(args.hparams)
    out = check_out(args.out) if args.out else None  # before the grid: a bad --out wastes no training
    store = _store(args)
    start = time.perf_counter()
    with _executor(args) as ex:
        df = run_grid(
            dataset=args.dataset, model=args.model, methods=args.methods, seeds=args.seeds,
            forget=args.forget, epochs=args.epochs, data_root=args.data_root, device=args.device,
            hparams=hparams, store=store, show_progress=not args.quiet, executor=ex,
        )
    print(format_summary(df))
    print(f"\n{len(df)} rows in {time.perf_counter() - start:.1f} s "
          f"(store {store.root}: {store.hits} hits, {store.misses} misses"
          f"{f', {len(store.corrupt)} bad entries moved aside and recomputed' if store.corrupt else ''})")
    if out is not None:
        print(f"wrote {write_rows(df, out)}")
    return 0


def _fmt_param(p: registry.Param) -> str:
    if p.kind == "categorical":
        return "{" + ", ".join(map(str, p.choices)) + "}"
    high = f"ceil({p.high_train_fraction} * E_train)" if p.high_train_fraction else f"{p.high:g}"
    return f"{p.kind}[{p.low:g}, {high}]" + (" log" if p.log else "")


def _cmd_methods(args: argparse.Namespace) -> int:
    for key in registry.available():
        m = registry.get(key)
        print(f"{key:10s} {m.name}  ({m.paper})")
        for name, default in m.defaults.items():
            space = m.search_space.get(name)
            print(f"    {name:14s} default {default!r:10}  search {_fmt_param(space) if space else '-'}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from .studies.experiment import parse_seeds

    keys = registry.parse_methods(args.method)
    parse_seeds(args.seeds)
    if args.rerun_seeds:
        parse_seeds(args.rerun_seeds)
    if args.trials < 1:
        raise ValueError(f"--trials must be a positive integer; got {args.trials}.")
    store = _store(args)
    with _executor(args) as ex:
        return _tune(args, keys, store, ex)


def _tune(args: argparse.Namespace, keys: list[str], store, ex) -> int:
    """Tune ``keys`` on ``ex`` (its studies and rows run there first), print and ship."""
    from .datasets.embedded import dataset_cache
    from .studies import tuned
    from .studies.experiment import UnitPlan, check_model_fits, format_summary, to_frame
    from .studies.hpo import Setup, add_trial_counts, make_entry, prepare_tuning, tune_and_rerun

    start = time.perf_counter()
    with dataset_cache(store.root):
        setup = Setup.create(args.dataset, args.model, args.forget, args.epochs, args.device,
                             args.data_root, store, show_progress=not args.quiet)
    check_model_fits(setup.model, setup.splits)
    rerun_seeds = args.rerun_seeds or args.seeds
    # every method's studies on the workers at once (nothing on the serial executor)
    ran = prepare_tuning(ex, setup, keys, args.seeds, args.trials, rerun_seeds, warm_start=args.warm_start,
                         parallel_trials=args.parallel_trials, show_progress=not args.quiet)
    frames = []
    for key in keys:
        t0 = time.perf_counter()
        result, rows = tune_and_rerun(
            key, tune_seeds=args.seeds, seeds=rerun_seeds, n_trials=args.trials,
            verbose=args.verbose, show_progress=not args.quiet, setup=setup, warm_start=args.warm_start,
            executor=ex, parallel_trials=args.parallel_trials,
        )
        add_trial_counts(result, ran)
        if result.tuned:
            print(f"{key}: {args.trials} trials per seed on seeds {args.seeds}; chosen from seed "
                  f"{result.best_seed} ({result.source}), mean objective norm over the tuning seeds "
                  f"{result.selection.objective:.4f}\n")
            print(result.table().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
            if args.ship:
                path = tuned.write_entries(
                    {tuned.entry_key(setup.splits.dataset, setup.model, setup.splits.forget_spec, key):
                     make_entry(result, setup, rows, time.perf_counter() - t0)}, args.table)
                print(f"wrote the tuned entry of {key} to {path}")
        else:
            print(f"{key}: nothing to tune (reference method or empty search space); defaults used.")
        print(f"\nbest hyperparameters of {key}: {json.dumps(result.hparams)}\n")
        frames.append(rows)
    seeds = sorted({int(s) for f in frames for s in f["seed"]})
    if ex.parallel:
        plan = UnitPlan.for_setup(ex, setup)
        for s in seeds:
            for k in ("original", "retrain"):
                if k not in keys:
                    plan.row(k, s)
        plan.run("reference rows", not args.quiet)
    refs = [setup.run(k, s) for s in seeds for k in ("original", "retrain") if k not in keys]
    df = to_frame(refs + [r for f in frames for r in f.to_dict("records")])
    print(format_summary(df))
    print(f"\ntuned and rerun in {time.perf_counter() - start:.1f} s "
          f"(store {store.root}: {store.hits} hits, {store.misses} misses)")
    return 0


@contextlib.contextmanager
def _scheduler_env(ex) -> "contextlib.AbstractContextManager[None]":
    """Point the notebooks' kernels (they inherit the environment) at ``ex``'s scheduler, so
    every notebook's units run on one cluster; serial: none. The environment is restored
    afterwards."""
    from unittest import mock

    from .studies.executors import SCHEDULER_ENV

    with mock.patch.dict(os.environ):
        if ex.parallel:
            os.environ[SCHEDULER_ENV] = ex.scheduler_address()
        else:
            os.environ.pop(SCHEDULER_ENV, None)
        yield


def _cmd_book(args: argparse.Namespace) -> int:
    from .book.build import build_book, plan

    ex = _executor(args)
    root = Path(args.root).resolve()
    if (root / "_config.yml").is_file():
        plan(args.profile, root)  # a bad profile is refused before a cluster starts
    with ex, _scheduler_env(ex):
        index = build_book(args.profile, root=Path(args.root))
    print(f"book built: {index}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    bench_dir = Path(args.root) / "benchmarks"
    allowed = sorted(p.stem for p in bench_dir.glob("*.py"))
    if args.name not in allowed:
        raise ValueError(f"Unknown benchmark {args.name!r}; allowed: {', '.join(allowed) or '(none found in ' + str(bench_dir) + ')'}.")
    return subprocess.call([sys.executable, str(bench_dir / f"{args.name}.py"), *args.extra])


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", default=None,
                   help="local worker processes, one torch thread each (default $UNLEARNLIB_WORKERS, else one "
                        "per core; 1 = serially in this process)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default "
                        "$UNLEARNLIB_SCHEDULER); the store must be on a file system its workers share")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unlearnlib", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run methods over seeds and evaluate them")
    r.add_argument("--dataset", default="mnist1d")
    r.add_argument("--model", default="cnn1d")
    r.add_argument("--methods", default="original,retrain,ft,ga,srl,ngplus",
                   help="comma-separated method keys, or 'all'")
    r.add_argument("--seeds", default="0,1,2", help="e.g. 0,1,2 or 0-9")
    r.add_argument("--forget", default="random:0.1", help="random:F | fraction:F | class:C")
    r.add_argument("--epochs", type=int, default=None, help="training epochs (default: the dataset's recipe)")
    r.add_argument("--data-root", default=None, help="folder with torchvision data (or $UNLEARNLIB_DATA)")
    r.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    r.add_argument("--hparams", default=None, help='JSON, e.g. \'{"ft": {"lr": 0.01}}\'')
    r.add_argument("--store", default=None, help="cache folder (default $UNLEARNLIB_STORE or ~/.cache/unlearnlib)")
    r.add_argument("--out", default=None, help="write rows to a .parquet or .csv file")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    _executor_options(r)
    r.set_defaults(fn=_cmd_run)

    m = sub.add_parser("methods", help="list registered methods and hyperparameters")
    m.set_defaults(fn=_cmd_methods)

    t = sub.add_parser("tune", help="tune one method with Optuna (Deep Unlearn protocol), rerun the best")
    t.add_argument("--method", required=True, help="method keys, comma-separated, or 'all' (see `unlearnlib methods`)")
    t.add_argument("--dataset", default="mnist1d")
    t.add_argument("--model", default="cnn1d")
    t.add_argument("--trials", type=int, default=20, help="trials per tuning seed (Deep Unlearn: 100)")
    t.add_argument("--seeds", default="0,1,2", help="tuning seeds, e.g. 0,1,2")
    t.add_argument("--rerun-seeds", default=None, help="seeds to rerun the best on, e.g. 0-9 (default: --seeds)")
    t.add_argument("--forget", default="random:0.1", help="random:F | fraction:F | class:C")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default: the dataset's recipe)")
    t.add_argument("--data-root", default=None, help="folder with torchvision data (or $UNLEARNLIB_DATA)")
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    t.add_argument("--store", default=None, help="cache folder (default $UNLEARNLIB_STORE or ~/.cache/unlearnlib)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--verbose", action="store_true", help="show Optuna's per-trial log")
    t.add_argument("--warm-start", action="store_true",
                   help="start every study from the package's shipped tuned entry, when it has one")
    t.add_argument("--ship", action="store_true",
                   help="write each result with its provenance into the tuned-hyperparameter table")
    t.add_argument("--table", default=None, help="the table --ship writes (default: the package's own)")
    _executor_options(t)
    t.add_argument("--parallel-trials", action="store_true",
                   help="run one study's trials on several workers at once (faster; reproducible only in "
                        "NSGA-III's first generation). Default: one worker per study, studies side by side, "
                        "exactly the serial search")
    t.set_defaults(fn=_cmd_tune)

    b = sub.add_parser("book", help="execute the notebooks and build the HTML book")
    b.add_argument("--profile", default="quick", help="quick | full | test (book/profiles.yml)")
    b.add_argument("--root", default=".", help="project root holding _config.yml")
    _executor_options(b)
    b.set_defaults(fn=_cmd_book)

    be = sub.add_parser("bench", help="run benchmarks/NAME.py")
    be.add_argument("name")
    be.add_argument("extra", nargs=argparse.REMAINDER)
    be.add_argument("--root", default=".")
    be.set_defaults(fn=_cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a command. Bad input (``ValueError``, missing data) prints one line and exits 2,
    before anything trains; a file that cannot be written (``OSError``), a failed
    notebook or book build, or units that failed on the workers (the others finished)
    print their message and exit 1; Ctrl-C prints one line and exits 130."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("unlearnlib: interrupted (nothing half-written is left in the store)", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"unlearnlib: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"unlearnlib: error: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        from .book.build import BookBuildError, NotebookExecutionError
        from .studies.executors import UnitsFailed

        if isinstance(e, (NotebookExecutionError, BookBuildError, UnitsFailed)):
            print(f"unlearnlib: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
