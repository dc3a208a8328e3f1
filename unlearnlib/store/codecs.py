"""Codecs of the store's entry types (result rows as JSON, checkpoints as ``torch.save``,
arrays as ``.npz``): each writes the entry's header with its value and hashes both, and
decoding checks that hash."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .keys import canonical_json


class _Corrupt(Exception):
    """Internal: an entry that cannot be decoded or fails its hash."""


class _NotAFile(_Corrupt):
    """Internal: something that is not a readable regular file is at an entry's path."""


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
