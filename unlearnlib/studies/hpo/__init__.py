"""Hyperparameter search with Optuna, following Deep Unlearn's protocol.

Deep Unlearn (Cadet et al. 2024, arXiv 2410.01276; ../shared/reference/EVALUATION.md)
tunes every method per (dataset, model, method, model seed in {0, 1, 2}) with
Optuna's NSGA-III sampler, seeded by the model seed, for 100 trials, minimising
the vector

    ( |RA_u - RA_R| / 3, |FA_u - FA_R| / 3, |VA_u - VA_R| / 3, 1 - Indisc(MIA_val) )

against the retrained model R of the same seed. The best trial of a seed is the
one with the smallest L2 norm of that vector; the best of the tuning seeds is
then rerun on every evaluation seed (0..9 in the paper).

Studies live in SQLite files inside the :class:`~unlearnlib.store.Store`
(``<store>/optuna/<key>.db``), named by a content key of everything that
determines them, and are opened with ``load_if_exists=True``: an interrupted
search resumes and only the missing trials run. Every trial is also an
:func:`~unlearnlib.studies.experiment.run_method` row, cached like any other result.

Departure from the paper: the first trial of a fresh study evaluates the
method's defaults (clipped into the search space), so a tuned method is never
worse than its defaults on the tuning seed, which matters for small budgets
(``enqueue_defaults=False`` gives the paper's protocol exactly).

Workers (``executor=``, :mod:`..executors`). Every unit of a search runs on the executor's
workers: the reference models of each seed, the studies, the rows the selection over the
tuning seeds scores (:func:`candidates` x tuning seeds) and the reruns on the evaluation
seeds; the serial code then reads them back from the store and the shared study storage,
so a search on workers returns what the serial search returns. By default each study runs
on one worker at a time, studies of different seeds and methods side by side: that is
exactly the serial search (a trial's parameters depend only on the seed, its index and the
complete trials before it). ``parallel_trials=True`` also runs one study's trials on
several workers at once through its shared storage (a journal file with a lock by
default, any RDB URL via ``storage=`` or ``$UNLEARNLIB_OPTUNA_STORAGE``), with exact trial
counts (:mod:`..trials`); the price is NSGA-III's reproducibility: generation 0 (the first
``population_size`` trials, random sampling by index) is exact, but from generation 1 on a
trial may be asked before all parents of its generation completed, so which parents
NSGA-III breeds from, and so the later trials and possibly the best one, depend on timing.
The serial executor and ``parallel_trials=False`` are deterministic throughout.

Modules, by concern: :mod:`.protocol` (the objectives, the search space, one study's
trials), :mod:`.study` (one tuning seed's study and its tasks), :mod:`.selection` (the
choice over the tuning seeds), :mod:`.grid` (:func:`tune`, :func:`tune_and_rerun`,
:func:`tune_grid`) and :mod:`.shipped` (entries of the shipped table). Every public name
is importable from this package.

>>> from unlearnlib.studies import hpo
>>> setup = hpo.Setup.create("mnist1d", "cnn1d", "random:0.1")    # doctest: +SKIP
>>> best = hpo.tune(setup, "ft", seeds=(0, 1, 2), n_trials=20)    # doctest: +SKIP
>>> best.hparams                                                  # doctest: +SKIP
>>> result, rows = hpo.tune_and_rerun(setup, "ft", seeds=range(10))  # doctest: +SKIP
"""

from __future__ import annotations

from ... import methods as registry  # noqa: F401  (hpo.registry: the method registry, as before the split)
from ..experiment import Setup
from .grid import (
    add_trial_counts,
    check_held_out,
    half_budget_rows,
    prepare_tuning,
    tune,
    tune_and_rerun,
    tune_grid,
    warm_entry,
)
from .protocol import (
    HPO_VERSION,
    OBJECTIVES,
    TRIAL_METRICS,
    add_objectives,
    best_trial,
    bound_flags,
    check_param,
    clip_to_space,
    make_sampler,
    objective_norm,
    objective_vector,
    open_study,
    optimize,
    quiet_optuna,
    suggest,
    trials_frame,
)
from .selection import (
    DEFAULTS,
    SHIPPED,
    SHIPPED_BOTH,
    SHIPPED_HALF,
    TOP_PER_SEED,
    SeedResult,
    Selection,
    TuneResult,
    candidates,
    in_budget,
    select,
    setup_norm,
)
from .shipped import make_entry, shipped_entry, space_fingerprint, with_derived
from .study import enqueued_trials, study_counts, study_spec, study_tasks, study_unit, tune_seed

__all__ = [
    "OBJECTIVES", "objective_vector", "objective_norm", "best_trial", "suggest", "check_param",
    "clip_to_space", "open_study", "optimize", "Setup", "SeedResult", "TuneResult", "tune",
    "tune_seed", "tune_and_rerun", "tune_grid", "trials_frame", "add_objectives",
    "quiet_optuna", "make_sampler", "select", "Selection", "in_budget", "space_fingerprint",
    "check_held_out", "shipped_entry", "make_entry", "half_budget_rows", "enqueued_trials", "candidates", "warm_entry",
    "study_tasks", "prepare_tuning", "add_trial_counts", "study_counts", "bound_flags", "with_derived",
    "HPO_VERSION", "TRIAL_METRICS", "TOP_PER_SEED", "study_spec", "study_unit", "setup_norm",
    "SHIPPED", "SHIPPED_HALF", "SHIPPED_BOTH", "DEFAULTS",
]
