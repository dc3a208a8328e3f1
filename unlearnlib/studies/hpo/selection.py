"""Choosing hyperparameters over the tuning seeds: each seed's study result, the candidates
(each study's best trials at a budget), and the choice with the smallest mean objective
norm over all tuning seeds (:func:`select`), at the full budget and at half of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial

from ...store import canonical_json
from .. import trials
from ..experiment import Setup, reference_metrics
from .protocol import OBJECTIVES, objective_norm, objective_vector

#: How many of each seed's best trials compete in the selection over the tuning seeds.
TOP_PER_SEED = 3
#: Sources of enqueued trials (``trial.user_attrs["source"]``); a sampled trial has none.
SHIPPED, SHIPPED_HALF, SHIPPED_BOTH, DEFAULTS = "shipped", "shipped-half", "shipped+half", "defaults"


@dataclass
class SeedResult:
    """One tuning seed's study: its best trial (by the objective norm on that seed)."""

    seed: int
    hparams: dict[str, Any]
    values: tuple[float, ...]
    norm: float
    n_trials: int
    new_trials: int
    study_name: str
    trials: list[FrozenTrial] = field(default_factory=list, repr=False)

    def running_best(self) -> list[float]:
        """Best objective norm after each trial (by sampler index): the convergence curve."""
        done = sorted((t for t in self.trials if t.values is not None),
                      key=lambda t: t.user_attrs.get(trials.INDEX, t.number))
        out, best = [], math.inf
        for t in done:
            best = min(best, objective_norm(t.values))
            out.append(best)
        return out


@dataclass
class Selection:
    """The hyperparameters chosen over the tuning seeds at one budget."""

    hparams: dict[str, Any]
    objective: float                 # mean objective norm over the tuning seeds
    per_seed: dict[int, float]       # objective norm on each tuning seed
    source: str                      # "search", "defaults", "shipped", ...
    from_seed: int                   # the study whose trial it is
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the full hyperparameters to use and how they were chosen.

    ``hparams`` is the full-budget choice and ``half`` the same analysis on the first half
    of every study's trials (the budget check of the verdicts). ``tuned`` is False for
    reference methods and methods without a search space, whose ``hparams`` are their
    defaults. ``rows_half`` holds the half-budget choice rerun on the evaluation seeds
    (filled by :func:`tune_and_rerun`).
    """

    method: str
    hparams: dict[str, Any]
    best_seed: int | None = None
    seeds: list[SeedResult] = field(default_factory=list)
    tuned: bool = True
    seconds: float = 0.0
    selection: Selection | None = None
    half: Selection | None = None
    n_trials: int = 0
    rows_half: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        return self.selection.source if self.selection else "defaults"

    def table(self) -> pd.DataFrame:
        """One row per tuning seed: that seed's best trial (objectives, norm, trials,
        hyperparameters), and ``best`` marking the study the selected trial came from."""
        rows = [{"method": self.method, "seed": s.seed, **dict(zip(OBJECTIVES, s.values, strict=True)),
                 "norm": s.norm, "trials": s.n_trials, "best": s.seed == self.best_seed, **s.hparams}
                for s in self.seeds]
        return pd.DataFrame(rows)


def in_budget(trial: FrozenTrial, n_trials: int, budget: str) -> bool:
    """Whether ``trial`` belongs to the search at ``budget`` (``full`` or ``half``).

    Full = the trials with sampler index < n_trials (a study extended by a larger search
    keeps its first n_trials); half = index < ceil(n_trials / 2), except a shipped full-budget
    entry, which stands for the shipped table's whole budget (its half-budget choice,
    enqueued beside it, stands for half of it)."""
    index = int(trial.user_attrs.get(trials.INDEX, trial.number))
    if budget == "full":
        return index < int(n_trials)
    if budget != "half":
        raise ValueError(f"Unknown budget {budget!r}; allowed: full, half.")
    if trial.user_attrs.get(trials.SOURCE) == SHIPPED:
        return False
    return index < math.ceil(n_trials / 2)


def select(studies: Sequence[SeedResult], n_trials: int, norm_of: Callable[[dict, int], float],
           resolve: Callable[[dict], dict] = dict, budget: str = "full", top: int = TOP_PER_SEED) -> Selection:
    """The hyperparameters with the smallest mean objective norm over all tuning seeds.

    Deep Unlearn keeps each seed's best trial and the best of those seeds, which rewards
    one seed's lucky draw. Here each study's ``top`` best trials at ``budget`` are the
    candidates, every candidate is scored on every tuning seed by ``norm_of(hparams,
    seed)`` (in :func:`tune`: a cached row against that seed's retrained model) and the
    one with the smallest mean norm wins (ties: the earlier study, then the earlier
    trial). With one tuning seed and ``top=1`` this is Deep Unlearn's rule.
    ``resolve`` turns a trial's parameters into the full hyperparameters.
    """
    cands = candidates(studies, n_trials, resolve, budget, top)
    if not cands:
        raise RuntimeError(f"No complete trial at the {budget} budget.")
    seeds = [s.seed for s in studies]
    rows = []
    for key, (hp, source, seed, number) in cands.items():
        norms = {t: float(norm_of(hp, t)) for t in seeds}
        rows.append({"candidate": key, "source": source, "from_seed": seed, "trial": number,
                     "objective": float(np.mean(list(norms.values()))), **{f"seed {t}": v for t, v in norms.items()}})
    table = pd.DataFrame(rows).sort_values(["objective", "from_seed", "trial"], kind="stable")
    win = table.iloc[0]
    hp, source, seed, _ = cands[win["candidate"]]
    return Selection(hp, float(win["objective"]), {t: float(win[f"seed {t}"]) for t in seeds}, source, int(seed),
                     table.reset_index(drop=True))


def candidates(studies: Sequence[SeedResult], n_trials: int, resolve: Callable[[dict], dict] = dict,
               budget: str = "full", top: int = TOP_PER_SEED) -> dict[str, tuple[dict, str, int, int]]:
    """The candidates of :func:`select`: each study's ``top`` best trials at ``budget``, by
    their resolved hyperparameters' JSON -> (hyperparameters, source, study seed, trial)."""
    cands: dict[str, tuple[dict, str, int, int]] = {}
    for s in studies:
        pool = sorted((t for t in s.trials if in_budget(t, n_trials, budget)),
                      key=lambda t: (objective_norm(t.values), t.number))
        if not pool and budget == "half" and s.trials:  # a one-trial search: its half is that trial
            pool = [min(s.trials, key=lambda t: int(t.user_attrs.get(trials.INDEX, t.number)))]
        for t in pool[:top]:
            hp = resolve(t.params)
            cands.setdefault(canonical_json(hp), (hp, t.user_attrs.get(trials.SOURCE) or "search", s.seed, t.number))
    return cands


def setup_norm(setup: Setup, method: str) -> Callable[[dict, int], float]:
    """``(hparams, seed) -> objective norm`` of ``method`` on ``setup`` (cached rows)."""
    def norm_of(hp: dict, seed: int) -> float:
        ref = reference_metrics(setup.refs(seed), setup.splits, setup.store)
        return objective_norm(objective_vector(setup.run(method, seed, hp), ref))

    return norm_of


__all__ = [
    "TOP_PER_SEED", "SHIPPED", "SHIPPED_HALF", "SHIPPED_BOTH", "DEFAULTS", "SeedResult", "Selection",
    "TuneResult", "in_budget", "select", "candidates", "setup_norm",
]
