"""Keys of the store: canonical JSON and the content key that hashes an entry's kind, its
spec and :data:`CACHE_VERSION`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

CACHE_VERSION = 3


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
