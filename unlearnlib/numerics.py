"""What changes a run's floating-point results besides its inputs, and the thread rule.

Same seed, same numbers: on one machine a run is deterministic, but torch's CPU
reductions split work by thread, so the intra-op thread count changes the
numbers, and so do the CPU kernels torch dispatches to and the device. All are part
of every store key (:func:`numerics`), and the thread count is chosen on purpose
(:func:`default_threads`).
"""

from __future__ import annotations

import os

import torch

#: Environment variable giving torch's intra-op threads per process (default 1).
THREADS_ENV = "UNLEARNLIB_THREADS"


def default_threads() -> int:
    """Intra-op threads per process: ``$UNLEARNLIB_THREADS``, else 1.

    One thread per process is the rule: the registered models are small, and torch's
    intra-op threads collapse when processes share cores (measured on 2 cores: one
    grid took 198 s with torch's default threads beside one other busy process, 12.7 s
    with one thread). Parallelism comes from worker processes instead
    (:mod:`unlearnlib.studies.executors`). ``import unlearnlib`` applies it.
    """
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer (threads per process); got {raw!r}.")
    return n


#: The error of a bad ``$UNLEARNLIB_THREADS`` at import (:func:`apply_thread_rule`), else None.
_THREADS_ERROR: ValueError | None = None


def apply_thread_rule() -> None:
    """Set torch's intra-op threads to :func:`default_threads` (``import unlearnlib`` calls it).

    A bad ``$UNLEARNLIB_THREADS`` (``0``, ``-1``, ``abc``) does not fail the import, which
    would print a traceback for every command, ``unlearnlib --help`` included: the threads
    are left as they are and the error is kept, raised by :func:`check_threads` (the
    command line's first step: one line, exit 2) and by :func:`numerics` (so nothing is
    computed or stored while the setting is bad)."""
    global _THREADS_ERROR
    try:
        n = default_threads()
    except ValueError as e:
        _THREADS_ERROR = e
        return
    _THREADS_ERROR = None
    torch.set_num_threads(n)


def check_threads() -> None:
    """Raise the ``ValueError`` of a bad ``$UNLEARNLIB_THREADS`` (now, or when unlearnlib was
    imported, which is what set torch's threads)."""
    if _THREADS_ERROR is not None:
        raise ValueError(str(_THREADS_ERROR))
    default_threads()


def numerics(device: torch.device | str) -> dict:
    """What besides the inputs changes a run's floating-point results: the device type; on
    the CPU torch's intra-op thread count (reductions split differently: a 1-thread and a
    2-thread run of one seed differ by up to 0.036 in a weight) and the kernels torch
    dispatches to (``torch.backends.cpu.get_cpu_capability()``: AVX512, AVX2, ...; two
    epochs of mnist1d/cnn1d on one machine, forced to AVX2 with ``ATEN_CPU_CAPABILITY``,
    end up to 1.3e-3 apart in a weight); on CUDA the GPU model. Part of every store key,
    so a store filled on two machines, or by cluster nodes of two CPU kinds, never mixes
    their numbers. Raises the ``ValueError`` of a bad ``$UNLEARNLIB_THREADS`` (:func:`check_threads`)."""
    check_threads()
    device = torch.device(device)
    if device.type == "cuda":
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(device)}
    if device.type == "cpu":
        return {"device": "cpu", "threads": torch.get_num_threads(), "cpu": torch.backends.cpu.get_cpu_capability()}
    return {"device": device.type, "threads": torch.get_num_threads()}
