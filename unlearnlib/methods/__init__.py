"""Registry of unlearning methods.

A method is one module in this package that calls :func:`register` on its
``unlearn(model, data, **hparams) -> model`` function, declaring its defaults
and its search space (Deep Unlearn's shared space, ../shared/reference/METHODS.md).
Modules are discovered automatically: adding a method touches its own module
and nothing else.

>>> from unlearnlib import methods
>>> methods.available()[:2]
['original', 'retrain']
>>> ft = methods.get("ft"); unlearned = ft(model, data, lr=0.01)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..data import Split

# --------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class Param:
    """One hyperparameter's search range.

    ``kind`` is ``float``, ``int`` or ``categorical``. For epoch counts,
    ``high_train_fraction`` bounds ``high`` by that fraction of the original
    training epochs (Deep Unlearn: unlearning never costs more than 20% of training).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    high_train_fraction: float | None = None

    def resolve(self, train_epochs: int) -> "Param":
        if self.high_train_fraction is None:
            return self
        high = max(int(self.low or 1), math.ceil(self.high_train_fraction * train_epochs))
        return Param(self.kind, self.low, high, self.log, self.choices, None)


def Float(low: float, high: float, log: bool = False) -> Param:
    return Param("float", low, high, log)


def Int(low: int, high: int) -> Param:
    return Param("int", low, high)


def Choice(*choices: Any) -> Param:
    return Param("categorical", choices=tuple(choices))


def Epochs(fraction: float = 0.2) -> Param:
    """Integer epochs in [1, ceil(fraction * E_train)]."""
    return Param("int", 1, None, high_train_fraction=fraction)


#: Deep Unlearn's shared "Std" space: lr and weight decay log-uniform [1e-5, 1e-1],
#: batch size {64, 128, 256}, epochs [1, ceil(0.2 * E_train)]. Momentum is fixed at 0.9.
STD_SPACE: dict[str, Param] = {
    "lr": Float(1e-5, 1e-1, log=True),
    "weight_decay": Float(1e-5, 1e-1, log=True),
    "batch_size": Choice(64, 128, 256),
    "epochs": Epochs(0.2),
}


# --------------------------------------------------------------------------- what a method sees


@dataclass
class UnlearnData:
    """Everything a method may use. ``val`` is for methods that need a held-out loss
    (nabla-tau's tau, SCRUB's model selection); ``init_state`` and ``train_recipe``
    describe how the original model was trained (retraining, epoch bounds).
    ``max_sample_grads`` is a compute budget in per-sample gradient evaluations,
    obeyed by the shared loop (Pawelczyk et al. 2024 give each method a budget)."""

    retain: Split
    forget: Split
    val: Split
    num_classes: int
    seed: int = 0
    model_name: str | None = None
    init_state: dict[str, torch.Tensor] | None = None
    train_recipe: Any = None
    max_sample_grads: int | None = None
    extras: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.retain.x.device

    @property
    def train_epochs(self) -> int:
        return int(getattr(self.train_recipe, "epochs", 50))

    @classmethod
    def from_splits(cls, splits, seed: int = 0, **kw) -> "UnlearnData":
        return cls(splits.retain, splits.forget, splits.val, splits.num_classes, seed=seed, **kw)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Method:
    """A registered method: callable, defaults, search space and provenance."""

    key: str
    name: str
    fn: Callable[..., nn.Module]
    defaults: dict[str, Any]
    search_space: dict[str, Param]
    paper: str
    reference: bool = False

    @property
    def hyperparameters(self) -> list[str]:
        return list(self.defaults)

    def space(self, train_epochs: int) -> dict[str, Param]:
        """The search space with epoch bounds resolved for a given training length."""
        return {k: p.resolve(train_epochs) for k, p in self.search_space.items()}

    def resolve_hparams(self, hparams: dict[str, Any] | None = None) -> dict[str, Any]:
        hparams = dict(hparams or {})
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"Method {self.key!r} has no hyperparameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(self.defaults) or '(none)'}."
            )
        return {**self.defaults, **hparams}

    def __call__(self, model: nn.Module, data: UnlearnData, **hparams: Any) -> nn.Module:
        """Unlearn on a deep copy: the caller's model is never modified.

        The global RNG is forked and seeded with ``data.seed``, so methods that
        draw noise or re-initialise weights give the same numbers for the same seed.
        """
        hp = self.resolve_hparams(hparams)
        work = copy.deepcopy(model)
        devices = [data.device.index or 0] if data.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(data.seed)
            out = self.fn(work, data, **hp)
        return out.eval()


_REGISTRY: dict[str, Method] = {}
_LOADED = False


def register(
    key: str,
    name: str,
    paper: str,
    defaults: dict[str, Any],
    search_space: dict[str, Param] | None = None,
    reference: bool = False,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``unlearn(model, data, **hparams)`` under ``key``.

    Checks that the search space only names hyperparameters the function takes
    (METHODS.md: unused hyperparameters must not appear in a search space).
    """
    search_space = dict(search_space or {})

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        sig = inspect.signature(fn)
        takes = [p for p in sig.parameters if p not in ("model", "data")]
        extra = set(search_space) - set(defaults)
        if extra:
            raise ValueError(f"{key}: search space names {sorted(extra)} which have no default.")
        missing = set(defaults) - set(takes)
        if missing and not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            raise ValueError(f"{key}: defaults {sorted(missing)} are not parameters of {fn.__name__}.")
        if key in _REGISTRY and _REGISTRY[key].fn is not fn:
            raise ValueError(f"Method key {key!r} is registered twice.")
        _REGISTRY[key] = Method(key, name, fn, dict(defaults), search_space, paper, reference)
        return fn

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def available() -> list[str]:
    """Registered method keys: the references first, then alphabetical."""
    _load_all()
    refs = [k for k in ("original", "retrain") if k in _REGISTRY]
    return refs + sorted(k for k in _REGISTRY if k not in refs)


def get(key: str) -> Method:
    """The method registered under ``key``; the error lists what is allowed."""
    _load_all()
    if key not in _REGISTRY:
        raise ValueError(f"Unknown method {key!r}; allowed: {', '.join(available())}.")
    return _REGISTRY[key]


def parse_methods(spec: str | list[str]) -> list[str]:
    """``"ft,ga"`` or ``["ft", "ga"]`` -> validated keys (``"all"`` = every method)."""
    keys = [k.strip() for k in spec.split(",")] if isinstance(spec, str) else list(spec)
    keys = [k for k in keys if k]
    if keys == ["all"]:
        return available()
    for k in keys:
        get(k)
    if not keys:
        raise ValueError(f"No method given; allowed: {', '.join(available())}.")
    return keys


__all__ = [
    "Method", "Param", "UnlearnData", "Float", "Int", "Choice", "Epochs", "STD_SPACE",
    "register", "available", "get", "parse_methods",
]
