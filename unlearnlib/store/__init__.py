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

The package, by concern: :mod:`~unlearnlib.store.files` (atomic writes, stale temporary
files, what is at a path), :mod:`~unlearnlib.store.locks` (per-key locks and their
heartbeat), :mod:`~unlearnlib.store.keys` (canonical JSON, content keys),
:mod:`~unlearnlib.store.codecs` (entry types and their hashes) and
:mod:`~unlearnlib.store.entries` (the :class:`Store`).
"""

# ruff: noqa: F401 - the package re-exports its modules' names, private ones that tests and
# other modules use included
from __future__ import annotations

from .codecs import _ARRAYS, _CKPT, _CODECS, _ROWS, _Codec, _Corrupt, _decode, _digest, _NotAFile
from .entries import ENTRY_FORMAT, FOREIGN_KINDS, EntryMismatchError, Store, default_root
from .files import (
    _HOST,
    _MISSING,
    MIN_FREE_BYTES,
    _free_name,
    _inspect,
    _mode_name,
    _pid_alive,
    _read_regular,
    atomic_write_bytes,
    probe_writable,
    sweep_stale_tmp,
    writable_error,
)
from .keys import CACHE_VERSION, _normal, _spec_difference, canonical_json, content_key
from .locks import (
    DEFAULT_LOCK_TIMEOUT,
    LOCK_HEARTBEAT,
    LOCK_NOTICE_AFTER,
    LOCK_TIMEOUT_ENV,
    LockTimeoutError,
    StoreLockError,
    lock_timeout,
)

__all__ = [
    "CACHE_VERSION", "DEFAULT_LOCK_TIMEOUT", "ENTRY_FORMAT", "LOCK_TIMEOUT_ENV", "EntryMismatchError",
    "LockTimeoutError", "Store", "StoreLockError", "atomic_write_bytes", "canonical_json", "content_key",
    "default_root", "lock_timeout", "probe_writable", "sweep_stale_tmp",
]
