"""Deep Unlearn's hyperparameter search (unlearnlib.studies.hpo): objective, best trial,
resume, seeding, search-space conversion, and a small real tuning run."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import socket
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")  # the notebook stack may be absent on a bare GPU machine
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from unlearnlib import methods as registry
from unlearnlib.cli import main
from unlearnlib.methods import Choice, Epochs, Float, Int, Param
from unlearnlib.store import Store
from unlearnlib.studies import hpo
from unlearnlib.studies import trials as trials_mod
from unlearnlib.studies.experiment import reference_metrics

REF = {"retain_acc": 1.0, "forget_acc": 0.75, "val_acc": 0.80, "mia_val": 0.5}
SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "alpha": Float(0.0, 1.0),
    "epochs": Int(1, 8),
    "batch_size": Choice(64, 128, 256),
}


def synthetic(calls: list, interrupt_at: int | None = None, delay: float = 0.0):
    """A closed-form 'method': metrics move with the hyperparameters; counts its calls.
    ``delay`` seconds per call stand in for a trial's work (so concurrent tuners overlap)."""

    def evaluate(hp: dict) -> dict:
        calls.append(dict(hp))
        time.sleep(delay)
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return {"retain_acc": 1 - hp["alpha"] / 10, "forget_acc": 0.75 + math.log10(hp["lr"]) / 50,
                "val_acc": 0.8 - hp["epochs"] / 100, "mia_val": 0.5 + (hp["batch_size"] - 64) / 1000}

    return evaluate


def study(tmp_path, name: str = "s") -> optuna.Study:
    with hpo.quiet_optuna():
        return hpo.open_study(Store(tmp_path), {"test": name})


def run(tmp_path, calls, n_trials, name="s", seed=0, enqueue=(), population_size=None, **kw):
    st = study(tmp_path, name)
    lock = trials_mod.study_lock(Store(tmp_path), st.study_name)
    with hpo.quiet_optuna():
        return hpo.optimize(st, SPACE, synthetic(calls, **kw), REF, n_trials, seed=seed, enqueue=enqueue,
                            lock=lock, population_size=population_size)


def complete_params(tmp_path, name="s") -> list[dict]:
    """The COMPLETE trials' parameters in sampler-index order (what a search produced)."""
    done = study(tmp_path, name).get_trials(states=(TrialState.COMPLETE,))
    return [t.params for t in sorted(done, key=lambda t: t.user_attrs[trials_mod.INDEX])]


# --------------------------------------------------------------------------- objective


def test_objective_vector_closed_form():
    m = {"retain_acc": 0.9, "forget_acc": 0.6, "val_acc": 0.8, "mia_val": 0.7}
    v = hpo.objective_vector(m, REF)
    assert v == pytest.approx((0.1 / 3, 0.15 / 3, 0.0, 0.4))
    # an attacker below chance is as informative as one above it
    assert hpo.objective_vector({**m, "mia_val": 0.3}, REF)[3] == pytest.approx(0.4)
    assert hpo.objective_vector(REF, REF) == pytest.approx((0, 0, 0, 0))
    assert hpo.objective_norm((0.3, 0.4, 0, 0)) == pytest.approx(0.5)


def test_best_trial_is_the_smallest_l2_norm_not_the_smallest_sum():
    dists = {"x": FloatDistribution(0, 1)}
    trials = [
        create_trial(values=[0.3, 0, 0, 0], params={"x": 0.0}, distributions=dists),        # sum .3, norm .3
        create_trial(values=[0.1, 0.1, 0.1, 0.1], params={"x": 0.5}, distributions=dists),  # sum .4, norm .2
        create_trial(values=[0, 0, 0, 0.35], params={"x": 1.0}, distributions=dists),       # norm .35
        create_trial(state=TrialState.FAIL, params={"x": 0.2}, distributions=dists),
    ]
    assert hpo.best_trial(trials).params == {"x": 0.5}
    assert hpo.best_trial(trials[3:]) is None


# --------------------------------------------------------------------------- search space


def test_space_conversion_covers_every_kind():
    st = optuna.create_study(directions=["minimize"] * 4, sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(25):
        t = st.ask()
        drawn.append(hpo.suggest(t, SPACE))
        st.tell(t, [0, 0, 0, 0])
    d = st.trials[0].distributions
    assert d["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert d["alpha"] == FloatDistribution(0.0, 1.0, log=False)
    assert d["epochs"] == IntDistribution(1, 8)
    assert d["batch_size"] == CategoricalDistribution([64, 128, 256])
    df = pd.DataFrame(drawn)
    assert df["lr"].between(1e-5, 1e-1).all() and df["lr"].min() < 1e-3  # log-uniform reaches low decades
    assert df["epochs"].map(type).eq(int).all() and set(df["batch_size"]) <= {64, 128, 256}


def test_epoch_bounds_resolve_from_training_length_and_bad_ranges_fail():
    space = registry.get("ft").space(train_epochs=40)
    assert (space["epochs"].low, space["epochs"].high) == (1, 8)  # ceil(0.2 * 40)
    t = optuna.create_study().ask()
    with pytest.raises(ValueError, match="Method.space"):
        hpo.suggest(t, {"epochs": Epochs(0.2)})
    with pytest.raises(ValueError, match="needs low > 0"):
        hpo.suggest(t, {"lr": Float(0.0, 1.0, log=True)})
    with pytest.raises(ValueError, match="allowed: float, int, categorical"):
        hpo.suggest(t, {"x": Param("bool", 0, 1)})


def test_defaults_are_clipped_into_the_space():
    out = hpo.clip_to_space({"lr": 0.5, "alpha": 0.3, "epochs": 10, "batch_size": 32, "bn_mode": "train"}, SPACE)
    assert out == {"lr": 0.1, "alpha": 0.3, "epochs": 8}


# --------------------------------------------------------------------------- studies


DEFAULTS = trials_mod.Enqueued({"lr": 0.1, "alpha": 0.95, "epochs": 8, "batch_size": 256}, "defaults")


def test_interrupted_search_resumes_without_losing_finished_trials(tmp_path):
    calls: list = []
    assert run(tmp_path, calls, 3) == 3
    done = complete_params(tmp_path)
    assert run(tmp_path, calls, 5) == 2  # a new process opening the same study
    assert len(calls) == 5 and complete_params(tmp_path)[:3] == done
    assert run(tmp_path, calls, 5) == 0


@pytest.mark.parametrize("kill_at", [1, 4, 7, 11])
def test_a_killed_search_resumes_to_the_same_trials_and_best(tmp_path, kill_at):
    """Interrupted at trial ``kill_at`` (Ctrl-C, or SIGKILL leaving a RUNNING trial whose
    process is gone) and resumed, the study has the same trials and the same best as an
    uninterrupted one, also past NSGA-III's first generation (population 4 here)."""
    kw = dict(enqueue=[DEFAULTS], population_size=4, seed=3)
    run(tmp_path / "whole", [], 12, **kw)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ctrl-c", [], 12, interrupt_at=kill_at, **kw)
    run(tmp_path / "ctrl-c", [], 12, **kw)
    # SIGKILL: a trial left RUNNING by a process that no longer exists
    run(tmp_path / "kill", [], kill_at - 1, **kw) if kill_at > 1 else None
    st = study(tmp_path / "kill")
    ghost = st.ask()
    ghost.set_user_attr(trials_mod.WORKER, {"host": socket.gethostname(), "pid": 2**22 + 12345, "start": 1.0})
    run(tmp_path / "kill", [], 12, **kw)
    whole = complete_params(tmp_path / "whole")
    assert len(whole) == 12 and whole[0] == dict(DEFAULTS.params)
    for other in ("ctrl-c", "kill"):
        assert complete_params(tmp_path / other) == whole, other
        best = hpo.best_trial(study(tmp_path / other).trials)
        assert best.params == hpo.best_trial(study(tmp_path / "whole").trials).params
    states = [t.state for t in study(tmp_path / "kill").trials]
    assert TrialState.RUNNING not in states  # the ghost was failed on open
    assert any(t.user_attrs.get(trials_mod.INTERRUPTED) for t in study(tmp_path / "kill").trials)


def test_defaults_are_enqueued_until_a_complete_trial_has_them(tmp_path):
    calls: list = []
    with pytest.raises(KeyboardInterrupt):  # interrupted while running the defaults
        run(tmp_path, calls, 3, enqueue=[DEFAULTS], interrupt_at=1)
    run(tmp_path, calls, 3, enqueue=[DEFAULTS])
    done = study(tmp_path).get_trials(states=(TrialState.COMPLETE,))
    assert [t.user_attrs.get(trials_mod.SOURCE) for t in done].count("defaults") == 1
    assert calls[0] == calls[1] == dict(DEFAULTS.params)


def test_failing_trials_are_skipped_and_all_failing_is_an_error(tmp_path):
    def flaky(hp):
        if hp["batch_size"] == 64:
            raise ValueError("diverged\nwith a long second line")
        return synthetic([])(hp)

    st, lock = study(tmp_path, "a"), contextlib.nullcontext()
    with pytest.warns(RuntimeWarning, match="diverged"):
        ran = hpo.optimize(st, SPACE, flaky, REF, n_trials=4, lock=lock)
    states = [t.state for t in study(tmp_path, "a").trials]
    # failures are replaced in the same call: a later call (another chapter) adds nothing
    assert states.count(TrialState.COMPLETE) == 4 and states.count(TrialState.FAIL) == ran - 4 > 0
    errors = [t.user_attrs["error"] for t in study(tmp_path, "a").trials if t.state == TrialState.FAIL]
    assert all("\n" not in e and "ValueError: diverged" in e for e in errors)  # one line each
    assert hpo.optimize(study(tmp_path, "a"), SPACE, flaky, REF, n_trials=4) == 0

    def broken(hp):
        raise TypeError("bug")

    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="TypeError: bug"):
        hpo.optimize(study(tmp_path, "b"), SPACE, broken, REF, n_trials=2)


def test_sampler_is_seeded_by_the_model_seed(tmp_path):
    def draws(root, seed):
        calls: list = []
        run(root, calls, 4, seed=seed)
        return calls

    a, b, c = draws(tmp_path / "a", 7), draws(tmp_path / "b", 7), draws(tmp_path / "c", 8)
    assert a == b and a != c
    assert trials_mod.trial_seed(7, 0) != trials_mod.trial_seed(7, 1) != trials_mod.trial_seed(8, 1)


def _tuner(root: str, n_trials: int, barrier, out) -> None:
    barrier.wait()  # start together, on a fresh store
    # 0.3 s a trial: without it one tuner can finish all trials of the closed-form objective
    # before the other has opened the study (seen on an idle machine), and the test would
    # not exercise two tuners at once
    out.put(run(Path(root), [], n_trials, enqueue=[DEFAULTS], delay=0.3))


def test_two_tuners_on_one_study_reach_exactly_the_requested_count(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_tuner, args=(str(tmp_path), 10, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert all(p.exitcode == 0 for p in procs)
    ran = [out.get(timeout=5) for _ in procs]
    final = study(tmp_path)
    done = final.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 10 and sum(ran) == 10 and min(ran) > 0  # both worked, nothing extra
    assert [t.user_attrs.get(trials_mod.SOURCE) for t in done].count("defaults") == 1
    assert len({t.user_attrs[trials_mod.INDEX] for t in done}) == 10  # no index drawn twice
    # generation 0 depends on the index alone: the parallel draws are the serial draws
    run(tmp_path / "serial", [], 10, enqueue=[DEFAULTS])
    assert complete_params(tmp_path) == complete_params(tmp_path / "serial")


def test_a_garbled_journal_is_moved_aside_and_the_study_restarts(tmp_path):
    run(tmp_path, [], 2)
    journal = trials_mod.journal_path(Store(tmp_path), study(tmp_path).study_name)
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) // 2] + b"\x00garbage{" + data[len(data) // 2 + 10:])
    with pytest.warns(RuntimeWarning, match=f"{journal.name} could not be read.*moved to"):
        st = study(tmp_path)
    assert st.trials == [] and journal.with_name(journal.name + ".corrupt").is_file()


def test_selection_over_tuning_seeds_prefers_what_transfers():
    """Seed 0's best trial is a lucky draw that fails on seeds 1 and 2; a trial that is
    second on every seed wins, because candidates are scored on every tuning seed."""
    dists = {"x": FloatDistribution(0, 1)}

    def trial(x, norm, index):
        return create_trial(values=[norm, 0, 0, 0], params={"x": x}, distributions=dists,
                            user_attrs={trials_mod.INDEX: index})

    studies = [hpo.SeedResult(s, {}, (0,) * 4, 0, 3, 0, f"s{s}",
                              [trial(0.1 if s == 0 else 0.9, 0.01, 0), trial(0.5, 0.05, 1), trial(0.3, 0.5, 2)])
               for s in (0, 1, 2)]

    def norm_of(hp, seed):  # x = 0.1 is excellent on seed 0 only
        return {0.1: [0.01, 0.9, 0.9], 0.5: [0.05, 0.05, 0.05], 0.9: [0.6, 0.02, 0.02], 0.3: [0.5] * 3}[hp["x"]][seed]

    sel = hpo.select(studies, 3, norm_of)
    assert sel.hparams == {"x": 0.5} and sel.objective == pytest.approx(0.05)
    assert hpo.select(studies[:1], 3, norm_of, top=1).hparams == {"x": 0.1}  # Deep Unlearn's rule
    half = hpo.select(studies, 3, norm_of, budget="half")  # indices < 2
    assert half.hparams == {"x": 0.5}
    with pytest.raises(ValueError, match="allowed: full, half"):
        hpo.select(studies, 3, norm_of, budget="most")


# --------------------------------------------------------------------------- real runs (cnn1d on mnist1d)


def test_tune_real_method_resumes_and_reruns(refs, splits, session_store_env):
    store = Store(session_store_env)
    setup = hpo.Setup.create(epochs=12, store=store, show_progress=False)
    r2 = hpo.tune(setup, "ga", seeds=[0], n_trials=2)
    assert r2.tuned and r2.best_seed == 0 and r2.seeds[0].new_trials == 2
    assert set(r2.hparams) == set(registry.get("ga").defaults)
    assert r2.hparams["epochs"] <= 3  # ceil(0.2 * 12)
    r3 = hpo.tune(setup, "ga", seeds=[0], n_trials=3)
    assert r3.seeds[0].new_trials == 1 and r3.seeds[0].n_trials == 3
    assert r3.seeds[0].norm <= r2.seeds[0].norm
    journal = trials_mod.journal_path(store, r3.seeds[0].study_name)
    assert journal.is_file()
    trials = hpo.trials_frame(optuna.load_study(study_name=r3.seeds[0].study_name,
                                                storage=trials_mod.open_storage(store, r3.seeds[0].study_name)))
    assert trials["lr"].nunique() == 3 and trials["norm"].nunique() > 1  # the hyperparameters reach the method

    result, rows = hpo.tune_and_rerun(setup, "ga", tune_seeds=[0], seeds=[0], n_trials=3)
    assert result.hparams == r3.hparams and result.seeds[0].new_trials == 0
    assert list(rows["method"]) == ["ga"] and rows["tuned"].all()
    # the rerun of the chosen trial on its own seed is the cached trial: same objectives
    ref = reference_metrics(refs, splits, store)
    assert hpo.objective_norm(hpo.objective_vector(rows.iloc[0], ref)) == pytest.approx(result.selection.objective)
    assert result.half is not None and result.rows_half is not None and len(result.rows_half) == 1
    assert rows["hparams_source"].iloc[0] in ("defaults", "search")


def test_reference_and_spaceless_methods_are_not_tuned(tmp_path):
    setup = hpo.Setup.create(epochs=12, store=Store(tmp_path), show_progress=False)
    r = hpo.tune(setup, "original", n_trials=5)
    assert not r.tuned and r.hparams == {} and r.seeds == []
    assert not (tmp_path / "optuna").exists()
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        hpo.tune(setup, "ft", n_trials=0)
    with pytest.raises(ValueError, match="Unknown method 'nope'; allowed"):
        hpo.tune(setup, "nope")


def test_cli_tune_prints_best_hyperparameters_and_rerun_table(refs, capsys):
    assert main(["tune", "--method", "ga", "--trials", "3", "--seeds", "0", "--epochs", "12", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best hyperparameters of ga: {" in out and '"lr"' in out
    assert "retrain" in out and "ga" in out and "1-Indisc" in out
    assert main(["tune", "--method", "ga", "--trials", "2", "--seeds", "x"]) == 2


def test_ship_writes_an_entry_with_provenance_that_warm_starts_a_study(refs, splits, session_store_env, tmp_path):
    from unlearnlib.studies import tuned

    table = tmp_path / "hparams.json"
    assert main(["tune", "--method", "ga", "--trials", "2", "--seeds", "0", "--epochs", "12", "--quiet",
                 "--ship", "--table", str(table)]) == 0
    entry = tuned.load(table)["mnist1d/cnn1d/random:0.1/ga"]
    for key in ("hparams", "half_hparams", "objective", "per_seed", "trials_per_seed", "tuning_seeds", "sampler",
                "convergence", "rerun", "recipe", "numerics", "unlearnlib", "commit", "date", "wall_seconds"):
        assert key in entry, key
    import torch

    assert entry["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # decides exact reproduction
    assert entry["trials_per_seed"] == 2 and len(entry["convergence"]["0"]) == 2
    assert entry["convergence"]["0"][1] <= entry["convergence"]["0"][0]  # a running best
    setup = hpo.Setup.create(epochs=12, store=Store(session_store_env), show_progress=False)
    assert hpo.shipped_entry(setup, "ga", str(table)) == entry
    assert hpo.shipped_entry(hpo.Setup.create(epochs=11, store=Store(session_store_env), show_progress=False),
                             "ga", str(table)) is None  # another recipe: the entry does not apply
    # the recorded objective is what the entry's hyperparameters give on its tuning seed
    assert hpo.setup_norm(setup, "ga")(entry["hparams"], 0) == pytest.approx(entry["per_seed"]["0"], abs=1e-4)
    warm = hpo.tune(setup, "ga", seeds=[0], n_trials=1, warm_start=entry)
    first = warm.seeds[0].trials[0]
    assert first.user_attrs["source"].startswith("shipped") and warm.source.startswith("shipped")
