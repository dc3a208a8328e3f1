"""Issue 33 items 4-6: bad input is one clear line, before anything trains.

Each case was silently accepted, gave a traceback, or failed only after training. Every
test here stops training with a stub (:class:`Trained`), so a refusal that comes too late
fails the test instead of costing minutes. Found with
``unlearnlib run --dataset digits --model small_cnn --epochs 3 --seeds 0 --quiet --store S``.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from unlearnlib.cli import main
from unlearnlib.store import Store, content_key
from unlearnlib.studies import experiment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DIGITS = ["--dataset", "digits", "--model", "small_cnn", "--epochs", "3", "--seeds", "0", "--quiet",
          "--workers", "1"]
RUN = ["run", *DIGITS]
TUNE = ["tune", *DIGITS, "--trials", "1"]


class Trained(Exception):
    """Training (or the tuning setup) was reached: the input was not refused in time."""


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """Replace training and the tuning setup by a stub that records the call and raises."""
    calls: list = []

    def boom(*args, **kwargs):
        calls.append(args)
        raise Trained("training started")

    monkeypatch.setattr(experiment, "train_reference_models", boom)
    monkeypatch.setattr(experiment.Setup, "create", classmethod(lambda cls, *a, **k: boom(*a)))
    return calls


@pytest.fixture
def default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a store falls back to; must stay untouched."""
    path = tmp_path / "default-store"
    monkeypatch.setenv("UNLEARNLIB_STORE", str(path))
    return path


def error_line(capsys: pytest.CaptureFixture, *needles: str) -> str:
    """The one stderr line of a refused command (nothing else on stderr)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unlearnlib: error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


# --------------------------------------------------------------------------- 4. silently accepted


def test_run_refuses_a_repeated_method(tmp_path, no_training, capsys):
    assert main([*RUN, "--methods", "ft,ft", "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, "--methods", "'ft' twice")
    assert not no_training


def test_tune_refuses_a_repeated_method(tmp_path, no_training, capsys):
    assert main([*TUNE, "--method", "ft,ga,ft", "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, "--method", "'ft' twice")
    assert not no_training


@pytest.mark.parametrize("command", [RUN, [*TUNE, "--method", "ft"]], ids=["run", "tune"])
def test_an_empty_store_is_refused_not_the_default(command, default_store, no_training, capsys):
    assert main([*command, "--store", ""]) == 2
    error_line(capsys, "--store is empty")
    assert not no_training and not default_store.exists()


@pytest.mark.parametrize("option", ["--out", "--hparams", "--data-root", "--methods", "--forget"])
def test_an_empty_run_option_is_refused(option, tmp_path, default_store, no_training, capsys):
    assert main([*RUN, "--store", str(tmp_path / "S"), option, ""]) == 2
    error_line(capsys, f"{option} is empty")
    assert not no_training and not (tmp_path / "S").exists()


def test_empty_rerun_seeds_are_refused_not_the_tuning_seeds(tmp_path, no_training, capsys):
    assert main([*TUNE, "--method", "ft", "--rerun-seeds", "", "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, "--rerun-seeds is empty")
    assert not no_training


def test_ship_table_must_be_a_json_file(tmp_path, no_training, capsys):
    table = tmp_path / "t.yaml"
    assert main([*TUNE, "--method", "ft", "--ship", "--table", str(table), "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, "--table", str(table), ".json")
    assert not table.exists() and not no_training
    # a table that is not a tuned table, and --table without --ship (it would be ignored)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main([*TUNE, "--method", "ft", "--ship", "--table", str(bad), "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, str(bad))
    assert main([*TUNE, "--method", "ft", "--table", str(tmp_path / "t.json"), "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, "--table", "--ship")
    assert not no_training


# --------------------------------------------------------------------------- notebooks (4 and 5)


@functools.lru_cache(maxsize=None)
def _code_cells(name: str) -> list:
    import nbformat

    return [c for c in nbformat.read(str(NOTEBOOKS / name), as_version=4).cells if c.cell_type == "code"]


def _check_lines(name: str) -> str:
    """The setup cell's lines up to its parameter check (the first thing it does)."""
    lines = _code_cells(name)[1].source.splitlines()
    end = next(i for i, line in enumerate(lines) if "check_notebook_parameters(" in line)
    return "\n".join(lines[: end + 1])


@pytest.fixture
def ipython():
    """An in-process IPython shell (what papermill's kernel runs cells in), history in memory."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    yield shell
    InteractiveShell.clear_instance()


def _papermill_run(shell, name: str, parameters: dict):
    """Run the parameters cell, papermill's injected cell and the setup cell's check."""
    from papermill.translators import PythonTranslator

    shell.run_cell(_code_cells(name)[0].source, store_history=True)
    if parameters:
        shell.run_cell(PythonTranslator.codify(parameters), store_history=True)
    return shell.run_cell(_check_lines(name), store_history=True)


def test_every_notebook_checks_its_parameters_first():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names
    for name in names:
        first = _code_cells(name)[1].source.lstrip().splitlines()
        assert first[0] == "from unlearnlib.book.build import check_notebook_parameters", name
        assert f'check_notebook_parameters(globals(), "{name}")' in _check_lines(name), name


@pytest.mark.parametrize("parameters, message", [
    ({"nosuch": 1}, "Unknown parameter 'nosuch' for notebook benchmark.ipynb; allowed: dataset, model, methods, "
                    "seeds, forget, epochs, data_root, device."),
    ({"seeds": "abc"}, "Parameter seeds='abc' of notebook benchmark.ipynb: Seeds must be distinct"),
    ({"epochs": "3"}, "Parameter epochs='3' of notebook benchmark.ipynb: must be a positive integer"),
    ({"dataset": 3}, "Parameter dataset of notebook benchmark.ipynb must be a string"),
    ({"methods": "ft,ft"}, "'ft' is named twice"),
    ({"seeds": 3}, "got 3, which papermill's -p reads as a number: pass text with -r seeds 3."),
], ids=["unknown", "seeds-abc", "epochs", "type", "repeated-method", "seeds-number"])
def test_a_bad_papermill_parameter_is_one_line_in_the_kernel(ipython, capsys, parameters, message):
    from unlearnlib.book.build import NotebookParameterError

    result = _papermill_run(ipython, "benchmark.ipynb", parameters)
    assert isinstance(result.error_in_exec, NotebookParameterError) and isinstance(result.error_in_exec, ValueError)
    assert message in str(result.error_in_exec)
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(shown) == 1 and message in shown[0], shown  # the cell's whole error output


@pytest.mark.parametrize("parameters", [{}, {"seeds": "0-4", "epochs": 2, "forget": "class:3"}, {"seeds": "3"}])
def test_good_papermill_parameters_pass_the_kernel_check(ipython, parameters):
    result = _papermill_run(ipython, "benchmark.ipynb", parameters)
    assert result.error_in_exec is None and result.error_before_exec is None


def test_the_kernel_check_ignores_cells_that_only_look_injected(ipython):
    """A cell the user ran by hand is not papermill's unless it is the one after the parameters."""
    ipython.run_cell("# Parameters\nnot_a_parameter = 1\n", store_history=True)
    assert _papermill_run(ipython, "benchmark.ipynb", {}).error_in_exec is None


# --------------------------------------------------------------------------- 5. tracebacks


@pytest.mark.parametrize("raw", ["0", "-1", "abc"])
def test_a_bad_thread_count_is_one_line_not_an_import_traceback(raw):
    env = {**os.environ, "UNLEARNLIB_THREADS": raw}
    p = subprocess.run([sys.executable, "-m", "unlearnlib", "methods"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"unlearnlib: error: UNLEARNLIB_THREADS must be a positive integer (threads per process); got {raw!r}."]
    if raw == "abc":
        p = subprocess.run([sys.executable, "-m", "unlearnlib", "--help"], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0 and "usage: unlearnlib" in p.stdout and p.stderr == ""


def _write_cifar100(root: Path, labels: bool) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        batch = {"data": np.zeros((4, 3072), dtype=np.uint8), "coarse_labels": [0] * 4}
        if labels or name == "test":
            batch["fine_labels"] = [1, 2, 3, 4]
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{k}" for k in range(100)]}))
    return folder


def test_a_cifar100_batch_without_labels_is_named(tmp_path, no_training, capsys):
    from unlearnlib import data

    folder = _write_cifar100(tmp_path, labels=False)
    with pytest.raises(ValueError, match=rf"CIFAR100 file {re.escape(str(folder / 'train'))} cannot be read .*"
                                         r"'fine_labels'.*truncated or corrupt"):
        data.load_raw("cifar100", str(tmp_path))
    assert main(["run", "--dataset", "cifar100", "--model", "resnet18", "--seeds", "0", "--quiet", "--workers", "1",
                 "--data-root", str(tmp_path), "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, str(folder / "train"), "fine_labels")
    assert not no_training


def _forge(store: Store, rows) -> tuple:
    """A result entry (ft, seed 0 of the digits grid) holding ``rows``, with a valid hash."""
    from unlearnlib.data import load_splits
    from unlearnlib.training import default_recipe

    splits = load_splits("digits", "random:0.1", None, "cpu")
    recipe = default_recipe("digits").with_(epochs=3)
    spec = experiment.method_spec("ft", splits, "small_cnn", recipe, 0)
    store.rows("results", spec, lambda: rows)
    return store.root / "results" / f"{content_key('results', spec)}.json", recipe


def _row(**changes) -> dict:
    row = {c: 0.5 for c in experiment.RESULT_COLUMNS}
    row.update(dataset="digits", model="small_cnn", method="ft", seed=0, forget="random:0.1", hparams="{}")
    return {**row, **changes}


@pytest.mark.parametrize("rows, needle", [([_row(retain_acc="abc")], "'retain_acc'"), ([1, 2], "not a list of rows")],
                         ids=["abc-in-a-number-column", "not-records"])
def test_a_forged_result_entry_is_one_line_naming_it(tmp_path, monkeypatch, capsys, rows, needle):
    store = Store(tmp_path / "S")
    path, recipe = _forge(store, rows)
    monkeypatch.setattr(experiment, "train_reference_models",
                        lambda splits, model, seed, *a, **k: SimpleNamespace(model_name=model, recipe=recipe, seed=seed))
    assert main([*RUN, "--methods", "ft", "--store", str(store.root)]) == 2
    error_line(capsys, str(path), needle)


# --------------------------------------------------------------------------- 6. late


@pytest.fixture
def read_only():
    """Make a folder unwritable (immutable for root, which ignores permissions); undone after."""
    done: list[Path] = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("root ignores permissions and chattr +i is not available here")
        else:
            path.chmod(0o555)
        done.append(path)
        return path

    yield make
    for path in done:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)])
        else:
            path.chmod(0o755)


@pytest.mark.parametrize("command, kind", [(RUN, "results"), (RUN, "models"), ([*TUNE, "--method", "ft"], "optuna")])
def test_a_read_only_store_folder_is_refused_before_training(tmp_path, read_only, no_training, capsys, command, kind):
    folder = read_only(tmp_path / "S" / kind)
    assert main([*command, "--store", str(tmp_path / "S")]) == 2
    error_line(capsys, str(folder), "cannot be written")
    assert not no_training


def test_a_file_in_place_of_a_store_folder_is_moved_aside_before_training(tmp_path, no_training):
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "models").write_text("x")
    with pytest.warns(RuntimeWarning, match=r"Store folder .*models is corrupt: it is a file.*models\.corrupt"):
        with pytest.raises(Trained):  # the warning came first
            main([*RUN, "--store", str(tmp_path / "S")])
    assert (tmp_path / "S" / "models").is_dir() and (tmp_path / "S" / "models.corrupt").read_text() == "x"


def test_the_command_line_prints_a_warning_as_one_line(tmp_path):
    """Outside pytest (which records warnings) the store's warning is one line, then the run
    goes on (here: to a data folder that is not there, its own one line)."""
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "results").write_text("x")
    p = subprocess.run([sys.executable, "-m", "unlearnlib", "run", "--dataset", "cifar10", "--model", "resnet18",
                        "--quiet", "--workers", "1", "--store", str(tmp_path / "S"), "--data-root",
                        str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=300)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) > 1, p.stderr
    assert err[0].startswith(f"unlearnlib: warning: Store folder {tmp_path / 'S' / 'results'} is corrupt"), err
    assert err[1].startswith("unlearnlib: error: CIFAR10 data not found"), err


def test_a_damaged_optuna_journal_is_moved_aside_and_named_on_first_contact(tmp_path):
    optuna = pytest.importorskip("optuna")
    from unlearnlib.studies import trials

    def trial(v: float):
        return optuna.trial.create_trial(values=[v], params={}, distributions={})

    store = Store(tmp_path)
    trials.open_study(store, "s", 1, ["x"]).add_trial(trial(1.0))
    path = trials.journal_path(store, "s")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b",", b" ", 1)  # the last record loses a comma, its newline stays
    path.write_bytes(b"".join(lines))
    path.with_name(path.name + ".corrupt").write_text("an older one, kept")
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + rf" could not be read \(line {len(lines)}: "
                                            r".*delimiter.*\); moved to .*\.corrupt\.1"):
        study = trials.open_study(store, "s", 1, ["x"])
    assert path.with_name(path.name + ".corrupt").read_text() == "an older one, kept"
    assert path.with_name(path.name + ".corrupt.1").is_file()
    study.add_trial(trial(2.0))  # the fresh journal takes writes and reads them back
    assert [t.values for t in trials.open_study(store, "s", 1, ["x"]).trials] == [[2.0]]


def test_the_library_checks_every_kind_folder_before_training(tmp_path, read_only):
    """Issue 33: not only the command line: ``Store.check_writable`` (what ``run_grid`` and
    ``Setup.create`` call first) refuses a read-only kind folder in one line, by default every
    kind folder that is there, or only those named."""
    from unlearnlib.store import Store

    (tmp_path / "S" / "models").mkdir(parents=True)
    folder = read_only(tmp_path / "S" / "results")
    with pytest.raises(ValueError, match=rf"Store folder {re.escape(str(folder))} cannot be written") as info:
        Store(tmp_path / "S").check_writable()
    assert "\n" not in str(info.value)
    Store(tmp_path / "S").check_writable(["models"])  # a run that writes no results passes


def test_the_library_refuses_a_method_named_twice():
    """Issue 33: ``parse_methods`` (every study's entry point) refuses ``ft,ft`` as the command
    line does, in one line."""
    from unlearnlib import methods

    with pytest.raises(ValueError, match=r"'ft' is named twice in 'ft,ga,ft'; give each method once"):
        methods.parse_methods("ft,ga,ft")
    assert methods.parse_methods("ft,ga") == ["ft", "ga"]
