"""What a worker process re-creates from a task's picklable arguments, once, for its later tasks.

A unit reaches a Dask worker as a module-level function and plain arguments
(:class:`~.executors.Task`), never as splits or models. So the first task that needs the
splits re-creates them in the worker from the loader arguments the sender recorded
(:class:`SplitsKey`), checks that their fingerprint is the sender's (another data folder, or
splits made by hand, would silently give other rows under the same labels), and keeps them
for the worker's later tasks (:func:`worker_splits`). :class:`Kept` is that once-per-process
cache for anything else re-created from a key (a whole :class:`~.experiment.Setup`, a
poisoning seed's poisons and models), bounded where each value is large.

:func:`stored` is the sending side's half: a unit is done when its store entries exist.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence, TypeVar

from ..data import Splits, load_raw, load_splits, make_splits, resolve_device
from ..store import Store

T = TypeVar("T")
#: Store entries as :meth:`~unlearnlib.store.Store.has` takes them: ``(kind, spec)`` pairs.
Entries = Sequence[tuple[str, dict]]


class Kept:
    """Values made in this process, by key: the last ``size`` of them (every one when None)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value of ``key``: ``make()`` the first time (or again once it was dropped)."""
        if key not in self._values:
            self._values[key] = make()  # a failed make() keeps nothing
            while self.size is not None and len(self._values) > self.size:
                self._values.popitem(last=False)
        self._values.move_to_end(key)
        return self._values[key]


def absolute(path: str | None) -> str | None:
    """``path`` made absolute (a worker runs in another folder); None stays None."""
    return str(Path(path).absolute()) if path else path


@dataclass(frozen=True)
class SplitsKey:
    """What re-creates splits in a worker (picklable): the arguments of :func:`load` (the
    data folder absolute, the device resolved) and the fingerprint the splits must have."""

    dataset: str
    forget: str
    data_root: str | None
    device: str
    fingerprint: str
    standardize: bool = False


def splits_key(splits: Splits, data_root: str | None = None, standardize: bool = False) -> SplitsKey:
    """The :class:`SplitsKey` of ``splits`` = ``load(dataset, forget, data_root, device, standardize)``."""
    return SplitsKey(splits.dataset, splits.forget_spec, absolute(data_root), str(splits.device),
                     splits.fingerprint(), standardize)


def load(dataset: str, forget: str, data_root: str | None = None, device: Any = "cpu",
         standardize: bool = False) -> Splits:
    """:func:`~unlearnlib.data.load_splits`, with the inputs standardised by the training
    set's mean and standard deviation when ``standardize`` (the poisoning chapters' setting)."""
    if not standardize:
        return load_splits(dataset, forget, data_root, device)
    raw = load_raw(dataset, data_root)
    mean, std = raw.x_train.mean(), raw.x_train.std()
    raw = dataclasses.replace(raw, x_train=(raw.x_train - mean) / std, x_test=(raw.x_test - mean) / std)
    return make_splits(raw, forget).to(resolve_device(device))


#: Splits re-created in this process (a worker's), by key.
_SPLITS = Kept()
#: What a fingerprint mismatch says by default.
HINT = "give the data folder the splits were loaded from (splits made otherwise cannot be re-created in a worker)"


def worker_splits(key: SplitsKey, hint: str = HINT) -> Splits:
    """The splits of ``key`` in this process (loaded once); one ``ValueError`` line, ending in
    ``hint``, when they are not the sender's (their fingerprint differs)."""
    def make() -> Splits:
        splits = load(key.dataset, key.forget, key.data_root, key.device, key.standardize)
        how = " with standardised inputs" if key.standardize else ""
        check_fingerprint(splits.fingerprint(), key.fingerprint,
                          f"load_splits({key.dataset!r}, {key.forget!r}, data_root={key.data_root!r}){how}", hint)
        return splits

    return _SPLITS.get(key, make)


def check_fingerprint(found: str, sent: str, made_by: str, hint: str) -> None:
    """One ``ValueError`` line when splits a worker made (``made_by``: how) have another
    fingerprint than the sender's, ending in ``hint``."""
    if found != sent:
        raise ValueError(f"{made_by} gives other splits in this worker than the sender's (fingerprint {found}, "
                         f"not {sent}): {hint}.")


def stored(store: Store, entries: Entries | Callable[[], Entries | None]) -> Callable[[], bool]:
    """A unit's done-check: whether every ``(kind, spec)`` of ``entries`` is in ``store``
    (:meth:`~unlearnlib.store.Store.has` looks for the file; nothing is read). ``entries`` may
    be a function giving them when asked, None while they cannot be known yet (entries keyed
    by poisons that are not stored): then the unit is not done."""
    def done() -> bool:
        wanted = entries() if callable(entries) else entries
        return wanted is not None and all(store.has(kind, spec) for kind, spec in wanted)

    return done


__all__ = ["Kept", "SplitsKey", "splits_key", "load", "worker_splits", "check_fingerprint", "stored", "absolute",
           "Entries"]
