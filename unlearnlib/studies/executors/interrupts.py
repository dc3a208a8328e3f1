"""Ctrl-C while tasks run: :func:`sticky_interrupt` keeps a Ctrl-C that a garbage-collector
callback would drop, and :func:`_sigint_ignored` keeps it from the processes started meanwhile
(the fork server and its workers)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator


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
