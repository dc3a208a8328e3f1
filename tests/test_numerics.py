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
    assert one != two and one["numerics"] == {"device": "cpu", "threads": 1}


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
