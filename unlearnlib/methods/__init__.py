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
import numbers
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..data import Split
from ..loop import Objective

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


# --------------------------------------------------------------------------- defaults that scale

#: The data Deep Unlearn's default epoch counts were set for: its CIFAR-10 split
#: (D_r 38,250, D_f 4,250; EVALUATION.md), by the set whose batches make an epoch.
REFERENCE_SIZES = {"retain": 38_250, "forget": 4_250, "union": 42_500}
EPOCH_SETS = tuple(REFERENCE_SIZES)


@dataclass(frozen=True)
class DataScale:
    """Sizes that turn a method's default epoch counts into work on this data:
    |D_r|, |D_f| and the original model's training epochs E_train."""

    n_retain: int
    n_forget: int
    train_epochs: int

    def size(self, over: str) -> int:
        return {"retain": self.n_retain, "forget": self.n_forget,
                "union": self.n_retain + self.n_forget}[over]


def scale_epochs(epochs: dict[str, float], batch_size: int, over: str, scale: DataScale,
                 high_fraction: float = 0.2) -> dict[str, float]:
    """Default epoch counts sized for Deep Unlearn's CIFAR-10, converted to this data.

    The rule (issue: "defaults that do comparable work on any dataset"): a default of E
    epochs means E * ceil(N_ref / B) optimiser steps on the reference set of size N_ref
    (``REFERENCE_SIZES[over]``); here that is E * ceil(N_ref / B) / ceil(N / B) epochs.
    All epoch counts of a method are scaled by one factor, which is then lowered, if
    needed, so that none exceeds Deep Unlearn's budget bound ceil(0.2 * E_train) (its
    search space's upper end: unlearning never costs more than 20% of training);
    whole-number counts are rounded, at least 1. On CIFAR-10 itself the factor is 1 and
    Deep Unlearn's values come back unchanged. On MNIST-1D (D_r 3,672, E_train 40) the
    factor is about 10 and the bound (8 epochs) applies.
    """
    if over not in EPOCH_SETS:
        raise ValueError(f"Unknown epoch set {over!r}; allowed: {', '.join(EPOCH_SETS)}.")
    n = max(1, scale.size(over))
    factor = math.ceil(REFERENCE_SIZES[over] / batch_size) / math.ceil(n / batch_size)
    high = max(1, math.ceil(high_fraction * scale.train_epochs))
    largest = max(epochs.values(), default=0) * factor
    if largest > high:
        factor *= high / largest
    out = {}
    for k, e in epochs.items():
        v = e * factor
        out[k] = max(1, int(round(v))) if float(e).is_integer() else round(max(v, 1e-3), 3)
    return out


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

    @property
    def scale(self) -> DataScale:
        return DataScale(len(self.retain), len(self.forget), self.train_epochs)

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
    epochs_over: str = "retain"
    version: int = 1
    variant: Callable[[str], str | None] | None = None
    objective: Objective | None = None

    def label(self, model: str | None = None) -> str:
        """How tables, figures and verdicts name this method on the registered model
        ``model``: its key, with the variant's name in brackets where what runs on that
        model is our extension of the reference (CT on a 1-D CNN: ``ct (1-D extension)``)."""
        extension = self.variant(model) if self.variant is not None and model is not None else None
        return f"{self.key} ({extension})" if extension else self.key

    @property
    def identity(self) -> dict[str, Any]:
        """What names this method in a store spec or a tuned entry's fingerprint: its key, and
        its version once a change of its algorithm made earlier results stale (version 1 is
        left out, so entries made before versions existed keep their keys)."""
        return {"method": self.key} | ({"method_version": self.version} if self.version > 1 else {})

    @property
    def hyperparameters(self) -> list[str]:
        return list(self.defaults)

    def space(self, train_epochs: int) -> dict[str, Param]:
        """The search space with epoch bounds resolved for a given training length."""
        return {k: p.resolve(train_epochs) for k, p in self.search_space.items()}

    @property
    def epoch_params(self) -> list[str]:
        """Hyperparameters that count epochs: those searched as a share of E_train."""
        return [k for k, p in self.search_space.items() if p.high_train_fraction is not None]

    def resolve_hparams(self, hparams: dict[str, Any] | None = None,
                        scale: DataScale | None = None) -> dict[str, Any]:
        """Defaults overridden by ``hparams``. With ``scale``, the epoch counts left at their
        defaults are converted to this data by :func:`scale_epochs` (the values given in
        ``hparams`` are used as they are), so the result is what actually runs.

        Every given value is checked first (:meth:`check_value`): a ``ValueError`` names
        the hyperparameter and what is allowed, before anything trains."""
        if not isinstance(hparams, (Mapping, type(None))):
            raise ValueError(f"Hyperparameters of {self.key!r} must be a mapping of names to values, "
                             f"e.g. {{\"lr\": 0.01}}; got {hparams!r}.")
        hparams = dict(hparams or {})
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"Method {self.key!r} has no hyperparameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(self.defaults) or '(none)'}."
            )
        out = {**self.defaults, **{k: self.check_value(k, v) for k, v in hparams.items()}}
        defaulted = {k: self.defaults[k] for k in self.epoch_params if k not in hparams}
        if scale is not None and defaulted:
            out.update(scale_epochs(defaulted, int(out.get("batch_size", 256)), self.epochs_over, scale))
        return out

    def check_value(self, name: str, value: Any) -> Any:
        """``value`` if it is a legal value of hyperparameter ``name``, else ``ValueError``.

        The rule (what a value must be, not where the search looks): the type of the
        default (an integer for an integer default, a finite real number for a float one,
        a string for a string one); the sign of the search range (a range starting at or
        above 1 for integers: at least 1; a non-negative range: at least 0) or, without a
        range, of the default; epoch counts non-negative; a string with a categorical range
        (``gap``) or ``bn_mode`` one of its choices. Values outside the *search* range
        but legal (``lr`` 0.5, ``batch_size`` 32) are allowed. numpy integers come back
        as ``int``.
        """
        where = f"Hyperparameter {name!r} of method {self.key!r}"
        default, space = self.defaults[name], self.search_space.get(name)
        choices = _string_choices(name, space)
        if isinstance(default, str) or choices:
            if not isinstance(value, str) or (choices and value not in choices):
                allowed = f"one of {', '.join(map(repr, choices))}" if choices else "a string"
                raise ValueError(f"{where} must be {allowed}; got {value!r}.")
            return value
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be true or false; got {value!r}.")
            return value
        if isinstance(default, numbers.Integral):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{where} must be an integer{_bound_text(self, name)}; got {value!r}.")
            value = value if type(value) is int else int(value)
        elif isinstance(default, numbers.Real):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{where} must be a finite number{_bound_text(self, name)}; got {value!r}.")
        else:  # no default type to go by (None)
            return value
        low, strict = _lower_bound(self, name)
        if low is not None and (value <= low if strict else value < low):
            raise ValueError(f"{where} must be {'an integer' if isinstance(default, numbers.Integral) else 'a finite number'}"
                             f"{_bound_text(self, name)}; got {value!r}.")
        return value

    def __call__(self, model: nn.Module, data: UnlearnData, **hparams: Any) -> nn.Module:
        """Unlearn on a deep copy: the caller's model is never modified.

        The global RNG is forked and seeded with ``data.seed``, so methods that
        draw noise or re-initialise weights give the same numbers for the same seed.
        """
        hp = self.resolve_hparams(hparams, data.scale)
        work = copy.deepcopy(model)
        devices = [data.device.index or 0] if data.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(data.seed)
            out = self.fn(work, data, **hp)
        return out.eval()


def _string_choices(name: str, space: Param | None) -> tuple[str, ...]:
    """The legal strings of a string hyperparameter: its categorical range, or the shared
    loop's BatchNorm modes for ``bn_mode``; empty when any string goes."""
    if space is not None and space.kind == "categorical" and space.choices \
            and all(isinstance(c, str) for c in space.choices):
        return tuple(space.choices)
    if name == "bn_mode":
        from ._loop import BN_MODES

        return tuple(BN_MODES)
    return ()


def _lower_bound(method: Method, name: str) -> tuple[float | None, bool]:
    """``(bound, strict)`` a numeric value must respect: epoch counts >= 0 (0 runs only a
    method's non-training steps, e.g. MSG's surgery: an ablation; result grids refuse it,
    :func:`unlearnlib.studies.experiment.check_hparams`); integers >= 1 where the range
    (or, without one, the default) is at least 1; >= 0 where it is non-negative; no bound
    where it may be negative."""
    if name in method.epoch_params:
        return 0, False
    space, default = method.search_space.get(name), method.defaults[name]
    if space is None:
        lows = [default]
    elif space.kind == "categorical":
        lows = [c for c in space.choices if isinstance(c, numbers.Real)] or [default]
    else:
        lows = [space.low if space.low is not None else default]
    low = min(lows)
    if isinstance(default, numbers.Integral) and low >= 1:
        return 1, False
    if low >= 0:
        return 0, False
    return None, False


def _bound_text(method: Method, name: str) -> str:
    low, strict = _lower_bound(method, name)
    if low is None:
        return ""
    return f" > {low:g}" if strict else f" >= {low:g}"


_REGISTRY: dict[str, Method] = {}
_LOADED = False


def register(
    key: str,
    name: str,
    paper: str,
    defaults: dict[str, Any],
    search_space: dict[str, Param] | None = None,
    reference: bool = False,
    epochs_over: str = "retain",
    version: int = 1,
    variant: Callable[[str], str | None] | None = None,
    objective: Objective | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``unlearn(model, data, **hparams)`` under ``key``.

    Checks that the search space only names hyperparameters the function takes
    (METHODS.md: unused hyperparameters must not appear in a search space).
    ``epochs_over`` names the set whose batches make one of its epochs (``retain``,
    ``forget`` or ``union``): default epoch counts scale with that set's size
    (:func:`scale_epochs`). ``version`` goes up when the algorithm changes (a departure
    from the reference fixed): every stored result and shipped tuned entry of the method
    made before then stops applying (:attr:`Method.identity`). ``variant(model)`` names the
    extension that runs on a registered model where the reference's method cannot (or None):
    every report names the method by :meth:`Method.label`. ``objective`` is the method's loss
    as data (:class:`~unlearnlib.loop.Objective`) where it is one loss run by the shared loop:
    the many-model engine (:mod:`unlearnlib.ensemble`) runs the methods that declare one.
    """
    if epochs_over not in EPOCH_SETS:
        raise ValueError(f"{key}: unknown epochs_over {epochs_over!r}; allowed: {', '.join(EPOCH_SETS)}.")
    if objective is not None and objective.driver != epochs_over:
        raise ValueError(f"{key}: its objective's epochs run over the {objective.driver} set but "
                         f"epochs_over says {epochs_over!r}; give epochs_over={objective.driver!r}.")
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
        _REGISTRY[key] = Method(key, name, fn, dict(defaults), search_space, paper, reference, epochs_over, version,
                               variant, objective)
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
    """``"ft,ga"`` or ``["ft", "ga"]`` -> validated keys (``"all"`` = every method); a key named
    twice is refused (its rows would repeat, a study would run twice)."""
    keys = [k.strip() for k in spec.split(",")] if isinstance(spec, str) else list(spec)
    keys = [k for k in keys if k]
    if keys == ["all"]:
        return available()
    for i, k in enumerate(keys):
        get(k)
        if k in keys[:i]:
            raise ValueError(f"{k!r} is named twice in {spec!r}; give each method once.")
    if not keys:
        raise ValueError(f"No method given; allowed: {', '.join(available())}.")
    return keys


__all__ = [
    "Method", "Param", "UnlearnData", "DataScale", "scale_epochs", "REFERENCE_SIZES", "Float", "Int", "Choice", "Epochs", "STD_SPACE",
    "register", "available", "get", "parse_methods",
]
