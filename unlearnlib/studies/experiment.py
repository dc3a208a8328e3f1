"""One run = config -> tidy result rows.

:func:`run_grid` validates everything first (dataset, model, methods and the type
and range of their hyperparameters, forget spec, seeds, device, that the store can be
written and that the model fits the data), then for every seed trains or loads the
original and the retrained model, runs each method, evaluates it against the
retrained model of the same seed and returns one row per (method, seed). Each
row is cached in the store, so re-running a notebook computes nothing.

With an executor whose workers run in parallel (:mod:`.executors`), the units that are not
stored yet (the reference models of a seed, one method on one seed: :class:`UnitPlan`)
run on the workers first; the serial loop then reads every row back from the store, in
its order, so the rows are the serial run's.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import torch

from .. import methods as registry
from ..data import ForgetSpec, Splits, available_datasets, load_splits
from ..datasets.embedded import dataset_cache
from ..evaluation import compare_to_reference, evaluate_model, l2_distance
from ..methods import _cost
from ..models import available_models, build_model
from ..store import (
    Store,
    atomic_write_bytes,
    canonical_json,
    content_key,
    probe_writable,
    writable_error,
)
from ..training import ReferenceModels, default_recipe, model_spec, progress, train_reference_models
from . import executors
from .worker_cache import Kept, absolute, check_fingerprint, stored

#: Bump when the evaluation code changes what a cached row contains.
EVAL_VERSION = 6

#: The columns every result row has (the contract of ../shared/DESIGN.md).
RESULT_COLUMNS = [
    "dataset", "model", "method", "seed", "forget", "hparams",
    "retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test", "indisc",
    "retdev", "rte", "unlearn_seconds", "l2_to_retrained",
]
#: The result columns that hold text; the others hold numbers.
TEXT_COLUMNS = ("dataset", "model", "method", "forget", "hparams")


#: Seeds are 32-bit (numpy's legacy seeding and many tools take no more).
MAX_SEED = 2**32 - 1
#: More seeds than this in one grid is a typo (``0-9999999999``), not an experiment.
MAX_SEEDS = 10_000
_SEED_PART = re.compile(r"([0-9]+)\s*-\s*([0-9]+)|([0-9]+)")


def parse_seeds(seeds: str | int | Iterable[int]) -> list[int]:
    """``"0,1,2"``, ``"0-4"``, ``3`` or ``[0, 1]`` -> a list of distinct seeds in order.

    A seed is an integer in [0, 2**32 - 1] (not a bool, not a float such as 0.7); a range
    ``lo-hi`` ascends; a seed appears once (a repeated seed would give duplicate rows);
    at most :data:`MAX_SEEDS` of them. Anything else is a ``ValueError`` saying so,
    before anything runs.
    """
    allowed = (f"Seeds must be distinct non-negative integers up to 2**32 - 1 (at most {MAX_SEEDS:,}), "
               "e.g. '0,1,2' or '0-4' (a range lo-hi ascends)")

    def bad(why: str = "") -> ValueError:
        return ValueError(f"{allowed}; got {seeds!r}{why}.")

    out: list[int] = []
    if isinstance(seeds, bool):
        raise bad()
    if isinstance(seeds, numbers.Integral):
        out = [int(seeds)]
    elif isinstance(seeds, str):
        for part in (p.strip() for p in seeds.split(",")):
            m = _SEED_PART.fullmatch(part)
            if not part or not m:
                raise bad(f" ({part!r} is not a seed or a range)" if part else " (an empty entry)")
            if m[3] is not None:
                out.append(int(m[3]))
                continue
            lo, hi = int(m[1]), int(m[2])
            if hi < lo:
                raise bad(f" (the range {part!r} descends)")
            if hi - lo + 1 + len(out) > MAX_SEEDS:
                raise bad(f" (more than {MAX_SEEDS:,} seeds)")
            out.extend(range(lo, hi + 1))
    else:
        try:
            items = list(seeds)
        except TypeError:
            raise bad() from None
        for s in items:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise bad(f" ({s!r} is not an integer)")
            out.append(int(s))
    if not out:
        raise bad(" (no seed)")
    if len(out) > MAX_SEEDS:
        raise bad(f" (more than {MAX_SEEDS:,} seeds)")
    big = [s for s in out if not 0 <= s <= MAX_SEED]
    if big:
        raise bad(f" ({big[0]} is out of range)")
    if len(set(out)) < len(out):
        dup = next(s for i, s in enumerate(out) if s in out[:i])
        raise bad(f" (seed {dup} appears twice)")
    return out


def check_device(device: str | torch.device) -> None:
    """Raise ``ValueError`` unless ``device`` is ``cpu``, ``auto``, or an available
    ``cuda`` / ``cuda:N``; checked before anything trains."""
    allowed = "allowed: cpu, cuda, cuda:N (a GPU index) or auto"
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"Device must be a string; got {device!r}; {allowed}.")
    name = str(device).strip()
    if re.fullmatch(r"cpu(:0)?|auto", name):
        return
    m = re.fullmatch(r"cuda(?::([0-9]+))?", name)
    if m is None:
        other = " (this library runs on the CPU or on CUDA GPUs)" if name.split(":")[0] in ("mps", "xpu", "xla", "meta") else ""
        raise ValueError(f"Unknown or unsupported device {name!r}{other}; {allowed}.")
    if not torch.cuda.is_available():
        raise ValueError(f"Device {name!r} was requested but no CUDA GPU is available; use cpu or auto.")
    if m[1] is not None and int(m[1]) >= torch.cuda.device_count():
        raise ValueError(f"Device {name!r}: there are only {torch.cuda.device_count()} CUDA device(s) "
                         f"(cuda:0..cuda:{torch.cuda.device_count() - 1}).")


def check_forget(spec: str) -> None:
    """:meth:`ForgetSpec.parse` plus a finite value (``class:inf`` is no class)."""
    if isinstance(spec, str) and ":" in spec:
        raw = spec.partition(":")[2]
        try:
            value = float(raw)
        except ValueError:
            value = 0.0  # not a number: ForgetSpec.parse says so
        if not math.isfinite(value):
            raise ValueError(f"Forget spec {spec!r}: {raw!r} is not a finite number; use random:F or "
                             "fraction:F with 0<F<1, or class:C with C a class index.")
    ForgetSpec.parse(spec)


def check_dataset(dataset: str) -> None:
    """Raise ``ValueError`` unless ``dataset`` is a registered dataset."""
    if dataset not in available_datasets():
        raise ValueError(f"Unknown dataset {dataset!r}; allowed: {', '.join(available_datasets())}.")


def check_model(model: str) -> None:
    """Raise ``ValueError`` unless ``model`` is a registered model."""
    if model not in available_models():
        raise ValueError(f"Unknown model {model!r}; allowed: {', '.join(available_models())}.")


def check_epochs(epochs: int | None) -> None:
    """Raise ``ValueError`` unless ``epochs`` (training epochs overriding the recipe's) is a
    positive integer or None."""
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1):
        raise ValueError(f"epochs must be a positive integer or None; got {epochs!r}.")


def check_setting(dataset: str, model: str, forget: str | None, epochs: int | None, device: str) -> None:
    """The checks of a (dataset, model, forget set, epochs, device), in :class:`GridConfig`'s
    order, one ``ValueError`` line each; ``forget=None`` skips the forget set."""
    check_dataset(dataset)
    check_model(model)
    if forget is not None:
        check_forget(forget)
    check_epochs(epochs)
    check_device(device)


def check_hparams(hparams: Any, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Validate ``{method key: {name: value}}`` against the methods of the grid and each
    method's hyperparameters (:meth:`~unlearnlib.methods.Method.check_value`)."""
    example = '{"ft": {"lr": 0.01, "epochs": 2}}'
    if hparams is None:
        return {}
    if not isinstance(hparams, Mapping) or not all(isinstance(v, Mapping) for v in hparams.values()):
        raise ValueError(f"Hyperparameters must map method keys to objects of hyperparameters, e.g. "
                         f"{example}; got {hparams!r}.")
    for key, hp in hparams.items():
        if key not in methods:
            raise ValueError(f"Hyperparameters given for {key!r}, which is not among the methods {list(methods)}.")
        m = registry.get(key)
        m.resolve_hparams(dict(hp))
        zero = [p for p in m.epoch_params if p in hp and hp[p] == 0]
        if zero:
            raise ValueError(f"Hyperparameter {zero[0]!r} of method {key!r} is 0: a result row would unlearn with no "
                             "training and be cached under the method's name; use epochs >= 1 (call the method "
                             "directly for a surgery-only ablation).")
    return {k: dict(v) for k, v in hparams.items()}


def check_model_fits(model: str, splits: Splits) -> None:
    """Build ``model`` for ``splits`` and run one forward pass on two of its inputs;
    ``ValueError`` naming the model, the data's shape and the models that fit when it
    fails or gives other than one logit per class (``--dataset digits --model cnn1d``)."""
    x = splits.retain.x[:2].cpu()

    def fits(name: str) -> str | None:
        try:
            with torch.no_grad():
                out = build_model(name, splits.input_shape, splits.num_classes, seed=0).eval()(x)
        except Exception as e:  # noqa: BLE001 - any failure means it does not fit
            return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        if tuple(out.shape) != (len(x), splits.num_classes):
            return f"it outputs shape {tuple(out.shape)}, not {(len(x), splits.num_classes)}"
        return None

    why = fits(model)
    if why is not None:
        ok = [m for m in available_models() if m != model and fits(m) is None]
        raise ValueError(
            f"Model {model!r} does not fit dataset {splits.dataset!r} (inputs of shape "
            f"{tuple(splits.input_shape)}, {splits.num_classes} classes): {why}; models that fit: "
            f"{', '.join(ok) or '(none)'}."
        )


#: File formats of :func:`write_rows`, by suffix.
OUT_SUFFIXES = (".parquet", ".csv")


def check_out(out: str | Path) -> Path:
    """Raise ``ValueError`` unless rows can be written to ``out``: a known suffix, not a
    folder, in a folder that can be written. Checked before the grid runs."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"Output file {out} is a folder; give a file name ending in "
                         f"{' or '.join(OUT_SUFFIXES)}.")
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ValueError(f"Output file {out} has the unknown suffix {out.suffix or '(none)'!r}; "
                         f"allowed: {', '.join(OUT_SUFFIXES)}.")
    try:
        probe_writable(out.parent)
    except OSError as e:
        raise writable_error("Output folder", out.parent, e) from None
    return out


def write_rows(df: pd.DataFrame, out: str | Path) -> Path:
    """Write ``df`` to ``out`` (``.parquet`` or ``.csv``) atomically: a failed or killed
    write leaves the old file (or none) and no temporary file."""
    out = check_out(out)
    if out.suffix.lower() == ".csv":
        data = df.to_csv(index=False).encode()
    else:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
    atomic_write_bytes(out, data)
    return out


@dataclass
class GridConfig:
    """What :func:`run_grid` runs; every value is validated on construction (one
    ``ValueError`` line naming the input and what is allowed), before anything trains."""

    dataset: str = "mnist1d"
    model: str = "cnn1d"
    methods: Sequence[str] | str = ("original", "retrain", "ft", "ga", "srl", "ngplus")
    seeds: Sequence[int] | str | int = (0, 1, 2)
    forget: str = "random:0.1"
    epochs: int | None = None
    data_root: str | None = None
    device: str = "cpu"
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_dataset(self.dataset)
        check_model(self.model)
        self.methods = registry.parse_methods(self.methods)
        self.seeds = parse_seeds(self.seeds)
        check_forget(self.forget)
        check_epochs(self.epochs)
        check_device(self.device)
        self.hparams = check_hparams(self.hparams, self.methods)


def run_grid(
    dataset: str = "mnist1d",
    model: str = "cnn1d",
    methods: Sequence[str] | str = ("original", "retrain", "ft", "ga", "srl", "ngplus"),
    seeds: Sequence[int] | str | int = (0, 1, 2),
    forget: str = "random:0.1",
    epochs: int | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    hparams: dict[str, dict[str, Any]] | None = None,
    store: Store | None = None,
    show_progress: bool = True,
    executor: executors.Executor | str | int | None = None,
) -> pd.DataFrame:
    """Run every method on every seed and return tidy rows (one per method and seed).

    ``epochs`` overrides the training epochs of the dataset's default recipe;
    ``hparams`` maps a method key to hyperparameters overriding its defaults.
    Everything is checked before anything trains: the config (:class:`GridConfig`), that
    the store can be written, and that the model fits the data (:func:`check_model_fits`).
    Generated datasets are cached in ``store`` (:func:`~unlearnlib.datasets.embedded.dataset_cache`).

    ``executor`` (:func:`.executors.resolve`): ``None`` (serial, or the scheduler at
    ``$UNLEARNLIB_SCHEDULER``), ``"local"``, a number of local workers, a scheduler address
    or an :class:`~.executors.Executor`. The missing units run there first (a progress bar
    counts them across workers); the rows are then read back in the serial order and equal
    the serial run's in every column but the wall-clock ones (``unlearn_seconds``, ``rte``,
    ``retrain_seconds``).
    """
    cfg = GridConfig(dataset, model, methods, seeds, forget, epochs, data_root, device,
                     {} if hparams is None else hparams)
    store = store or Store()
    store.check_writable()
    with dataset_cache(store.root):
        splits = load_splits(cfg.dataset, cfg.forget, cfg.data_root, cfg.device)
    check_model_fits(cfg.model, splits)
    recipe = default_recipe(cfg.dataset).with_(epochs=cfg.epochs)
    with executors.using(executor) as ex:
        if ex.parallel:
            key = setup_key(cfg.dataset, cfg.model, cfg.forget, cfg.epochs, cfg.device, cfg.data_root, store, splits)
            plan = UnitPlan(ex, key, splits, cfg.model, recipe, store)
            for seed in cfg.seeds:
                for method in cfg.methods:
                    plan.row(method, seed, cfg.hparams.get(method))
            plan.run("grid units", show_progress)
    rows: list[dict] = []
    for seed in progress(cfg.seeds, "seeds", enabled=show_progress):
        refs = train_reference_models(splits, cfg.model, seed, recipe, store, show_progress)
        for key in cfg.methods:
            rows.extend(run_method(key, refs, splits, cfg.hparams.get(key), store))
    return to_frame(rows)


def reference_specs(splits: Splits, model_name: str, recipe, seed: int, base: dict | None = None
                    ) -> list[tuple[str, dict]]:
    """The store entries (kind, spec) of one seed's original and retrained model, as
    :func:`~unlearnlib.training.train_reference_models` keys them (the original by the
    training set alone, shared by every forget set). ``base``: ``model_spec`` of the seed."""
    spec = base if base is not None else model_spec(splits, model_name, recipe, seed)
    original = {**{k: v for k, v in spec.items() if k not in ("forget", "split")},
                "train": splits.train_fingerprint(), "role": "original"}
    return [("models", original), ("models", {**spec, "role": "retrain"})]


def method_spec(key: str, splits: Splits, model_name: str, recipe, seed: int,
                hparams: dict[str, Any] | None = None, max_sample_grads: int | None = None,
                base: dict | None = None) -> dict:
    """The store spec of :func:`run_method`'s row (``base``: ``model_spec`` of the seed)."""
    method = registry.get(key)
    hp = method.resolve_hparams(hparams, data_scale(splits, recipe))
    spec = base if base is not None else model_spec(splits, model_name, recipe, seed)
    return {**spec, **method.identity, "hparams": hp, "budget": max_sample_grads, "eval": EVAL_VERSION}


class UnitPlan:
    """The tasks of one (dataset, model, forget set, recipe): one per seed for its reference
    models and one per (method, seed, hyperparameters) row, each done when its store entries
    exist (:class:`~.executors.Task`). Rows need their seed's reference models."""

    def __init__(self, ex: executors.Executor, key: executors.SetupKey, splits: Splits, model_name: str,
                 recipe, store: Store) -> None:
        self.ex, self.key, self.splits, self.model, self.recipe, self.store = ex, key, splits, model_name, recipe, store
        self._base: dict[int, dict] = {}
        self._refs: dict[int, executors.Task] = {}
        self._rows: dict[tuple, executors.Task] = {}

    @classmethod
    def for_setup(cls, ex: executors.Executor, setup) -> "UnitPlan":
        """The plan of a :class:`Setup` made by ``Setup.create``."""
        return cls(ex, setup.task_key(), setup.splits, setup.model, setup.recipe, setup.store)

    def base(self, seed: int) -> dict:
        if seed not in self._base:
            self._base[seed] = model_spec(self.splits, self.model, self.recipe, seed)
        return self._base[seed]

    def refs(self, seed: int) -> executors.Task:
        """The task of ``seed``'s original and retrained model."""
        seed = int(seed)
        if seed not in self._refs:
            entries = reference_specs(self.splits, self.model, self.recipe, seed, self.base(seed))
            self._refs[seed] = self.ex.task(
                f"reference models of seed {seed}", reference_unit, (self.key, seed), self.store,
                done=stored(self.store, entries))
        return self._refs[seed]

    def row(self, method: str, seed: int, hparams: dict[str, Any] | None = None) -> executors.Task:
        """The task of one :func:`run_method` row."""
        seed = int(seed)
        spec = method_spec(method, self.splits, self.model, self.recipe, seed, hparams, base=self.base(seed))
        ident = (method, seed, canonical_json(spec["hparams"]))
        if ident not in self._rows:
            self._rows[ident] = self.ex.task(
                f"{method} on seed {seed}", method_unit, (self.key, method, seed, dict(hparams or {})),
                self.store, needs=(self.refs(seed),), done=stored(self.store, [("results", spec)]))
        return self._rows[ident]

    def tasks(self) -> list[executors.Task]:
        return [*self._refs.values(), *self._rows.values()]

    def run(self, desc: str = "units", show_progress: bool = True) -> None:
        """Compute this plan's missing units on the executor."""
        self.ex.run(self.tasks(), self.store, desc, show_progress, short=True)


def compute_rows(setup: "Setup", wanted: Iterable[tuple[str, int, Mapping[str, Any] | None]],
                 executor: executors.Executor | str | int | None = None, desc: str = "units") -> None:
    """Compute the :meth:`Setup.run` rows of ``wanted`` ((method, seed, hyperparameters)
    triples) that are not stored yet on ``executor``'s workers (:func:`.executors.resolve`:
    None is the scheduler of ``$UNLEARNLIB_SCHEDULER`` when set, else serial), with the
    reference models they need; on the serial executor nothing is computed ahead. The
    caller then reads every row with ``setup.run`` in its own order (the same rows on every
    executor). ``setup`` must come from :meth:`Setup.create`."""
    with executors.using(executor) as ex:
        if not ex.parallel:
            return
        plan = UnitPlan.for_setup(ex, setup)
        for method, seed, hparams in wanted:
            plan.row(method, seed, dict(hparams or {}))
        plan.run(desc, setup.show_progress)


def run_method(
    key: str,
    refs: ReferenceModels,
    splits: Splits,
    hparams: dict[str, Any] | None = None,
    store: Store | None = None,
    max_sample_grads: int | None = None,
) -> list[dict]:
    """Unlearn with method ``key`` on one seed's reference models; one cached row."""
    store = store or Store()
    method = registry.get(key)
    spec = method_spec(key, splits, refs.model_name, refs.recipe, refs.seed, hparams, max_sample_grads)
    hp = spec["hparams"]

    def compute() -> list[dict]:
        ref_metrics = reference_metrics(refs, splits, store)
        retrain_grads = refs.recipe.epochs * len(splits.retain)  # per-sample gradients of retraining
        if key == "retrain":  # the gold model is already trained and cached
            model, seconds, grads = refs.retrained, refs.retrain_seconds, retrain_grads
        else:
            data = registry.UnlearnData.from_splits(
                splits, seed=refs.seed, model_name=refs.model_name, init_state=refs.init_state,
                train_recipe=refs.recipe, max_sample_grads=max_sample_grads,
            )
            with _cost.counting() as counted:
                model, seconds = timed_unlearn(method, refs.original, data, **hp)
            grads = counted[0]
        metrics = evaluate_model(model, splits, seed=refs.seed)
        return [{
            "dataset": splits.dataset, "model": refs.model_name, "method": key, "seed": refs.seed,
            "forget": splits.forget_spec, "hparams": canonical_json(hp),
            **metrics, **compare_to_reference(metrics, ref_metrics),
            "rte": refs.retrain_seconds / seconds if seconds > 0 else math.nan,
            "grad_evals": grads, "cost_rte": retrain_grads / grads if grads > 0 else math.nan,
            "unlearn_seconds": seconds, "retrain_seconds": refs.retrain_seconds,
            "l2_to_retrained": l2_distance(model, refs.retrained),
            "train_epochs": refs.recipe.epochs, "device": str(splits.device),
        }]

    return check_stored_rows(store.rows("results", spec, compute), store, "results", spec)


def check_stored_rows(rows: Any, store: Store, kind: str, spec: dict,
                      columns: Sequence[str] | None = RESULT_COLUMNS) -> list[dict]:
    """``rows`` as read back from the store entry of ``(kind, spec)``, checked to be rows: a
    non-empty list of mappings with every column of ``columns`` (text in :data:`TEXT_COLUMNS`,
    a number or null in the others; ``columns=None``: every value a number or null).

    An entry's hash proves only that its file holds what was written: one written by other
    code, or edited and re-hashed (``"abc"`` in a metric, ``[1, 2]`` for the rows), would
    otherwise fail far from its cause (a 92-line pandas traceback in the summary). Raises
    ``ValueError``, one line naming the entry and the column."""
    path = store.root / kind / f"{content_key(kind, spec)}.json"
    fix = "it was edited or written by other code; delete it and run again to recompute it"

    def shown(v: Any) -> str:
        r = repr(v)
        return r if len(r) <= 60 else r[:57] + "..."

    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"Store entry {path} is not a list of rows (it holds {shown(rows)}): {fix}.")
    for row in rows:
        for col in (columns if columns is not None else list(row)):
            if col not in row:
                raise ValueError(f"Store entry {path} holds a row without the column {col!r}: {fix}.")
            v, text = row[col], columns is not None and col in TEXT_COLUMNS
            ok = isinstance(v, str) if text else (
                v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool)))
            if not ok:
                raise ValueError(f"Store entry {path} holds {shown(v)} in the column {col!r}, not "
                                 f"{'text' if text else 'a number'}: {fix}.")
    return rows


@dataclass
class Setup:
    """Splits, recipe and store of one (dataset, model, forget, epochs) with the
    reference models of each seed loaded once (trained or read from the store)."""

    splits: Splits
    model: str
    recipe: Any
    store: Store
    show_progress: bool = True
    key: executors.SetupKey | None = None
    _refs: dict[int, ReferenceModels] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls, dataset: str = "mnist1d", model: str = "cnn1d", forget: str = "random:0.1",
        epochs: int | None = None, device: str = "cpu", data_root: str | None = None,
        store: Store | None = None, show_progress: bool = True,
    ) -> "Setup":
        check_setting(dataset, model, forget, epochs, device)
        store = store or Store()
        store.check_writable()
        with dataset_cache(store.root):
            splits = load_splits(dataset, forget, data_root, device)
        check_model_fits(model, splits)
        recipe = default_recipe(dataset).with_(epochs=epochs)
        return cls(splits, model, recipe, store, show_progress,
                   setup_key(dataset, model, forget, epochs, device, data_root, store, splits))

    def task_key(self) -> executors.SetupKey:
        """What re-creates this setup in a worker (:mod:`.executors`)."""
        if self.key is None:
            raise ValueError("This Setup was not made by Setup.create, so workers cannot re-create it; "
                             "make it with Setup.create(...) to run its units on an executor.")
        return self.key

    def refs(self, seed: int) -> ReferenceModels:
        if seed not in self._refs:
            self._refs[seed] = train_reference_models(
                self.splits, self.model, seed, self.recipe, self.store, self.show_progress)
        return self._refs[seed]

    @property
    def scale(self) -> registry.DataScale:
        """What sizes the methods' default epoch counts here."""
        return data_scale(self.splits, self.recipe)

    def run(self, method: str, seed: int, hparams: Mapping[str, Any] | None = None) -> dict:
        """One cached :func:`~unlearnlib.studies.experiment.run_method` row."""
        return run_method(method, self.refs(seed), self.splits, dict(hparams or {}), self.store)[0]

    @property
    def data_root(self) -> str | None:
        """The data folder the splits were loaded from (absolute; None: the default, or a
        Setup not made by :meth:`create`)."""
        return self.key.data_root if self.key is not None else None


@dataclass
class Setups:
    """The :class:`Setup` of each forget set of one (dataset, model, epochs, device, data
    folder, store): what a study over several forget sets takes
    (:func:`~.fraction_study.run_fraction_study`). Checked on construction (one ``ValueError``
    line, as :meth:`Setup.create`); ``setups(forget)`` creates a forget set's Setup on first
    use and keeps it. ``store=None``: the default :class:`~unlearnlib.store.Store`."""

    dataset: str = "mnist1d"
    model: str = "cnn1d"
    epochs: int | None = None
    device: str = "cpu"
    data_root: str | None = None
    store: Store | None = None
    show_progress: bool = True
    _made: dict[str, Setup] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_setting(self.dataset, self.model, None, self.epochs, self.device)
        self.store = self.store or Store()

    def __call__(self, forget: str) -> Setup:
        """The Setup of ``forget`` (:meth:`Setup.create`, once)."""
        if forget not in self._made:
            self._made[forget] = Setup.create(self.dataset, self.model, forget, self.epochs, self.device,
                                              self.data_root, self.store, self.show_progress)
        return self._made[forget]

    def quiet(self) -> "Setups":
        """These setups without progress bars; the Setups made so far are shared with it (their
        splits and loaded reference models too)."""
        out = replace(self, show_progress=False)
        out._made.update({f: replace(s, show_progress=False) for f, s in self._made.items()})
        return out


def setup_key(dataset: str, model: str, forget: str, epochs: int | None, device: Any, data_root: str | None,
              store: Store, splits: Splits | None = None) -> executors.SetupKey:
    """What re-creates a setup in a worker; the paths made absolute (a worker, or a notebook
    kernel's worker, runs in another folder), and ``splits``' fingerprint, which the worker's
    splits must have."""
    return executors.SetupKey(dataset, model, forget, epochs, str(device), absolute(data_root),
                              str(Path(store.root).absolute()), splits.fingerprint() if splits is not None else None)


#: Setups of this process, by key (a worker re-creates each once: :mod:`.worker_cache`).
_SETUPS = Kept()


def worker_setup(store: Store, key: executors.SetupKey) -> Setup:
    """The :class:`Setup` of ``key`` in this process (created once, without progress bars:
    a worker's bars would mix with the sender's). One per torch thread count: a Setup keeps
    the reference models it loaded, and the thread count is part of their store keys, so
    senders with other thread counts sharing a worker get their own."""
    def make() -> Setup:
        setup = Setup.create(key.dataset, key.model, key.forget, key.epochs, key.device, key.data_root, store,
                             show_progress=False)
        if key.fingerprint is not None:  # Setup.create keyed the worker's splits by their fingerprint
            check_fingerprint(setup.task_key().fingerprint, key.fingerprint,
                              f"load_splits({key.dataset!r}, {key.forget!r}, data_root={key.data_root!r})",
                              "give every worker the same data folder at the same path")
        return setup

    return _SETUPS.get((key, torch.get_num_threads()), make)


def reference_unit(store: Store, key: executors.SetupKey, seed: int) -> None:
    """A task (:class:`UnitPlan`): train (or load) the original and the retrained model of ``seed``."""
    worker_setup(store, key).refs(int(seed))


def method_unit(store: Store, key: executors.SetupKey, method: str, seed: int, hparams: dict | None) -> None:
    """A task (:class:`UnitPlan`): one :func:`run_method` row (stored; read back by the sender)."""
    worker_setup(store, key).run(method, int(seed), hparams)


def data_scale(splits: Splits, recipe) -> registry.DataScale:
    """The sizes that size a method's default epoch counts on ``splits``
    (:func:`unlearnlib.methods.scale_epochs`)."""
    return registry.DataScale(len(splits.retain), len(splits.forget), int(recipe.epochs))


def reference_metrics(refs: ReferenceModels, splits: Splits, store: Store) -> dict[str, float]:
    """Metrics of the retrained model of one seed (cached)."""
    spec = {**model_spec(splits, refs.model_name, refs.recipe, refs.seed), "ref_eval": EVAL_VERSION}
    rows = store.rows("reference", spec, lambda: [evaluate_model(refs.retrained, splits, refs.seed)])
    return check_stored_rows(rows, store, "reference", spec, columns=None)[0]


def timed_unlearn(
    method: registry.Method, model: torch.nn.Module, data: registry.UnlearnData, **hparams: Any
) -> tuple[torch.nn.Module, float]:
    """Run ``method`` and measure the wall time around the unlearn call only (RTE)."""
    if data.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = method(model, data, **hparams)
    if data.device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with the contract columns first."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    rest = [c for c in df.columns if c not in RESULT_COLUMNS]
    return df[RESULT_COLUMNS + rest]


SUMMARY_METRICS = ["retain_acc", "forget_acc", "test_acc", "mia_test", "indisc", "retdev", "rte", "l2_to_retrained"]


def summarize(df: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean and standard deviation over seeds per method, in registry order."""
    order = [m for m in registry.available() if m in set(df["method"])]
    agg = df.groupby("method")[list(metrics)].agg(["mean", "std"]).reindex(order)
    agg.insert(0, ("seeds", "n"), df.groupby("method")["seed"].nunique().reindex(order))
    return agg


def format_summary(df: pd.DataFrame) -> str:
    """``mean ± std`` text table for the terminal."""
    s = summarize(df)
    out = pd.DataFrame(index=s.index)
    out["seeds"] = s[("seeds", "n")]
    for m in SUMMARY_METRICS:
        out[m] = [f"{a:.3f} ± {b:.3f}" if not math.isnan(b) else f"{a:.3f}" for a, b in s[m].values]
    return out.to_string()


def hparams_of(row: pd.Series) -> dict:
    return json.loads(row["hparams"])
