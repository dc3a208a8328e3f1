"""Executors (issue 18): units of work on real Dask workers give the serial rows.

Everything here runs real ``dask.distributed`` clusters on 127.0.0.1 (a LocalCluster of two
worker processes, and a ``dask scheduler`` with ``dask worker`` started as processes), on
digits / small_cnn with 2 training epochs. Rows are compared with the serial run in every
column but the wall-clock ones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("distributed")

from unlearnlib.cli import main
from unlearnlib.store import Store
from unlearnlib.studies import executors, hpo, trials
from unlearnlib.studies.experiment import method_spec, reference_specs, reference_unit, run_grid
from unlearnlib.training import default_recipe

GRID = dict(dataset="digits", model="small_cnn", methods="original,retrain,ft", seeds="0,1", epochs=2,
            show_progress=False)
#: Columns that measure wall time (everything else is a function of the inputs).
WALL = ["unlearn_seconds", "rte", "retrain_seconds"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=WALL).reset_index(drop=True),
                                  b.drop(columns=WALL).reset_index(drop=True), check_exact=True)


def _entries(root: Path) -> dict[Path, tuple[int, int]]:
    """Every store entry with its inode and mtime: a rewritten entry changes both."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for kind in ("models", "results", "reference")
            for p in (root / kind).glob("*.*") if p.suffix in (".pt", ".json")}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The grid run serially (the reference rows) and its store."""
    root = tmp_path_factory.mktemp("serial")
    return run_grid(store=Store(root), **GRID), root


@pytest.fixture(scope="module")
def ex():
    """One LocalCluster of two worker processes for the module."""
    with executors.DaskExecutor(n_workers=2) as e:
        e.client().wait_for_workers(2)
        yield e


@pytest.fixture(scope="module")
def parallel(ex, serial, tmp_path_factory):
    """The grid on the two local workers, in a fresh store."""
    root = tmp_path_factory.mktemp("parallel")
    store = Store(root)
    return run_grid(store=store, executor=ex, **GRID), root, store


def test_grid_on_two_local_workers_gives_the_serial_rows(serial, parallel, ex):
    df, root, store = parallel
    _same_rows(serial[0], df)
    # every unit was computed on the workers (their misses came back), none twice
    assert store.misses == len(_entries(root)) and store.misses > 0
    again = Store(root)
    _same_rows(serial[0], run_grid(store=again, executor=ex, **GRID))
    assert again.misses == 0 and again.hits > 0  # a warm run computes nothing


def test_reference_specs_name_the_entries_train_reference_models_writes(serial):
    _, root = serial
    store = Store(root)
    setup = hpo.Setup.create("digits", "small_cnn", epochs=2, store=store, show_progress=False)
    recipe = default_recipe("digits").with_(epochs=2)
    for seed in (0, 1):
        assert all(store.has(k, s) for k, s in reference_specs(setup.splits, "small_cnn", recipe, seed))
        assert store.has("results", method_spec("ft", setup.splits, "small_cnn", recipe, seed))
    assert not any(store.has(k, s) for k, s in reference_specs(setup.splits, "small_cnn", recipe, 7))


def test_tasks_run_with_the_senders_thread_count(ex, tmp_path):
    """The thread count is part of every store key: a worker must use the sender's."""
    old = torch.get_num_threads()
    try:
        for n in (2, 1):
            torch.set_num_threads(n)
            task = ex.task("threads", executors.threads_task, (), tmp_path)
            assert ex.run([task], show_progress=False) == {task: n}
    finally:
        torch.set_num_threads(old)


def _worker_state() -> tuple[int, bool, bool, str | None]:
    return (os.getppid(), "torch._dynamo" in sys.modules, "unlearnlib.studies.experiment" in sys.modules,
            os.environ.get("OMP_NUM_THREADS"))


def test_local_workers_fork_from_a_server_that_preloaded_the_unit_imports(ex):
    """Local workers are forked from the fork server (their parent is not this process),
    which imported torch._dynamo and the experiment code once; its thread variables are the
    sender's. Where the platform has no fork server they are spawned."""
    if "forkserver" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("no fork server on this platform")
    states = list(ex.client().run(_worker_state).values())
    assert len(states) == 2
    parents = {s[0] for s in states}
    assert len(parents) == 1 and os.getpid() not in parents, states  # one server, not this process
    assert all(dynamo and experiment for _, dynamo, experiment, _ in states), states
    assert {s[3] for s in states} == {str(torch.get_num_threads())}, states


def _sleep_unit(store: Store, i: int, fail: bool = False) -> int:
    """A short unit: 0.2 s, then a marker entry in the store; returns the process id."""
    time.sleep(0.2)
    if fail:
        raise RuntimeError(f"unit {i} fails on purpose")
    (Path(store.root) / f"unit-{i}.done").write_text(str(os.getpid()))
    return os.getpid()


def _sleep_tasks(ex, root: Path, n: int, failing: int | None = None) -> list:
    """``n`` short units; every unit after the first needs the first."""
    tasks: list = []
    for i in range(n):
        tasks.append(ex.task(f"unit {i}", _sleep_unit, (i, i == failing), root, needs=tuple(tasks[:1]),
                             done=lambda i=i: (root / f"unit-{i}.done").exists()))
    return tasks


def test_this_process_computes_short_units_while_the_local_cluster_starts(tmp_path):
    """A cold local cluster: this process takes the first short units (the first one at
    least, before any worker is up), the workers the rest once up, each unit once; units
    that need one computed here run on the workers after it. Long units (``short=False``)
    all go to the workers."""
    with executors.DaskExecutor(n_workers=2) as ex:
        tasks = _sleep_tasks(ex, tmp_path / "short", 60)
        pids = ex.run(tasks, short=True, show_progress=False)
        here = [t.label for t in tasks if pids[t] == os.getpid()]
        assert tasks[0].label in here and len(here) == ex.units_while_starting, here
        assert set(pids.values()) - {os.getpid()}, "no unit ran on a worker"
        assert set(pids.values()) - {os.getpid()} <= set(ex.worker_pids().values())
        assert sorted(p.name for p in (tmp_path / "short").glob("*.done")) == sorted(f"unit-{i}.done" for i in range(60))
    with executors.DaskExecutor(n_workers=2) as ex:
        tasks = _sleep_tasks(ex, tmp_path / "long", 4)
        pids = ex.run(tasks, show_progress=False)
        assert os.getpid() not in pids.values() and ex.units_while_starting == 0


def test_a_unit_failed_while_the_cluster_starts_blocks_only_its_dependents(tmp_path):
    """The first unit fails in this process: the units that need it are named as not run
    (none is sent to a worker), the others finish."""
    root = tmp_path / "s"
    with executors.DaskExecutor(n_workers=2) as ex:
        chained = _sleep_tasks(ex, root, 4, failing=0)
        free = [ex.task(f"free {i}", _sleep_unit, (10 + i,), root, done=lambda i=i: (root / f"unit-{10 + i}.done").exists())
                for i in range(4)]
        with pytest.raises(executors.UnitsFailed) as info:
            ex.run([*chained, *free], short=True, show_progress=False)
    failures = dict(info.value.failures)
    assert failures.pop("unit 0").endswith("unit 0 fails on purpose")
    assert failures == {f"unit {i}": "not run: it needs unit 0, which failed" for i in (1, 2, 3)}
    assert sorted(p.name for p in root.glob("*.done")) == [f"unit-{10 + i}.done" for i in range(4)]
    assert info.value.failures[0][0] == "unit 0"  # the cause first


@contextlib.contextmanager
def _scheduler_and_worker(worker_env: dict[str, str]) -> Iterator[str]:
    """`dask scheduler` and one 1-thread `dask worker` (environment ``worker_env``) as
    processes on 127.0.0.1, the worker connected; yields the scheduler's address."""
    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([*dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard"],
                                      env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=120) as c:
            c.wait_for_workers(1, timeout=300)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def test_cli_run_on_a_scheduler_and_worker_started_as_processes(serial, parallel, tmp_path):
    """`dask scheduler` and `dask worker` as separate processes on 127.0.0.1, the grid sent
    with --scheduler: the serial rows. (The store keeps the reference models; every row is
    computed on that worker.)"""
    store = tmp_path / "s"
    shutil.copytree(parallel[1], store)
    shutil.rmtree(store / "results")
    shutil.rmtree(store / "reference")
    with _scheduler_and_worker(ENV) as address:
        out = tmp_path / "rows.parquet"
        rc = main(["run", "--dataset", "digits", "--model", "small_cnn", "--methods", "original,retrain,ft",
                   "--seeds", "0,1", "--epochs", "2", "--quiet", "--store", str(store),
                   "--out", str(out), "--scheduler", address])
        assert rc == 0
        _same_rows(serial[0], pd.read_parquet(out))
        from distributed import Client

        with Client(address, timeout=120) as c:  # the worker process computed every row
            misses = c.run(lambda: {r: st.misses for r, st in executors._STORES.items()})
        assert list(misses.values()) == [{str(store.absolute()): 6 + 2}]  # 6 rows, 2 reference metrics


def test_a_worker_on_other_cpu_kernels_is_caught_not_mixed_into_the_store(tmp_path):
    """A `dask worker` forced to torch's default CPU kernels (``ATEN_CPU_CAPABILITY``) writes
    its results under its own keys (the kernels are part of them), so the sender finds none
    of its own and stops, naming a unit, instead of reading numbers of another CPU kind."""
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU runs torch's default kernels already")
    with _scheduler_and_worker({**ENV, "ATEN_CPU_CAPABILITY": "default"}) as address:
        with executors.DaskExecutor(address=address) as ex:
            with pytest.raises(RuntimeError, match="not in the store .*same torch kernels"):
                run_grid(store=Store(tmp_path), executor=ex, **{**GRID, "seeds": "0", "methods": "original"})


def test_cli_refuses_workers_and_scheduler_together(tmp_path, capsys):
    rc = main(["run", "--quiet", "--store", str(tmp_path), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 2 and "not both" in err and err.count("\n") == 1
    assert main(["run", "--quiet", "--store", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
    assert main(["run", "--quiet", "--store", str(tmp_path), "--scheduler", "nowhere"]) == 2
    assert "must look like tcp://HOST:PORT" in capsys.readouterr().err


def test_a_worker_killed_mid_task_loses_nothing_and_recomputes_nothing_stored(ex, serial, tmp_path):
    """SIGKILL a worker while it trains: the run completes with the serial rows, every entry
    stored before the kill is still the same file (not recomputed), nothing is left missing."""
    root = tmp_path / "s"
    store = Store(root)
    out: dict = {}

    def grid() -> None:
        try:
            out["df"] = run_grid(store=store, executor=ex, **GRID)
        except BaseException as e:  # noqa: BLE001 - reported below
            out["error"] = e

    thread = threading.Thread(target=grid)
    thread.start()
    client, victim, before = ex.client(), None, {}
    deadline = time.monotonic() + 600
    while victim is None and thread.is_alive() and time.monotonic() < deadline:
        busy = {w: keys for w, keys in client.processing().items()
                if any(str(k).startswith("reference-models") for k in keys)}
        if busy and list((root / "models").glob("*.pt")):
            before = _entries(root)
            victim = next(iter(busy))
            os.kill(ex.worker_pids()[victim], signal.SIGKILL)
        time.sleep(0.02)
    thread.join(timeout=900)
    assert victim is not None, "no worker was caught training"
    assert "error" not in out, out.get("error")
    _same_rows(serial[0], out["df"])
    after = _entries(root)
    assert before and all(after.get(p) == v for p, v in before.items())  # nothing stored was redone
    assert {p.name for p in after} == {p.name for p in _entries(serial[1])}  # nothing lost


def test_a_failed_unit_is_named_and_the_others_finish(ex, serial, parallel, tmp_path, find_entry):
    """Seed 0's original copied over seed 1's: the seed-1 unit that meets it fails, naming
    the entry; seed 0's missing row is computed meanwhile; the next run completes."""
    root = tmp_path / "s"
    shutil.copytree(parallel[1], root)
    s0, s1 = (find_entry(root, "models", role="original", seed=s) for s in (0, 1))
    shutil.copy(s0, s1)
    for seed in (0, 1):
        find_entry(root, "results", method="ft", seed=seed).unlink()
    with pytest.raises(executors.UnitsFailed) as info:
        run_grid(store=Store(root), executor=ex, **GRID)
    failures = info.value.failures
    assert failures and all("seed 1" in label and "holds the entry of key" in why for label, why in failures)
    assert "seed 1" in str(info.value) and s1.stem in str(info.value)
    find_entry(root, "results", method="ft", seed=0)  # the other unit finished and is stored
    _same_rows(serial[0], run_grid(store=Store(root), executor=ex, **GRID))


def test_a_workers_warning_reaches_the_caller(ex, serial, parallel, tmp_path, find_entry):
    """A corrupt model met on a worker: its warning is raised here, the corrupt entry counted."""
    root = tmp_path / "s"
    shutil.copytree(parallel[1], root)
    model = find_entry(root, "models", role="retrain", seed=0)
    model.write_bytes(model.read_bytes()[:-64])
    find_entry(root, "results", method="ft", seed=0).unlink()
    store = Store(root)
    with pytest.warns(RuntimeWarning, match=f"{model.name}.* is corrupt"):
        df = run_grid(store=store, executor=ex, **GRID)
    _same_rows(serial[0], df)
    assert [p.name for p in store.corrupt] == [model.name + ".corrupt"]


def test_tuning_on_workers_is_the_serial_search(ex, serial, parallel, tmp_path):
    """One worker per study (the default): the same trials, the same choice as serially."""
    kw = dict(seeds="0,1", n_trials=3)
    roots = tmp_path / "a", tmp_path / "b"
    shutil.copytree(serial[1], roots[0])
    shutil.copytree(parallel[1], roots[1])
    a, b = (hpo.Setup.create("digits", "small_cnn", epochs=2, store=Store(r), show_progress=False) for r in roots)
    a = hpo.tune(a, "ga", **kw)
    b = hpo.tune(b, "ga", executor=ex, **kw)
    assert a.hparams == b.hparams and a.selection.objective == b.selection.objective
    for sa, sb in zip(a.seeds, b.seeds, strict=True):
        assert [t.params for t in sa.trials] == [t.params for t in sb.trials]
        assert sa.values == sb.values and sa.new_trials == sb.new_trials == 3
    pd.testing.assert_frame_equal(a.selection.candidates, b.selection.candidates, check_exact=True)


@pytest.mark.xfail(reason="known, not yet diagnosed: on an idle fresh clone, after the module's earlier tests, one "
                          "of the two tuners has taken every trial (the study still ends with exactly n, nothing asked "
                          "twice); it passes alone and on a loaded machine. The assertion now prints each tuner's "
                          "trial count and first/last start times", strict=False)
def test_one_study_tuned_by_two_workers_has_exactly_its_trials(ex, parallel, tmp_path):
    """parallel_trials: two tuners share one study; it ends with exactly n_trials complete
    trials, no sampler index twice, and every complete trial's row in the store."""
    root = tmp_path / "s"
    shutil.copytree(parallel[1], root)
    store = Store(root)
    n = 24  # enough trials (about 0.1 s each) that the second tuner joins before the first ends them all
    # Both workers present (an earlier test killed one; its nanny restarts it) and ready, with
    # what a unit imports.
    client = ex.client()
    client.wait_for_workers(2)
    client.run(lambda: __import__("unlearnlib.studies.worker_preload") and __import__("unlearnlib.studies.hpo"))
    result = hpo.tune(hpo.Setup.create("digits", "small_cnn", epochs=2, store=store, show_progress=False), "ga",
                      seeds=0, n_trials=n, executor=ex, parallel_trials=True)
    setup = hpo.Setup.create("digits", "small_cnn", epochs=2, store=Store(root), show_progress=False)
    study = hpo.open_study(setup.store, hpo.study_spec(setup, hpo.registry.get("ga"), 0, True))
    done = [t for t in study.trials if t.state == trials.TrialState.COMPLETE]
    assert len(done) == n and result.seeds[0].n_trials == n
    indices = [t.user_attrs[trials.INDEX] for t in study.trials]
    assert len(indices) == len(set(indices))  # no trial asked twice
    by_pid: dict[int, list] = {}
    for t in study.trials:
        by_pid.setdefault(t.user_attrs[trials.WORKER]["pid"], []).append(t.datetime_start)
    assert len(by_pid) == 2, {pid: (len(s), min(s), max(s)) for pid, s in by_pid.items()}  # both tuners took trials
    for t in done:  # nothing lost: every complete trial's row is stored
        hp = hpo.registry.get("ga").resolve_hparams(t.params, setup.scale)
        assert store.has("results", method_spec("ga", setup.splits, "small_cnn", setup.recipe, 0, hp))
    assert result.seeds[0].new_trials == len(study.trials)  # the workers' trials are counted


def test_shadow_groups_on_workers_give_the_serial_outputs(ex, tmp_path):
    from unlearnlib.data import load_splits
    from unlearnlib.shadows import ShadowConfig, ShadowRunner

    splits = load_splits("digits", "random:0.1")
    config = ShadowConfig(k=4, partitions=1, population=0.5, targets=0.5, epochs=1)
    wanted = {"ft": {"epochs": 1}, "retrained-reference": None, "original": None}
    a = ShadowRunner(splits, "small_cnn", config, Store(tmp_path / "a"), show_progress=False).outputs_many(wanted)
    store = Store(tmp_path / "b")
    b = ShadowRunner(splits, "small_cnn", config, store, show_progress=False).outputs_many(wanted, ex)
    assert list(a) == list(b) == list(wanted)
    for m in wanted:
        for field in ("phi", "loss", "test_loss", "retain_acc", "forget_acc", "test_acc"):
            assert (getattr(a[m], field) == getattr(b[m], field)).all(), (m, field)
    assert store.misses > 0 and Store(tmp_path / "b").has("shadow_models", {
        **ShadowRunner(splits, "small_cnn", config, store).spec, "role": "original"})


def test_scorecard_shadows_run_on_the_scheduler_a_kernel_inherits(ex, tmp_path, monkeypatch):
    """What a book kernel does: no executor given, ``$UNLEARNLIB_SCHEDULER`` set. Every
    shadow group then trains on the workers (training one here would trip the wire),
    and the arrays equal the serial ones."""
    from unlearnlib.data import load_splits
    from unlearnlib.shadows import ShadowConfig, ShadowRunner
    from unlearnlib.studies import scorecard as sc

    splits = load_splits("digits", "random:0.1")
    config = ShadowConfig(k=4, partitions=1, population=0.5, targets=0.5, epochs=1)
    wanted = {"original": None, "retrain": None, "ft": {"epochs": 1}}
    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    a = sc.shadow_arrays_many(ShadowRunner(splits, "small_cnn", config, Store(tmp_path / "a"), show_progress=False),
                              wanted)

    def tripwire(*args, **kwargs):
        raise AssertionError("a shadow group was trained in the calling process")

    monkeypatch.setenv(executors.SCHEDULER_ENV, ex.scheduler_address())
    monkeypatch.setattr(ShadowRunner, "unlearned", tripwire)
    monkeypatch.setattr(ShadowRunner, "retrained", tripwire)
    store = Store(tmp_path / "b")
    b = sc.shadow_arrays_many(ShadowRunner(splits, "small_cnn", config, store, show_progress=False), wanted)
    assert list(a) == list(b) == list(wanted)
    for m in wanted:
        assert set(a[m]) == set(b[m])
        for k in a[m]:
            np.testing.assert_array_equal(a[m][k], b[m][k], err_msg=f"{m} {k}")  # NaN where a test has no value
    assert store.misses > 0


def test_two_workers_asked_for_one_unit_compute_it_once(ex, tmp_path):
    """The same unit sent twice at once to the two workers of one store: each of its two
    models is computed once (the store's per-key lock); the other task reads them."""
    store = Store(tmp_path / "s")
    key = hpo.Setup.create("digits", "small_cnn", epochs=2, store=store, show_progress=False).task_key()
    tasks = [ex.task(f"reference models of seed 3 (copy {i})", reference_unit, (key, 3), store)
             for i in (1, 2)]
    assert len(ex.run(tasks, store, show_progress=False)) == 2
    assert len(list((tmp_path / "s" / "models").glob("*.pt"))) == 2  # original and retrained, no more
    assert (store.misses, store.hits) == (2, 2)  # computed once each, read once each


def test_run_tune_and_book_take_the_executor_options(monkeypatch):
    """--workers N / --scheduler ADDRESS on every command that computes units; 1 worker is
    the serial path, N a local cluster of N processes, an address an existing scheduler."""
    from unlearnlib.cli import build_parser

    parser = build_parser()
    for cmd in (["run"], ["tune", "--method", "ga"], ["book"]):
        args = parser.parse_args([*cmd, "--workers", "3"])
        assert (args.workers, args.scheduler) == ("3", None)
        args = parser.parse_args([*cmd, "--scheduler", "tcp://127.0.0.1:8786"])
        assert (args.workers, args.scheduler) == (None, "tcp://127.0.0.1:8786")
    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    assert type(executors.from_options("1")) is executors.SerialExecutor
    local = executors.from_options("3")
    assert (local.name, local.n_workers, local._client) == ("local", 3, None)  # nothing started yet
    remote = executors.from_options(None, "tcp://127.0.0.1:8786")
    assert (remote.name, remote.address) == ("address", "tcp://127.0.0.1:8786")
    monkeypatch.setenv(executors.WORKERS_ENV, "1")
    assert type(executors.from_options()) is executors.SerialExecutor
    monkeypatch.setenv(executors.SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert executors.from_options().address == "tcp://127.0.0.1:8786"  # the environment's scheduler
    assert type(executors.from_options("1")) is executors.SerialExecutor  # --workers overrides it


def test_setup_keys_carry_absolute_paths(tmp_path, monkeypatch):
    """A worker (or a notebook kernel's) runs in another folder: a relative store or data
    folder must reach it as the sender's absolute path."""
    from unlearnlib.studies.experiment import setup_key

    monkeypatch.chdir(tmp_path)
    key = setup_key("digits", "small_cnn", "random:0.1", 2, "cpu", "data", Store("s"))
    assert (key.data_root, key.store_root) == (str(tmp_path / "data"), str(tmp_path / "s"))
    assert setup_key("digits", "small_cnn", "random:0.1", 2, "cpu", None, Store("s")).data_root is None


def _tripwire(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran in the calling process")
    return fail


def test_scorecard_rows_relearning_and_poisons_run_on_the_scheduler_a_kernel_inherits(ex, tmp_path, monkeypatch):
    """The scorecard's seed rows, relearning attacks and poisoning rows, as a book kernel
    runs them (``$UNLEARNLIB_SCHEDULER`` set, no executor given): every unit is computed
    on the workers (evaluating, attacking or scoring here trips a wire) and the frames
    equal the serial ones."""
    import unlearnlib.poisoning as poisoning
    from unlearnlib.studies import experiment
    from unlearnlib.studies import scorecard as sc

    keys, seeds = ["original", "retrain", "ft"], [0, 1]
    hp = {"ft": ({"epochs": 1}, "test")}
    setting = sc.PoisonSetting(dataset="digits", model="mlp", epochs=2)

    def scorecard(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, Store]:
        store = Store(root)
        setup = hpo.Setup.create("digits", "small_cnn", "random:0.1", 2, store=store, show_progress=False)
        rows = sc.with_relearning(sc.seed_rows(setup, keys, seeds, hp), setup, keys, hp, steps=2)
        clean = sc.poison_clean_splits(setting)
        return rows, sc.poison_rows(store, clean, setting, keys, seeds), store

    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    rows_a, poison_a, _ = scorecard(tmp_path / "a")
    monkeypatch.setenv(executors.SCHEDULER_ENV, ex.scheduler_address())
    monkeypatch.setattr(experiment, "evaluate_model", _tripwire("a result row"))
    monkeypatch.setattr(sc.collection, "relearning_attack", _tripwire("a relearning attack"))
    monkeypatch.setattr(poisoning, "attack_metric", _tripwire("a poisoning row"))
    rows_b, poison_b, store = scorecard(tmp_path / "b")
    _same_rows(rows_a.drop(columns="hparams_source"), rows_b.drop(columns="hparams_source"))
    pd.testing.assert_series_equal(rows_a["relearn_acc"], rows_b["relearn_acc"])
    pd.testing.assert_frame_equal(poison_a, poison_b, check_exact=True)
    assert store.misses > 0
    assert set(poison_b["method"]) == set(keys) and poison_b["gus"].notna().all()


def test_explorer_grids_run_on_the_scheduler_a_kernel_inherits(ex, tmp_path, monkeypatch):
    """The explorer chapter's grids (every method's settings sent at once) and its reference
    rows: computed on the workers, the same frames as the serial ones."""
    from unlearnlib.book.static_explorer import grids_rows
    from unlearnlib.studies import experiment

    grid, seeds = {"epochs": [1, 2], "lr": [0.01, 0.1]}, [0]

    def grids(root: Path) -> dict[str, pd.DataFrame]:
        setup = hpo.Setup.create("digits", "small_cnn", "random:0.1", 2, store=Store(root), show_progress=False)
        out = grids_rows(setup, ["ft", "ga"], grid, seeds, references=("original", "retrain"))
        out["refs"] = pd.DataFrame([setup.run(k, s) for s in seeds for k in ("original", "retrain")])
        return out

    monkeypatch.delenv(executors.SCHEDULER_ENV, raising=False)
    a = grids(tmp_path / "a")
    monkeypatch.setenv(executors.SCHEDULER_ENV, ex.scheduler_address())
    monkeypatch.setattr(experiment, "evaluate_model", _tripwire("a result row"))
    b = grids(tmp_path / "b")
    assert list(a) == list(b) == ["ft", "ga", "refs"]
    for m in a:
        _same_rows(a[m], b[m])
    assert list(b["ft"][["grid_epochs", "grid_lr"]].itertuples(index=False, name=None)) == [
        (1, 0.01), (1, 0.1), (2, 0.01), (2, 0.1)]
