"""Optuna studies that resume exactly and that several processes can share.

The tuning protocol (:mod:`.hpo`) runs its trials through :func:`run_trials`, which
guarantees what a research tool must:

- **Exact resumption.** The sampler is re-created before every trial with a seed
  derived from the model seed and the trial's *index*: its position among the
  study's trials that were not interrupted (:func:`sampler_index`). A trial's
  parameters therefore depend only on the seed, its index and the completed
  trials before it, never on how many times the search was restarted: a killed
  and resumed study ends with the same trials and the same best as an
  uninterrupted one. (NSGA-III's generation 0, ``population_size`` trials, is
  random sampling; later generations breed from the completed trials of the
  previous one, which are the same in both runs.)
- **Stale trials are failed on open.** Every trial records its worker (host, pid,
  the process's start time) and a heartbeat refreshed while it runs. A RUNNING
  trial whose process is gone (same host) or whose heartbeat is older than
  :data:`STALE_AFTER` seconds (another host) is marked FAIL with
  ``interrupted=True`` and does not count.
- **Defaults until they complete.** Enqueued trials (the method's defaults, a
  shipped tuned entry) are enqueued again until a COMPLETE trial carries them, so an
  interrupted first trial no longer loses them.
- **Exact counts with several tuners.** Asking for a trial happens under a file lock
  beside the study (:func:`study_lock`): a worker asks only while COMPLETE + RUNNING
  trials are fewer than ``n_trials``, so concurrent tuners on one study
  reach exactly the requested count. Parallel trials keep generation 0 exactly
  reproducible (its draws depend on the index alone), but from generation 1 on a
  trial may be asked before its generation's parents have all completed, so which
  parents NSGA-III breeds from depends on timing: parallel tuning is reproducible
  only for the first ``population_size`` trials. One worker (the serial path) is
  deterministic throughout.

Storage: a journal file per study inside the store (``JournalStorage`` with a file
backend, safe for processes sharing a file system), or any Optuna RDB URL
(``sqlite:///...`` locally, ``postgresql://...`` on a cluster) by option. A journal
that cannot be read is moved aside as ``*.corrupt`` (``*.corrupt.N`` when that is
taken) with a warning naming it and the damaged line, and the study starts again; its
trials' rows are cached in the store, so nothing computed is lost. Every record is
checked when the study is opened (:func:`journal_problem`): Optuna itself forgives a
damaged *last* record on its first read, then fails the next one, after a trial has
run, with a JSON error that names no file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..store import Store

#: Seconds after which a RUNNING trial of another host without a heartbeat is stale.
STALE_AFTER = 600.0
#: Seconds between heartbeats of a running trial.
HEARTBEAT_EVERY = 30.0
#: Environment variable naming an Optuna RDB storage URL to use instead of journals.
STORAGE_ENV = "UNLEARNLIB_OPTUNA_STORAGE"

#: User attributes of trials (what this module writes).
WORKER, HEARTBEAT, INTERRUPTED, INDEX, SOURCE = (
    "worker", "heartbeat", "interrupted", "sampler_index", "source")


# --------------------------------------------------------------------------- storage


def journal_path(store: Store, name: str) -> Path:
    return store.path_for("optuna", f"{name}.journal")


def study_lock(store: Store, name: str):
    """An inter-process lock for study ``name`` (a file beside its journal)."""
    from filelock import FileLock

    return FileLock(str(store.path_for("optuna", f"{name}.lock")))


def journal_problem(path: Path | str) -> str | None:
    """What makes the Optuna journal at ``path`` unusable, else ``None`` (also when there is
    none): a line that is not a JSON record (``line 3: Expecting ',' delimiter at column
    191``), or a last record cut short (no final newline). Read under the journal's own
    append lock, so a record another process is writing is never taken for damage.

    Optuna replays a journal lazily and forgives a bad last record (it could be one being
    written): such a journal opens, then fails the first read after a write, mid-tuning."""
    from optuna.storages.journal import JournalFileOpenLock

    path = Path(path)
    if not path.is_file():
        return None
    lock = JournalFileOpenLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
    finally:
        lock.release()
    *lines, tail = data.split(b"\n")
    for i, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            return f"line {i}: {e.msg} at column {e.colno}"
        except ValueError as e:  # not UTF-8
            return f"line {i}: {type(e).__name__}: {str(e)[:80]}"
        if not isinstance(record, dict) or "op_code" not in record:
            return f"line {i}: not a journal record"
    if tail:
        return f"line {len(lines) + 1}: a record cut short (no newline at its end)"
    return None


def _aside(path: Path) -> Path:
    """Move ``path`` to ``<path>.corrupt``, else the first free ``<path>.corrupt.N`` (an older
    moved-aside journal is kept)."""
    bad, n = path.with_name(path.name + ".corrupt"), 0
    while os.path.lexists(bad):
        n += 1
        bad = path.with_name(f"{path.name}.corrupt.{n}")
    os.replace(path, bad)
    return bad


def open_storage(store: Store, name: str, url: str | None = None) -> optuna.storages.BaseStorage:
    """The storage of study ``name``: ``url`` (or ``$UNLEARNLIB_OPTUNA_STORAGE``) as an
    Optuna RDB URL, else a journal file in ``<store>/optuna/``. A journal with a damaged
    record (:func:`journal_problem`) or that Optuna cannot replay is moved aside
    (``*.corrupt``, with a warning naming it and what is wrong) and a fresh one is started,
    here, before any trial runs."""
    url = url or os.environ.get(STORAGE_ENV)
    if url:
        if "://" not in url:
            raise ValueError(f"Optuna storage must be a database URL such as sqlite:///path/to/db or "
                             f"postgresql://user@host/db; got {url!r}.")
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = journal_path(store, name)

    def journal() -> optuna.storages.JournalStorage:
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        storage = optuna.storages.JournalStorage(backend)
        storage.get_all_studies()  # replays the log: a garbled file fails here
        return storage

    problem = journal_problem(path)
    if problem is None:
        try:
            return journal()
        except Exception as e:  # noqa: BLE001 - any replay error means the file is unusable
            problem = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    bad = _aside(path)
    warnings.warn(f"Optuna journal {path} could not be read ({problem}); moved to {bad}, starting the "
                  "study again (its trials' rows are cached in the store).", RuntimeWarning, stacklevel=2)
    return journal()


def open_study(store: Store, name: str, n_objectives: int, metric_names: Sequence[str],
               url: str | None = None) -> optuna.Study:
    """Create or load study ``name`` (safe when several processes do it at once) and fail
    its stale trials."""
    with study_lock(store, name):
        storage = open_storage(store, name, url)
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                    directions=["minimize"] * n_objectives)
        if study.metric_names is None:
            with warnings.catch_warnings():  # "set_metric_names is experimental" (Optuna >= 3.2)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(metric_names))
        fail_stale_trials(study)
    return study


# --------------------------------------------------------------------------- workers


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - no such process (or no access)
        return None


def this_worker() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def is_stale(trial: FrozenTrial, now: float | None = None) -> bool:
    """A RUNNING trial whose worker is gone: its process no longer exists on this host (or
    is another process with the same pid), or its heartbeat is older than STALE_AFTER."""
    if trial.state != TrialState.RUNNING:
        return False
    worker = trial.user_attrs.get(WORKER)
    if not worker:  # asked by code that does not record its worker: judge by age
        started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
        return (now or time.time()) - started > STALE_AFTER
    if worker.get("host") == socket.gethostname():
        start = _process_start(int(worker["pid"]))
        return start is None or (worker.get("start") is not None and abs(start - worker["start"]) > 1.0)
    return (now or time.time()) - float(trial.user_attrs.get(HEARTBEAT, 0.0)) > STALE_AFTER


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark every stale RUNNING trial FAIL with ``interrupted=True``; return their numbers."""
    storage = study._storage
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(t):
            storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
    return failed


@contextlib.contextmanager
def heartbeat(trial: optuna.Trial, every: float = HEARTBEAT_EVERY) -> Iterator[None]:
    """Refresh ``trial``'s heartbeat every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                trial.set_user_attr(HEARTBEAT, time.time())
            except Exception:  # noqa: BLE001 - the trial may have been told meanwhile
                return

    trial.set_user_attr(HEARTBEAT, time.time())
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- the trial loop


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial takes a place in the study's sequence (it was not interrupted)."""
    return not trial.user_attrs.get(INTERRUPTED)


def sampler_index(trials: Sequence[FrozenTrial]) -> int:
    """Index of the next trial: how many trials so far took a place in the sequence."""
    return sum(counts(t) for t in trials)


def trial_seed(seed: int, index: int) -> int:
    """The sampler seed of trial ``index`` of a study seeded with ``seed``."""
    return (int(seed) * 1_000_003 + int(index) * 7_919 + 17) % 2**32


@dataclass(frozen=True)
class Enqueued:
    """A trial to run with fixed parameters, tagged by where they come from."""

    params: Mapping[str, Any]
    source: str


def _pending_enqueue(trials: Sequence[FrozenTrial], wanted: Sequence[Enqueued]) -> list[Enqueued]:
    """Enqueued trials still to run: none COMPLETE, RUNNING or WAITING carries their source."""
    alive = {t.user_attrs.get(SOURCE) for t in trials
             if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING) and counts(t)}
    return [e for e in wanted if e.source not in alive]


@dataclass
class TrialOutcome:
    """What :func:`run_trials` did in this process."""

    ran: int = 0
    completed: int = 0
    errors: list[str] | None = None


def run_trials(
    study: optuna.Study,
    lock,
    n_trials: int,
    make_sampler: Callable[[int], optuna.samplers.BaseSampler],
    evaluate: Callable[[optuna.Trial], Sequence[float]],
    enqueue: Sequence[Enqueued] = (),
    on_complete: Callable[[], None] | None = None,
    max_failures: int | None = None,
) -> TrialOutcome:
    """Run trials until ``study`` has ``n_trials`` COMPLETE ones (or this process's share
    of them, when other processes run the same study).

    ``make_sampler(index)`` builds the sampler of the trial at that index;
    ``evaluate(trial)`` suggests, runs and returns the objective values (finite) or raises:
    an ``Exception`` fails the trial (its first line is kept as the ``error`` user
    attribute) and the search goes on; ``KeyboardInterrupt`` marks it interrupted and
    re-raises. ``enqueue`` lists fixed-parameter trials run first, until one COMPLETE trial
    carries each.
    """
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer; got {n_trials!r}.")
    out = TrialOutcome(errors=[])
    cap = max_failures if max_failures is not None else max(10, 2 * int(n_trials))
    worker = this_worker()
    while len(out.errors) < cap:
        with lock:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state == TrialState.COMPLETE for t in trials)
            busy = sum(t.state == TrialState.RUNNING for t in trials)
            if done + busy >= int(n_trials):
                break
            for e in _pending_enqueue(trials, enqueue):
                study.enqueue_trial(dict(e.params), user_attrs={SOURCE: e.source}, skip_if_exists=False)
            index = sampler_index(trials)
            study.sampler = make_sampler(index)
            trial = study.ask()
            trial.set_user_attr(INDEX, index)
            trial.set_user_attr(WORKER, worker)
        out.ran += 1
        try:
            with heartbeat(trial):
                values = [float(v) for v in evaluate(trial)]
            if not all(math.isfinite(v) for v in values):
                raise FloatingPointError(f"non-finite objectives {values}")
        except Exception as e:  # noqa: BLE001 - a failed trial must not end the search
            first = (str(e).strip().splitlines() or [""])[0][:200]
            out.errors.append(f"trial {trial.number} {trial.params}: {type(e).__name__}: {first}")
            trial.set_user_attr("error", out.errors[-1])
            study.tell(trial, state=TrialState.FAIL)
            continue
        except BaseException:
            trial.set_user_attr(INTERRUPTED, True)
            study.tell(trial, state=TrialState.FAIL)
            raise
        study.tell(trial, values)
        out.completed += 1
        if on_complete is not None:
            on_complete()
    return out


__all__ = [
    "STALE_AFTER", "STORAGE_ENV", "journal_problem", "open_storage", "open_study", "study_lock", "journal_path",
    "fail_stale_trials", "is_stale", "run_trials", "Enqueued", "TrialOutcome", "sampler_index",
    "trial_seed", "counts",
]
