"""The executor interface (:class:`Executor`), the serial executor, and how tasks run in
this process (:func:`_run_here`); the checks of a number of workers and a scheduler's
address."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ...numerics import default_threads
from ...store import Store
from .tasks import Task, TaskResult, UnitsFailed, _closure, _first_line, run_task

#: Environment variable naming a Dask scheduler address: the default executor when set.
SCHEDULER_ENV = "UNLEARNLIB_SCHEDULER"
#: Environment variable giving the number of local worker processes of the command line.
WORKERS_ENV = "UNLEARNLIB_WORKERS"
_ADDRESS = re.compile(r"(tcp|tls|ws|wss|ucx|inproc)://\S+|[A-Za-z0-9_.-]+:[0-9]+")


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
