"""Locks of the store: one ``flock`` per key under ``<root>/.locks``, its holder's record
(pid, host, start time) and heartbeat, and a waiter that names the holder and gives up when
it shows no sign of life for the lock timeout."""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .files import _HOST, _MISSING, _inspect, _mode_name, _pid_alive
from .keys import canonical_json

#: Environment variable: seconds a waiter waits for a lock whose holder shows no sign of
#: life (a holder stopped with SIGSTOP or Ctrl-Z) before giving up; ``inf`` waits forever.
LOCK_TIMEOUT_ENV = "UNLEARNLIB_LOCK_TIMEOUT"
#: Default of :data:`LOCK_TIMEOUT_ENV` (seconds).
DEFAULT_LOCK_TIMEOUT = 600.0
#: A waiter says whose lock it waits for after this many seconds (or half its timeout).
LOCK_NOTICE_AFTER = 5.0
#: Seconds between the touches of a held lock file (its holder's sign of life).
LOCK_HEARTBEAT = 1.0


class StoreLockError(OSError):
    """A lock of the store cannot be created (its folder or file is in the way or not
    writable): the run stops instead of computing unlocked."""


class LockTimeoutError(StoreLockError, TimeoutError):
    """Waiting for a lock gave up: its holder showed no sign of life for the lock timeout."""


def _parse_lock_timeout(value: Any, what: str) -> float:
    try:
        t = float(value)
        ok = not isinstance(value, bool) and t > 0 and not math.isnan(t)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what} must be a positive number of seconds (or inf to wait forever) that a "
                         f"run waits for a store lock whose holder shows no sign of life; got {value!r}.")
    return t


def lock_timeout() -> float:
    """``$UNLEARNLIB_LOCK_TIMEOUT`` (seconds) if set, else :data:`DEFAULT_LOCK_TIMEOUT`;
    ``ValueError`` (one line) for a value that is not a positive number."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    return _parse_lock_timeout(raw, LOCK_TIMEOUT_ENV) if raw else DEFAULT_LOCK_TIMEOUT


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


#: Lock files this process holds (fd -> path), touched by one heartbeat thread.
_HELD: dict[int, str] = {}
_HELD_LOCK = threading.Lock()
_HEART: list[threading.Thread] = []


def _heartbeat() -> None:
    while True:
        time.sleep(LOCK_HEARTBEAT)
        with _HELD_LOCK:
            for fd, path in list(_HELD.items()):
                try:
                    os.utime(fd if os.utime in os.supports_fd else path)
                except OSError:
                    pass


def _after_fork_in_child() -> None:
    global _HELD_LOCK
    _HELD_LOCK = threading.Lock()
    _HELD.clear()  # the parent keeps touching them
    _HEART.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _lock_folder_error(folder: Path, what: str) -> str:
    return (f"Store lock folder {folder} is {what}, not a folder, so entries cannot be locked against "
            "other runs; remove or rename it and run again.")


def _open_lock_file(path: Path) -> int:
    """The lock file at ``path`` opened for locking (made, with the umask's permissions, if
    missing); :class:`StoreLockError` (one line naming the path) if it cannot be."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = _inspect(folder, stat.S_ISDIR)
        if what not in (None, _MISSING):
            raise StoreLockError(_lock_folder_error(folder, what)) from None
        raise StoreLockError(f"Store lock folder {folder} cannot be made ({e.strerror or e}), so entries "
                             "cannot be locked against other runs; make the store writable.") from None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0),
                     0o666)
    except OSError as e:
        what = _inspect(path) if e.errno in (errno.EISDIR, errno.ELOOP, errno.ENXIO, errno.EEXIST) else None
        why = f"it is {what}" if what not in (None, _MISSING) else (e.strerror or str(e))
        raise StoreLockError(f"Store lock file {path} cannot be created or opened ({why}), so this entry "
                             "cannot be locked against other runs; remove it or make it writable and run "
                             "again.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StoreLockError(f"Store lock file {path} is {_mode_name(st.st_mode)}, not a file, so this entry "
                             "cannot be locked against other runs; remove it and run again.")
    return fd


def _lock_state(path: Path) -> tuple[tuple, dict | None]:
    """A signature of the lock file that changes with every sign of life of its holder
    (record written, heartbeat), and the holder's record if it can be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return (), None
    try:
        st = os.fstat(fd)
        data = os.read(fd, 4096) if stat.S_ISREG(st.st_mode) else b""
    except OSError:
        return (), None
    finally:
        os.close(fd)
    try:
        record = json.loads(data.decode())
        record = record if isinstance(record, dict) and "pid" in record else None
    except (ValueError, UnicodeDecodeError):
        record = None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, data), record


def _process_note(record: dict) -> str:
    """What this host knows about the holder: stopped, or no longer running."""
    if record.get("host") != _HOST:
        return ""
    try:
        pid = int(record["pid"])
    except (TypeError, ValueError):
        return ""
    if not _pid_alive(pid):
        return " (no longer running: a process it started may hold the lock)"
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
    return " (that process is stopped: SIGSTOP or Ctrl-Z)" if state in ("T", "t") else ""


def _holder(record: dict | None) -> str:
    if not record:
        return "an unknown process (its lock file names no holder)"
    since = record.get("since")
    when = ""
    if isinstance(since, (int, float)):
        when = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
    return f"pid {record.get('pid')} on host {record.get('host')}{when}{_process_note(record)}"


def _acquire(fd: int, path: Path, what: str, timeout: float) -> None:
    """Take the lock on ``fd``, waiting while its holder shows signs of life; say whose it
    is after :data:`LOCK_NOTICE_AFTER` seconds (or half the timeout); raise
    :class:`LockTimeoutError` after ``timeout`` seconds without one."""
    start = time.monotonic()
    notice_after = min(LOCK_NOTICE_AFTER, timeout / 2)
    signature, record, last_sign, noticed, delay = None, None, start, False, 0.005
    while not _try_lock(fd):
        now = time.monotonic()
        seen, rec = _lock_state(path)
        record = rec or record
        if seen != signature:
            signature, last_sign = seen, now
        if not noticed and now - start >= notice_after:
            noticed = True
            print(f"unlearnlib: waiting for the lock on store entry {what} ({path}), held by {_holder(record)}; "
                  f"giving up after {timeout:g} s without a sign of life from it (set {LOCK_TIMEOUT_ENV} "
                  "to change).", file=sys.stderr, flush=True)
        if now - last_sign >= timeout:
            pid = (record or {}).get("pid", "PID")
            raise LockTimeoutError(
                f"Gave up waiting for the lock on store entry {what} ({path}): held by {_holder(record)}, "
                f"which showed no sign of life for {timeout:g} s. Resume that process (kill -CONT {pid}) or "
                f"end it, or set {LOCK_TIMEOUT_ENV} to more seconds to wait longer.")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _hold(fd: int, path: Path) -> None:
    """Write this process's record into the held lock file and touch it while held."""
    record = canonical_json({"pid": os.getpid(), "host": _HOST, "since": round(time.time(), 3)}).encode()
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record)
    except OSError:
        pass
    with _HELD_LOCK:
        _HELD[fd] = str(path)
        if not _HEART:
            _HEART.append(threading.Thread(target=_heartbeat, name="unlearnlib-lock-heartbeat", daemon=True))
            _HEART[0].start()


def _release(fd: int) -> None:
    with _HELD_LOCK:
        _HELD.pop(fd, None)
    try:
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        _unlock(fd)
    finally:
        os.close(fd)
