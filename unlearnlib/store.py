"""Content-addressed cache of checkpoints, result rows and arrays: a store that cannot lie.

Everything expensive (original, retrained and shadow models; evaluated result
rows; generated datasets) is stored under a key that hashes everything that
determines it: the dataset and split, the model, the recipe, the seed, the method
and its hyperparameters, plus :data:`CACHE_VERSION`, which is bumped whenever code
changes what a key produces. A second run finds the entry and computes nothing.

Every entry carries its kind, its key, its spec and a SHA-256 hash of its content
(:data:`ENTRY_FORMAT` 2), and every read verifies them:

- an entry that cannot be decoded, or whose content no longer matches its hash
  (truncated, emptied, flipped or random bytes, an edited value), is moved aside
  to ``<entry>.corrupt`` (``<entry>.corrupt.N`` when that is taken) with a warning
  naming its path, and is recomputed;
- an entry whose stored key or spec is not the one asked for (a file copied or
  moved over another) raises :class:`EntryMismatchError` naming both keys; the
  file is moved aside too, so the next run recomputes it;
- an entry written before hashes existed (format 1: no hash) is accepted when its
  spec matches and rewritten with its hash.

Writes are atomic: data goes to a temporary file in the same folder, is flushed
and fsynced, then renamed over the target (``os.replace``), with the permissions
the umask gives (not ``mkstemp``'s private 0600), so a store can be shared by a
team or by cluster workers. A killed run leaves at most a temporary file, never
a half-written entry; temporary files of dead processes of this host are swept
on the next write into their folder.

Whatever is at an entry's path that is not a readable regular file -- a directory,
a FIFO, a socket, a device, a symlink loop, a dangling symlink, a file this user
cannot read -- is treated as corrupt: it is never opened (a FIFO would block the
read), it is moved aside to a free name (``<entry>.corrupt``, else
``<entry>.corrupt.1``, ...; an older moved-aside file is never replaced) with a
warning naming it and what it is, listed in :attr:`Store.corrupt`, and the entry is
recomputed. A kind folder (``<root>/<kind>``) that is not a folder (a file, a
symlink loop such as ``results -> results``, a dangling symlink) is moved aside the
same way and made again.

A computation holds a lock per key (``fcntl.flock`` on a file under
``<root>/.locks``, which the kernel frees when its holder dies), so two processes
asking for the same missing entry compute it once: the second waits, then reads the
first's entry. The holder writes its pid, host and start time into the lock file and
touches it every :data:`LOCK_HEARTBEAT` seconds. A waiter says once, after
:data:`LOCK_NOTICE_AFTER` seconds, whose lock it waits for, and gives up with
:class:`LockTimeoutError` when the holder has shown no sign of life for
``$UNLEARNLIB_LOCK_TIMEOUT`` seconds (default :data:`DEFAULT_LOCK_TIMEOUT`; or
``Store(lock_timeout=...)``): a holder stopped with SIGSTOP or Ctrl-Z never makes a
run hang silently, while a live holder computing for hours is waited for. A store
whose lock files cannot be created (``.locks`` is a file or a symlink loop, a lock
path is a folder, a read-only store) stops the run with one line
(:class:`StoreLockError`; :meth:`Store.check_writable` checks the lock folder
before anything runs) instead of computing unlocked.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

CACHE_VERSION = 3
#: Layout of an entry: 2 = kind, key, spec and a content hash inside every entry.
ENTRY_FORMAT = 2
#: A store with less free space than this is refused before anything runs.
MIN_FREE_BYTES = 1 << 20
#: Kinds that hold files managed outside the entry API (:meth:`Store.path_for`).
FOREIGN_KINDS = ("optuna", "poisons")
#: Environment variable: seconds a waiter waits for a lock whose holder shows no sign of
#: life (a holder stopped with SIGSTOP or Ctrl-Z) before giving up; ``inf`` waits forever.
LOCK_TIMEOUT_ENV = "UNLEARNLIB_LOCK_TIMEOUT"
#: Default of :data:`LOCK_TIMEOUT_ENV` (seconds).
DEFAULT_LOCK_TIMEOUT = 600.0
#: A waiter says whose lock it waits for after this many seconds (or half its timeout).
LOCK_NOTICE_AFTER = 5.0
#: Seconds between the touches of a held lock file (its holder's sign of life).
LOCK_HEARTBEAT = 1.0


class EntryMismatchError(ValueError):
    """A store entry holds the content of another key (copied or moved over it)."""


class StoreLockError(OSError):
    """A lock of the store cannot be created (its folder or file is in the way or not
    writable): the run stops instead of computing unlocked."""


class LockTimeoutError(StoreLockError, TimeoutError):
    """Waiting for a lock gave up: its holder showed no sign of life for the lock timeout."""


class _Corrupt(Exception):
    """Internal: an entry that cannot be decoded or fails its hash."""


class _NotAFile(_Corrupt):
    """Internal: something that is not a readable regular file is at an entry's path."""


def default_root() -> Path:
    """``$UNLEARNLIB_STORE`` if set, else ``~/.cache/unlearnlib``."""
    return Path(os.environ.get("UNLEARNLIB_STORE") or Path.home() / ".cache" / "unlearnlib")


# --------------------------------------------------------------------------- atomic files


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
_TMP = re.compile(r"~(?P<host>[^~]*)~(?P<pid>\d+)~[^~]*\.tmp$")
_SWEPT: set[Path] = set()


def _tmp_prefix(name: str) -> str:
    """Temporary files name their host and process, so stale ones can be swept."""
    return f".{name}.~{_HOST}~{os.getpid()}~"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        return True
    return True


def sweep_stale_tmp(folder: Path | str) -> list[Path]:
    """Remove the temporary files that dead processes of this host left in ``folder``."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        m = _TMP.search(p.name)
        if m and m["host"] == _HOST and not _pid_alive(int(m["pid"])):
            with _suppress_missing():
                p.unlink()
                removed.append(p)
    return removed


@contextmanager
def _suppress_missing() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it.

    Temporary file in the same folder, fsync, ``os.replace``; the file gets the
    permissions the umask allows. Raises ``OSError`` naming ``path`` on failure, and
    removes its temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in _SWEPT:
            _SWEPT.add(path.parent)
            sweep_stale_tmp(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from e
        raise
    _fsync_dir(path.parent)


def probe_writable(folder: Path | str) -> None:
    """Raise ``OSError`` unless files can be created in ``folder`` (made if missing).

    Folders this creates are removed again, so a failed run leaves nothing behind.
    """
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{p} is a file, not a folder")
    try:
        for d in reversed(missing):
            d.mkdir()
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix("probe"), suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            Path(tmp).unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
        if free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, f"only {free} bytes free (need at least {MIN_FREE_BYTES})")
    finally:
        for d in missing:
            with _suppress_missing():
                try:
                    d.rmdir()
                except OSError:
                    pass


def writable_error(what: str, folder: Path | str, e: OSError) -> ValueError:
    """The one-line error for a folder that cannot be written."""
    detail = e.strerror or str(e)
    why = {errno.ENOSPC: "the disk is full", errno.ENOTDIR: "a file is in the way",
           errno.EEXIST: "a file is in the way"}.get(e.errno or 0)
    return ValueError(f"{what} {folder} cannot be written ({f'{why}: {detail}' if why else detail}); "
                      "pass a writable folder on a disk with free space.")


# --------------------------------------------------------------------------- what is at a path

#: :func:`_inspect` of a path where nothing is.
_MISSING = "nothing"


def _mode_name(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a file"),
                       (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "something other than a file"


def _inspect(path: Path | str, want: Callable[[int], bool] = stat.S_ISREG) -> str | None:
    """What is at ``path``, following symlinks, from ``lstat``/``stat`` alone (nothing is
    opened): ``None`` when it is what ``want`` accepts (a regular file by default),
    :data:`_MISSING` when nothing is there, else a description ("a directory", "a FIFO
    (named pipe)", "a symlink loop", "a dangling symlink (to x)", ...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return _MISSING
    if not stat.S_ISLNK(st.st_mode):
        return None if want(st.st_mode) else _mode_name(st.st_mode)
    try:
        target = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symlink loop"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            try:
                return f"a dangling symlink (to {os.readlink(path)})"
            except OSError:
                return "a dangling symlink"
        raise
    return None if want(target.st_mode) else f"a symlink to {_mode_name(target.st_mode)}"


def _read_regular(path: Path) -> bytes | None | str:
    """The bytes of the regular file at ``path``; ``None`` when nothing is there; else a
    description of what is there instead. Never opens anything but a regular file (a FIFO
    would block): checked with ``stat`` first, opened non-blocking and checked again."""
    what = _inspect(path)
    if what == _MISSING:
        return None
    if what is not None:
        return what
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None  # removed meanwhile
    except PermissionError as e:
        return f"a file this user cannot read ({e.strerror})"
    except OSError as e:
        what = _inspect(path)  # replaced meanwhile
        if what == _MISSING:
            return None
        return what or f"a file that cannot be opened ({e.strerror or e})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _mode_name(st.st_mode)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _free_name(path: Path) -> Path:
    """``<path>.corrupt``, else the first free ``<path>.corrupt.N`` (anything there, even a
    dangling symlink, takes a name)."""
    bad = path.with_name(path.name + ".corrupt")
    n = 0
    while os.path.lexists(bad):
        n += 1
        bad = path.with_name(f"{path.name}.corrupt.{n}")
    return bad


# --------------------------------------------------------------------------- locks


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


# --------------------------------------------------------------------------- keys


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for hashing and storage."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "__dict__"):
        return vars(o)
    return str(o)


def content_key(kind: str, spec: dict) -> str:
    """Hash of ``kind``, ``spec`` and the cache version (24 hex characters)."""
    payload = canonical_json({"kind": kind, "v": CACHE_VERSION, "spec": spec})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _normal(spec: Any) -> str:
    """``spec`` as it reads back from an entry (tuples as lists, keys as strings)."""
    return canonical_json(json.loads(canonical_json(spec)))


# --------------------------------------------------------------------------- entry codecs


def _buffer(t: torch.Tensor | np.ndarray) -> memoryview:
    """The raw bytes of a tensor or array (any dtype), for hashing."""
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().contiguous().reshape(-1)
        return memoryview(t.view(torch.uint8).numpy()) if t.numel() else memoryview(b"")
    return memoryview(np.ascontiguousarray(t).reshape(-1).view(np.uint8))


def _digest(header: Mapping[str, Any], text: str, arrays: Mapping[str, Any]) -> str:
    """SHA-256 over the header (without the hash), a text part and named arrays."""
    h = hashlib.sha256(canonical_json({k: v for k, v in header.items() if k != "sha256"}).encode())
    h.update(b"\0" + text.encode() + b"\0")
    for name in sorted(arrays):
        a = arrays[name]
        dtype = str(a.dtype)
        h.update(canonical_json([name, dtype, list(a.shape)]).encode())
        h.update(_buffer(a))
    return h.hexdigest()


@dataclass(frozen=True)
class _Codec:
    """How one entry type is written and read: ``decode`` returns the value and its
    header ({format, kind, key, spec[, sha256]}) and raises on anything unreadable."""

    ext: str
    encode: Callable[[Any, dict], bytes]
    decode: Callable[[bytes], tuple[Any, dict]]
    digest: Callable[[Any, dict], str]


def _rows_encode(rows: list[dict], header: dict) -> bytes:
    return canonical_json({**header, "rows": rows}).encode()


def _rows_decode(data: bytes) -> tuple[list[dict], dict]:
    obj = json.loads(data.decode("utf-8"))
    if not isinstance(obj, dict) or not isinstance(obj.get("rows"), list) or "spec" not in obj:
        raise _Corrupt("not a result entry (no spec and rows)")
    return obj.pop("rows"), obj


def _rows_digest(rows: list[dict], header: dict) -> str:
    return _digest(header, canonical_json(rows), {})


def _ckpt_encode(value: tuple[dict, str], header: dict) -> bytes:
    state, meta = value
    buf = io.BytesIO()
    torch.save({"state_dict": state, "meta": meta,
                **{k: v for k, v in header.items() if k != "spec"}}, buf)
    return buf.getvalue()


def _ckpt_decode(data: bytes) -> tuple[tuple[dict, str], dict]:
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict) \
            or not isinstance(blob.get("meta"), str):
        raise _Corrupt("not a checkpoint entry (no state_dict and meta)")
    state, meta = blob.pop("state_dict"), blob.pop("meta")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _Corrupt("state_dict holds something other than tensors")
    spec = json.loads(meta).get("spec")
    return (state, meta), {**blob, "spec": spec}


def _ckpt_digest(value: tuple[dict, str], header: dict) -> str:
    state, meta = value
    return _digest(header, meta, state)


_ENTRY = "__entry__"


def _arrays_encode(arrays: dict[str, np.ndarray], header: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{_ENTRY: np.array(canonical_json(header))})
    return buf.getvalue()


def _arrays_decode(data: bytes) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if _ENTRY not in arrays:
        raise _Corrupt("not an array entry (no header)")
    header = json.loads(str(arrays.pop(_ENTRY)[()]))
    if not isinstance(header, dict) or "spec" not in header:
        raise _Corrupt("not an array entry (no spec)")
    return arrays, header


def _arrays_digest(arrays: dict[str, np.ndarray], header: dict) -> str:
    return _digest(header, "", arrays)


_ROWS = _Codec(".json", _rows_encode, _rows_decode, _rows_digest)
_CKPT = _Codec(".pt", _ckpt_encode, _ckpt_decode, _ckpt_digest)
_ARRAYS = _Codec(".npz", _arrays_encode, _arrays_decode, _arrays_digest)
_CODECS = {c.ext: c for c in (_ROWS, _CKPT, _ARRAYS)}


def _decode(codec: _Codec, data: bytes) -> tuple[Any, dict]:
    """Decode and check the hash; ``_Corrupt`` for anything unreadable or altered.
    A header without a hash (format 1) comes back as it is."""
    if not data:
        raise _Corrupt("empty file")
    try:
        value, header = codec.decode(data)
    except _Corrupt:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding error means the bytes are bad
        first = str(e).splitlines()[0][:80] if str(e) else ""
        raise _Corrupt(f"unreadable: {type(e).__name__}: {first}") from e
    if "sha256" in header and codec.digest(value, header) != header["sha256"]:
        raise _Corrupt("content does not match its hash")
    return value, header


# --------------------------------------------------------------------------- the store


@dataclass
class Store:
    """A folder of content-addressed entries: ``<root>/<kind>/<key>.{pt,json,npz}``.

    ``hits`` and ``misses`` count lookups in this process, so a notebook can show
    that a re-run computed nothing; ``corrupt`` lists the entries (and kind folders) moved
    aside. ``lock_timeout``: seconds to wait for a lock whose holder shows no sign of life
    before giving up (default ``$UNLEARNLIB_LOCK_TIMEOUT``, else :data:`DEFAULT_LOCK_TIMEOUT`).
    """

    root: Path = field(default_factory=default_root)
    hits: int = 0
    misses: int = 0
    corrupt: list[Path] = field(default_factory=list)
    lock_timeout: float | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.lock_timeout is not None:
            self.lock_timeout = _parse_lock_timeout(self.lock_timeout, "lock_timeout")

    # -- public entry types ---------------------------------------------------
    def checkpoint(
        self, kind: str, spec: dict, build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Return ``(state_dict, meta)`` for ``spec``, calling ``build`` only on a miss."""

        def make() -> tuple[dict, str]:
            state, meta = build()
            state = {k: v.detach().cpu().clone() for k, v in state.items()}
            return state, canonical_json({**meta, "spec": spec})

        state, meta = self._entry(kind, spec, _CKPT, make)
        return state, json.loads(meta)

    def rows(self, kind: str, spec: dict, compute: Callable[[], list[dict]]) -> list[dict]:
        """Return cached result rows for ``spec``, calling ``compute`` only on a miss."""
        return self._entry(kind, spec, _ROWS, lambda: json.loads(canonical_json(compute())))

    def arrays(self, kind: str, spec: dict, build: Callable[[], Mapping[str, np.ndarray]]
               ) -> dict[str, np.ndarray]:
        """Return named numpy arrays for ``spec`` (an ``.npz`` entry), calling ``build`` on a miss."""
        return self._entry(kind, spec, _ARRAYS, lambda: {k: np.asarray(v) for k, v in build().items()})

    def has(self, kind: str, spec: dict) -> bool:
        """Whether an entry file is stored for ``spec`` (a regular file, symlinks followed;
        a directory, FIFO or broken link in its place is not one)."""
        key = content_key(kind, spec)
        for ext in _CODECS:
            try:
                if _inspect(self.root / kind / f"{key}{ext}") is None:
                    return True
            except OSError:
                pass
        return False

    def path_for(self, kind: str, name: str) -> Path:
        """A path inside the store for files managed elsewhere (e.g. Optuna's journals)."""
        p = self.root / kind / name
        self._check_folder(kind)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def check_writable(self, kinds: Iterable[str] | None = None) -> None:
        """Raise ``ValueError`` (one line naming the store) unless entries can be written:
        the root is a folder (or can be made), accepts a file and has free space, its lock
        folder (if any) is a writable folder, ``$UNLEARNLIB_LOCK_TIMEOUT`` is valid, and every
        kind folder of ``kinds`` (default: every kind folder already there) that exists can
        be written: a read-only ``results`` would otherwise fail a run only after training.
        Something else in a kind folder's place (a file, a symlink loop) is moved aside now
        (:meth:`path_for`, with its warning). Call it before anything trains; it leaves
        nothing behind."""
        for attempt in range(5):
            try:
                probe_writable(self.root)
                break
            except FileNotFoundError as e:
                # another process probing the same fresh store removed the root it had just
                # made (probe_writable leaves nothing behind) while this one was inside it
                if attempt == 4:
                    raise writable_error("Store", self.root, e) from None
            except OSError as e:
                raise writable_error("Store", self.root, e) from None
        self.sweep()
        self._lock_timeout()
        locks = self.root / ".locks"
        what = _inspect(locks, stat.S_ISDIR)
        if what not in (None, _MISSING):
            raise ValueError(_lock_folder_error(locks, what))
        if what is None and not os.access(locks, os.W_OK | os.X_OK):
            raise ValueError(f"Store lock folder {locks} cannot be written, so entries cannot be locked "
                             "against other runs; make it writable and run again.")
        if kinds is None:  # the root may not be there: the probe leaves nothing behind
            kinds = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
                if self.root.is_dir() else []
        for kind in kinds:
            folder = self.root / kind
            if os.path.lexists(folder) and not folder.is_dir():
                self.path_for(kind, "check")  # moves it aside (with its warning) and makes the folder
            if folder.is_dir():
                try:
                    probe_writable(folder)
                except OSError as e:
                    raise ValueError(f"Store folder {folder} cannot be written ({e.strerror or e}), so a run "
                                     "would fail after training; make it writable or use another store.") from None

    def sweep(self) -> list[Path]:
        """Remove the temporary files that killed processes of this host left in the store
        (never an entry, never a live process's file); returns what was removed."""
        try:
            folders = [self.root, *(p for p in self.root.iterdir() if p.is_dir())]
            return [f for folder in folders for f in sweep_stale_tmp(folder)]
        except FileNotFoundError:  # no store yet, or a fresh root another process's probe removed
            return []

    def verify(self) -> dict[Path, str]:
        """Check every entry of the store; returns ``{path: problem}`` (empty when all are
        sound). Entries without a hash (format 1) are reported as such; the folders of
        :data:`FOREIGN_KINDS` and moved-aside files are skipped."""
        problems: dict[Path, str] = {}
        if not self.root.is_dir():
            return problems
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in FOREIGN_KINDS or ".corrupt" in folder.name:
                continue
            for path in sorted(folder.iterdir()):
                codec = _CODECS.get(path.suffix)
                if codec is None or path.name.startswith("."):
                    continue
                data = _read_regular(path)
                if data is None:
                    continue
                if isinstance(data, str):
                    problems[path] = f"not a readable file: {data}"
                    continue
                try:
                    _, header = _decode(codec, data)
                except _Corrupt as e:
                    problems[path] = f"corrupt: {e}"
                    continue
                if "sha256" not in header:
                    problems[path] = "no hash (format 1)"
                elif header.get("key") != path.stem or header.get("kind") != folder.name:
                    problems[path] = f"holds the entry of key {header.get('key')}"
        return problems

    # -- the one read/compute/write path --------------------------------------
    def _entry(self, kind: str, spec: dict, codec: _Codec, make: Callable[[], Any]) -> Any:
        key = content_key(kind, spec)
        path = self.root / kind / f"{key}{codec.ext}"
        self._check_folder(kind)
        found = self._read(path, kind, key, spec, codec)
        if isinstance(found, tuple):
            self.hits += 1
            return found[0]
        with self._lock(kind, key):  # a bad entry is moved aside only under the lock
            found = self._read(path, kind, key, spec, codec)
            if isinstance(found, tuple):  # another process wrote it while we waited
                self.hits += 1
                return found[0]
            if isinstance(found, EntryMismatchError):
                bad = self._move_aside(path)
                raise EntryMismatchError(f"{found} Moved it to {bad}; run again to recompute {key}.")
            if isinstance(found, _NotAFile):
                bad = self._move_aside(path)
                warnings.warn(f"Store entry {path} is corrupt: it is {found}, not a readable file; moved it "
                              f"to {bad} and recomputing it.", RuntimeWarning, stacklevel=3)
            elif isinstance(found, _Corrupt):
                bad = self._move_aside(path)
                warnings.warn(f"Store entry {path} is corrupt ({found}); moved it to {bad} and "
                              "recomputing it.", RuntimeWarning, stacklevel=3)
            self.misses += 1
            value = make()
            header = {"format": ENTRY_FORMAT, "kind": kind, "key": key, "spec": json.loads(canonical_json(spec))}
            header["sha256"] = codec.digest(value, header)
            data = codec.encode(value, header)
            atomic_write_bytes(path, data)
            return codec.decode(data)[0]  # exactly what a later hit returns

    def _read(self, path: Path, kind: str, key: str, spec: dict, codec: _Codec
              ) -> tuple[Any] | None | _Corrupt | EntryMismatchError:
        """``(value,)`` for a sound entry of ``spec``; ``None`` when there is none; the
        problem (not raised) for a corrupt entry or one holding another key's content;
        :class:`_NotAFile` for anything but a readable regular file (never opened)."""
        data = _read_regular(path)
        if data is None:
            return None
        if isinstance(data, str):
            return _NotAFile(data)
        try:
            value, header = _decode(codec, data)
        except _Corrupt as e:
            return e
        stored = header["spec"]
        stored_key = header.get("key") or (content_key(kind, stored) if isinstance(stored, dict) else "?")
        if stored_key != key or header.get("kind", kind) != kind or _normal(stored) != _normal(spec):
            return EntryMismatchError(
                f"Store entry {path} (key {key}) holds the entry of key {stored_key} "
                f"({_spec_difference(stored, spec)}): a file was copied or moved over another."
            )
        if "sha256" not in header:  # format 1: rewrite it with its hash (best effort)
            self._upgrade(path, kind, key, spec, codec, value)
        return (value,)

    def _upgrade(self, path: Path, kind: str, key: str, spec: dict, codec: _Codec, value: Any) -> None:
        header = {"format": ENTRY_FORMAT, "kind": kind, "key": key, "spec": json.loads(canonical_json(spec))}
        header["sha256"] = codec.digest(value, header)
        try:
            atomic_write_bytes(path, codec.encode(value, header))
        except OSError:  # a read-only store keeps its format-1 entries
            pass

    def _move_aside(self, path: Path) -> Path:
        """Rename a bad entry (or kind folder; a symlink itself, never its target) to
        ``<entry>.corrupt``, or ``<entry>.corrupt.N`` when that is taken."""
        bad = _free_name(path)
        with _suppress_missing():
            os.rename(path, bad)
            self.corrupt.append(bad)
        return bad

    def _check_folder(self, kind: str) -> None:
        """Move aside ``<root>/<kind>`` when it is there but is not a folder (a file, a
        symlink loop such as ``results -> results``, a dangling symlink), with a warning,
        so that its entries are recomputed into a fresh folder."""
        folder = self.root / kind
        if _inspect(folder, stat.S_ISDIR) in (None, _MISSING):
            return
        with self._lock(kind, "folder"):  # one process moves it, the others see a folder
            what = _inspect(folder, stat.S_ISDIR)
            if what in (None, _MISSING):
                return
            bad = self._move_aside(folder)
            warnings.warn(f"Store folder {folder} is corrupt: it is {what}, not a folder; moved it to {bad} "
                          f"and recomputing its entries.", RuntimeWarning, stacklevel=4)

    def _lock_timeout(self) -> float:
        return self.lock_timeout if self.lock_timeout is not None else lock_timeout()

    @contextmanager
    def _lock(self, kind: str, key: str) -> Iterator[None]:
        """An inter-process lock for one key: ``flock`` on ``<root>/.locks/<kind>-<key>.lock``
        (made with the umask's permissions so a team shares it). Waits while the holder shows
        signs of life (see :func:`_acquire`); :class:`StoreLockError` when the lock file
        cannot be made, never running unlocked."""
        timeout = self._lock_timeout()
        path = self.root / ".locks" / f"{kind}-{key}.lock"
        fd = _open_lock_file(path)
        try:
            _acquire(fd, path, f"{kind}/{key}", timeout)
        except BaseException:
            os.close(fd)
            raise
        _hold(fd, path)
        try:
            yield
        finally:
            _release(fd)


def _spec_difference(stored: Any, wanted: Any) -> str:
    """A short description of how two specs differ (top-level fields)."""
    if not (isinstance(stored, dict) and isinstance(wanted, dict)):
        return "its spec differs"
    wanted = json.loads(canonical_json(wanted))
    diff = [k for k in sorted(set(stored) | set(wanted)) if canonical_json(stored.get(k)) != canonical_json(wanted.get(k))]
    if not diff:
        return "its kind differs"
    shown = ", ".join(f"{k}: {canonical_json(stored.get(k))[:40]} instead of {canonical_json(wanted.get(k))[:40]}"
                      for k in diff[:3])
    return f"spec differs in {shown}" + (" ..." if len(diff) > 3 else "")


__all__ = [
    "CACHE_VERSION", "DEFAULT_LOCK_TIMEOUT", "ENTRY_FORMAT", "LOCK_TIMEOUT_ENV", "EntryMismatchError",
    "LockTimeoutError", "Store", "StoreLockError", "atomic_write_bytes", "canonical_json", "content_key",
    "default_root", "lock_timeout", "probe_writable", "sweep_stale_tmp",
]
