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
  to ``<entry>.corrupt`` with a warning naming its path, and is recomputed;
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
on the next write into their folder. A computation holds a lock per key (a file
under ``<root>/.locks``), so two processes asking for the same missing entry
compute it once: the second waits, then reads the first's entry.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

CACHE_VERSION = 3
#: Layout of an entry: 2 = kind, key, spec and a content hash inside every entry.
ENTRY_FORMAT = 2
#: A store with less free space than this is refused before anything runs.
MIN_FREE_BYTES = 1 << 20
#: Kinds that hold files managed outside the entry API (:meth:`Store.path_for`).
FOREIGN_KINDS = ("optuna", "poisons")


class EntryMismatchError(ValueError):
    """A store entry holds the content of another key (copied or moved over it)."""


class _Corrupt(Exception):
    """Internal: an entry that cannot be decoded or fails its hash."""


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
    that a re-run computed nothing; ``corrupt`` lists the entries moved aside.
    """

    root: Path = field(default_factory=default_root)
    hits: int = 0
    misses: int = 0
    corrupt: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

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
        key = content_key(kind, spec)
        return any((self.root / kind / f"{key}{ext}").exists() for ext in _CODECS)

    def path_for(self, kind: str, name: str) -> Path:
        """A path inside the store for files managed elsewhere (e.g. Optuna's journals)."""
        p = self.root / kind / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def check_writable(self) -> None:
        """Raise ``ValueError`` (one line naming the store) unless entries can be written:
        the root is a folder (or can be made), accepts a file and has free space. Call it
        before anything trains; it leaves nothing behind."""
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
            if folder.name in FOREIGN_KINDS:
                continue
            for path in sorted(folder.iterdir()):
                codec = _CODECS.get(path.suffix)
                if codec is None or path.name.startswith("."):
                    continue
                try:
                    _, header = _decode(codec, path.read_bytes())
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
            if isinstance(found, _Corrupt):
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
        problem (not raised) for a corrupt entry or one holding another key's content."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
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
        """Rename a bad entry to ``<entry>.corrupt`` (replacing an older one)."""
        bad = path.with_name(path.name + ".corrupt")
        with _suppress_missing():
            os.replace(path, bad)
            self.corrupt.append(bad)
        return bad

    @contextmanager
    def _lock(self, kind: str, key: str) -> Iterator[None]:
        """An inter-process lock for one key (a file under ``<root>/.locks``, with the
        umask's permissions so a team shares it); none where lock files cannot be made."""
        from filelock import FileLock

        lock = None
        try:
            folder = self.root / ".locks"
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(folder / f"{kind}-{key}.lock"), mode=0o666 & ~_umask())
            lock.acquire()
        except OSError:  # read-only store or lock file of another user: go on unlocked
            lock = None
        try:
            yield
        finally:
            if lock is not None:
                lock.release()


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
    "CACHE_VERSION", "ENTRY_FORMAT", "Store", "EntryMismatchError", "atomic_write_bytes",
    "canonical_json", "content_key", "default_root", "probe_writable", "sweep_stale_tmp",
]
