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
