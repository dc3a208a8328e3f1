"""One tuning seed's study: what determines it (its name, :func:`study_spec`), the fixed
trials it starts with, running it to a budget (:func:`tune_seed`), and the same as tasks
for an executor's workers (:func:`study_tasks`, one per study or one per worker with
``parallel_trials``)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from optuna.trial import TrialState

from ... import methods as registry
from ...store import Store
from ...training import model_spec
from .. import executors, trials
from ..experiment import Setup, UnitPlan, reference_metrics, worker_setup
from .protocol import (
    HPO_VERSION,
    OBJECTIVES,
    best_trial,
    clip_to_space,
    objective_norm,
    open_study,
    optimize,
    quiet_optuna,
)
from .selection import DEFAULTS, SHIPPED, SHIPPED_BOTH, SHIPPED_HALF, SeedResult


def study_spec(setup: Setup, method: registry.Method, seed: int, enqueue_defaults: bool) -> dict:
    """Everything that determines a study (its name): data, model, recipe, seed, method,
    resolved search space, defaults and the objective version. Not ``n_trials``: a larger
    budget extends the same study."""
    space = method.space(setup.recipe.epochs)
    return {
        **model_spec(setup.splits, setup.model, setup.recipe, seed),
        "method": method.key,
        "defaults": method.resolve_hparams({}, setup.scale) if enqueue_defaults else None,
        "space": {k: vars(p) for k, p in space.items()},
        "sampler": "NSGAIIISampler", "objectives": list(OBJECTIVES), "hpo": HPO_VERSION,
    }


def enqueued_trials(setup: Setup, method: registry.Method, enqueue_defaults: bool,
                    warm: Mapping[str, Any] | None = None) -> list[trials.Enqueued]:
    """The fixed trials a study starts with: a shipped entry's full- and half-budget choices
    (``warm``, :mod:`..tuned`), then the method's defaults (scaled to the data), all clipped
    into the search space."""
    space = method.space(setup.recipe.epochs)
    out: list[trials.Enqueued] = []
    if warm:
        full, half = clip_to_space(warm["hparams"], space), clip_to_space(warm.get("half_hparams") or {}, space)
        if half and half != full:
            out += [trials.Enqueued(full, SHIPPED), trials.Enqueued(half, SHIPPED_HALF)]
        else:
            out.append(trials.Enqueued(full, SHIPPED_BOTH))
    if enqueue_defaults:
        out.append(trials.Enqueued(clip_to_space(method.resolve_hparams({}, setup.scale), space), DEFAULTS))
    return out


def tune_seed(
    setup: Setup, method: str, seed: int, n_trials: int, verbose: bool = False,
    enqueue_defaults: bool = True, warm: Mapping[str, Any] | None = None,
    population_size: int | None = None, storage: str | None = None,
) -> SeedResult:
    """Tune ``method`` on one model seed (resuming its stored study; several processes
    may run this on the same study at once)."""
    m = registry.get(method)
    space = m.space(setup.recipe.epochs)
    ref = reference_metrics(setup.refs(seed), setup.splits, setup.store)
    spec = study_spec(setup, m, seed, enqueue_defaults)
    if warm:
        spec["warm"] = {"hparams": warm["hparams"], "half_hparams": warm.get("half_hparams")}
    with quiet_optuna(verbose):
        study = open_study(setup.store, spec, storage)
        lock = trials.study_lock(setup.store, study.study_name)
        new = optimize(study, space, lambda hp: setup.run(method, seed, hp), ref, n_trials, seed=seed,
                       enqueue=enqueued_trials(setup, m, enqueue_defaults, warm), lock=lock,
                       population_size=population_size, show_progress=setup.show_progress,
                       desc=f"tune {method} seed {seed}", verbose=verbose)
        # a study extended by an earlier, larger search keeps its first n_trials here, so a
        # result at a budget does not depend on the study's history
        done = [t for t in study.get_trials(states=(TrialState.COMPLETE,))
                if int(t.user_attrs.get(trials.INDEX, t.number)) < int(n_trials)]
    best = best_trial(done)
    return SeedResult(seed, m.resolve_hparams(best.params, setup.scale), tuple(best.values),
                      objective_norm(best.values), len(done), new, study.study_name, done)


def study_tasks(
    plan: UnitPlan, setup: Setup, method: str, seeds: Sequence[int], n_trials: int,
    enqueue_defaults: bool = True, warm: Mapping[str, Any] | None = None, population_size: int | None = None,
    storage: str | None = None, parallel_trials: bool = False,
) -> list[executors.Task]:
    """The tasks of ``method``'s studies on ``seeds`` (each needs its seed's reference models):
    one per study, or one per worker of the executor with ``parallel_trials``. A study with
    ``n_trials`` complete trials is done."""
    m = registry.get(method)
    if m.reference or not m.search_space:
        return []
    copies = plan.ex.size if parallel_trials else 1
    out = []
    for seed in seeds:
        seed = int(seed)
        spec = study_spec(setup, m, seed, enqueue_defaults)
        if warm:
            spec["warm"] = {"hparams": warm["hparams"], "half_hparams": warm.get("half_hparams")}
        done = _study_done(setup.store, spec, storage, n_trials)
        args = (plan.key, method, seed, int(n_trials), enqueue_defaults, dict(warm) if warm else None,
                population_size, storage)
        for c in range(copies):
            label = f"study {method} seed {seed}" + (f" (tuner {c + 1}/{copies})" if copies > 1 else "")
            out.append(plan.ex.task(label, study_unit, args, setup.store, needs=(plan.refs(seed),),
                                    done=done, verify=False))
    return out


def _study_done(store: Store, spec: Mapping[str, Any], storage: str | None, n_trials: int) -> Callable[[], bool]:
    """Whether the study of ``spec`` has ``n_trials`` complete trials (asked once)."""
    answer: list[bool] = []

    def done() -> bool:
        if not answer:
            with quiet_optuna():
                study = open_study(store, spec, storage)
                answer.append(sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
                              >= int(n_trials))
        return answer[0]

    return done



def study_unit(store: Store, key: executors.SetupKey, method: str, seed: int, n_trials: int,
               enqueue_defaults: bool, warm: dict | None, population_size: int | None, storage: str | None) -> int:
    """A task (:func:`study_tasks`): run trials of one study until it has ``n_trials``
    complete ones (with other tuners of the same study, :mod:`..trials`); return how many
    trials ran here."""
    return tune_seed(worker_setup(store, key), method, int(seed), int(n_trials), False, enqueue_defaults,
                     warm, population_size, storage).new_trials

def study_counts(tasks: Sequence[executors.Task], values: Mapping[executors.Task, Any]) -> dict[tuple[str, int], int]:
    """Trials run per (method, seed) by the study tasks that ran."""
    out: dict[tuple[str, int], int] = {}
    for t in tasks:
        if t in values and t.fn is study_unit:
            method, seed = t.args[1], t.args[2]
            out[(method, seed)] = out.get((method, seed), 0) + int(values[t] or 0)
    return out


__all__ = ["study_spec", "enqueued_trials", "tune_seed", "study_tasks", "study_unit", "study_counts"]
