"""Units of work as tasks (:class:`Task`), what a task sends back (:class:`TaskResult`),
and what runs inside a worker: its stores (:func:`worker_store`) and :func:`run_task`, which
Dask pickles by reference, like every task's function. :class:`SetupKey` is what re-creates
an experiment's setup in a worker."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch

from ...store import Store


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
