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

Bad input is one line (``unlearnlib: error: ...``, exit 2) before anything trains: an
option given an empty value (``--store ''`` would otherwise mean the default store), a
method named twice, a ``--table`` that is not a JSON tuned table, a store folder the run
would write that cannot be written, a bad ``$UNLEARNLIB_THREADS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import warnings
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


#: The store folders ``run`` writes (entry kinds; ``datasets``: the generated-dataset cache),
#: and those ``tune`` writes (``optuna``: the studies' journals).
RUN_FOLDERS = ("models", "results", "reference", "datasets")
TUNE_FOLDERS = (*RUN_FOLDERS, "optuna")


def _store(args: argparse.Namespace, folders: tuple[str, ...] = RUN_FOLDERS):
    """The store of ``--store`` (else the default), checked to be writable before anything
    runs: its root, its lock folder and every folder of ``folders`` that is there
    (:meth:`~unlearnlib.store.Store.check_writable`)."""
    from .store import Store

    store = Store(args.store) if args.store is not None else Store()
    store.check_writable(folders)
    return store


def _method_keys(text: str, option: str, what: str) -> list[str]:
    """The method keys of ``--methods``/``--method``; ``ValueError`` for a key named twice,
    saying what repeating it would do (the library refuses it too, :func:`parse_methods`)."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ValueError(f"{option} names {key!r} twice ({text!r}): {what}; give each method once "
                             "(a repeated seed is refused for the same reason).")
    return registry.parse_methods(text)


def _check_table(args: argparse.Namespace) -> None:
    """``tune --ship``'s table: a ``.json`` file (the table is JSON), a tuned table if it is
    there, in a folder that can be written; ``--table`` without ``--ship`` is refused (nothing
    would be written). All before anything is tuned."""
    from .store import probe_writable, writable_error
    from .studies import tuned

    if args.table is not None and not args.ship:
        raise ValueError(f"--table {args.table} names the table that --ship writes, but --ship is not given "
                         "(nothing would be written); add --ship or leave --table out.")
    if not args.ship:
        return
    path = Path(args.table) if args.table is not None else tuned.TABLE_PATH
    if path.suffix.lower() != ".json":
        raise ValueError(f"--table {path}: the tuned-hyperparameter table is JSON, so its name must end in "
                         f".json (got {path.suffix or 'no suffix'!r}).")
    if path.is_dir():
        raise ValueError(f"--table {path} is a folder; give a .json file.")
    tuned.load(path)  # a file that is there must be a tuned table (one line naming it)
    try:
        probe_writable(path.parent)
    except OSError as e:
        raise writable_error("The folder of --table", path.parent, e) from None


def _refuse_empty(args: argparse.Namespace) -> None:
    """``ValueError`` for an option given an empty value: ``--store ''``, ``--out ''``,
    ``--rerun-seeds ''``... would otherwise mean the default (another store, no file, the
    tuning seeds) without a word."""
    parser = getattr(args, "_parser", None)
    for action in parser._actions if parser is not None else ():
        value = getattr(args, action.dest, None)
        if action.option_strings and isinstance(value, str) and not value.strip():
            option = max(action.option_strings, key=len)
            raise ValueError(f"{option} is empty: give a value or leave the option out. {option}: {action.help}.")


def _executor(args: argparse.Namespace):
    """The executor of ``--workers`` / ``--scheduler`` (checked before anything runs; a local
    cluster starts only when a unit is missing)."""
    from .studies.executors import from_options

    return from_options(args.workers, args.scheduler)


def _cmd_run(args: argparse.Namespace) -> int:
    from .studies.experiment import check_out, format_summary, run_grid, write_rows

    keys = _method_keys(args.methods, "--methods", "each method gives one row per seed, so its rows would repeat")
    hparams = _parse_hparams(args.hparams)
    out = check_out(args.out) if args.out is not None else None  # before the grid: a bad --out wastes no training
    store = _store(args, RUN_FOLDERS)
    start = time.perf_counter()
    with _executor(args) as ex:
        df = run_grid(
            dataset=args.dataset, model=args.model, methods=keys, seeds=args.seeds,
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

    keys = _method_keys(args.method, "--method", "it would be tuned twice")
    parse_seeds(args.seeds)
    if args.rerun_seeds is not None:
        parse_seeds(args.rerun_seeds)
    if args.trials < 1:
        raise ValueError(f"--trials must be a positive integer; got {args.trials}.")
    _check_table(args)
    store = _store(args, TUNE_FOLDERS)
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
    rerun_seeds = args.rerun_seeds if args.rerun_seeds is not None else args.seeds
    # every method's studies on the workers at once (nothing on the serial executor)
    ran = prepare_tuning(ex, setup, keys, args.seeds, args.trials, rerun_seeds, warm_start=args.warm_start,
                         parallel_trials=args.parallel_trials)
    frames = []
    for key in keys:
        t0 = time.perf_counter()
        result, rows = tune_and_rerun(
            setup, key, tune_seeds=args.seeds, seeds=rerun_seeds, n_trials=args.trials, verbose=args.verbose,
            warm_start=args.warm_start, executor=ex, parallel_trials=args.parallel_trials,
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
    from .environment import environment
    from .studies.executors import SCHEDULER_ENV

    with environment({SCHEDULER_ENV: ex.scheduler_address() if ex.parallel else None}):
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
    r.set_defaults(fn=_cmd_run, _parser=r)

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
    t.set_defaults(fn=_cmd_tune, _parser=t)

    b = sub.add_parser("book", help="execute the notebooks and build the HTML book")
    b.add_argument("--profile", default="quick", help="quick | full | test (book/profiles.yml)")
    b.add_argument("--root", default=".", help="project root holding _config.yml")
    _executor_options(b)
    b.set_defaults(fn=_cmd_book, _parser=b)

    be = sub.add_parser("bench", help="run benchmarks/NAME.py")
    be.add_argument("name")
    be.add_argument("extra", nargs=argparse.REMAINDER)
    be.add_argument("--root", default=".")
    be.set_defaults(fn=_cmd_bench, _parser=be)
    return p


@contextlib.contextmanager
def _one_line_warnings() -> "contextlib.AbstractContextManager[None]":
    """Print warnings (a corrupt store entry or folder moved aside, a damaged Optuna journal)
    as one line each, ``unlearnlib: warning: ...``, without the file and source line Python
    adds. Only the printing changes: a caller recording warnings still records them."""
    def one_line(message, category, filename, lineno, line=None) -> str:
        return f"unlearnlib: warning: {message}\n"

    old = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = old


def main(argv: list[str] | None = None) -> int:
    """Run a command. Bad input (``ValueError``, missing data, a bad ``$UNLEARNLIB_THREADS``,
    an option given an empty value) prints one line and exits 2, before anything trains; a
    file that cannot be written (``OSError``), a failed notebook or book build, or units
    that failed on the workers (the others finished) or a store entry that holds another
    key's entry (met serially) print their message and exit 1;
    Ctrl-C prints one line and exits 130."""
    from .numerics import check_threads
    from .store import EntryMismatchError

    args = build_parser().parse_args(argv)
    try:
        check_threads()
        _refuse_empty(args)
        with _one_line_warnings():
            return args.fn(args)
    except KeyboardInterrupt:
        print("unlearnlib: interrupted (nothing half-written is left in the store)", file=sys.stderr)
        return 130
    except EntryMismatchError as e:  # a damaged store, not bad input: as a unit failed on the workers
        print(f"unlearnlib: error: {e}", file=sys.stderr)
        return 1
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
