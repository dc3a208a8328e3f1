"""Tuned entries of the shipped table (:mod:`..tuned`): the fingerprint of what an entry
depends on besides the data, the lookup of this setting's entry, and a new entry with its
provenance and derived fields."""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from ... import methods as registry
from ...store import content_key
from ...training import model_spec
from .. import tuned
from ..experiment import Setup, reference_metrics
from .protocol import HPO_VERSION, OBJECTIVES, bound_flags, objective_norm, objective_vector
from .selection import TOP_PER_SEED, TuneResult


def space_fingerprint(setup: Setup, method: str) -> str:
    """What a tuned entry depends on besides the data: the resolved search space, the
    scaled defaults, the objectives and the protocol version."""
    m = registry.get(method)
    return content_key("tuned-space", {
        **m.identity, "space": {k: vars(p) for k, p in m.space(setup.recipe.epochs).items()},
        "defaults": m.resolve_hparams({}, setup.scale), "objectives": list(OBJECTIVES), "hpo": HPO_VERSION})


def shipped_entry(setup: Setup, method: str, path: str | None = None) -> dict | None:
    """The package's tuned entry for this setting (:mod:`..tuned`), or None."""
    return tuned.lookup(setup.splits.dataset, setup.model, setup.splits.forget_spec, method,
                        setup.recipe.as_dict(), space_fingerprint(setup, method), setup.splits.fingerprint(),
                        path)


def _cpu_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def make_entry(result: TuneResult, setup: Setup, rows: pd.DataFrame, seconds: float) -> dict:
    """A table entry (:mod:`..tuned`) for ``result``, rerun as ``rows``, with its provenance."""
    if not result.tuned or result.selection is None:
        raise ValueError(f"{result.method} was not tuned; there is nothing to ship.")
    ref = {s: reference_metrics(setup.refs(s), setup.splits, setup.store) for s in sorted(set(rows["seed"]))}
    rerun = {int(r["seed"]): objective_norm(objective_vector(r, ref[r["seed"]])) for _, r in rows.iterrows()}

    def r4(x: float) -> float:
        return round(float(x), 5)

    return with_derived({
        "dataset": setup.splits.dataset, "model": setup.model, "forget": setup.splits.forget_spec,
        "method": result.method, "hparams": result.hparams,
        "half_hparams": result.half.hparams if result.half else None,
        "objective": r4(result.selection.objective),
        "per_seed": {str(k): r4(v) for k, v in result.selection.per_seed.items()},
        "half_objective": r4(result.half.objective) if result.half else None,
        "source": result.selection.source, "from_seed": result.selection.from_seed,
        "trials_per_seed": result.n_trials, "tuning_seeds": [s.seed for s in result.seeds],
        "complete_trials": {str(s.seed): s.n_trials for s in result.seeds},
        "convergence": {str(s.seed): [r4(v) for v in s.running_best()] for s in result.seeds},
        "rerun": {str(k): r4(v) for k, v in sorted(rerun.items())},
        "sampler": "NSGAIIISampler, seeded by the model seed and re-created per trial index",
        "objectives": list(OBJECTIVES), "selection": f"top {TOP_PER_SEED} per seed, mean norm over tuning seeds",
        "recipe": setup.recipe.as_dict(), "numerics": model_spec(setup.splits, setup.model, setup.recipe, 0)["numerics"],
        # torch's CPU kernel path (AVX2, AVX512, ...): a per-seed objective is reproducible only on
        # the same path (measured: ft's seed-0 norm 0.017 / 0.023 / 0.081 on one machine's AVX512,
        # AVX2 and AVX2-with-MKL-AVX2 paths); not a store key, so caches stay shared across nodes
        "cpu_capability": _cpu_capability(),
        "fingerprint": space_fingerprint(setup, result.method), "splits": setup.splits.fingerprint(),
        "wall_seconds": round(float(seconds), 1),
        **tuned.provenance(),
    })


def with_derived(entry: Mapping[str, Any]) -> dict:
    """``entry`` with the fields derived from its recorded ones (issue 32): ``held_out``
    (:func:`..tuned.held_out` over the rerun seeds that were not tuning seeds; NaN stored as
    null) and ``at_bound`` (:func:`bound_flags` of ``hparams`` in the method's space at the
    entry's training epochs). :func:`make_entry` and the backfill of older entries both go
    through here, so the shipped fields are one formula; nothing trains."""
    held = tuned.held_out(entry)
    held = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in held.items()}
    space = registry.get(entry["method"]).space(int(entry["recipe"]["epochs"]))
    return {**entry, "held_out": held, "at_bound": bound_flags(space, entry["hparams"])}


__all__ = ["space_fingerprint", "shipped_entry", "make_entry", "with_derived"]
