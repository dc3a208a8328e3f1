"""The :class:`Store`: content-addressed entries (checkpoints, result rows, arrays) read,
verified, computed under a lock and written atomically (see :mod:`unlearnlib.store`)."""

from __future__ import annotations

import json
import os
import stat
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from .codecs import _ARRAYS, _CKPT, _CODECS, _ROWS, _Codec, _Corrupt, _decode, _NotAFile
from .files import (
    _MISSING,
    _free_name,
    _inspect,
    _read_regular,
    _suppress_missing,
    atomic_write_bytes,
    probe_writable,
    sweep_stale_tmp,
    writable_error,
)
from .keys import _normal, _spec_difference, canonical_json, content_key
from .locks import (
    DEFAULT_LOCK_TIMEOUT,  # noqa: F401 - named in the Store's docstring
    _acquire,
    _hold,
    _lock_folder_error,
    _open_lock_file,
    _parse_lock_timeout,
    _release,
    lock_timeout,
)

#: Layout of an entry: 2 = kind, key, spec and a content hash inside every entry.
ENTRY_FORMAT = 2
#: Kinds that hold files managed outside the entry API (:meth:`Store.path_for`).
FOREIGN_KINDS = ("optuna", "poisons")


class EntryMismatchError(ValueError):
    """A store entry holds the content of another key (copied or moved over it)."""


def default_root() -> Path:
    """``$UNLEARNLIB_STORE`` if set, else ``~/.cache/unlearnlib``."""
    return Path(os.environ.get("UNLEARNLIB_STORE") or Path.home() / ".cache" / "unlearnlib")


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
