"""Files of the store: atomic writes, sweeping the temporary files of dead processes,
checking that a folder can be written, and telling what is at a path without opening it
(a FIFO would block the read)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

#: A store with less free space than this is refused before anything runs.
MIN_FREE_BYTES = 1 << 20


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
