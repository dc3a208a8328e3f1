"""Same key, same numbers: what changes CPU results (the thread count) is in every key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from unlearnlib.numerics import THREADS_ENV, default_threads, numerics
from unlearnlib.training import default_recipe, model_spec


def test_thread_count_is_part_of_the_model_key(splits):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model_spec(splits, "cnn1d", default_recipe("mnist1d"), 0)
        torch.set_num_threads(2)
        two = model_spec(splits, "cnn1d", default_recipe("mnist1d"), 0)
    finally:
        torch.set_num_threads(old)
    assert one != two and one["numerics"] == {"device": "cpu", "threads": 1,
                                              "cpu": torch.backends.cpu.get_cpu_capability()}


def test_cpu_kernels_are_part_of_the_key():
    """torch's CPU kernels (AVX512, AVX2, ...) change the numbers: a process forced to
    other kernels (``ATEN_CPU_CAPABILITY``) gets other keys."""
    code = "import unlearnlib.numerics as n; print(n.numerics('cpu')['cpu'])"
    env = {"PATH": "/usr/bin:/bin", "ATEN_CPU_CAPABILITY": "default"}
    forced = subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip()
    assert forced == "DEFAULT"
    here = torch.backends.cpu.get_cpu_capability()
    if here == "DEFAULT":
        pytest.skip("this CPU runs torch's default kernels already")
    assert numerics("cpu")["cpu"] == here != forced


def test_import_applies_the_thread_rule():
    code = "import unlearnlib, torch; print(torch.get_num_threads())"
    env = {"PATH": "/usr/bin:/bin", THREADS_ENV: "2"}
    assert subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip() == "2"
    env.pop(THREADS_ENV)
    assert subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip() == "1"


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_thread_count_is_refused(monkeypatch, raw):
    monkeypatch.setenv(THREADS_ENV, raw)
    with pytest.raises(ValueError, match=f"{THREADS_ENV} must be a positive integer"):
        default_threads()


def test_numerics_names_the_device():
    assert numerics("cpu")["device"] == "cpu"
