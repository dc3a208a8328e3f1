"""One clean failure on every executor (issue 33): Ctrl-C, a failed unit, a full disk and an
unreachable scheduler each end in the same one line (and exit status) whichever executor
ran, and the local cluster's workers write nothing to the terminal.

Everything runs in real processes: the command line, or a small driver of the executors'
public API (:func:`_drive`), in a subprocess whose stdout and stderr are pipes. That is the
terminal here: the local cluster's fork server and its worker processes inherit those
pipes, so anything they print would be caught (a ``capfd`` of this process would miss a
fork server started before the test, which keeps the file descriptors of its start). The
local cluster is a real ``dask.distributed`` LocalCluster of two worker processes on
127.0.0.1; the model is digits / small_cnn.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("distributed")

from unlearnlib.studies import executors  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENV = {**{k: v for k, v in os.environ.items() if k not in (executors.SCHEDULER_ENV, executors.WORKERS_ENV)},
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
RUN = [sys.executable, "-m", "unlearnlib", "run", "--dataset", "digits", "--model", "small_cnn", "--epochs", "3",
       "--quiet"]
INTERRUPTED = "unlearnlib: interrupted (nothing half-written is left in the store)"
#: What a worker writes first into the cluster's log (worker_preload.dask_setup): it is up,
#: its output goes there and it ignores Ctrl-C.
WORKER_UP = "=== unlearnlib: worker process "
#: A grid far longer than the wait before Ctrl-C (4 seeds take 6 s on 2 idle cores).
SEEDS = "0-19"


def _lines(out: bytes) -> list[str]:
    return [line for line in out.decode(errors="replace").splitlines() if line.strip()]


def _logs(store: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((store / "logs").glob("dask-*.log")))


def _gone(pgid: int, within: float) -> bool:
    """Whether every process of the group ``pgid`` has exited within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- Ctrl-C


def _forked_workers(pgid: int) -> int:
    """How many processes of the process group ``pgid`` a multiprocessing fork server of
    that group forked: the local workers (read from Linux's /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                parents[int(stat.parent.name)] = int(fields[1])
    servers = set()
    for pid in parents:
        with contextlib.suppress(OSError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                servers.add(pid)
    return sum(parent in servers for parent in parents.values())


def _default_sigint() -> None:
    """Ctrl-C's default action in the child, as a terminal gives it: a test run started in the
    background (``make test &``, a CI runner) inherits SIGINT ignored, and Python then never
    raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted_run(store: Path, workers: str, ready: Callable[[Path, int], bool]) -> tuple[int, list[str], float]:
    """``unlearnlib run`` in its own process group, SIGINT sent to the whole group (as a
    terminal's Ctrl-C is) once ``ready(store)``; returns its exit status, its output lines
    (stdout and stderr) and the seconds from the SIGINT to its exit."""
    proc = subprocess.Popen([*RUN, "--seeds", SEEDS, "--store", str(store), "--workers", workers], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not ready(store, proc.pid):
            assert proc.poll() is None, f"the run ended before it was interrupted: {_lines(proc.stdout.read())}"
            assert time.monotonic() < deadline, "the run never got ready to be interrupted"
            time.sleep(0.05)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        took = time.monotonic() - sent
        # nothing of the run outlives it (its fork server, workers and resource tracker)
        assert _gone(proc.pid, 15), "processes of the interrupted run are still alive"
        return proc.returncode, _lines(out), took
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _first_entry(store: Path, pgid: int) -> bool:
    return any((store / "models").glob("*.pt"))


def _workers_up(store: Path, pgid: int) -> bool:
    """Both local worker processes exist (forked by the run's fork server) and the run stored
    an entry: then 2 s more, so that they are inside their units when Ctrl-C comes."""
    if _forked_workers(pgid) < 2 or not _first_entry(store, pgid):
        return False
    time.sleep(2.0)
    return True


@pytest.fixture(scope="module")
def serial_interrupt(tmp_path_factory) -> tuple[int, list[str]]:
    """The reference: Ctrl-C in a serial run (``--workers 1``) once it stored an entry."""
    rc, lines, _ = _interrupted_run(tmp_path_factory.mktemp("serial") / "s", "1", _first_entry)
    assert (rc, lines) == (130, [INTERRUPTED])  # what the README promises
    return rc, lines


@pytest.mark.parametrize("when", ["workers_up", "while_starting"])
def test_ctrl_c_on_two_local_workers_ends_in_the_serial_line(serial_interrupt, tmp_path, when):
    """Ctrl-C with two local workers, mid-run (both workers inside units) or while the
    cluster starts (this process computing the first units, the fork server importing): the
    serial run's one line and exit status 130, no worker's ``KeyboardInterrupt`` traceback;
    the workers' output is in the store's log."""
    if when == "workers_up" and not Path("/proc/self/stat").exists():
        pytest.skip("finding the worker processes needs Linux's /proc")
    store = tmp_path / "s"
    rc, lines, took = _interrupted_run(store, "2", _workers_up if when == "workers_up" else _first_entry)
    assert (rc, lines) == serial_interrupt, lines[:40]
    assert took < 60, took
    if when == "workers_up":
        assert _logs(store).count(WORKER_UP) == 2  # the workers' own output went there


# --------------------------------------------------------------------------- a failed unit, a full disk


def _marker_unit(store, name: str) -> str:
    """A unit that succeeds: writes a marker file into the store's folder."""
    (Path(store.root) / f"{name}.done").write_text(name)
    return name


def _failing_unit(store, name: str) -> str:
    raise RuntimeError(f"{name} fails on purpose")


def _full_disk_unit(store, name: str) -> str:
    """A unit whose write meets a full disk: ``/dev/full`` answers every write with ENOSPC
    (no root, no mount needed), as a store entry's write does on a full disk."""
    with open("/dev/full", "wb") as f:
        f.write(b"\0" * 65536)
        f.flush()
    return name


def _drive() -> None:
    """``python -c ... _drive()`` ``WORKERS ROOT``: the executor of ``--workers WORKERS``
    (1: serial, else a local cluster) runs two batches of units into the store ``ROOT``:
    one where a unit raises (two units need it, two others succeed), one where three units
    meet a full disk (two others succeed). Prints each batch's outcome in one line, exits 1
    when one failed: what the command line does with :class:`~executors.UnitsFailed`."""
    workers, root = sys.argv[1], Path(sys.argv[2])
    failed = False
    with executors.from_options(workers) as ex:
        failing = ex.task("unit a", _failing_unit, ("unit a",), root)
        batches = {
            "failed unit": [failing, *(ex.task(f"unit {n}", _marker_unit, (n,), root, needs=(failing,)) for n in "bc"),
                            *(ex.task(f"unit {n}", _marker_unit, (n,), root) for n in "de")],
            "full disk": [*(ex.task(f"write {n}", _full_disk_unit, (n,), root) for n in "fgh"),
                          *(ex.task(f"write {n}", _marker_unit, (n,), root) for n in "ij")],
        }
        for name, tasks in batches.items():
            try:
                ex.run(tasks, show_progress=False)
                print(f"{name}: all finished")
            except executors.UnitsFailed as e:
                print(f"{name}: unlearnlib: error: {e}", file=sys.stderr)
                failed = True
    sys.exit(1 if failed else 0)


@pytest.fixture(scope="module")
def driven(tmp_path_factory) -> dict[str, tuple[int, list[str], Path]]:
    """:func:`_drive` on the serial executor and on two local workers: exit status, output
    lines (stdout and stderr), store."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); from test_executor_failures import _drive; _drive()"
    out = {}
    for workers in ("1", "2"):
        store = tmp_path_factory.mktemp(f"driven{workers}") / "s"
        proc = subprocess.run([sys.executable, "-c", code, workers, str(store)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        out[workers] = (proc.returncode, _lines(proc.stdout), store)
    return out


def _outcome(driven, batch: str) -> tuple[int, list[str]]:
    (rc1, serial, store1), (rc2, parallel, store2) = driven["1"], driven["2"]
    # the whole output of both: the batches' lines and nothing else (no worker's output)
    assert rc1 == rc2 == 1
    assert parallel == serial, "\n".join(parallel[:60])
    assert len(serial) == 2
    for store in (store1, store2):  # the units that could run finished and are stored
        assert sorted(p.name for p in store.glob("*.done")) == [f"{n}.done" for n in "deij"]
    return rc2, [line for line in parallel if line.startswith(f"{batch}: ")]


def test_a_failed_unit_ends_in_the_same_line_on_every_executor(driven):
    """A unit that raises on a worker: the one line of the serial executor (the failure, its
    dependents named as not run), no ``distributed.worker - ERROR - Compute Failed``
    traceback on the terminal; that traceback is in the store's log."""
    rc, (line,) = _outcome(driven, "failed unit")
    assert line == ("failed unit: unlearnlib: error: 3 of 5 unit(s) failed (the others finished and are stored; "
                    "run again to retry only the failed ones): unit a: RuntimeError: unit a fails on purpose; "
                    "unit b: not run: it needs unit a, which failed; unit c: not run: it needs unit a, which failed")
    assert "unit a fails on purpose" in _logs(driven["2"][2])  # Dask's report of it, with its traceback


def test_a_full_disk_ends_in_the_same_line_on_every_executor(driven):
    """Units that meet a full disk (ENOSPC) on the workers: the serial executor's one line."""
    rc, (line,) = _outcome(driven, "full disk")
    assert line.startswith("full disk: unlearnlib: error: 3 of 5 unit(s) failed (")
    assert line.count("OSError: [Errno 28] No space left on device") == 3, line


@pytest.fixture(scope="module")
def cli_failed_unit(tmp_path_factory, find_entry) -> dict[str, tuple[int, list[str], Path]]:
    """``unlearnlib run`` with ``--workers 1`` and ``--workers 2`` where one unit meets a store
    entry of another key (seed 0's original model copied over seed 1's): exit status,
    output lines, store."""
    root = tmp_path_factory.mktemp("cli_failed_unit")
    run = [*RUN, "--seeds", "0,1", "--methods", "original,retrain,ft", "--epochs", "1"]
    base = root / "base"
    subprocess.run([*run, "--store", str(base), "--workers", "1"], cwd=ROOT, env=ENV, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    shutil.copy(find_entry(base, "models", role="original", seed=0), find_entry(base, "models", role="original", seed=1))
    for seed in (0, 1):
        find_entry(base, "results", method="ft", seed=seed).unlink()
    out = {}
    for workers in ("1", "2"):
        store = root / f"s{workers}"
        shutil.copytree(base, store)
        proc = subprocess.run([*run, "--store", str(store), "--workers", workers], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        out[workers] = (proc.returncode, _lines(proc.stdout), store)
    return out


def test_a_unit_failed_in_the_command_line_is_one_line_on_every_executor(cli_failed_unit, find_entry):
    """Serially the run stops at the unit; on two workers the other units finish, and the
    line names the unit. Both print only that line, naming the entry."""
    (_, serial, _), (_, parallel, store) = cli_failed_unit["1"], cli_failed_unit["2"]
    assert len(serial) == 1 and serial[0].startswith("unlearnlib: error: Store entry "), serial
    assert len(parallel) == 1, "\n".join(parallel[:60])
    assert parallel[0].startswith("unlearnlib: error: 1 of 2 unit(s) failed (") and "ft on seed 1: " in parallel[0]
    assert all("holds the entry of key" in lines[0] for lines in (serial, parallel))
    find_entry(store, "results", method="ft", seed=0)  # the other unit finished and is stored


def test_a_unit_failed_in_the_command_line_exits_alike_on_every_executor(cli_failed_unit):
    """A store entry holding another key's entry is a damaged store, not bad input: exit 1
    serially (where the unit's own error arrives) as on the workers (where it is one of the
    failed units)."""
    assert cli_failed_unit["1"][0] == cli_failed_unit["2"][0] == 1


# --------------------------------------------------------------------------- an unreachable scheduler


def test_an_unreachable_scheduler_is_one_line_within_5_s(tmp_path):
    """Nothing listens at the address: the command line says so in one line (exit status 2,
    before any training) at once; a process that accepts connections but never answers (a
    hung scheduler) is reported within 5 s too."""
    import distributed  # noqa: F401  (its import is not the connection's time)

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"^Cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1: connection "
                                         r"refused.*check that a Dask scheduler runs there"):
        executors.DaskExecutor(address="tcp://127.0.0.1:1").client()
    assert time.perf_counter() - t0 < 5
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=f"^Cannot reach the Dask scheduler at {address}: no Dask scheduler "
                                             f"answered within {executors.CONNECT_TIMEOUT:g} s"):
            executors.DaskExecutor(address=address).client()
        assert time.perf_counter() - t0 < 5

    t0 = time.perf_counter()
    proc = subprocess.run([*RUN, "--seeds", "0", "--store", str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:1"],
                          cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    took = time.perf_counter() - t0
    lines = _lines(proc.stdout)
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("unlearnlib: error: Cannot reach the Dask scheduler at tcp://127.0.0.1:1: "
                               "connection refused"), lines
    assert took < 25, took  # the whole command (its imports, the data) and no connection wait


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_by_a_gc_callback_is_raised_again():
    """Python drops an exception raised inside a garbage-collector callback ("Exception
    ignored"); distributed's scheduler runs one in this process while a local cluster starts,
    and a Ctrl-C landing there was lost. Within ``sticky_interrupt`` the check raises it."""
    import gc
    import os

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)  # delivered while the callback runs
            time.sleep(0.01)

    def collect_with_ctrl_c() -> None:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)

    # Python's default Ctrl-C handler, whatever this test process inherited (a run started in
    # the background, as CI may be, inherits SIGINT ignored, and then nothing is delivered)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            collect_with_ctrl_c()  # without the context: the interrupt is lost, nothing raises here
        except KeyboardInterrupt:  # pragma: no cover - a Python that propagates it needs no fix
            pytest.fail("this Python raised the KeyboardInterrupt out of the gc callback")
        with executors.sticky_interrupt() as interrupted:
            collect_with_ctrl_c()
            with pytest.raises(KeyboardInterrupt):
                interrupted()
            assert interrupted() is False  # raised once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
