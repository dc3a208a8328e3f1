"""Where the units of work run: in this process, on a local Dask cluster, or on any Dask scheduler.

Work is already cut into units that the :class:`~unlearnlib.store.Store` caches under a
content key: the reference models of one seed, one method on one seed (a result row), one
Optuna study's trials, one group of U-LiRA shadow models. An executor computes the units
that are not stored yet, as tasks; the code that asked for them then reads every result
back from the store along the serial code path, in its order. So rows are the same
whichever executor computed them (given the thread rule below), and a killed run resumes
where it stopped on any executor: a unit whose store entries exist is skipped, and a task
lost with a killed worker is run again elsewhere (its half-done work was never written,
:func:`~unlearnlib.store.atomic_write_bytes`).

Executors (:func:`resolve`):

- ``serial`` (:class:`SerialExecutor`): computes nothing ahead; every unit is computed
  where the serial code needs it, in order. Exactly the code path without an executor:
  the deterministic path, for tests and debugging, and the Python API's default.
- ``local`` (:class:`DaskExecutor` without an address): a ``dask.distributed``
  ``LocalCluster`` of N worker processes, started when the first unit is missing (a run
  whose units are all stored starts nothing and imports no Dask) and closed with the
  executor. Its workers are forked from a fork server that imports torch and
  unlearnlib once (:func:`start_forkserver`); while the cluster starts, this process
  computes the first short units itself (``compute_while_starting``). The default of
  the command line (``--workers N``) and the book.
- an address (``tcp://host:8786``): an existing Dask scheduler and its workers:
  ``dask-jobqueue`` on Slurm or PBS, Kubernetes, a cloud cluster (``--scheduler ADDRESS``,
  or ``$UNLEARNLIB_SCHEDULER``). The store must lie on a file system that every worker and
  this process share, at the same path; this process checks after the tasks that it can
  read what they wrote.

The thread rule. torch's intra-op thread count changes CPU results and is part of every
store key (:func:`unlearnlib.numerics.numerics`), so every task runs with the thread count
of the process that sent it (:func:`unlearnlib.numerics.default_threads`, 1 unless
``$UNLEARNLIB_THREADS`` says otherwise), set in the worker before the unit runs; a Dask
worker runs one task at a time (``threads_per_worker=1``). Parallelism comes from worker
processes, never from threads: N local workers use N x threads cores, so the default N is
the number of cores divided by the threads per process (:func:`default_workers`).

What a task reports comes back: warnings raised in a worker (a corrupt entry moved aside)
are raised again here, and the worker store's hits, misses and corrupt entries are added
to this process's store. A failed task does not stop the others: when all have finished,
:class:`UnitsFailed` names every unit that failed and why (units that needed it are named
as not run).

One clean failure on every executor. A failed unit (a full disk included) ends in the one
:class:`UnitsFailed` line whichever executor ran it, and Ctrl-C in the one line of the
command line: the local cluster's own output never reaches the terminal. Its workers write
their stdout and stderr (Dask's "Compute Failed" tracebacks among them) to the cluster's
log, ``<store>/logs/dask-<date>.log`` (:attr:`DaskExecutor.log_path`), where this process's
Dask loggers write too while the cluster lives; the workers and their fork server ignore
Ctrl-C, which this process alone handles by closing the cluster. A scheduler address that
cannot be reached is reported in one line within :data:`CONNECT_TIMEOUT` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence
from unittest import mock

import torch

from ..numerics import THREADS_ENV, default_threads
from ..store import Store

#: Environment variable naming a Dask scheduler address: the default executor when set.
SCHEDULER_ENV = "UNLEARNLIB_SCHEDULER"
#: Environment variable giving the number of local worker processes of the command line.
WORKERS_ENV = "UNLEARNLIB_WORKERS"
#: Seconds to wait for a scheduler before giving up (a refused connection is reported at once).
CONNECT_TIMEOUT = 4
#: Environment variable that names the local cluster's log to its worker processes
#: (:func:`unlearnlib.studies.worker_preload.dask_setup` sends their output there).
WORKER_LOG_ENV = "UNLEARNLIB_WORKER_LOG"
#: The Dask preload of the local workers (run in each worker as it starts).
WORKER_SETUP = "unlearnlib.studies.worker_preload"
#: A logging level above every record: what the local cluster's stream handlers are set to.
SILENT = logging.CRITICAL + 10
_ADDRESS = re.compile(r"(tcp|tls|ws|wss|ucx|inproc)://\S+|[A-Za-z0-9_.-]+:[0-9]+")


# --------------------------------------------------------------------------- tasks


@dataclass(eq=False)
class Task:
    """One unit of work: ``fn(store, *args)`` in a worker, with ``store`` that worker's
    :class:`Store` at ``store_root``.

    ``fn`` is a module-level function (it is pickled by reference) and ``args`` plain,
    picklable values (names, seeds, hyperparameters, a config), never models or open
    files: the worker re-creates what it needs, cached per worker process. ``needs`` are
    tasks that must finish first; ``done()`` (in the sending process) says whether the
    unit's results are stored already: such a task is skipped. ``verify``: check
    ``done()`` again after the run (a worker that wrote to another store, or under
    other numerics, fails that check).
    """

    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    store_root: str = ""
    needs: tuple["Task", ...] = ()
    done: Callable[[], bool] | None = field(default=None, repr=False)
    verify: bool = True

    def is_done(self) -> bool:
        return bool(self.done is not None and self.done())


@dataclass
class TaskResult:
    """What one task sends back: its value, its warnings and its store's counters."""

    value: Any = None
    warnings: list[tuple[type, str, str, int]] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    corrupt: list[str] = field(default_factory=list)


class UnitsFailed(RuntimeError):
    """Some units failed; the others finished and are stored. ``failures`` lists
    ``(unit label, reason)``; ``__cause__`` is the first failure's exception."""

    def __init__(self, failures: Sequence[tuple[str, str]], total: int) -> None:
        self.failures = list(failures)
        n = len(self.failures)
        shown = "; ".join(f"{label}: {why}" for label, why in self.failures[:5])
        more = f"; and {n - 5} more" if n > 5 else ""
        super().__init__(f"{n} of {total} unit(s) failed (the others finished and are stored; run "
                         f"again to retry only the failed ones): {shown}{more}")


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _closure(tasks: Iterable[Task]) -> list[Task]:
    """``tasks`` and every task they need, each before the tasks that need it."""
    order: list[Task] = []
    seen: set[int] = set()

    def visit(t: Task) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        for d in t.needs:
            visit(d)
        order.append(t)

    for t in tasks:
        visit(t)
    return order


# --------------------------------------------------------------------------- inside a worker

#: This process's stores, one per root (their counters are what a task reports).
_STORES: dict[str, Store] = {}


def worker_store(root: str) -> Store:
    """This process's :class:`Store` at ``root`` (one per root, kept for later tasks)."""
    if root not in _STORES:
        _STORES[root] = Store(root)
    return _STORES[root]


def run_task(fn: Callable[..., Any], args: tuple, store_root: str, threads: int,
             after: Sequence[Any] = ()) -> TaskResult:
    """Run one task where it was sent: torch's threads set to ``threads`` (the sender's),
    warnings recorded, the store's counters measured. ``after`` holds the results of the
    tasks it needed (unused: they only order the work)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(int(threads))
    store = worker_store(store_root)
    hits, misses, corrupt = store.hits, store.misses, len(store.corrupt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(store, *args)
    return TaskResult(value, [(w.category, str(w.message), w.filename, w.lineno) for w in caught],
                      store.hits - hits, store.misses - misses, [str(p) for p in store.corrupt[corrupt:]])


def threads_task(store: Store) -> int:
    """A task that reports the torch thread count it ran with (the thread rule's check)."""
    return torch.get_num_threads()


# --------------------------------------------------------------------------- executors


def default_workers() -> int:
    """Local worker processes: ``$UNLEARNLIB_WORKERS``, else the cores this process may use
    divided by the torch threads per process (:func:`unlearnlib.numerics.default_threads`)."""
    raw = os.environ.get(WORKERS_ENV)
    if raw:
        return check_workers(raw, WORKERS_ENV)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // default_threads())


def check_workers(n: Any, what: str = "workers") -> int:
    """``n`` as a positive number of workers, else one ``ValueError`` line."""
    try:
        value = int(n)
        ok = not isinstance(n, bool) and float(n) == value and value >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what} must be a positive integer (worker processes); got {n!r}.")
    return value


def check_address(address: str) -> str:
    """A scheduler address such as ``tcp://127.0.0.1:8786``, else one ``ValueError`` line."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
        raise ValueError(f"Dask scheduler address must look like tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786, "
                         f"as `dask scheduler` prints it); got {address!r}.")
    return address.strip()


class Executor:
    """Computes the units that are not stored yet (:meth:`run`); closed with ``close()``
    or as a context manager. ``parallel`` is False for the serial executor, whose callers
    compute nothing ahead."""

    parallel = False
    name = "serial"

    def task(self, label: str, fn: Callable[..., Any], args: tuple = (), store: Store | str | None = None,
             needs: Sequence[Task] = (), done: Callable[[], bool] | None = None, verify: bool = True) -> Task:
        """A :class:`Task` whose store is ``store`` (its root, made absolute for the workers)."""
        root = store.root if isinstance(store, Store) else (store or Store().root)
        return Task(label, fn, tuple(args), str(Path(root).absolute()), tuple(needs), done, verify)

    @property
    def size(self) -> int:
        """How many tasks run at once."""
        return 1

    def run(self, tasks: Sequence[Task], store: Store | None = None, desc: str = "units",
            show_progress: bool = True, short: bool = False) -> dict[Task, Any]:
        """Run ``tasks`` (and the tasks they need) whose results are not stored yet; return
        each run task's value. ``store``, this process's, gains the tasks' counters. Every
        task runs even when some fail; then :class:`UnitsFailed` names the failures.

        ``short``: the caller's units are short against a local cluster's start (a training
        or a method on one seed: seconds at the book's scale), so this process may compute
        some while the cluster starts (:class:`DaskExecutor`'s ``compute_while_starting``).
        Left False for long units (a whole Optuna study, a group of shadow models): one of
        those started here would still run beside the workers long after they are up."""
        todo = [t for t in _closure(t for t in tasks if not t.is_done()) if not t.is_done()]
        if not todo:
            return {}
        for root in {t.store_root for t in todo}:
            # the store's root exists before the workers open it: a worker probing a fresh
            # root makes it and removes it again (Store.check_writable leaves nothing
            # behind), which raced with the other workers inside it (seen in CI)
            Path(root).mkdir(parents=True, exist_ok=True)
        results, failures = self._execute(todo, desc, show_progress, short)
        for r in results.values():
            _absorb(r, store)
        if failures:
            raise UnitsFailed([(t.label, why) for t, why, _ in failures], len(todo)) from failures[0][2]
        unseen = [t for t in todo if t.verify and t.done is not None and not t.done()]
        if unseen:
            root = unseen[0].store_root
            raise RuntimeError(
                f"{len(unseen)} unit(s) finished on the workers but their results are not in the store {root} "
                f"(first: {unseen[0].label}): the workers must share this store's file system at the same path "
                f"and run on the same kind of device (one GPU model, or CPUs that run the same torch kernels: "
                f"torch.backends.cpu.get_cpu_capability(), part of every store key).")
        return {t: r.value for t, r in results.items()}

    def _execute(self, todo: list[Task], desc: str, show_progress: bool, short: bool = False
                 ) -> tuple[dict[Task, TaskResult], list[tuple[Task, str, BaseException]]]:
        """Run every task of ``todo`` (dependencies first), in this process."""
        from tqdm.auto import tqdm

        results: dict[Task, TaskResult] = {}
        failures: list[tuple[Task, str, BaseException]] = []
        with tqdm(total=len(todo), desc=desc, unit="unit", disable=not show_progress, leave=False) as bar:
            _run_here(todo, results, failures, bar)
        return results, failures

    def close(self) -> None:
        """Release what the executor started (nothing for the serial one)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SerialExecutor(Executor):
    """Computes nothing ahead: the serial code path computes each unit where it needs it.
    :meth:`run` still runs tasks in this process, in order (for tests and debugging)."""


def _not_run(t: Task, blocked: Task) -> tuple[Task, str, BaseException]:
    """The failure of ``t``, not run because ``blocked``, which it needs, failed."""
    return t, f"not run: it needs {blocked.label}, which failed", RuntimeError(blocked.label)


def _run_here(todo: Sequence[Task], results: dict[Task, TaskResult],
              failures: list[tuple[Task, str, BaseException]], bar: Any,
              until: Callable[[], bool] = lambda: False) -> int:
    """Run the tasks of ``todo`` in this process, in order, into ``results`` and
    ``failures`` (a task whose need failed is not run), until ``until()`` says stop (asked
    before each task). Returns how many of ``todo`` were taken."""
    threads = torch.get_num_threads()
    failed = {id(t) for t, _, _ in failures}
    for i, t in enumerate(todo):
        if until():
            return i
        blocked = next((d for d in t.needs if id(d) in failed), None)
        if blocked is not None:
            failures.append(_not_run(t, blocked))
            failed.add(id(t))
        else:
            try:
                results[t] = run_task(t.fn, t.args, t.store_root, threads)
            except Exception as e:  # noqa: BLE001 - a failed unit must not stop the others
                failures.append((t, _first_line(e), e))
                failed.add(id(t))
        bar.update(1)
    return len(todo)


def _absorb(result: TaskResult, store: Store | None) -> None:
    """Raise a task's warnings here and add its counters to ``store``."""
    for category, text, filename, lineno in result.warnings:
        warnings.warn_explicit(text, category, filename, lineno)
    if store is not None:
        store.hits += result.hits
        store.misses += result.misses
        store.corrupt.extend(Path(p) for p in result.corrupt)


class DaskExecutor(Executor):
    """Tasks on Dask workers: a ``LocalCluster`` of ``n_workers`` processes started on
    first use (``address=None``), or the scheduler at ``address``.

    Each worker runs one task at a time with the sender's torch thread count (the thread
    rule); local workers run without Dask's statistical profiler (it only feeds the
    dashboard, which is not started); a task lost with a killed worker is run again on another (Dask's
    ``allowed-failures``, 3 by default, after which it fails as ``KilledWorker``).

    ``compute_while_starting`` (local clusters; only for units that :meth:`~Executor.run`
    is told are ``short``): the cluster starts in a background thread when the first units
    are missing, and meanwhile this process computes them itself, in their order, one at a
    time; when the workers are up it finishes the unit in hand and sends the rest to them.
    Starting the cluster is mostly its fork server importing torch, torch._dynamo,
    scikit-learn and unlearnlib on one core (about 4-5 s on the project's 2-core machine);
    without this the other cores wait for it. Measured there (``benchmarks/executor.py``,
    16 trainings, this process warm): 22.0 s serial against 15.1 s on 2 cold workers
    without it, 20.3 s against 13.3 s with it (3 units computed here); a fresh
    ``unlearnlib run`` gains less, since its first units also pay this process's first
    calls. Results do not depend on it: a unit computes the same entries here as in a
    worker (same code, same thread count). If this process finishes every unit first, the
    cluster goes on starting for later runs and :meth:`close` waits for it, then closes it.

    The local cluster's log (:attr:`log_path`): ``dask-<date>.log`` in ``log_dir``, by
    default the ``logs`` folder of the store of the first units it runs. The workers' stdout
    and stderr go there from their start (:func:`.worker_preload.dask_setup`), and this
    process's Dask log records while the cluster lives; nothing of the cluster reaches the
    terminal, where each failed unit is reported in :class:`UnitsFailed`'s one line. The
    workers and their fork server ignore SIGINT: Ctrl-C interrupts this process, which closes
    the cluster (one still starting is waited for first). A worker that Dask restarts after
    a crash is spawned: until its preload runs it has the terminal and Ctrl-C as before.
    """

    parallel = True

    def __init__(self, address: str | None = None, n_workers: int | None = None,
                 compute_while_starting: bool = True, log_dir: str | Path | None = None) -> None:
        if address is not None and n_workers is not None:
            raise ValueError("Give a scheduler address or a number of local workers, not both.")
        self.address = check_address(address) if address is not None else None
        self.n_workers = check_workers(n_workers) if n_workers is not None else (
            None if address is not None else default_workers())
        self.name = "address" if address is not None else "local"
        self.compute_while_starting = bool(compute_while_starting)
        self._client = None
        self._cluster = None
        self._starting: Future | None = None
        #: Seconds the local cluster took to start (its workers up), once started.
        self.start_seconds: float | None = None
        #: Units this process computed itself while the local cluster started.
        self.units_while_starting = 0
        #: Folder of the local cluster's log; None: ``logs`` in the store of the first units
        #: it runs (else in the default store, :func:`unlearnlib.store.default_root`).
        self.log_dir = Path(log_dir) if log_dir is not None else None
        #: The local cluster's log (its workers' output, this process's Dask log records),
        #: once the cluster starts; None while it has not (and for a scheduler address).
        self.log_path: Path | None = None
        self._log: _ClusterLog | None = None
        self._store_hint: str | None = None

    def __repr__(self) -> str:
        where = self.address or f"{self.n_workers} local workers"
        return f"DaskExecutor({where})"

    # -- the cluster ----------------------------------------------------------
    def client(self):
        """The Dask client (the local cluster is started, or the scheduler reached, here)."""
        if self._client is not None:
            return self._client
        if self.address is None:
            if self._starting is None:
                self._start_local()
            self._take_started()
            return self._client
        self._client = connect(self.address)
        return self._client

    @property
    def started(self) -> bool:
        """Whether the cluster is up, or the scheduler reached (nothing waits here)."""
        return self._client is not None or (self._starting is not None and self._starting.done())

    def _take_started(self) -> None:
        """Wait for the cluster being started and keep it and its client (its start's
        error is raised here)."""
        starting, self._starting = self._starting, None
        self._cluster, self._client = starting.result()

    def _start_local(self) -> None:
        """Start the local cluster in a background thread (:meth:`client` waits for it).

        The fork server starts here, in the calling thread (it sets the thread variables in
        this process's environment while it starts); the thread only builds the cluster and
        its client, and touches no warning filters (not thread-safe), so the scheduler's
        internal HTTP server takes a free port instead of 8787 (which warns when taken)."""
        threads = torch.get_num_threads()
        self._log = log = _ClusterLog(self._log_dir(), f"{self.n_workers} local workers")
        self.log_path = log.path
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), THREADS_ENV: str(threads),
               # the statistical profiler feeds only the dashboard (not started here); it samples the
               # task's stack every 10 ms under the GIL (measured once on 2 loaded cores: 39 -> 27
               # worker CPU-seconds for a 2-seed grid)
               "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
               # where each worker sends its stdout and stderr (worker_preload.dask_setup)
               WORKER_LOG_ENV: str(self.log_path or os.devnull)}
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in each worker (and in this process's
        # environment, so in every kernel or subprocess started later). An explicit trim
        # threshold turns off glibc's dynamic mmap threshold: every tensor over 128 KiB is then
        # mmap'ed and unmapped again, page faults included. Measured on this 2-core machine: a
        # 256x256 matmul loop took 0.26-0.36 s of CPU in a worker against 0.17 s without it,
        # and a 16-training grid ran at 0.90x serial with 2 workers. It is dropped here.
        try:
            method = start_forkserver(env)
        except BaseException:
            self._log = None
            log.close()
            raise
        config = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                  "distributed.worker.multiprocessing-method": method}
        n_workers = self.n_workers
        began = time.perf_counter()

        def start() -> tuple[Any, Any]:
            import dask
            from distributed import Client, LocalCluster

            log.attach()  # Dask's import installed its stream handlers: silenced from here
            with dask.config.set(config):
                # silence_logs: nothing of the cluster reaches a terminal (this process's stream
                # handlers are silenced by _ClusterLog already; a worker's until its preload
                # sends its output to the log); the preload runs in each worker as it starts
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                       silence_logs=SILENT, env=env,
                                       preload=[*dask.config.get("distributed.worker.preload", []), WORKER_SETUP])
            try:
                client = Client(cluster)  # LocalCluster returns with its workers registered
            except BaseException:
                cluster.close()
                raise
            self.start_seconds = time.perf_counter() - began
            return cluster, client

        pool = ThreadPoolExecutor(1, thread_name_prefix="unlearnlib-cluster-start")
        self._starting = pool.submit(start)
        pool.shutdown(wait=False)

    def _log_dir(self) -> Path:
        """The folder of the local cluster's log (see :attr:`log_dir`)."""
        if self.log_dir is not None:
            return self.log_dir
        if self._store_hint is not None:
            return Path(self._store_hint) / "logs"
        from ..store import default_root

        return default_root() / "logs"

    @property
    def size(self) -> int:
        if self.address is None:
            return int(self.n_workers or 1)
        if self._client is None:
            self.client()
        return max(1, len(self._client.scheduler_info().get("workers", {})))

    def scheduler_address(self) -> str:
        """The scheduler's address (the local cluster is started here)."""
        return str(self.client().scheduler.address)

    def worker_pids(self) -> dict[str, int]:
        """``{worker address: process id}`` of the connected workers."""
        return dict(self.client().run(os.getpid))

    def close(self) -> None:
        """Close the client, and the local cluster when this executor started it (one still
        starting is waited for, then closed)."""
        if self._starting is not None:
            with contextlib.suppress(Exception):  # one that never started leaves nothing to close
                self._take_started()
        client, cluster, log = self._client, self._cluster, self._log
        self._client = self._cluster = self._log = None
        try:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        finally:
            if log is not None:  # after the cluster's last words
                log.close()

    # -- running --------------------------------------------------------------
    def _execute(self, todo: list[Task], desc: str, show_progress: bool, short: bool = False
                 ) -> tuple[dict[Task, TaskResult], list[tuple[Task, str, BaseException]]]:
        from tqdm.auto import tqdm

        results: dict[Task, TaskResult] = {}
        failures: list[tuple[Task, str, BaseException]] = []
        if self._store_hint is None and todo:
            self._store_hint = todo[0].store_root  # the local cluster's log goes into this store
        with tqdm(total=len(todo), desc=desc, unit="unit", disable=not show_progress, leave=False) as bar, \
                sticky_interrupt() as interrupted:
            rest = todo
            if short and self.address is None and self.compute_while_starting and not self.started:
                if self._starting is None:
                    self._start_local()
                taken = _run_here(todo, results, failures, bar, until=lambda: interrupted() or self.started)
                self.units_while_starting += taken
                rest = todo[taken:]
            if rest:
                self._on_workers(rest, results, failures, bar, interrupted)
            interrupted()
        failures.sort(key=lambda f: f[1].startswith("not run"))  # the causes first
        return results, failures

    def _on_workers(self, todo: list[Task], results: dict[Task, TaskResult],
                    failures: list[tuple[Task, str, BaseException]], bar: Any,
                    interrupted: Callable[[], bool] = lambda: False) -> None:
        """Run ``todo`` on the workers, into ``results`` and ``failures`` (which may hold
        tasks that ``todo`` needs, run here before)."""
        from distributed import as_completed

        client = self.client()
        threads = torch.get_num_threads()
        failed_before = {id(t): t for t, _, _ in failures}
        futures: dict[int, Any] = {}
        owner: dict[str, Task] = {}
        for t in todo:  # dependencies come first (_closure)
            blocked = next((d for d in t.needs if id(d) in failed_before), None)
            if blocked is not None:
                failures.append(_not_run(t, blocked))
                failed_before[id(t)] = t
                bar.update(1)
                continue
            after = [futures[id(d)] for d in t.needs if id(d) in futures]
            key = f"{re.sub(r'[^A-Za-z0-9_.:=-]+', '-', t.label)[:80]}-{uuid.uuid4().hex[:10]}"
            fut = client.submit(run_task, t.fn, t.args, t.store_root, threads, after=after, key=key, pure=False)
            futures[id(t)] = fut
            owner[fut.key] = t
        errors: dict[int, BaseException] = {}
        try:
            for fut in as_completed(list(futures.values())):
                interrupted()
                t = owner[fut.key]
                if fut.status == "finished":
                    results[t] = fut.result()
                else:
                    errors[id(t)] = fut.exception() if fut.status == "error" else RuntimeError(fut.status)
                bar.update(1)
        except BaseException:
            client.cancel(list(futures.values()))
            raise
        for t in todo:
            if id(t) not in errors:
                continue
            blocked = next((d for d in t.needs if id(d) in errors), None)
            failures.append((t, _not_run(t, blocked)[1] if blocked is not None else _first_line(errors[id(t)]),
                             errors[id(t)]))


#: What the fork server of the local workers imports once (:mod:`.worker_preload`).
PRELOAD = ("distributed", "unlearnlib.studies.worker_preload")


def start_forkserver(env: dict[str, str]) -> str:
    """Start this process's multiprocessing fork server with :data:`PRELOAD` imported, and
    return the start method for the local workers: ``"forkserver"``, or ``"spawn"`` where
    the platform has no fork server (Windows).

    Measured on the project's 2-core machine (16-training grid, 2 workers, a cold cluster):
    14.5 s with spawned workers, 13.3 s forked from the fork server; the server's imports
    run once instead of in each worker, and each worker's first unit runs as fast as its
    later ones. The server starts once per process, with ``env`` (the thread variables: set
    before torch is imported), and stays for later clusters; it exits with this process. A
    worker that Dask restarts after a crash is spawned (Dask's default), as before.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k.endswith("_THREADS")}), _sigint_ignored():
        forkserver.ensure_running()
    return "forkserver"


@contextlib.contextmanager
def sticky_interrupt() -> Iterator[Callable[[], bool]]:
    """Ctrl-C raises ``KeyboardInterrupt`` as usual, and is also remembered: the context gives a
    check that raises it again. Python reports an exception raised inside a garbage-collector
    callback as "Exception ignored" and drops it, and while a local cluster starts, its
    scheduler (in this process) runs one on every collection (``distributed.gc``), so a
    Ctrl-C landing there was lost and the run finished. The executor calls the check between
    units. Only in the main thread, and only over Python's default handler (a handler set by
    the caller, or SIGINT ignored, is left alone); the check then never raises."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return
    hit: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        hit.append(True)
        raise KeyboardInterrupt

    def check() -> bool:
        if hit:
            hit.clear()
            raise KeyboardInterrupt
        return False

    signal.signal(signal.SIGINT, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process while a process is started from it (in the main
    thread; elsewhere nothing changes), which inherits that: the terminal sends Ctrl-C to
    the whole process group, and the fork server, still importing its preload, would die of
    it with a ``KeyboardInterrupt`` traceback (the cluster's start failing with more); the
    workers forked from it ignore SIGINT too. A Ctrl-C in the few milliseconds of the
    fork server's start is lost (press it again)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGINT)
    if old is None:  # a handler not installed from Python: cannot be put back
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


# --------------------------------------------------------------------------- the cluster's output


class _LogFile(logging.Handler):
    """Log records appended to a file, never complaining on the terminal (a full disk must not
    print logging's own tracebacks there). Not a ``StreamHandler``: Dask's ``silence_logs``
    silences those."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        self.stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 - see the class
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
        super().close()


#: The loggers Dask's logging configuration gives its stream handler (one handler, on the
#: terminal); the local cluster's machinery in this process logs to them.
_DASK_LOGGERS = ("distributed", "tornado", "bokeh")
_silenced: dict[logging.Handler, int] = {}
_silence_users = 0
_silence_lock = threading.Lock()


def _dask_loggers() -> list[logging.Logger]:
    """This process's loggers of :data:`_DASK_LOGGERS` and below them."""
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if any(n == d or n.startswith(d + ".") for d in _DASK_LOGGERS)]
    return [logging.getLogger(n) for n in sorted(names)]


class _ClusterLog:
    """A local cluster's log, ``FOLDER/dask-<date>.log``, appended to (else in the temporary
    folder; :attr:`path` None where neither can be opened): its workers send their stdout and
    stderr there (:data:`WORKER_LOG_ENV`), and, once :meth:`attach` ran, so do this process's
    Dask loggers, whose stream handlers (the terminal) are silenced until the last live
    cluster's log is closed."""

    def __init__(self, folder: Path, what: str) -> None:
        self.path: Path | None = None
        self._handler: logging.Handler | None = None
        self._loggers: list[logging.Logger] = []
        self._attached = False
        for where in (folder, Path(tempfile.gettempdir()) / "unlearnlib-logs"):
            try:
                where.mkdir(parents=True, exist_ok=True)
                path = where / f"dask-{time.strftime('%Y-%m-%d')}.log"
                handler = _LogFile(path)
                handler.stream.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} unlearnlib: a local Dask "
                                     f"cluster of {what} starts (process {os.getpid()}) ===\n")
                handler.stream.flush()
            except (OSError, ValueError):
                continue
            self.path, self._handler = path, handler
            break

    def attach(self) -> None:
        """Silence Dask's stream handlers in this process and log its records here (call
        it once Dask is imported: its import installs them)."""
        global _silence_users
        with _silence_lock:
            _silence_users += 1
            self._attached = True
            for logger in _dask_loggers():
                streams = [h for h in logger.handlers if type(h) is logging.StreamHandler]
                for h in streams:
                    if h not in _silenced:
                        _silenced[h] = h.level
                        h.setLevel(SILENT)
                if streams and self._handler is not None:
                    logger.addHandler(self._handler)
                    self._loggers.append(logger)
        if self._handler is not None:
            self._handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))

    def close(self) -> None:
        """Stop logging here; the last live cluster's log gives the terminal back."""
        global _silence_users
        with _silence_lock:
            for logger in self._loggers:
                logger.removeHandler(self._handler)
            self._loggers = []
            if self._attached:
                self._attached = False
                _silence_users -= 1
                if _silence_users == 0:
                    for h, level in _silenced.items():
                        h.setLevel(level)
                    _silenced.clear()
        if self._handler is not None:
            self._handler.close()
            self._handler = None


# --------------------------------------------------------------------------- a scheduler's address


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A Dask ``Client`` of the scheduler at ``address``, else one ``ValueError`` line naming
    the address and what to check, within about ``timeout`` seconds.

    A TCP address is first tried with a plain socket (nothing listening, an unknown host: at
    once), then with Dask's handshake under the same deadline (a process that accepts the
    connection but never answers, a hung scheduler, would hold Dask's own ``Client`` forever),
    and only then is the client made."""
    import asyncio

    from distributed import Client
    from distributed.comm import connect as dask_connect
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    what = "check the address (as `dask scheduler` prints it) and that a Dask scheduler runs there"
    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            host, port = parse_host_port(location)
            what = (f"check that a Dask scheduler runs there (`dask scheduler`; its workers: `dask worker "
                    f"{address}`), that the address is the one it printed, and that this machine can reach "
                    f"{host}:{port} (a firewall)")
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    pass
            except ConnectionRefusedError:
                raise OSError("connection refused, nothing listens there") from None
            except socket.gaierror as e:
                raise OSError(f"unknown host {host!r} ({e.strerror or e})") from None
            except TimeoutError:
                raise OSError(f"no answer within {timeout:g} s") from None

        async def handshake() -> None:
            comm = await asyncio.wait_for(dask_connect(address, timeout=timeout), timeout)
            comm.abort()

        with ThreadPoolExecutor(1, thread_name_prefix="unlearnlib-connect") as pool:  # any caller's event loop
            try:
                pool.submit(asyncio.run, handshake()).result()
            except (asyncio.TimeoutError, TimeoutError):
                raise OSError(f"no Dask scheduler answered within {timeout:g} s") from None
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ValueError(f"Cannot reach the Dask scheduler at {address}: {why}; {what}.") from None


# --------------------------------------------------------------------------- choosing one


def resolve(executor: "Executor | str | int | None" = None) -> tuple[Executor, bool]:
    """An executor for ``executor`` and whether the caller owns it (must close it).

    ``None``: the scheduler at ``$UNLEARNLIB_SCHEDULER`` when set, else serial; ``"serial"``;
    ``"local"``: a local cluster of :func:`default_workers` processes; an integer N:
    serial for 1, else a local cluster of N workers; a scheduler address such as
    ``"tcp://127.0.0.1:8786"``; or an :class:`Executor`, used as it is (not owned).
    """
    if isinstance(executor, Executor):
        return executor, False
    if executor is None:
        address = os.environ.get(SCHEDULER_ENV)
        return (DaskExecutor(address=address), True) if address else (SerialExecutor(), False)
    if isinstance(executor, str):
        name = executor.strip()
        if name == "serial":
            return SerialExecutor(), False
        if name == "local":
            return DaskExecutor(), True
        if name.isdigit():
            return resolve(int(name))
        if _ADDRESS.fullmatch(name):
            return DaskExecutor(address=name), True
        raise ValueError(f"Unknown executor {executor!r}; allowed: serial, local, a number of local workers, "
                         "or a Dask scheduler address such as tcp://127.0.0.1:8786.")
    n = check_workers(executor, "executor")
    return (SerialExecutor(), False) if n == 1 else (DaskExecutor(n_workers=n), True)


class using:
    """``with using(executor) as ex:``: :func:`resolve`, and close what was started here."""

    def __init__(self, executor: "Executor | str | int | None" = None) -> None:
        self.executor, self.owned = resolve(executor)

    def __enter__(self) -> Executor:
        return self.executor

    def __exit__(self, *exc: Any) -> None:
        if self.owned:
            self.executor.close()


def from_options(workers: int | str | None = None, scheduler: str | None = None) -> Executor:
    """The command line's executor: ``--scheduler`` (or ``$UNLEARNLIB_SCHEDULER``), else
    ``--workers N`` (default :func:`default_workers`): serial for 1, a local cluster above."""
    if workers is not None and scheduler:
        raise ValueError("Give --workers N (local worker processes) or --scheduler ADDRESS (an existing Dask "
                         "scheduler), not both.")
    scheduler = scheduler or (os.environ.get(SCHEDULER_ENV) if workers is None else None)
    if scheduler:
        return DaskExecutor(address=scheduler)
    n = check_workers(workers, "--workers") if workers is not None else default_workers()
    return SerialExecutor() if n == 1 else DaskExecutor(n_workers=n)


# --------------------------------------------------------------------------- what workers re-create


@dataclass(frozen=True)
class SetupKey:
    """What re-creates a :class:`~unlearnlib.studies.experiment.Setup` in a worker (picklable).
    The units that use it live beside what they run (:mod:`.experiment`, :mod:`.hpo`), so
    this module imports nothing of the studies."""

    dataset: str
    model: str
    forget: str
    epochs: int | None
    device: str
    data_root: str | None
    store_root: str
    #: The sender's :meth:`~unlearnlib.data.Splits.fingerprint`; a worker whose splits differ
    #: (another data folder behind the same path) refuses the task. None: not checked.
    fingerprint: str | None = None


__all__ = [
    "Executor", "SerialExecutor", "DaskExecutor", "Task", "TaskResult", "UnitsFailed", "SetupKey",
    "resolve", "using", "from_options", "default_workers", "check_workers", "check_address",
    "SCHEDULER_ENV", "WORKERS_ENV", "run_task", "worker_store", "threads_task",
]
