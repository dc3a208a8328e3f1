"""Issue 33 (items 2 and 3): store entries that are not readable files, and locks that
could hang or vanish silently.

- Anything at an entry's path that is not a readable regular file (a directory, a FIFO,
  a socket, a symlink loop, a dangling symlink) is moved aside to a free name with a
  warning naming it and what it is, and recomputed; a FIFO is never opened (the read
  would block). A kind folder that is a symlink loop (``results -> results``) is moved
  aside and made again. A ``.corrupt`` name that is taken is never replaced or fatal.
- A waiter says whose lock it waits for (pid, host) and gives up with a clear error
  when the holder (stopped with SIGSTOP) shows no sign of life for the lock timeout;
  a live holder is waited for beyond it.
- Lock files that cannot be created stop the run with one line, before computing.

Real files, FIFOs, sockets, symlinks and processes; nothing of the file system is mocked.
Every case fails on the store before issue 33 (it raised ``IsADirectoryError`` or
``Too many levels of symbolic links``, blocked on the FIFO or on the lock, or computed
without a lock). The names new in issue 33 are imported inside the tests, so that each
test fails on its own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnlib.store import Store, content_key

SPEC = {"unit": "a", "seed": 0}
KIND = {"json": "results", "pt": "models", "npz": "datasets"}
FMTS = list(KIND)


def _entry(store: Store, fmt: str, calls: list, spec: dict = SPEC):
    """Ask ``store`` for the entry of ``spec`` in format ``fmt``; ``calls`` counts computations."""
    def compute():
        calls.append(fmt)
        return {"json": [{"acc": 0.5}], "pt": ({"w": torch.arange(4.0)}, {"by": "test"}),
                "npz": {"x": np.arange(4.0)}}[fmt]

    if fmt == "json":
        return store.rows(KIND[fmt], spec, compute)
    if fmt == "pt":
        return store.checkpoint(KIND[fmt], spec, compute)[0]["w"].tolist()
    return store.arrays(KIND[fmt], spec, compute)["x"].tolist()


def _path(root: Path, fmt: str, spec: dict = SPEC) -> Path:
    return root / KIND[fmt] / f"{content_key(KIND[fmt], spec)}.{fmt}"


def _recomputed_once_then_hit(root: Path, fmt: str, path: Path, what: str, bad: Path) -> Store:
    """Asking for the entry warns (naming ``path`` and ``what``), moves it to ``bad``,
    computes once; a fresh store then finds the entry and computes nothing."""
    calls: list = []
    store = Store(root)
    with pytest.warns(RuntimeWarning, match=re.escape(f"Store entry {path} is corrupt: it is {what}")
                      + r", not a readable file; moved it to " + re.escape(str(bad))):
        value = _entry(store, fmt, calls)
    assert calls == [fmt] and store.misses == 1 and store.corrupt == [bad]
    again = Store(root)
    assert _entry(again, fmt, calls) == value and again.hits == 1 and calls == [fmt]
    assert again.has(KIND[fmt], SPEC) and again.verify() == {}
    return store


# --------------------------------------------------------------------------- entries that are not files


def _directory(path: Path) -> str:
    path.mkdir()
    (path / "inside").write_text("kept")
    return "a directory"


def _self_loop(path: Path) -> str:
    os.symlink(path.name, path)  # <key>.json -> <key>.json
    return "a symlink loop"


def _two_link_loop(path: Path) -> str:
    os.symlink("other", path)
    os.symlink(path.name, path.parent / "other")
    return "a symlink loop"


def _dangling(path: Path) -> str:
    os.symlink("gone.bin", path)
    return "a dangling symlink (to gone.bin)"


def _link_to_directory(path: Path) -> str:
    (path.parent / "somedir").mkdir()
    os.symlink("somedir", path)
    return "a symlink to a directory"


NOT_FILES = {"directory": _directory, "self-loop": _self_loop, "two-link-loop": _two_link_loop,
             "dangling-link": _dangling, "link-to-directory": _link_to_directory}


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("case", list(NOT_FILES))
def test_non_file_at_entry_path_is_moved_aside_and_recomputed(tmp_path, fmt, case):
    path = _path(tmp_path, fmt)
    path.parent.mkdir()
    what = NOT_FILES[case](path)
    assert not Store(tmp_path).has(KIND[fmt], SPEC)  # not an entry: a worker must compute it
    bad = path.with_name(path.name + ".corrupt")
    _recomputed_once_then_hit(tmp_path, fmt, path, what, bad)
    assert path.is_file() and os.path.lexists(bad)
    if case == "directory":  # moved as it was, with what it held
        assert (bad / "inside").read_text() == "kept"
    else:  # the link itself is moved, never its target
        assert bad.is_symlink()


@pytest.mark.parametrize("fmt", FMTS)
def test_fifo_entry_is_never_opened(tmp_path, fmt):
    """A FIFO at an entry's path: every run hung on opening it (120 s timeouts)."""
    path = _path(tmp_path, fmt)
    path.parent.mkdir()
    os.mkfifo(path)
    result: dict = {}

    def ask() -> None:
        result["verify"] = Store(tmp_path).verify()
        calls: list = []
        store = Store(tmp_path)
        with pytest.warns(RuntimeWarning) as caught:
            result["value"] = _entry(store, fmt, calls)
        result.update(calls=calls, warnings=[str(w.message) for w in caught], corrupt=store.corrupt)

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # blocked in open(): give it a writer so the thread can end, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        pytest.fail(f"reading the store blocked on the FIFO {path}")
    bad = path.with_name(path.name + ".corrupt")
    assert result["verify"] == {path: "not a readable file: a FIFO (named pipe)"}
    assert result["calls"] == [fmt] and result["corrupt"] == [bad]
    assert result["warnings"] == [f"Store entry {path} is corrupt: it is a FIFO (named pipe), not a readable "
                                  f"file; moved it to {bad} and recomputing it."]
    assert bad.is_fifo() and path.is_file() and Store(tmp_path).verify() == {}


def test_socket_entry_is_moved_aside(tmp_path, monkeypatch):
    path = _path(tmp_path, "json")
    path.parent.mkdir()
    monkeypatch.chdir(path.parent)  # a socket path must be short: bind it by its name
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(path.name)
        _recomputed_once_then_hit(tmp_path, "json", path, "a socket", path.with_name(path.name + ".corrupt"))
    finally:
        sock.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_entry_is_moved_aside(tmp_path):
    calls: list = []
    _entry(Store(tmp_path), "json", calls)
    path = _path(tmp_path, "json")
    path.chmod(0)
    _recomputed_once_then_hit(tmp_path, "json", path, "a file this user cannot read",
                              path.with_name(path.name + ".corrupt"))


# --------------------------------------------------------------------------- a taken .corrupt name


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("taken_by", ["file", "directory", "dangling-link"])
def test_corrupt_entry_whose_corrupt_name_is_taken(tmp_path, fmt, taken_by):
    """The older moved-aside thing is kept; the new one goes to the first free name."""
    path = _path(tmp_path, fmt)
    path.parent.mkdir()
    path.write_bytes(b"garbage, not an entry")
    taken = path.with_name(path.name + ".corrupt")
    if taken_by == "file":
        taken.write_text("an older corrupt entry")
    elif taken_by == "directory":
        taken.mkdir()
        (taken / "x").write_text("x")
    else:
        os.symlink("nowhere", taken)
    calls: list = []
    store = Store(tmp_path)
    bad = path.with_name(path.name + ".corrupt.1")
    with pytest.warns(RuntimeWarning, match=re.escape(f"Store entry {path} is corrupt (") + r".*moved it to "
                      + re.escape(str(bad))):
        _entry(store, fmt, calls)
    assert calls == [fmt] and store.corrupt == [bad] and bad.read_bytes() == b"garbage, not an entry"
    if taken_by == "file":
        assert taken.read_text() == "an older corrupt entry"
    elif taken_by == "directory":
        assert (taken / "x").read_text() == "x"
    else:
        assert taken.is_symlink()
    # again: a directory in the entry's place, .corrupt and .corrupt.1 both taken
    path.unlink()
    path.mkdir()
    store = Store(tmp_path)
    _recomputed_once_then_hit(tmp_path, fmt, path, "a directory", path.with_name(path.name + ".corrupt.2"))


# --------------------------------------------------------------------------- kind folders that are not folders


def _folder_self_loop(folder: Path) -> str:
    os.symlink(folder.name, folder)  # results -> results
    return "a symlink loop"


def _folder_file(folder: Path) -> str:
    folder.write_text("not a folder")
    return "a file"


def _folder_dangling(folder: Path) -> str:
    os.symlink("elsewhere", folder)
    return "a dangling symlink (to elsewhere)"


FOLDERS = {"self-loop": _folder_self_loop, "file": _folder_file, "dangling-link": _folder_dangling}


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("case", list(FOLDERS))
def test_kind_folder_that_is_not_a_folder_is_moved_aside(tmp_path, fmt, case):
    folder = tmp_path / KIND[fmt]
    what = FOLDERS[case](folder)
    assert not Store(tmp_path).has(KIND[fmt], SPEC)
    bad = folder.with_name(folder.name + ".corrupt")
    calls: list = []
    store = Store(tmp_path)
    with pytest.warns(RuntimeWarning, match=re.escape(f"Store folder {folder} is corrupt: it is {what}, not a "
                                                      f"folder; moved it to {bad} and recomputing its entries.")):
        value = _entry(store, fmt, calls)
    assert calls == [fmt] and store.corrupt == [bad] and os.path.lexists(bad) and folder.is_dir()
    again = Store(tmp_path)
    assert _entry(again, fmt, calls) == value and again.hits == 1 and calls == [fmt]
    assert again.verify() == {}


def test_path_for_moves_a_looping_folder_aside(tmp_path):
    os.symlink("optuna", tmp_path / "optuna")
    with pytest.warns(RuntimeWarning, match=r"Store folder .*optuna is corrupt: it is a symlink loop"):
        p = Store(tmp_path).path_for("optuna", "study.journal")
    assert p.parent.is_dir() and (tmp_path / "optuna.corrupt").is_symlink()


# --------------------------------------------------------------------------- locks that cannot be created


def _locks_file(root: Path) -> tuple[Path, str]:
    (root / ".locks").write_text("not a folder")
    return root / ".locks", "a file"


def _locks_loop(root: Path) -> tuple[Path, str]:
    os.symlink(".locks", root / ".locks")
    return root / ".locks", "a symlink loop"


@pytest.mark.parametrize("make", [_locks_file, _locks_loop], ids=["file", "symlink-loop"])
def test_lock_folder_in_the_way_stops_before_computing(tmp_path, make):
    """The store ran without locks and said nothing (12 units computed twice)."""
    locks, what = make(tmp_path)
    line = re.escape(f"Store lock folder {locks} is {what}, not a folder, so entries cannot be locked against "
                     "other runs; remove or rename it and run again.")
    with pytest.raises(ValueError, match=f"^{line}$"):
        Store(tmp_path).check_writable()  # what `unlearnlib run` calls before anything trains
    calls: list = []
    with pytest.raises(OSError, match=f"^{line}$") as e:
        _entry(Store(tmp_path), "json", calls)
    assert type(e.value).__name__ == "StoreLockError" and calls == []


def test_lock_path_that_is_a_directory_stops_before_computing(tmp_path):
    lock = tmp_path / ".locks" / f"results-{content_key('results', SPEC)}.lock"
    lock.mkdir(parents=True)
    Store(tmp_path).check_writable()  # the folder itself is fine
    calls: list = []
    with pytest.raises(OSError, match="^" + re.escape(f"Store lock file {lock} cannot be created or opened (it is "
                                                      "a directory), so this entry cannot be locked against "
                                                      "other runs; ")) as e:
        _entry(Store(tmp_path), "json", calls)
    assert type(e.value).__name__ == "StoreLockError" and calls == [] and lock.is_dir()


def test_lock_timeout_setting_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLIB_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"^UNLEARNLIB_LOCK_TIMEOUT must be a positive number of seconds .*got 'soon'"):
        Store(tmp_path).check_writable()
    with pytest.raises(ValueError, match=r"^lock_timeout must be a positive number of seconds .*got -1"):
        Store(tmp_path, lock_timeout=-1)


# --------------------------------------------------------------------------- a stopped lock holder

#: Takes the lock of SPEC's result entry (computing it), stays alive ALIVE seconds
#: (its heartbeat goes on), then stops itself with SIGSTOP while holding the lock.
HOLDER = r"""
import os, signal, sys, time
from pathlib import Path
from unlearnlib.store import Store

root, signals, alive = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])

def compute():
    (signals / "holding").touch()
    time.sleep(alive)
    (signals / "stopping").touch()
    os.kill(os.getpid(), signal.SIGSTOP)
    return [{"by": "holder"}]

Store(root).rows("results", {"unit": "a", "seed": 0}, compute)
"""

ALIVE, TIMEOUT = 4.0, 2.5


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_stopped_lock_holder_is_named_and_the_waiter_gives_up(tmp_path, monkeypatch, capfd):
    """A run stopped with SIGSTOP while holding a lock made a second run wait silently
    (more than 60 s). Now the waiter names the holder after a few seconds, waits while
    the holder is alive (ALIVE s, beyond the timeout), and gives up TIMEOUT s after it
    stopped, with one error naming the entry, the holder and the variable to raise."""
    root, signals = tmp_path / "store", tmp_path / "signals"
    signals.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), str(signals), str(ALIVE)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    result: dict = {}
    waiter = None
    try:
        deadline = time.monotonic() + 120
        while not (signals / "holding").exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.02)
        monkeypatch.setenv("UNLEARNLIB_LOCK_TIMEOUT", str(TIMEOUT))
        calls: list = []

        def wait() -> None:
            start = time.monotonic()
            try:
                result["value"] = Store(root).rows("results", SPEC, lambda: calls.append(1) or [{"by": "waiter"}])
            except BaseException as e:  # noqa: BLE001 - the test looks at it
                result["error"] = e
            result["seconds"] = time.monotonic() - start
            result["holder state"] = _state(holder.pid)

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(ALIVE + TIMEOUT + 20)
        assert not waiter.is_alive(), "the waiter still waits for the stopped holder's lock"
    finally:
        holder.kill()  # a stopped process dies of SIGKILL; the kernel frees its lock
        holder.wait(30)
        if waiter is not None:
            waiter.join(30)
    err = capfd.readouterr().err
    key = content_key("results", SPEC)
    lock = root / ".locks" / f"results-{key}.lock"
    notices = [line for line in err.splitlines() if "waiting for the lock" in line]
    assert len(notices) == 1, err  # said once
    assert re.fullmatch(re.escape(f"unlearnlib: waiting for the lock on store entry results/{key} ({lock}), held "
                                  f"by pid {holder.pid} on host ") + r"\S+ since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; "
                        + re.escape(f"giving up after {TIMEOUT:g} s without a sign of life from it (set "
                                    "UNLEARNLIB_LOCK_TIMEOUT to change)."), notices[0]), notices[0]
    error = result.get("error")
    assert isinstance(error, TimeoutError) and type(error).__name__ == "LockTimeoutError", result
    assert re.fullmatch(re.escape(f"Gave up waiting for the lock on store entry results/{key} ({lock}): held by pid "
                                  f"{holder.pid} on host ") + r"\S+ since [-\d]+ [:\d]+"
                        + re.escape(f" (that process is stopped: SIGSTOP or Ctrl-Z), which showed no sign of life "
                                    f"for {TIMEOUT:g} s. Resume that process (kill -CONT {holder.pid}) or end it, "
                                    "or set UNLEARNLIB_LOCK_TIMEOUT to more seconds to wait longer."), str(error))
    assert result["holder state"] == "T" and calls == []
    # waited through the holder's live seconds (its heartbeat), then gave up within the bound
    assert ALIVE - 1.0 <= result["seconds"] <= ALIVE + TIMEOUT + 5, result["seconds"]


def test_lock_of_a_killed_holder_is_free(tmp_path):
    """A holder killed while computing leaves its lock file; the kernel freed the lock:
    the next run computes at once, and the lock file names it while it holds it."""
    root, signals = tmp_path / "store", tmp_path / "signals"
    signals.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), str(signals), "600"],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (signals / "holding").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        lock = root / ".locks" / f"results-{content_key('results', SPEC)}.lock"
        assert f'"pid":{holder.pid}' in lock.read_text()  # the holder's record
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    calls: list = []
    start = time.monotonic()
    store = Store(root, lock_timeout=30)

    def compute():
        assert lock.read_text().startswith('{"host":'), lock.read_text()
        assert f'"pid":{os.getpid()}' in lock.read_text()
        calls.append(1)
        return [{"by": "me"}]

    assert store.rows("results", SPEC, compute) == [{"by": "me"}]
    assert calls == [1] and time.monotonic() - start < 5 and lock.read_text() == ""  # cleared on release
