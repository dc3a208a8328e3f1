"""Several processes writing into one store at once (issue 18.4).

Four separate Python processes, released together, ask the same store for the same
missing entries (an 8 MB checkpoint and a result row) and for one entry of their own.
Whatever the timing, each shared entry must be computed once (the per-key lock), every
process must read exactly that entry back (no torn read: atomic writes), and the store
must end with one sound file per key, no temporary file and nothing moved aside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import torch

from unlearnlib.store import Store

N_PROCS = 4
#: One writer: waits for the start signal, then reads or computes three entries.
WRITER = r"""
import json, os, sys, time
from pathlib import Path
import torch
from unlearnlib.store import Store

root, signals, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
(signals / f"ready-{me}").touch()
while not (signals / "go").exists():
    time.sleep(0.002)
store = Store(root)

def computed(what):
    (signals / f"computed-{what}-{me}").touch()
    time.sleep(0.3)  # hold the computation open so the other writers arrive meanwhile

def big():
    computed("big")
    return {"w": torch.arange(2_000_000, dtype=torch.float32)}, {"by": me}

def row():
    computed("row")
    return [{"value": 42, "by": me}]

state, meta = store.checkpoint("models", {"unit": "shared-big"}, big)
rows = store.rows("results", {"unit": "shared-row"}, row)
own = store.rows("results", {"unit": "own", "who": me}, lambda: [{"who": me}])
print(json.dumps({"big_by": meta["by"], "big_ok": bool(torch.equal(state["w"], torch.arange(2_000_000,
                  dtype=torch.float32))), "row": rows, "own": own, "misses": store.misses,
                  "corrupt": [str(p) for p in store.corrupt]}))
"""


def test_concurrent_writers_compute_each_key_once_and_never_tear(tmp_path):
    root, signals = tmp_path / "store", tmp_path / "signals"
    signals.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(signals), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
             for i in range(N_PROCS)]
    deadline = time.monotonic() + 300
    while len(list(signals.glob("ready-*"))) < N_PROCS and time.monotonic() < deadline:
        time.sleep(0.01)
    (signals / "go").touch()  # every writer is imported and waiting: release them together
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        assert "corrupt" not in stderr.lower(), stderr  # no reader met a half-written entry
        outs.append(json.loads(stdout.strip().splitlines()[-1]))

    # each shared entry was computed by exactly one process, and every process got that one
    for what in ("big", "row"):
        assert len(list(signals.glob(f"computed-{what}-*"))) == 1, what
    (big_by,) = {o["big_by"] for o in outs}
    (row,) = {json.dumps(o["row"]) for o in outs}
    assert (signals / f"computed-big-{big_by}").exists()
    assert (signals / f"computed-row-{json.loads(row)[0]['by']}").exists()
    assert all(o["big_ok"] and not o["corrupt"] for o in outs)
    assert [o["own"] for o in outs] == [[{"who": str(i)}] for i in range(N_PROCS)]
    # misses across the processes: one per shared entry plus one own entry each
    assert sum(o["misses"] for o in outs) == 2 + N_PROCS

    # the store: one sound file per key, no temporary or moved-aside file
    files = [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert sorted(p.parent.name for p in files) == ["models"] + ["results"] * (1 + N_PROCS)
    assert not [p for p in files if p.name.startswith(".") or p.suffix in (".tmp", ".corrupt")]
    assert Store(root).verify() == {}
    state, meta = Store(root).checkpoint("models", {"unit": "shared-big"}, lambda: ({}, {}))
    assert meta["by"] == big_by and torch.equal(state["w"], torch.arange(2_000_000, dtype=torch.float32))

