"""Tuning methods: :func:`tune` (every tuning seed's study, then the choice over them),
:func:`tune_and_rerun` (the choice rerun on the evaluation seeds), :func:`tune_grid`
(several methods on shared reference models) and what they share: the studies of many
methods on an executor's workers at once, the warm start from a shipped entry and the
check that evaluation seeds are held out. Each takes the
:class:`~unlearnlib.studies.experiment.Setup` it tunes on (``Setup.create(dataset, model,
forget, epochs, device, data_root, store, show_progress)``) and its own options only."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ... import methods as registry
from ...training import progress
from .. import executors
from ..experiment import Setup, UnitPlan, parse_seeds, to_frame
from .selection import TuneResult, candidates, select, setup_norm
from .shipped import shipped_entry
from .study import study_counts, study_tasks, tune_seed


def tune(
    setup: Setup,
    method: str,
    seeds: Sequence[int] | str | int = (0, 1, 2),
    n_trials: int = 100,
    verbose: bool = False,
    enqueue_defaults: bool = True,
    warm_start: bool | Mapping[str, Any] = False,
    population_size: int | None = None,
    storage: str | None = None,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> TuneResult:
    """Tune ``method`` on each of ``seeds`` of ``setup`` (:meth:`Setup.create`: the dataset, model,
    forget set, epochs, device, data folder, store and progress bars) and choose over all of
    them (:func:`select`).

    ``n_trials`` is the budget per seed (Deep Unlearn: 100). ``warm_start=True`` starts
    every study from the shipped tuned entry of this (dataset, model, forget, method) when
    the package has one (:mod:`..tuned`); a mapping is used as that entry. Reference methods
    (``original``, ``retrain``) and methods with an empty search space are not tuned:
    their defaults come back with ``tuned=False``.

    ``executor`` (:func:`..executors.resolve`) runs the studies and the selection's rows on
    workers; ``parallel_trials`` lets one study's trials run on several workers at once
    (reproducible only in NSGA-III's generation 0: see the module docstring).
    """
    m = registry.get(method)
    seeds = parse_seeds(seeds)
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    if m.reference or not m.search_space:
        return TuneResult(method, m.resolve_hparams({}, setup.scale), tuned=False)
    warm = warm_entry(setup, method, warm_start)
    start = time.perf_counter()
    with executors.using(executor) as ex:
        ran: dict[tuple[str, int], int] = {}
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            tasks = study_tasks(plan, setup, method, seeds, n_trials, enqueue_defaults, warm, population_size,
                                storage, parallel_trials)
            ran = study_counts(tasks, ex.run(tasks, setup.store, f"tune {method}", setup.show_progress))
        per_seed = [tune_seed(setup, method, s, n_trials, verbose, enqueue_defaults, warm, population_size, storage)
                    for s in seeds]
        per_seed = [replace(r, new_trials=r.new_trials + ran.get((method, r.seed), 0)) for r in per_seed]
        norm_of, resolve = setup_norm(setup, method), lambda p: m.resolve_hparams(p, setup.scale)
        if ex.parallel:  # the rows the selection scores: each candidate on every tuning seed
            for budget in ("full", "half"):
                for hp, *_ in candidates(per_seed, n_trials, resolve, budget).values():
                    for s in seeds:
                        plan.row(method, s, hp)
            plan.run(f"select {method}", setup.show_progress)
    full = select(per_seed, n_trials, norm_of, resolve, "full")
    half = select(per_seed, n_trials, norm_of, resolve, "half")
    return TuneResult(method, full.hparams, full.from_seed, per_seed, True, time.perf_counter() - start,
                      full, half, int(n_trials))


def warm_entry(setup: Setup, method: str, warm_start: bool | Mapping[str, Any]) -> dict | None:
    """The entry a study starts from: ``warm_start`` itself when a mapping, the shipped one
    when True (:func:`shipped_entry`), else None."""
    if isinstance(warm_start, Mapping):
        return dict(warm_start)
    return shipped_entry(setup, method) if warm_start else None


def prepare_tuning(
    ex: executors.Executor, setup: Setup, methods: Sequence[str], tune_seeds: Sequence[int] | str | int,
    n_trials: int, seeds: Sequence[int] | str | int = (), enqueue_defaults: bool = True,
    warm_start: bool | Mapping[str, Any] = False, parallel_trials: bool = False,
) -> dict[tuple[str, int], int]:
    """Run every study of ``methods`` on ``tune_seeds`` (and the reference models of ``seeds``)
    on ``ex`` at once, so studies of different methods and seeds share the workers; the
    per-method calls that follow find them complete. Returns the trials run per (method,
    seed). Nothing to do on the serial executor."""
    if not ex.parallel:
        return {}
    plan = UnitPlan.for_setup(ex, setup)
    tasks = []
    for key in methods:
        tasks += study_tasks(plan, setup, key, parse_seeds(tune_seeds), n_trials, enqueue_defaults,
                             warm_entry(setup, key, warm_start), parallel_trials=parallel_trials)
    for s in (parse_seeds(seeds) if seeds not in ((), None, "") else []):
        tasks.append(plan.refs(s))
    return study_counts(tasks, ex.run(tasks, setup.store, "tuning", setup.show_progress))


def tune_and_rerun(
    setup: Setup,
    method: str,
    tune_seeds: Sequence[int] | str | int = (0, 1, 2),
    seeds: Sequence[int] | str | int = tuple(range(10)),
    n_trials: int = 100,
    verbose: bool = False,
    enqueue_defaults: bool = True,
    warm_start: bool | Mapping[str, Any] = False,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> tuple[TuneResult, pd.DataFrame]:
    """:func:`tune` on ``tune_seeds``, then rerun the chosen hyperparameters on every one of
    ``seeds`` (cached rows, Deep Unlearn's seeds 0..9). Rows gain ``tuned``, ``n_trials``,
    ``hparams_source`` and ``tuning_seed`` (whether the seed was one of the tuning seeds).
    The half-budget choice is rerun too, into ``result.rows_half``. ``executor`` and
    ``parallel_trials``: as for :func:`tune`; the reruns are units too."""
    seeds = parse_seeds(seeds)
    with executors.using(executor) as ex:
        result = tune(setup, method, tune_seeds, n_trials, verbose, enqueue_defaults, warm_start, executor=ex,
                      parallel_trials=parallel_trials)
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            for hp in [result.hparams] + ([result.half.hparams] if result.half else []):
                for s in seeds:
                    plan.row(method, s, hp)
            plan.run(f"rerun {method}", setup.show_progress)
    tuning = set(parse_seeds(tune_seeds))

    def rerun(hp: dict, source: str) -> pd.DataFrame:
        return to_frame([{**setup.run(method, s, hp), "tuned": result.tuned,
                          "n_trials": int(n_trials) if result.tuned else 0, "hparams_source": source,
                          "tuning_seed": s in tuning} for s in seeds])

    rows = rerun(result.hparams, result.source)
    result.rows_half = rerun(result.half.hparams, result.half.source) if result.half else rows
    return result, rows


def check_held_out(tune_seeds: Sequence[int] | str | int, seeds: Sequence[int] | str | int,
                   entries: Iterable[Mapping[str, Any] | None] = ()) -> None:
    """Refuse evaluation seeds that are tuning seeds, before anything trains: those of this
    search and those the shipped ``entries`` it starts from were chosen on. A method scored
    on the seed its hyperparameters were picked on is optimistic there (the winner's curse:
    the shipped mnist1d entries' seed-0 objectives sat 0.035 below their held-out mean), and
    by a different amount per method, so it reorders a ranking (issue 31)."""
    tuning = set(parse_seeds(tune_seeds)) | {int(s) for e in entries if e for s in e.get("tuning_seeds", ())}
    evaluation = parse_seeds(seeds)
    both = sorted(tuning & set(evaluation))
    if both:
        start = max(tuning) + 1
        raise ValueError(
            f"Evaluation seeds {both} are tuning seeds (tuned on {sorted(tuning)}): score tuned methods on "
            f"held-out seeds, e.g. {start}-{start + len(evaluation) - 1}.")


def tune_grid(
    setup: Setup,
    methods: Sequence[str] | str = "all",
    tune_seeds: Sequence[int] | str | int = (0, 1, 2),
    seeds: Sequence[int] | str | int = tuple(range(10)),
    n_trials: int = 100,
    verbose: bool = False,
    enqueue_defaults: bool = True,
    warm_start: bool = False,
    executor: executors.Executor | str | int | None = None,
    parallel_trials: bool = False,
) -> tuple[dict[str, TuneResult], pd.DataFrame]:
    """:func:`tune_and_rerun` for several methods on the shared reference models of ``setup``.

    The ``original`` and ``retrain`` rows of every seed are always included (the
    comparisons need them). Returns the per-method results and all full-budget rows
    (each result's ``rows_half`` holds its half-budget rows). With ``executor``, every
    method's studies run on the workers together first (:func:`prepare_tuning`).
    """
    keys = registry.parse_methods(methods)
    keys = ["original", "retrain"] + [k for k in keys if k not in ("original", "retrain")]
    check_held_out(tune_seeds, seeds, [warm_entry(setup, k, warm_start) for k in keys])
    results, frames = {}, []
    with executors.using(executor) as ex:
        ran = prepare_tuning(ex, setup, keys, tune_seeds, n_trials, seeds, enqueue_defaults, warm_start,
                             parallel_trials)
        for key in progress(keys, "methods", enabled=setup.show_progress):
            results[key], rows = tune_and_rerun(setup, key, tune_seeds, seeds, n_trials, verbose, enqueue_defaults,
                                                warm_start, executor=ex, parallel_trials=parallel_trials)
            add_trial_counts(results[key], ran)
            frames.append(rows)
    return results, to_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def add_trial_counts(result: TuneResult, ran: Mapping[tuple[str, int], int]) -> TuneResult:
    """Add the trials that :func:`prepare_tuning` ran to ``result``'s per-seed ``new_trials``."""
    result.seeds = [replace(s, new_trials=s.new_trials + ran.get((result.method, s.seed), 0))
                    for s in result.seeds]
    return result


def half_budget_rows(results: Mapping[str, TuneResult]) -> pd.DataFrame:
    """All methods' half-budget rows (references included), for the verdicts' budget check."""
    frames = [r.rows_half for r in results.values() if r.rows_half is not None]
    return to_frame(pd.concat(frames, ignore_index=True).to_dict("records")) if frames else to_frame([])


__all__ = [
    "tune", "warm_entry", "prepare_tuning", "tune_and_rerun", "check_held_out", "tune_grid", "add_trial_counts",
    "half_budget_rows",
]
