import pandas as pd
import pytest

from unlearnlib.cli import main
from unlearnlib.store import Store
from unlearnlib.studies.experiment import RESULT_COLUMNS, parse_seeds, run_grid, summarize

TINY = dict(methods="original,retrain,ga", seeds="0,1", epochs=3, show_progress=False)
NUMBERS = ["retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test", "retdev", "l2_to_retrained"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, device):
    store = Store(tmp_path_factory.mktemp("grid"))
    return store, run_grid(device=str(device), store=store, **TINY)


def test_rows_have_the_contract_columns(tiny):
    _, df = tiny
    assert list(df.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert len(df) == 6 and set(df["method"]) == {"original", "retrain", "ga"}
    gold = df[df.method == "retrain"]
    assert (gold["l2_to_retrained"] == 0).all() and (gold["retdev"] == 0).all() and (gold["rte"] == 1).all()
    assert (df[df.method == "original"]["l2_to_retrained"] > 0).all()
    assert df["hparams"].map(lambda s: s.startswith("{")).all()
    s = summarize(df)
    assert list(s.index) == ["original", "retrain", "ga"]


def test_rerun_computes_nothing_and_repeats_numbers(tiny, device):
    store, df = tiny
    again_store = Store(store.root)
    df2 = run_grid(device=str(device), store=again_store, **TINY)
    assert again_store.misses == 0 and again_store.hits > 0
    pd.testing.assert_frame_equal(df, df2)


def test_same_seed_same_numbers_in_a_fresh_store(tiny, tmp_path, device):
    _, df = tiny
    fresh = run_grid(device=str(device), store=Store(tmp_path), **TINY)
    pd.testing.assert_frame_equal(df[NUMBERS], fresh[NUMBERS])


@pytest.mark.parametrize("kw,msg", [
    ({"methods": "ft,nope"}, "Unknown method 'nope'; allowed: original, retrain"),
    ({"model": "vgg"}, "Unknown model 'vgg'; allowed: cnn1d"),
    ({"dataset": "svhn"}, "Unknown dataset 'svhn'; allowed: mnist1d"),
    ({"forget": "random:1.2"}, r"\(0, 1\)"),
    ({"forget": "class:10"}, "not in the data"),
    ({"seeds": "a,b"}, "non-negative integers"),
    ({"hparams": {"ga": {"learning_rate": 1}}}, "allowed: epochs, lr"),
    ({"hparams": {"ft": {"lr": 1}}}, "not among the methods"),
])
def test_bad_input_fails_before_training(kw, msg, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match=msg):
        run_grid(store=store, **{**TINY, **kw})
    assert store.misses == 0 and not any(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("kw, msg", [
    ({"dataset": "svhn"}, "Unknown dataset 'svhn'; allowed: mnist1d"),
    ({"model": "vgg"}, "Unknown model 'vgg'; allowed: cnn1d"),
    ({"forget": "random:1.2"}, r"\(0, 1\)"),
    ({"forget": "class:inf"}, "is not a finite number"),
    ({"epochs": 0}, r"epochs must be a positive integer or None; got 0\."),
    ({"epochs": True}, "epochs must be a positive integer or None"),
    ({"device": "mps"}, "Unknown or unsupported device 'mps'"),
])
def test_setup_checks_its_inputs_as_the_grid_does(kw, msg, tmp_path, monkeypatch):
    """Setup.create and Setups say what GridConfig says, without building a GridConfig."""
    from unlearnlib.studies import experiment

    store = Store(tmp_path)
    with pytest.raises(ValueError, match=msg):
        experiment.GridConfig(**{"dataset": "mnist1d", "model": "cnn1d", **kw})
    monkeypatch.setattr(experiment, "GridConfig", None)  # not used to validate
    with pytest.raises(ValueError, match=msg) as err:
        experiment.Setup.create(**{"epochs": 1, **kw}, store=store, show_progress=False)
    assert "\n" not in str(err.value)
    if "forget" not in kw:
        with pytest.raises(ValueError, match=msg):
            experiment.Setups(**kw, store=store)
    assert store.misses == 0 and not any(tmp_path.rglob("*.pt"))


def test_setups_make_each_forget_sets_setup_once(tmp_path):
    from unlearnlib.studies.experiment import Setups

    setups = Setups("digits", "mlp", epochs=1, store=Store(tmp_path), show_progress=False)
    a = setups("fraction:0.1")
    assert setups("fraction:0.1") is a and setups("class:2").splits.forget_spec == "class:2"
    assert (a.model, a.recipe.epochs, a.store, a.splits.dataset) == ("mlp", 1, setups.store, "digits")
    quiet = Setups("digits", "mlp", epochs=1, store=Store(tmp_path)).quiet()
    assert not quiet.show_progress and not quiet("fraction:0.1").show_progress
    shared = setups.quiet()("fraction:0.1")  # the setups made so far, quiet, with their loaded reference models
    assert shared is not a and shared.splits is a.splits and shared._refs is a._refs and not shared.show_progress


def test_missing_data_folder_says_where(tmp_path):
    store = Store(tmp_path / "store")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        run_grid(dataset="cifar10", model="resnet18", data_root=str(tmp_path / "nowhere"), store=store, **TINY)
    assert not (tmp_path / "store").exists()


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7] and parse_seeds(2) == [2]
    with pytest.raises(ValueError, match="non-negative"):
        parse_seeds("-1")


def test_cli_run_writes_parquet(tmp_path, capsys, device):
    out = tmp_path / "rows.parquet"
    code = main(["run", "--methods", "original,retrain,ft", "--seeds", "0", "--epochs", "2", "--quiet",
                 "--device", str(device), "--store", str(tmp_path / "s"), "--out", str(out),
                 "--hparams", '{"ft": {"epochs": 1}}'])
    assert code == 0
    df = pd.read_parquet(out)
    assert set(RESULT_COLUMNS) <= set(df.columns) and len(df) == 3
    printed = capsys.readouterr().out
    assert "retdev" in printed and "ft" in printed


def test_cli_errors_and_methods(capsys):
    assert main(["run", "--methods", "zzz"]) == 2
    assert "allowed: original, retrain" in capsys.readouterr().err
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    assert "ngplus" in text and "ceil(0.2 * E_train)" in text


def test_hyperparameters_reach_the_method(tiny, device):
    """A row computed with other hyperparameters must come from a differently unlearned model."""
    store, df = tiny
    base = df[(df.method == "ga") & (df.seed == 0)].iloc[0]
    other = run_grid(device=str(device), store=Store(store.root), hparams={"ga": {"lr": 0.0}}, **TINY)
    row = other[(other.method == "ga") & (other.seed == 0)].iloc[0]
    orig = df[(df.method == "original") & (df.seed == 0)].iloc[0]
    assert row["l2_to_retrained"] == pytest.approx(orig["l2_to_retrained"])  # lr 0 = no change
    assert base["l2_to_retrained"] != pytest.approx(orig["l2_to_retrained"])
