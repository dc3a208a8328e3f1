"""Tasks on Dask workers (:class:`DaskExecutor`): a local cluster started on first use, or
an existing scheduler reached by :func:`connect`."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch

from ...numerics import THREADS_ENV
from .base import Executor, _not_run, _run_here, check_address, check_workers, default_workers
from .interrupts import sticky_interrupt
from .local_cluster import SILENT, WORKER_LOG_ENV, WORKER_SETUP, _ClusterLog, start_forkserver
from .tasks import Task, TaskResult, _first_line, run_task

#: Seconds to wait for a scheduler before giving up (a refused connection is reported at once).
CONNECT_TIMEOUT = 4


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
        from ...store import default_root

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
