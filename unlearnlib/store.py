"""Content-addressed cache of checkpoints and result rows.

Everything expensive (original, retrained and shadow models; evaluated result
rows) is stored under a key that hashes everything that determines it: the
dataset and split, the model, the recipe, the seed, the method and its
hyperparameters, plus :data:`CACHE_VERSION`, which is bumped whenever code
changes what a key produces. A second run finds the file and computes nothing.

Writes are atomic: data goes to a temporary file in the same folder, is
flushed to disk, then renamed over the target (``os.replace``). A killed run
leaves at most a stray ``.tmp`` file, never a half-written entry that a later
run would read as valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

CACHE_VERSION = 3


def default_root() -> Path:
    """``$UNLEARNLIB_STORE`` if set, else ``~/.cache/unlearnlib``."""
    return Path(os.environ.get("UNLEARNLIB_STORE") or Path.home() / ".cache" / "unlearnlib")


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


@dataclass
class Store:
    """A folder of content-addressed entries: ``<root>/<kind>/<key>.{pt,json}``.

    ``hits`` and ``misses`` count lookups in this process, so a notebook can show
    that a re-run computed nothing.
    """

    root: Path = field(default_factory=default_root)
    hits: int = 0
    misses: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # -- checkpoints ----------------------------------------------------------
    def checkpoint(
        self, kind: str, spec: dict, build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Return ``(state_dict, meta)`` for ``spec``, calling ``build`` only on a miss."""
        path = self.root / kind / f"{content_key(kind, spec)}.pt"
        if path.exists():
            self.hits += 1
            blob = torch.load(path, map_location="cpu", weights_only=True)
            return blob["state_dict"], json.loads(blob["meta"])
        self.misses += 1
        state, meta = build()
        state = {k: v.detach().cpu().clone() for k, v in state.items()}
        meta = {**meta, "spec": spec}
        buf = io.BytesIO()
        torch.save({"state_dict": state, "meta": canonical_json(meta)}, buf)
        atomic_write_bytes(path, buf.getvalue())
        return state, json.loads(canonical_json(meta))

    # -- result rows ----------------------------------------------------------
    def rows(self, kind: str, spec: dict, compute: Callable[[], list[dict]]) -> list[dict]:
        """Return cached result rows for ``spec``, calling ``compute`` only on a miss."""
        path = self.root / kind / f"{content_key(kind, spec)}.json"
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text())["rows"]
        self.misses += 1
        rows = compute()
        atomic_write_bytes(path, canonical_json({"spec": spec, "rows": rows}).encode())
        return json.loads(canonical_json(rows))

    def has(self, kind: str, spec: dict) -> bool:
        key = content_key(kind, spec)
        return any((self.root / kind / f"{key}{ext}").exists() for ext in (".pt", ".json"))

    def path_for(self, kind: str, name: str) -> Path:
        """A path inside the store for files managed elsewhere (e.g. Optuna's SQLite)."""
        p = self.root / kind / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p
