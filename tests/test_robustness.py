"""A store that cannot lie, runs that survive being killed, bad input refused before any
training (issue 14, parts 1, 4 and 5).

- Corruptions: every kind of damage to every entry type (``.pt`` checkpoints, ``.json``
  result rows, ``.npz`` arrays such as the dataset cache), a garbled Optuna journal and a
  truncated dataset cache are detected, moved aside with a warning naming the file and
  recomputed; an entry copied over another is an error naming both keys. End to end, a
  corrupt original model or a copied result file no longer yields wrong rows.
- Kills: ``unlearnlib run`` killed with SIGKILL after its first result, then rerun, gives
  the rows of an uninterrupted run; Ctrl-C prints one line and exits 130.
- Concurrency: processes asking for one missing key compute it once; readers never see
  a torn file; concurrent recovery of a corrupt entry recomputes it once.
- Bad input: each value of the issue's list gets one ``unlearnlib: error:`` line naming
  the input and what is allowed, with nothing trained and nothing written.

Everything runs on digits / small_cnn with 1-2 epochs.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnlib import training
from unlearnlib.cli import main
from unlearnlib.datasets import embedded, load_raw
from unlearnlib.store import EntryMismatchError, Store, atomic_write_bytes, content_key

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--dataset", "digits", "--model", "small_cnn", "--methods", "original,retrain,ft",
       "--seeds", "0,1", "--epochs", "2", "--quiet"]
#: Columns that are functions of the seed and the data alone (timings are not).
NUMBERS = ["retain_acc", "forget_acc", "val_acc", "test_acc", "mia_val", "mia_test", "retdev", "l2_to_retrained"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[["method", "seed", *NUMBERS]].sort_values(["method", "seed"]).reset_index(drop=True)


def _run(store: Path, out: Path | None = None, *extra: str) -> int:
    return main([*RUN, "--store", str(store), *(["--out", str(out)] if out else []), *extra])


def _no_tmp(root: Path) -> bool:
    return not [p for p in root.rglob("*.tmp")]


# --------------------------------------------------------------------------- corruptions


SPEC_A, SPEC_B = {"role": "a", "seed": 0}, {"role": "b", "seed": 1}
WEIGHTS = torch.arange(2048, dtype=torch.float32)  # bytes findable in the file


def _build(fmt: str, spec: dict):
    """The value an entry of format ``fmt`` holds for ``spec`` (a function of the spec)."""
    s = float(spec["seed"])
    if fmt == "pt":
        return {"w": WEIGHTS + s, "b": torch.ones(3)}, {"seconds": 1.0}
    if fmt == "json":
        return [{"method": spec["role"], "acc": 0.125 + s, "note": "x" * 300}]
    return {"x": np.arange(4096, dtype=np.float64) + s, "y": np.arange(10)}


def _entry(store: Store, fmt: str, spec: dict, calls: list):
    def make():
        calls.append(spec["role"])
        return _build(fmt, spec)

    if fmt == "pt":
        return store.checkpoint("models", spec, make)[0]
    if fmt == "json":
        return store.rows("results", spec, make)
    return store.arrays("datasets", spec, make)


def _path(root: Path, fmt: str, spec: dict) -> Path:
    kind = {"pt": "models", "json": "results", "npz": "datasets"}[fmt]
    return root / kind / f"{content_key(kind, spec)}.{fmt}"


def _same(fmt: str, a, b) -> bool:
    if fmt == "pt":
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if fmt == "json":
        return a == b
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _flip(data: bytes, at: int, n: int = 64) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + n]) + data[at + n:]


def _data_offset(fmt: str, data: bytes) -> int:
    """Where the payload sits: the weights' bytes, the rows' text, the array's bytes."""
    needle = {"pt": WEIGHTS[100:116].numpy().tobytes(), "json": b"xxxxxxxxxxxxxxxx",
              "npz": np.arange(100, 116, dtype=np.float64).tobytes()}[fmt]
    at = data.find(needle)
    assert at > 64, "payload not found where expected"
    return at


def _edit(fmt: str, path: Path) -> None:
    """Change one stored value, keeping the file well-formed (its hash is left as it was)."""
    if fmt == "pt":
        blob = torch.load(path, weights_only=True)
        blob["state_dict"]["w"][5] += 1.0
        buf = io.BytesIO()
        torch.save(blob, buf)
        path.write_bytes(buf.getvalue())
    elif fmt == "json":
        obj = json.loads(path.read_text())
        obj["rows"][0]["acc"] = 0.99
        path.write_text(json.dumps(obj))
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["x"][7] = -1.0
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.write_bytes(buf.getvalue())


CORRUPTIONS = {
    "truncate": lambda fmt, p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda fmt, p: p.write_bytes(b""),
    "flip-header": lambda fmt, p: p.write_bytes(_flip(p.read_bytes(), 0)),
    "flip-data": lambda fmt, p: p.write_bytes(_flip(p.read_bytes(), _data_offset(fmt, p.read_bytes()))),
    "random": lambda fmt, p: p.write_bytes(np.random.default_rng(0).bytes(len(p.read_bytes()))),
    "edit-value": _edit,
}


@pytest.mark.parametrize("fmt", ["pt", "json", "npz"])
@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_entry_is_moved_aside_and_recomputed(tmp_path, fmt, kind):
    calls: list = []
    first = _entry(Store(tmp_path), fmt, SPEC_A, calls)
    path = _path(tmp_path, fmt, SPEC_A)
    CORRUPTIONS[kind](fmt, path)
    store = Store(tmp_path)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + r" is corrupt .*moved it to .*\.corrupt"):
        again = _entry(store, fmt, SPEC_A, calls)
    assert calls == ["a", "a"] and store.misses == 1  # detected and recomputed
    assert _same(fmt, first, again)
    assert (path.parent / (path.name + ".corrupt")).is_file() and store.corrupt
    assert Store(tmp_path).verify() == {} and _no_tmp(tmp_path)  # nothing wrong remains
    third = Store(tmp_path)
    assert _same(fmt, _entry(third, fmt, SPEC_A, calls), first) and third.hits == 1 and len(calls) == 2


@pytest.mark.parametrize("fmt", ["pt", "json", "npz"])
def test_entry_copied_over_another_names_both_keys(tmp_path, fmt):
    calls: list = []
    _entry(Store(tmp_path), fmt, SPEC_A, calls)
    b = _entry(Store(tmp_path), fmt, SPEC_B, calls)
    pa, pb = _path(tmp_path, fmt, SPEC_A), _path(tmp_path, fmt, SPEC_B)
    shutil.copy(pb, pa)  # "seed 1's file over seed 0's"
    with pytest.raises(EntryMismatchError, match=rf"{pa.stem}.*holds the entry of key {pb.stem}.*seed: 1 instead of 0"):
        _entry(Store(tmp_path), fmt, SPEC_A, calls)
    assert calls == ["a", "b"]  # nothing computed from the wrong entry
    assert not pa.exists() and (pa.parent / (pa.name + ".corrupt")).is_file()  # the wrong file is gone
    assert _same(fmt, _entry(Store(tmp_path), fmt, SPEC_B, calls), b)  # B untouched
    assert _same(fmt, _entry(Store(tmp_path), fmt, SPEC_A, calls), _build(fmt, SPEC_A) if fmt != "pt"
                 else _build(fmt, SPEC_A)[0])
    assert calls == ["a", "b", "a"] and Store(tmp_path).verify() == {}


def test_garbled_optuna_journal_is_moved_aside(tmp_path):
    """The lead's journal recovery (studies/trials.py), exercised here."""
    optuna = pytest.importorskip("optuna")
    from unlearnlib.studies import trials

    store = Store(tmp_path)
    path = trials.journal_path(store, "study")
    path.write_bytes(b'{"op_code": 0, "worker_id": "w"\n\x00\xff\xfe garbled\n')
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + r" could not be read.*moved to .*\.corrupt"):
        study = trials.open_study(store, "study", 1, ["x"])
    assert path.with_name(path.name + ".corrupt").is_file()
    study.add_trial(optuna.trial.create_trial(values=[1.0], params={}, distributions={}))
    assert len(trials.open_study(store, "study", 1, ["x"]).trials) == 1  # the new journal works


@pytest.fixture
def small_mnist1d(monkeypatch):
    """MNIST-1D with 300 samples: generated in well under a second (its own cache key)."""
    monkeypatch.setattr(embedded, "MNIST1D_SAMPLES", 300)


def test_truncated_dataset_cache_is_regenerated(tmp_path, small_mnist1d):
    with embedded.dataset_cache(tmp_path):
        raw = load_raw("mnist1d")
        (path,) = (tmp_path / "datasets").glob("*.npz")
        path.write_bytes(path.read_bytes()[:1000])
        with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + " is corrupt"):
            again = load_raw("mnist1d")
    assert torch.equal(raw.x_train, again.x_train) and torch.equal(raw.y_test, again.y_test)
    assert path.with_name(path.name + ".corrupt").is_file() and Store(tmp_path).verify() == {}


def test_dataset_cache_copied_over_another_is_an_error(tmp_path, monkeypatch, small_mnist1d):
    with embedded.dataset_cache(tmp_path):
        load_raw("mnist1d")
        (a,) = (tmp_path / "datasets").glob("*.npz")
        monkeypatch.setattr(embedded, "MNIST1D_SAMPLES", 200)
        load_raw("mnist1d")
        (b,) = set((tmp_path / "datasets").glob("*.npz")) - {a}
        monkeypatch.setattr(embedded, "MNIST1D_SAMPLES", 300)
        shutil.copy(b, a)
        with pytest.raises(EntryMismatchError, match=rf"{a.stem}.*{b.stem}.*num_samples: 200 instead of 300"):
            load_raw("mnist1d")


def test_dataset_cache_lives_in_the_store_in_use(tmp_path, monkeypatch, small_mnist1d):
    """Part 5: ``--store DIR`` / ``run_grid(store=...)`` caches the data under DIR/datasets; a
    store without it copies the default store's verified entry instead of generating."""
    from unlearnlib.studies.experiment import run_grid

    default = tmp_path / "default"
    monkeypatch.setenv("UNLEARNLIB_STORE", str(default))
    generated = []
    real = embedded._generate_mnist1d
    monkeypatch.setattr(embedded, "_generate_mnist1d", lambda: generated.append(1) or real())
    with pytest.raises(ValueError, match="Model 'small_cnn' does not fit dataset 'mnist1d'"):
        run_grid(dataset="mnist1d", model="small_cnn", methods="original", seeds="0",
                 store=Store(tmp_path / "team"), show_progress=False)
    assert len(list((tmp_path / "team" / "datasets").glob("*.npz"))) == 1 and generated == [1]
    assert not default.exists()  # the default cache was not used
    load_raw("mnist1d")  # no store given: the default store
    with embedded.dataset_cache(tmp_path / "other"):
        load_raw("mnist1d")
    assert generated == [1, 1]  # the default generated once; "other" took a copy of it
    assert len(list((tmp_path / "other" / "datasets").glob("*.npz"))) == 1


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """An uninterrupted run (digits / small_cnn, 2 epochs, seeds 0 and 1) and its rows."""
    root = tmp_path_factory.mktemp("clean")
    assert _run(root / "store", root / "rows.parquet") == 0
    return root / "store", _rows(pd.read_parquet(root / "rows.parquet"))


def _copy_store(clean_store: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(clean_store, dst)
    return dst


def _find(store: Path, kind: str, **match) -> Path:
    """The entry of ``kind`` whose spec has the given fields."""
    for p in sorted((store / kind).glob("*.*")):
        if p.suffix == ".pt":
            spec = json.loads(torch.load(p, weights_only=True)["meta"])["spec"]
        elif p.suffix == ".json":
            spec = json.loads(p.read_text())["spec"]
        else:
            continue
        if all(spec.get(k) == v for k, v in match.items()):
            return p
    raise AssertionError(f"no {kind} entry with {match}")


def test_corrupt_original_is_retrained_not_used(clean, tmp_path):
    """The issue's case: 64 flipped bytes inside an original model and one dependent result
    deleted. The old store loaded the corrupt weights and cached an ft row from them."""
    store = _copy_store(clean[0], tmp_path)
    original = _find(store, "models", role="original", seed=0)
    state = torch.load(original, weights_only=True)["state_dict"]
    big = max(state.values(), key=lambda t: t.numel())
    data = original.read_bytes()
    at = data.find(big.reshape(-1)[:32].numpy().tobytes())
    assert at > 0
    original.write_bytes(_flip(data, at + 16))
    _find(store, "results", method="ft", seed=0).unlink()
    with pytest.warns(RuntimeWarning, match=re.escape(str(original)) + " is corrupt"):
        assert _run(store, tmp_path / "rows.parquet") == 0
    pd.testing.assert_frame_equal(_rows(pd.read_parquet(tmp_path / "rows.parquet")), clean[1])
    assert original.with_name(original.name + ".corrupt").is_file() and Store(store).verify() == {}


@pytest.mark.parametrize("kind,match", [("results", {"method": "ft"}), ("models", {"role": "original"})])
def test_seed0_copied_over_seed1_is_an_error_then_recomputed(clean, tmp_path, capsys, kind, match):
    """Copying seed 0's result JSON (or .pt) over seed 1's gave two seed-0 rows, silently."""
    store = _copy_store(clean[0], tmp_path)
    s0, s1 = _find(store, kind, seed=0, **match), _find(store, kind, seed=1, **match)
    shutil.copy(s0, s1)
    assert _run(store, tmp_path / "rows.parquet") == 1  # a damaged store, not bad input (exit 2)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("unlearnlib: error: Store entry")
    assert s1.stem in err and s0.stem in err and "copied or moved over" in err
    assert not (tmp_path / "rows.parquet").exists()
    assert _run(store, tmp_path / "rows.parquet") == 0  # the wrong file was moved aside: recomputed
    pd.testing.assert_frame_equal(_rows(pd.read_parquet(tmp_path / "rows.parquet")), clean[1])
    assert Store(store).verify() == {}


@pytest.mark.parametrize("kind,match,damage", [
    ("results", {"method": "ft", "seed": 1}, lambda p: p.write_bytes(p.read_bytes()[:-40])),
    ("models", {"role": "retrain", "seed": 1}, lambda p: p.write_bytes(b"")),
])
def test_damaged_entry_in_a_run_is_recomputed(clean, tmp_path, kind, match, damage):
    """A truncated result JSON or an empty .pt crashed every later run with a traceback."""
    store = _copy_store(clean[0], tmp_path)
    path = _find(store, kind, **match)
    damage(path)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + " is corrupt"):
        assert _run(store, tmp_path / "rows.parquet") == 0
    pd.testing.assert_frame_equal(_rows(pd.read_parquet(tmp_path / "rows.parquet")), clean[1])
    assert Store(store).verify() == {}


def _default_sigint() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and Python
    then installs no KeyboardInterrupt handler: the child gets what a terminal user has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(store: Path, args: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unlearnlib", *(args or RUN), "--store", str(store)],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def _wait_for(proc: subprocess.Popen, folder: Path, pattern: str) -> None:
    """Poll until a file matching ``pattern`` appears in ``folder`` (or the process ends)."""
    deadline = time.monotonic() + 600  # a hang guard, not a timing assertion
    while proc.poll() is None and not list(folder.glob(pattern)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before {pattern} appeared: {proc.stderr.read()}"


def test_sigkill_after_first_result_then_rerun_gives_uninterrupted_rows(clean, tmp_path):
    store = tmp_path / "store"
    proc = _start(store)
    _wait_for(proc, store / "results", "*.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = list((store / "results").glob("*.json"))
    assert 1 <= len(done) < 6  # killed in the middle of the grid
    assert Store(store).verify() == {}  # what the killed run left is sound
    assert _run(store, tmp_path / "rows.parquet") == 0
    pd.testing.assert_frame_equal(_rows(pd.read_parquet(tmp_path / "rows.parquet")), clean[1])
    assert Store(store).verify() == {} and _no_tmp(store)


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    store = tmp_path / "store"
    # eight seeds: after the first checkpoint appears there is still work to interrupt (with
    # RUN's two seeds an idle machine finished the run before the signal was handled)
    proc = _start(store, [*RUN[: RUN.index("--seeds") + 1], "0-7", *RUN[RUN.index("--seeds") + 2:]])
    _wait_for(proc, store / "models", "*.pt")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines() == [
        "unlearnlib: interrupted (nothing half-written is left in the store)"]
    assert Store(store).verify() == {}


# --------------------------------------------------------------------------- concurrency

CTX = mp.get_context("fork")
N_PROCS = 4


def _ask(root: str, fmt: str, barrier, log: str, queue, corrupt_first: bool = False) -> None:
    import warnings

    warnings.simplefilter("ignore")
    store = Store(root)
    barrier.wait()

    def make():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.2)  # widen the window in which the others ask for the same key
        return _build(fmt, SPEC_A)

    if fmt == "pt":
        value = store.checkpoint("models", SPEC_A, make)[0]["w"].tolist()
    else:
        value = store.rows("results", SPEC_A, make)
    queue.put((value, store.hits, store.misses, len(store.corrupt)))


def _run_askers(tmp_path: Path, fmt: str) -> tuple[list, list[str]]:
    log = tmp_path / "computed.log"
    barrier, queue = CTX.Barrier(N_PROCS), CTX.Queue()
    procs = [CTX.Process(target=_ask, args=(str(tmp_path / "store"), fmt, barrier, str(log), queue))
             for _ in range(N_PROCS)]
    for p in procs:
        p.start()
    out = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0
    return out, log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("fmt", ["json", "pt"])
def test_concurrent_writers_of_one_key_compute_it_once(tmp_path, fmt):
    out, computed = _run_askers(tmp_path, fmt)
    assert len(computed) == 1  # one process computed, the others read its entry
    assert len({json.dumps(v) for v, *_ in out}) == 1
    assert sorted(m for _, _, m, _ in out) == [0] * (N_PROCS - 1) + [1]
    files = list((tmp_path / "store").rglob(f"*.{fmt}"))
    assert len(files) == 1 and Store(tmp_path / "store").verify() == {} and _no_tmp(tmp_path)


def test_concurrent_recovery_of_a_corrupt_entry(tmp_path):
    store = tmp_path / "store"
    Store(store).rows("results", SPEC_A, lambda: _build("json", SPEC_A))
    path = _path(store, "json", SPEC_A)
    path.write_bytes(path.read_bytes()[:50])
    out, computed = _run_askers(tmp_path, "json")
    assert len(computed) == 1 and sum(c for *_, c in out) == 1  # moved aside once, recomputed once
    assert all(v == _build("json", SPEC_A) for v, *_ in out)
    assert sorted(p.name for p in (store / "results").iterdir()) == [path.name, path.name + ".corrupt"]
    assert Store(store).verify() == {}


def _writer(path: str, payload: bytes, n: int, barrier) -> None:
    barrier.wait()
    for _ in range(n):
        atomic_write_bytes(path, payload)


def test_readers_never_see_a_torn_file(tmp_path):
    """Three processes replace one file 40 times each while this one reads it: every read
    is one writer's whole payload, and no temporary file remains."""
    path = tmp_path / "entry.bin"
    payloads = [bytes([i]) * (1 << 18) + os.urandom(64) for i in range(3)]
    barrier = CTX.Barrier(4)
    procs = [CTX.Process(target=_writer, args=(str(path), p, 40, barrier)) for p in payloads]
    for p in procs:
        p.start()
    barrier.wait()
    while any(p.is_alive() for p in procs):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # before the first replace
            continue
        assert data in payloads
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert path.read_bytes() in payloads and [q.name for q in tmp_path.iterdir()] == ["entry.bin"]


# --------------------------------------------------------------------------- bad input


def _unwritable(tmp_path: Path) -> Path:
    """A folder no file can be created in: read-only for a normal user; as root (who
    ignores permissions) sysfs, which refuses new files to everyone."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for folder in (ro, Path("/sys")):
        try:
            (folder / "probe").write_bytes(b"")
        except OSError:
            return folder
        (folder / "probe").unlink()
    pytest.skip("no unwritable folder on this machine")


def _corrupt_cifar(tmp_path: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_local_datasets import write_cifar10

    write_cifar10(tmp_path / "data")
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:500])
    return ["--dataset", "cifar10", "--data-root", str(tmp_path / "data")]


def _hp(value: str) -> list[str]:
    return ["--hparams", value]


#: (id, extra CLI arguments (given tmp_path), what the one error line must say)
BAD_RUNS = [
    ("lr-abc", lambda t: _hp('{"ft": {"lr": "abc"}}'), r"Hyperparameter 'lr' of method 'ft' must be a finite number >= 0; got 'abc'"),
    ("lr-negative", lambda t: _hp('{"ft": {"lr": -0.1}}'), r"'lr' of method 'ft' must be a finite number >= 0; got -0.1"),
    ("lr-nan", lambda t: _hp('{"ft": {"lr": NaN}}'), r"'lr' of method 'ft' must be a finite number >= 0; got nan"),
    ("lr-inf", lambda t: _hp('{"ft": {"lr": Infinity}}'), r"'lr' of method 'ft' must be a finite number >= 0; got inf"),
    ("batch-size-0", lambda t: _hp('{"ft": {"batch_size": 0}}'), r"'batch_size' of method 'ft' must be an integer >= 1; got 0"),
    ("batch-size-64.5", lambda t: _hp('{"ft": {"batch_size": 64.5}}'), r"'batch_size' of method 'ft' must be an integer >= 1; got 64.5"),
    ("epochs-negative", lambda t: _hp('{"ft": {"epochs": -2}}'), r"'epochs' of method 'ft' must be an integer >= 0; got -2"),
    ("epochs-0", lambda t: _hp('{"ft": {"epochs": 0}}'), r"'epochs' of method 'ft' is 0: a result row would unlearn with no training"),
    ("bn-mode-foo", lambda t: _hp('{"ft": {"bn_mode": "foo"}}'), r"'bn_mode' of method 'ft' must be one of 'train', 'eval'; got 'foo'"),
    ("hparams-not-json", lambda t: _hp("{ft: {lr: 1}}"), r"--hparams is not valid JSON .* e\.g\."),
    ("hparams-not-dict-of-dicts", lambda t: _hp('{"ft": 0.1}'), r"must map method keys to objects of hyperparameters"),
    ("hparams-a-list", lambda t: _hp("[1, 2]"), r"must map method keys to objects of hyperparameters"),
    ("forget-class-inf", lambda t: ["--forget", "class:inf"], r"Forget spec 'class:inf': 'inf' is not a finite number"),
    ("seeds-descending", lambda t: ["--seeds", "0,3-1"], r"the range '3-1' descends"),
    ("seeds-list-of-float", lambda t: ["--seeds", "[0.7]"], r"'\[0\.7\]' is not a seed or a range"),
    ("seeds-duplicate", lambda t: ["--seeds", "0,0"], r"seed 0 appears twice"),
    ("seeds-True", lambda t: ["--seeds", "True"], r"'True' is not a seed"),
    ("seeds-2**40", lambda t: ["--seeds", str(2**40)], r"1099511627776 is out of range"),
    ("seeds-huge-range", lambda t: ["--seeds", "0-9999999999"], r"more than 10,000 seeds"),
    ("device-foo", lambda t: ["--device", "foo"], r"Unknown or unsupported device 'foo'; allowed: cpu, cuda"),
    ("device-mps", lambda t: ["--device", "mps"], r"unsupported device 'mps' \(this library runs on the CPU or on CUDA"),
    ("model-does-not-fit", lambda t: ["--model", "cnn1d"],
     r"Model 'cnn1d' does not fit dataset 'digits' \(inputs of shape \(1, 8, 8\), 10 classes\): .*models that fit: .*small_cnn"),
    ("cifar-batch-truncated", _corrupt_cifar, r"CIFAR10 file .*cifar-10-batches-py/data_batch_1 cannot be read .*truncated or corrupt"),
    ("out-is-a-folder", lambda t: ["--out", str(_folder(t / "rows.parquet"))], r"Output file .*rows\.parquet is a folder"),
    ("out-unknown-suffix", lambda t: ["--out", str(t / "rows.txt")], r"unknown suffix '\.txt'; allowed: \.parquet, \.csv"),
    ("out-unwritable", lambda t: ["--out", str(_unwritable(t) / "rows.parquet")], r"Output folder .* cannot be written"),
    ("store-is-a-file", lambda t: ["--store", str(_file(t))], r"Store .*store\.txt cannot be written \(a file is in the way"),
    ("store-read-only", lambda t: ["--store", str(_unwritable(t) / "store")], r"Store .* cannot be written"),
]


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


def _file(t: Path) -> Path:
    (t / "store.txt").write_text("not a folder")
    return t / "store.txt"


@pytest.fixture
def no_training(monkeypatch):
    """Training raises: a refused input must be refused before anything trains."""

    def refuse(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train", refuse)


def _assert_refused(rc: int, err: str, expected: str, tmp_path: Path) -> None:
    assert rc == 2, err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err  # one line
    assert err.startswith("unlearnlib: error: ") and re.search(expected, err), err
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.json"))  # nothing computed
    assert not [p for p in tmp_path.rglob("*.parquet") if p.is_file()] and _no_tmp(tmp_path)  # nothing half-written


@pytest.mark.parametrize("extra,expected", [c[1:] for c in BAD_RUNS], ids=[c[0] for c in BAD_RUNS])
def test_bad_run_input_is_refused_before_training(tmp_path, capsys, no_training, extra, expected):
    store = tmp_path / "s"
    args = [*RUN, "--store", str(store), *extra(tmp_path)]
    rc = main(args)
    _assert_refused(rc, capsys.readouterr().err, expected, tmp_path)


def test_full_store_is_refused_before_training(tmp_path, capsys, no_training, monkeypatch):
    import shutil as sh

    from unlearnlib.store import files as store_mod

    usage = sh.disk_usage(tmp_path)
    monkeypatch.setattr(store_mod.shutil, "disk_usage", lambda p: usage._replace(free=0))
    rc = main([*RUN, "--store", str(tmp_path / "s")])
    _assert_refused(rc, capsys.readouterr().err, r"Store .* cannot be written \(the disk is full", tmp_path)


def test_hyperparameter_rule_allows_legal_values_outside_the_search_range():
    from unlearnlib import methods

    ft = methods.get("ft")
    hp = ft.resolve_hparams({"lr": 0.5, "batch_size": 32, "epochs": 1, "weight_decay": 0.0})
    assert hp["lr"] == 0.5 and hp["batch_size"] == 32  # outside the search range, legal
    assert type(ft.resolve_hparams({"batch_size": np.int64(64)})["batch_size"]) is int
    nt = methods.get("nabla_tau")
    assert nt.resolve_hparams({"gap": "two-sided"})["gap"] == "two-sided"
    with pytest.raises(ValueError, match=r"'gap' of method 'nabla_tau' must be one of 'one-sided', 'two-sided'; got 'three'"):
        nt.resolve_hparams({"gap": "three"})
    with pytest.raises(ValueError, match=r"'epochs' of method 'prmq' must be a finite number >= 0; got -1"):
        methods.get("prmq").resolve_hparams({"epochs": -1})
    assert methods.get("msg").resolve_hparams({"epochs": 0})["epochs"] == 0  # a surgery-only ablation
    with pytest.raises(ValueError, match=r"'lr' of method 'ft' must be a finite number >= 0; got True"):
        ft.resolve_hparams({"lr": True})
    for key in methods.available():  # every method's own defaults are legal values
        m = methods.get(key)
        assert m.resolve_hparams(dict(m.defaults)) == m.defaults


@pytest.mark.parametrize("seeds,expected", [
    (True, r"got True"), ([0.7], r"0\.7 is not an integer"), ("0,0", "appears twice"), ([1, 1], "appears twice"),
    (2**40, "out of range"), ("0-9999999999", "more than 10,000"), ("0,3-1", "descends"), ("", "an empty entry"),
])
def test_parse_seeds_refuses(seeds, expected):
    from unlearnlib.studies.experiment import parse_seeds

    with pytest.raises(ValueError, match=expected):
        parse_seeds(seeds)


def test_grid_config_refuses_a_no_op_epochs_row(tmp_path, no_training):
    from unlearnlib.studies.experiment import run_grid

    with pytest.raises(ValueError, match=r"'epochs' of method 'ft' is 0: a result row would unlearn with no training"):
        run_grid(dataset="digits", model="small_cnn", methods="ft", seeds="0", hparams={"ft": {"epochs": 0}},
                 store=Store(tmp_path), show_progress=False)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- the book

MINI_TOC = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/generated/benchmark\n"


@pytest.fixture
def book_root(tmp_path, monkeypatch) -> Path:
    """A book with the benchmark chapter and profiles that the notebooks would reject;
    papermill and the kernel lookup raise if anything tries to run."""
    pytest.importorskip("papermill")
    import papermill

    from unlearnlib.book import build

    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_toc.yml").write_text(MINI_TOC)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (tmp_path / "book" / "profiles.yml").write_text(
        "trials_text:\n  methods.ipynb: {n_trials: four}\n"
        "seeds_text:\n  benchmark.ipynb: {seeds: 3}\n"
        "bad_seeds:\n  benchmark.ipynb: {seeds: '0,x'}\n"
        "bad_methods:\n  benchmark.ipynb: {methods: 'original,zzz'}\n"
        "bad_forget:\n  benchmark.ipynb: {forget: 'random:2'}\n"
        "bad_epochs:\n  benchmark.ipynb: {epochs: -1}\n"
        "bad_device:\n  benchmark.ipynb: {device: foo}\n"
        "bad_hparams:\n  unrolling_sgd.ipynb: {method_hparams: {ft: {lr: -1}}}\n"
    )

    def refuse(*a, **k):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    monkeypatch.setattr(build.execute, "kernel_name", refuse)
    return tmp_path


@pytest.mark.parametrize("profile,expected", [
    ("trials_text", r"Parameter n_trials of notebook methods\.ipynb must be an integer \(its default is 4\); got 'four'"),
    ("seeds_text", r"Parameter seeds of notebook benchmark\.ipynb must be a string .*got 3"),
    ("bad_seeds", r"Parameter seeds='0,x' of notebook benchmark\.ipynb: Seeds must be"),
    ("bad_methods", r"Parameter methods='original,zzz' of notebook benchmark\.ipynb: Unknown method 'zzz'"),
    ("bad_forget", r"Parameter forget='random:2' .*Forget fraction must lie in \(0, 1\)"),
    ("bad_epochs", r"Parameter epochs=-1 .*must be a positive integer"),
    ("bad_device", r"Parameter device='foo' .*Unknown or unsupported device 'foo'"),
    ("bad_hparams", r"Parameter method_hparams=.*'lr' of method 'ft' must be a finite number >= 0; got -1"),
])
def test_book_profile_value_is_refused_before_a_kernel_starts(book_root, capsys, profile, expected):
    rc = main(["book", "--profile", profile, "--root", str(book_root)])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert re.search(expected, err), err
    assert not (book_root / "book" / "generated").exists()
