"""One run = config -> tidy result rows.

:func:`run_grid` validates everything first (dataset, model, methods and their
hyperparameters, forget spec, seeds), then for every seed trains or loads the
original and the retrained model, runs each method, evaluates it against the
retrained model of the same seed and returns one row per (method, seed). Each
row is cached in the store, so re-running a notebook computes nothing.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import pandas as pd
import torch

from .. import methods as registry
from ..data import ForgetSpec, Splits, available_datasets, load_splits
from ..evaluation import compare_to_reference, evaluate_model, l2_distance
from ..models import available_models
from ..store import Store, canonical_json
from ..training import ReferenceModels, default_recipe, model_spec, progress, train_reference_models

#: Bump when the evaluation code changes what a cached row contains.
EVAL_VERSION = 5

#: The columns every result row has (the contract of ../shared/DESIGN.md).
RESULT_COLUMNS = [
    "dataset", "model", "method", "seed", "forget", "hparams",
    "retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test", "indisc",
    "retdev", "rte", "unlearn_seconds", "l2_to_retrained",
]


def parse_seeds(seeds: str | int | Iterable[int]) -> list[int]:
    """``"0,1,2"``, ``"0-4"``, ``3`` or ``[0, 1]`` -> a list of non-negative ints."""
    bad = f"Seeds must be non-negative integers, e.g. '0,1,2' or '0-4'; got {seeds!r}."
    try:
        if isinstance(seeds, int):
            out = [seeds]
        elif isinstance(seeds, str):
            out = []
            for part in (p.strip() for p in seeds.split(",") if p.strip()):
                if "-" in part:
                    lo, hi = part.split("-", 1)
                    out.extend(range(int(lo), int(hi) + 1))
                else:
                    out.append(int(part))
        else:
            out = [int(s) for s in seeds]
    except (TypeError, ValueError) as e:
        raise ValueError(bad) from e
    if not out or any(s < 0 for s in out):
        raise ValueError(bad)
    return out


@dataclass
class GridConfig:
    """What :func:`run_grid` runs; validated on construction."""

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
        if self.dataset not in available_datasets():
            raise ValueError(f"Unknown dataset {self.dataset!r}; allowed: {', '.join(available_datasets())}.")
        if self.model not in available_models():
            raise ValueError(f"Unknown model {self.model!r}; allowed: {', '.join(available_models())}.")
        self.methods = registry.parse_methods(self.methods)
        self.seeds = parse_seeds(self.seeds)
        ForgetSpec.parse(self.forget)
        if self.epochs is not None and int(self.epochs) < 1:
            raise ValueError(f"epochs must be a positive integer or None; got {self.epochs!r}.")
        for key, hp in (self.hparams or {}).items():
            if key not in self.methods:
                raise ValueError(f"Hyperparameters given for {key!r}, which is not among the methods {self.methods}.")
            registry.get(key).resolve_hparams(hp)


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
) -> pd.DataFrame:
    """Run every method on every seed and return tidy rows (one per method and seed).

    ``epochs`` overrides the training epochs of the dataset's default recipe;
    ``hparams`` maps a method key to hyperparameters overriding its defaults.
    """
    cfg = GridConfig(dataset, model, methods, seeds, forget, epochs, data_root, device, dict(hparams or {}))
    store = store or Store()
    splits = load_splits(cfg.dataset, cfg.forget, cfg.data_root, cfg.device)
    recipe = default_recipe(cfg.dataset).with_(epochs=cfg.epochs)
    rows: list[dict] = []
    for seed in progress(cfg.seeds, "seeds", enabled=show_progress):
        refs = train_reference_models(splits, cfg.model, seed, recipe, store, show_progress)
        for key in cfg.methods:
            rows.extend(run_method(key, refs, splits, cfg.hparams.get(key), store))
    return to_frame(rows)


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
    hp = method.resolve_hparams(hparams, data_scale(splits, refs.recipe))
    spec = {
        **model_spec(splits, refs.model_name, refs.recipe, refs.seed),
        "method": key, "hparams": hp, "budget": max_sample_grads, "eval": EVAL_VERSION,
    }

    def compute() -> list[dict]:
        ref_metrics = reference_metrics(refs, splits, store)
        if key == "retrain":  # the gold model is already trained and cached
            model, seconds = refs.retrained, refs.retrain_seconds
        else:
            data = registry.UnlearnData.from_splits(
                splits, seed=refs.seed, model_name=refs.model_name, init_state=refs.init_state,
                train_recipe=refs.recipe, max_sample_grads=max_sample_grads,
            )
            model, seconds = timed_unlearn(method, refs.original, data, **hp)
        metrics = evaluate_model(model, splits, seed=refs.seed)
        return [{
            "dataset": splits.dataset, "model": refs.model_name, "method": key, "seed": refs.seed,
            "forget": splits.forget_spec, "hparams": canonical_json(hp),
            **metrics, **compare_to_reference(metrics, ref_metrics),
            "rte": refs.retrain_seconds / seconds if seconds > 0 else math.nan,
            "unlearn_seconds": seconds, "retrain_seconds": refs.retrain_seconds,
            "l2_to_retrained": l2_distance(model, refs.retrained),
            "train_epochs": refs.recipe.epochs, "device": str(splits.device),
        }]

    return store.rows("results", spec, compute)


def data_scale(splits: Splits, recipe) -> registry.DataScale:
    """The sizes that size a method's default epoch counts on ``splits``
    (:func:`unlearnlib.methods.scale_epochs`)."""
    return registry.DataScale(len(splits.retain), len(splits.forget), int(recipe.epochs))


def reference_metrics(refs: ReferenceModels, splits: Splits, store: Store) -> dict[str, float]:
    """Metrics of the retrained model of one seed (cached)."""
    spec = {**model_spec(splits, refs.model_name, refs.recipe, refs.seed), "ref_eval": EVAL_VERSION}
    return store.rows("reference", spec, lambda: [evaluate_model(refs.retrained, splits, refs.seed)])[0]


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
