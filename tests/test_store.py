import os

import pytest
import torch

from unlearnlib.store import Store, atomic_write_bytes, content_key


def test_checkpoint_cache_hit_builds_once(tmp_path):
    store, calls = Store(tmp_path), []

    def build():
        calls.append(1)
        return {"w": torch.ones(3)}, {"seconds": 1.5}

    s1, m1 = store.checkpoint("models", {"a": 1}, build)
    s2, m2 = store.checkpoint("models", {"a": 1}, build)
    assert len(calls) == 1 and store.hits == 1 and store.misses == 1
    assert torch.equal(s1["w"], s2["w"]) and m1["seconds"] == m2["seconds"] == 1.5
    store.checkpoint("models", {"a": 2}, build)  # a different spec is a different entry
    assert len(calls) == 2


def test_rows_cache_and_key_canonical(tmp_path):
    store = Store(tmp_path)
    rows = store.rows("results", {"x": 1, "y": [1, 2]}, lambda: [{"acc": 0.5}])
    again = store.rows("results", {"y": [1, 2], "x": 1}, lambda: [{"acc": 0.0}])
    assert rows == again == [{"acc": 0.5}]
    assert content_key("k", {"a": 1, "b": 2}) == content_key("k", {"b": 2, "a": 1})
    assert content_key("k", {"a": 1}) != content_key("j", {"a": 1})


def test_failed_build_leaves_nothing(tmp_path):
    store = Store(tmp_path)

    def boom():
        raise KeyboardInterrupt  # a killed run

    with pytest.raises(KeyboardInterrupt):
        store.rows("results", {"x": 1}, boom)
    assert not store.has("results", {"x": 1})
    assert list(tmp_path.rglob("*.json")) == []


def test_atomic_write_interrupted_midway_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def die(*a, **k):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new-and-longer")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temp file left


# --------------------------------------------------------------------------- issue 14


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, mask):
    """Entries of a shared store are readable as the umask says (mkstemp alone gives 0600)."""
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        Store(tmp_path).rows("results", {"x": 1}, lambda: [{"acc": 0.5}])
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == want
    assert [p.stat().st_mode & 0o777 for p in (tmp_path / "results").iterdir()] == [want]


def test_format1_entries_are_checked_read_and_upgraded(tmp_path):
    """Entries written before hashes existed: the spec is compared, then they get a hash."""
    import io
    import json

    from unlearnlib.store import EntryMismatchError

    spec = {"seed": 0}
    path = tmp_path / "results" / f"{content_key('results', spec)}.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"spec": spec, "rows": [{"acc": 0.25}]}))
    store = Store(tmp_path)
    assert store.rows("results", spec, lambda: pytest.fail("recomputed")) == [{"acc": 0.25}]
    assert "sha256" in json.loads(path.read_text()) and Store(tmp_path).verify() == {}
    ckpt = tmp_path / "models" / f"{content_key('models', spec)}.pt"
    ckpt.parent.mkdir()
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": json.dumps({"seconds": 2.0, "spec": {"seed": 1}})}, buf)
    ckpt.write_bytes(buf.getvalue())  # a format-1 checkpoint of another spec
    with pytest.raises(EntryMismatchError, match=r"seed: 1 instead of 0"):
        store.checkpoint("models", spec, lambda: pytest.fail("recomputed"))


def test_stale_temporary_files_of_dead_processes_are_swept(tmp_path):
    import subprocess
    import sys

    from unlearnlib.store import _HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "results").mkdir()
    files = {
        "dead": tmp_path / "results" / f".k.json.~{_HOST}~{dead}~ab12.tmp",
        "alive": tmp_path / "results" / f".k.json.~{_HOST}~{os.getpid()}~cd34.tmp",
        "other host": tmp_path / "results" / f".k.json.~elsewhere~{dead}~ef56.tmp",
    }
    for p in files.values():
        p.write_bytes(b"half")
    Store(tmp_path).check_writable()
    assert [k for k, p in files.items() if p.exists()] == ["alive", "other host"]


def test_check_writable_leaves_nothing_behind(tmp_path):
    Store(tmp_path / "a" / "b" / "store").check_writable()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"Store .*file.* cannot be written \(a file is in the way"):
        Store(tmp_path / "file" / "store").check_writable()


def test_verify_names_every_bad_entry(tmp_path):
    store = Store(tmp_path)
    store.rows("results", {"x": 1}, lambda: [{"acc": 0.5}])
    store.rows("results", {"x": 2}, lambda: [{"acc": 0.5}])
    store.checkpoint("models", {"x": 1}, lambda: ({"w": torch.ones(3)}, {}))
    assert store.verify() == {}
    good, bad = sorted((tmp_path / "results").glob("*.json"))
    bad.write_text(bad.read_text().replace("0.5", "0.6"))
    moved = tmp_path / "results" / "000000000000000000000000.json"
    good.rename(moved)
    problems = Store(tmp_path).verify()
    assert problems == {bad: "corrupt: content does not match its hash", moved: f"holds the entry of key {good.stem}"}
