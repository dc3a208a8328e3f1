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

The package, by concern: :mod:`.tasks` (tasks and what runs in a worker), :mod:`.base` (the
executor interface, the serial executor), :mod:`.dask_executor` (Dask workers, a scheduler's
address), :mod:`.local_cluster` (the fork server, the cluster's log), :mod:`.interrupts`
(Ctrl-C) and :mod:`.choose` (:func:`resolve`, :class:`using`, :func:`from_options`).
"""

# ruff: noqa: F401 - the package re-exports its modules' names, private ones that tests and
# other modules use included
from __future__ import annotations

from .base import (
    _ADDRESS,
    SCHEDULER_ENV,
    WORKERS_ENV,
    Executor,
    SerialExecutor,
    _absorb,
    _not_run,
    _run_here,
    check_address,
    check_workers,
    default_workers,
)
from .choose import from_options, resolve, using
from .dask_executor import CONNECT_TIMEOUT, DaskExecutor, connect
from .interrupts import _sigint_ignored, sticky_interrupt
from .local_cluster import (
    _DASK_LOGGERS,
    PRELOAD,
    SILENT,
    WORKER_LOG_ENV,
    WORKER_SETUP,
    _ClusterLog,
    _dask_loggers,
    _LogFile,
    start_forkserver,
)
from .tasks import (
    _STORES,
    SetupKey,
    Task,
    TaskResult,
    UnitsFailed,
    _closure,
    _first_line,
    run_task,
    threads_task,
    worker_store,
)

__all__ = [
    "Executor", "SerialExecutor", "DaskExecutor", "Task", "TaskResult", "UnitsFailed", "SetupKey",
    "resolve", "using", "from_options", "default_workers", "check_workers", "check_address",
    "SCHEDULER_ENV", "WORKERS_ENV", "run_task", "worker_store", "threads_task",
]
