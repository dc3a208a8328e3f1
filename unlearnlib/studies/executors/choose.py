"""Choosing an executor: :func:`resolve` (the Python API), :class:`using` (a context that
closes what it started) and :func:`from_options` (the command line)."""

from __future__ import annotations

import os
from typing import Any

from .base import _ADDRESS, SCHEDULER_ENV, Executor, SerialExecutor, check_workers, default_workers
from .dask_executor import DaskExecutor


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
