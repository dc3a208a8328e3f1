"""Deep Unlearn's hyperparameter search (unlearnlib.studies.hpo): objective, best trial,
resume, seeding, search-space conversion, and a small real tuning run."""

from __future__ import annotations

import math

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
from unlearnlib.studies.experiment import reference_metrics

REF = {"retain_acc": 1.0, "forget_acc": 0.75, "val_acc": 0.80, "mia_val": 0.5}
SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "alpha": Float(0.0, 1.0),
    "epochs": Int(1, 8),
    "batch_size": Choice(64, 128, 256),
}


def synthetic(calls: list, interrupt_at: int | None = None):
    """A closed-form 'method': metrics move with the hyperparameters; counts its calls."""

    def evaluate(hp: dict) -> dict:
        calls.append(dict(hp))
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return {"retain_acc": 1 - hp["alpha"] / 10, "forget_acc": 0.75 + math.log10(hp["lr"]) / 50,
                "val_acc": 0.8 - hp["epochs"] / 100, "mia_val": 0.5 + (hp["batch_size"] - 64) / 1000}

    return evaluate


def study(tmp_path, seed: int = 0, name: str = "s") -> optuna.Study:
    with hpo.quiet_optuna():
        return hpo.open_study(Store(tmp_path), {"test": name}, seed)


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


def test_interrupted_search_resumes_without_losing_finished_trials(tmp_path):
    calls: list = []
    first = study(tmp_path)
    assert hpo.optimize(first, SPACE, synthetic(calls), REF, n_trials=3) == 3
    done = [t.params for t in first.trials]
    again = study(tmp_path)  # a new process opening the same SQLite study
    assert hpo.optimize(again, SPACE, synthetic(calls), REF, n_trials=5) == 2
    assert len(calls) == 5
    assert [t.params for t in again.trials[:3]] == done
    assert sum(t.state == TrialState.COMPLETE for t in again.trials) == 5
    assert all(t.params not in done for t in again.trials[3:])  # the resumed sampler does not redraw
    assert hpo.optimize(study(tmp_path), SPACE, synthetic(calls), REF, n_trials=5) == 0


def test_keyboard_interrupt_marks_the_trial_failed_and_resume_completes_it(tmp_path):
    calls: list = []
    with pytest.raises(KeyboardInterrupt):
        hpo.optimize(study(tmp_path), SPACE, synthetic(calls, interrupt_at=2), REF, n_trials=4)
    states = [t.state for t in study(tmp_path).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    hpo.optimize(study(tmp_path), SPACE, synthetic(calls), REF, n_trials=4)
    assert sum(t.state == TrialState.COMPLETE for t in study(tmp_path).trials) == 4


def test_failing_trials_are_skipped_and_all_failing_is_an_error(tmp_path):
    def flaky(hp):
        if hp["batch_size"] == 64:
            raise ValueError("diverged")
        return synthetic([])(hp)

    with pytest.warns(RuntimeWarning, match="diverged"):
        ran = hpo.optimize(study(tmp_path, name="a"), SPACE, flaky, REF, n_trials=4)
    states = [t.state for t in study(tmp_path, name="a").trials]
    # failures are replaced in the same call: a later call (another chapter) adds nothing
    assert states.count(TrialState.COMPLETE) == 4 and states.count(TrialState.FAIL) == ran - 4 > 0
    assert hpo.optimize(study(tmp_path, name="a"), SPACE, flaky, REF, n_trials=4) == 0

    def broken(hp):
        raise TypeError("bug")

    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="TypeError: bug"):
        hpo.optimize(study(tmp_path, name="b"), SPACE, broken, REF, n_trials=2)


def test_sampler_is_seeded_by_the_model_seed(tmp_path):
    def draws(root, seed):
        calls: list = []
        hpo.optimize(study(root, seed), SPACE, synthetic(calls), REF, n_trials=4)
        return calls

    a, b, c = draws(tmp_path / "a", 7), draws(tmp_path / "b", 7), draws(tmp_path / "c", 8)
    assert a == b
    assert a != c
    assert hpo.sampler_seed(7, 0) == 7 and hpo.sampler_seed(7, 3) != 7


def test_defaults_are_the_first_trial(tmp_path):
    calls: list = []
    defaults = {"lr": 0.1, "alpha": 0.95, "epochs": 10, "batch_size": 256, "bn_mode": "train"}
    hpo.optimize(study(tmp_path), SPACE, synthetic(calls), REF, n_trials=2, defaults=defaults)
    assert calls[0] == {"lr": 0.1, "alpha": 0.95, "epochs": 8, "batch_size": 256}


# --------------------------------------------------------------------------- real runs (cnn1d on mnist1d)


def test_tune_real_method_resumes_and_reruns(refs, splits, session_store_env):
    store = Store(session_store_env)
    kw = dict(seeds=[0], epochs=12, store=store, show_progress=False)
    r2 = hpo.tune("ga", n_trials=2, **kw)
    assert r2.tuned and r2.best_seed == 0 and r2.seeds[0].new_trials == 2
    assert set(r2.hparams) == set(registry.get("ga").defaults)
    assert r2.hparams["epochs"] <= 3  # ceil(0.2 * 12)
    r3 = hpo.tune("ga", n_trials=3, **kw)
    assert r3.seeds[0].new_trials == 1 and r3.seeds[0].n_trials == 3
    assert r3.seeds[0].norm <= r2.seeds[0].norm
    db = session_store_env / "optuna" / f"{r3.seeds[0].study_name}.db"
    assert db.is_file()
    trials = hpo.trials_frame(optuna.load_study(study_name=r3.seeds[0].study_name, storage=f"sqlite:///{db}"))
    assert trials["lr"].nunique() == 3 and trials["norm"].nunique() > 1  # the hyperparameters reach the method

    result, rows = hpo.tune_and_rerun("ga", tune_seeds=[0], seeds=[0], n_trials=3, epochs=12,
                                      store=store, show_progress=False)
    assert result.hparams == r3.hparams and result.seeds[0].new_trials == 0
    assert list(rows["method"]) == ["ga"] and rows["tuned"].all()
    # the rerun of the best trial on its own seed is the cached trial: same objectives
    ref = reference_metrics(refs, splits, store)
    assert hpo.objective_norm(hpo.objective_vector(rows.iloc[0], ref)) == pytest.approx(result.seeds[0].norm)


def test_reference_and_spaceless_methods_are_not_tuned(tmp_path):
    r = hpo.tune("original", epochs=12, store=Store(tmp_path), show_progress=False, n_trials=5)
    assert not r.tuned and r.hparams == {} and r.seeds == []
    assert not (tmp_path / "optuna").exists()
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        hpo.tune("ft", n_trials=0, store=Store(tmp_path))
    with pytest.raises(ValueError, match="Unknown method 'nope'; allowed"):
        hpo.tune("nope", store=Store(tmp_path))


def test_cli_tune_prints_best_hyperparameters_and_rerun_table(refs, capsys):
    assert main(["tune", "--method", "ga", "--trials", "3", "--seeds", "0", "--epochs", "12", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best hyperparameters: {" in out and '"lr"' in out
    assert "retrain" in out and "ga" in out and "1-Indisc" in out
    assert main(["tune", "--method", "ga", "--trials", "2", "--seeds", "x"]) == 2


# --------------------------------------------------------------------------- reading a tuned grid


def _grid(good: list[str], bad: list[str], mid: list[str]) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        ref = {"retain_acc": 1.0, "forget_acc": 0.8, "val_acc": 0.8, "test_acc": 0.8, "mia_val": 0.52}
        rows.append({"method": "retrain", "seed": seed, **ref, "indisc": 0.96, "retdev": 0.0, "rte": 1.0})
        for quality, ms, rte in ((0.01, good, 20.0), (0.3, bad, 1.5), (0.1, mid, 5.0)):
            for i, m in enumerate(ms):
                q = quality + i * 0.001
                rows.append({"method": m, "seed": seed, "retain_acc": 1 - q, "forget_acc": 0.8 + q,
                             "val_acc": 0.8 - q, "test_acc": 0.8 - q, "mia_val": 0.52 + q,
                             "indisc": 0.96 - 2 * q, "retdev": 3 * q, "rte": rte + i})
    return pd.DataFrame(rows)


def test_ranking_and_headline_follow_the_numbers():
    df = _grid(good=["msg", "ct", "ngplus"], bad=["ga", "srl"], mid=["ft", "cfw", "ff", "prmq"])
    r = hpo.ranking(df)
    assert list(r.index[:3]) == ["msg", "ct", "ngplus"] and set(r.index[-2:]) == {"ga", "srl"}
    assert r.loc["msg", "objective_norm"] < r.loc["ga", "objective_norm"]
    text = hpo.headline(df)
    assert text.count(": holds here") == 3, text

    flipped = hpo.headline(_grid(good=["ga", "srl"], bad=["msg", "ct", "ngplus"], mid=["ft", "cfw"]))
    assert flipped.count("does not hold") == 3, flipped
    partial = hpo.headline(_grid(good=["ft"], bad=["ga"], mid=["ngplus", "srl"]))
    assert "cannot check, msg, ct" in partial
