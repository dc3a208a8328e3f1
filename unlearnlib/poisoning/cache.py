"""Crafted poisons as verified store entries.

Crafting Witches' Brew or gradient-canceling poisons costs as much as training, so
:func:`cached_poison_splits` keeps them in the :class:`~unlearnlib.store.Store`. What
is stored is the attack's :class:`~unlearnlib.poisoning.base.Crafted` output (the
pool rows it poisons, their inputs and labels, and its extras) as an ``arrays`` entry
(``.npz``, no pickle): the store checks its content hash and its spec on every read,
moves a damaged entry aside and recomputes it. The poisoned splits are assembled from
the entry and the clean splits, exactly as on a miss (:func:`~.base.assemble`).

Extras are encoded by type: tensors as arrays, :class:`~unlearnlib.data.Split` as its
``x``/``y``/``index`` arrays, a module (the indiscriminate attack's target model) as
its state dict, loaded back into a copy of the surrogate, and plain numbers, strings
and lists as one JSON string.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..data import Split, Splits
from .base import Crafted, PoisonInfo, assemble

#: Store kind of the entries (the unverified ``poisons/*.pt`` files of older versions are ignored).
KIND = "poison_splits"
_SEP = "|"


def crafted_arrays(crafted: Crafted) -> dict[str, np.ndarray]:
    """``crafted`` as named numpy arrays (what :meth:`Store.arrays` keeps)."""
    out = {"rows": _np(crafted.rows), "x": _np(crafted.x), "y": _np(crafted.y)}
    plain: dict[str, Any] = {}
    for k, v in crafted.extras.items():
        if _SEP in k:
            raise ValueError(f"Extras key {k!r} may not contain {_SEP!r}.")
        if isinstance(v, torch.Tensor):
            out[f"t{_SEP}{k}"] = _np(v)
        elif isinstance(v, Split):
            for part in ("x", "y", "index"):
                out[f"s{_SEP}{k}{_SEP}{part}"] = _np(getattr(v, part))
        elif isinstance(v, nn.Module):
            for name, t in v.state_dict().items():
                out[f"m{_SEP}{k}{_SEP}{name}"] = _np(t)
        else:
            plain[k] = v
    try:
        out["plain"] = np.array(json.dumps(plain, sort_keys=True))
    except TypeError as e:
        raise ValueError(f"Extras of crafted poisons must be tensors, splits, modules or JSON values: {e}") from e
    return out


def crafted_from_arrays(arrays: Mapping[str, np.ndarray], device: torch.device | str,
                        surrogate: nn.Module | None = None) -> Crafted:
    """The :class:`Crafted` that :func:`crafted_arrays` encoded, on ``device``; a stored
    module is loaded into a copy of ``surrogate`` (same architecture)."""
    t = {k: torch.from_numpy(np.array(v)).to(device) for k, v in arrays.items() if k != "plain"}
    extras: dict[str, Any] = json.loads(str(arrays["plain"][()]))
    splits: dict[str, dict[str, torch.Tensor]] = {}
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in t.items():
        kind, *rest = key.split(_SEP)
        if kind == "t":
            extras[rest[0]] = v
        elif kind == "s":
            splits.setdefault(rest[0], {})[rest[1]] = v
        elif kind == "m":
            modules.setdefault(rest[0], {})[_SEP.join(rest[1:])] = v
    for k, parts in splits.items():
        extras[k] = Split(parts["x"], parts["y"], parts["index"])
    for k, state in modules.items():
        if surrogate is None:
            raise ValueError(f"Stored poisons hold a model ({k!r}); pass the surrogate it was derived from.")
        m = copy.deepcopy(surrogate).to(device)
        m.load_state_dict(state)
        extras[k] = m.eval()
    return Crafted(t["rows"], t["x"], t["y"], extras)


def poison_entry_spec(splits: Splits, attack: str, fraction: float, seed: int, params: dict[str, Any],
                      surrogate_spec: dict | None) -> dict[str, Any]:
    """Everything that determines a crafted poison set (its store key)."""
    from . import NEEDS_SURROGATE

    return {"split": splits.fingerprint(), "forget": splits.forget_spec, "attack": attack, "fraction": fraction,
            "seed": seed, "params": params, "surrogate": surrogate_spec if attack in NEEDS_SURROGATE else None}


def cached_poison_splits(
    store: Any, splits: Splits, attack: str, fraction: float = 0.02, seed: int = 0,
    surrogate: nn.Module | None = None, surrogate_spec: dict | None = None, **params: Any,
) -> tuple[Splits, PoisonInfo]:
    """:func:`~unlearnlib.poisoning.poison_splits` with the crafted poisons kept in ``store``
    as a verified entry. ``surrogate_spec`` must identify the surrogate of the attacks that
    use one, e.g. ``training.model_spec(clean, model, recipe, seed)``."""
    from . import NEEDS_SURROGATE, craft_poisons, poison_spec

    if attack in NEEDS_SURROGATE and surrogate_spec is None:
        raise ValueError(f"Caching the {attack} attack needs surrogate_spec=<the surrogate's model_spec>.")
    spec = poison_entry_spec(splits, attack, fraction, seed, params, surrogate_spec)
    arrays = store.arrays(KIND, spec, lambda: crafted_arrays(
        craft_poisons(splits, attack, fraction, seed, surrogate, **params)))
    crafted = crafted_from_arrays(arrays, splits.device, surrogate)
    return assemble(splits, attack, poison_spec(fraction, seed, params), crafted)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


__all__ = ["KIND", "cached_poison_splits", "crafted_arrays", "crafted_from_arrays", "poison_entry_spec"]
