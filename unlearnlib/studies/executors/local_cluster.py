"""What a local Dask cluster needs in this process: the fork server its workers are forked
from (:func:`start_forkserver`) and its log (:class:`_ClusterLog`), where the workers' output
and this process's Dask log records go instead of the terminal."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

from ...environment import environment
from .interrupts import _sigint_ignored

#: Environment variable that names the local cluster's log to its worker processes
#: (:func:`unlearnlib.studies.worker_preload.dask_setup` sends their output there).
WORKER_LOG_ENV = "UNLEARNLIB_WORKER_LOG"
#: The Dask preload of the local workers (run in each worker as it starts).
WORKER_SETUP = "unlearnlib.studies.worker_preload"
#: A logging level above every record: what the local cluster's stream handlers are set to.
SILENT = logging.CRITICAL + 10


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
    with environment({k: v for k, v in env.items() if k.endswith("_THREADS")}), _sigint_ignored():
        forkserver.ensure_running()
    return "forkserver"


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
