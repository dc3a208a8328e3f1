"""What a local Dask worker needs before its first unit, imported once by the fork server.

:class:`~unlearnlib.studies.executors.DaskExecutor` starts its local workers from a
multiprocessing fork server (a single-threaded process, so forking it is safe) that has
imported this module. Each worker is then a fork of a process that has torch, unlearnlib's
experiment code and scikit-learn loaded, instead of a fresh interpreter that imports them
when its first task arrives (about 1.1 s on the project's 2-core machine, per worker) and
pays the first-call costs inside its first unit: torch.optim imports ``torch._dynamo`` at
an optimizer's first step (about 1 s, 870 modules), and the population MIA imports
scikit-learn. Only imports run here, never a tensor operation, so no thread pool exists
before the fork.
"""

from __future__ import annotations

import sklearn.linear_model  # noqa: F401  (the population MIA)
import sklearn.metrics  # noqa: F401
import sklearn.model_selection  # noqa: F401
import torch  # noqa: F401
import torch._dynamo  # noqa: F401  (imported by torch.optim at the first optimizer step)

from . import experiment  # noqa: F401  (methods, training, evaluation, the store)


def dask_setup(worker: object) -> None:
    """Dask's preload hook, run in each local worker as it starts (the executor names this
    module in the workers' ``preload``): the worker's stdout and stderr go to the cluster's
    log (``$UNLEARNLIB_WORKER_LOG``, else nowhere), its Dask log records at INFO and above
    with them, and it ignores SIGINT. So a failed unit's "Compute Failed" traceback and a
    Ctrl-C reach the log, never the terminal: the sending process reports each failed unit
    in its one line and handles Ctrl-C by closing the cluster."""
    import contextlib
    import logging
    import os
    import signal
    import sys

    from .executors import SILENT, WORKER_LOG_ENV

    with contextlib.suppress(ValueError):  # a worker forked from the fork server ignores it already
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fd = os.open(os.environ.get(WORKER_LOG_ENV) or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(Exception):
        sys.stderr.write(f"=== unlearnlib: worker process {os.getpid()} writes its output here ===\n")
        sys.stderr.flush()
    # silenced until here (the executor's silence_logs); the log takes the worker's records
    nanny = logging.getLogger("distributed.nanny")
    if nanny.level >= SILENT:
        nanny.setLevel(logging.NOTSET)
    for h in logging.getLogger("distributed").handlers:
        if type(h) is logging.StreamHandler and h.level >= SILENT:
            h.setLevel(logging.NOTSET)
