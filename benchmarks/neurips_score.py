"""Seconds per example of the NeurIPS 2023 score: a loop over rules against the vectorised module.

Both compute eps for the same forget examples by the official rules
(google-deepmind/unlearning_evaluation ``metric.py``: about 160,000 double-threshold
and a few hundred single-threshold rules per example), in one process, one after
the other:

- ``loop``: ``loop_epsilon`` of ``tests/test_neurips.py``, the reference the tests
  pin the module against: one rule at a time, counting the models inside each rule
  with numpy comparisons (the official code does the same counting for all rules
  at once on a GPU, about 8 s per example at 512 models on a CPU).
- ``vectorised``: :func:`unlearnlib.evaluation.neurips.example_epsilon`: every rule
  of an example at once, counts by binary search in the sorted observations.

Inputs: for each example, phi of ``--models`` retrained models ~ N(0, 1) and of as
many unlearned models ~ N(``--shift``, 1). The vectorised pass is repeated
``--repeats`` times and its median taken; the loop runs once. Both eps lists are
compared (they must agree) before the timings are printed.

Usage::

    python benchmarks/neurips_score.py                  # 512 models, 5 examples
    python benchmarks/neurips_score.py --models 128 --examples 20 --shift 0.5

The last line is ``ratio (loop / vectorised): X.XXx`` (>1: the vectorised module
is faster). No thresholds: it only prints measurements.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from unlearnlib.evaluation.neurips import example_epsilon

TESTS = Path(__file__).resolve().parents[1] / "tests" / "test_neurips.py"


def load_loop_epsilon():
    """``loop_epsilon`` from the test file (the reference the tests pin)."""
    spec = importlib.util.spec_from_file_location("_test_neurips", TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.loop_epsilon


def timed(fn, retrained: np.ndarray, unlearned: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds for eps of every example (rows) and the eps values."""
    start = time.perf_counter()
    eps = np.array([fn(r, u) for r, u in zip(retrained, unlearned, strict=True)])
    return time.perf_counter() - start, eps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=512, help="models per side (default: 512, the challenge's N)")
    p.add_argument("--examples", type=int, default=5, help="forget examples (default: 5; the loop takes seconds each)")
    p.add_argument("--shift", type=float, default=0.0, help="mean of the unlearned phi, in sd (default: 0)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes of the vectorised module; median (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.models < 2 or args.examples < 1 or args.repeats < 1:
        p.error("--models must be >= 2, --examples and --repeats >= 1")

    rng = np.random.default_rng(args.seed)
    retrained = rng.normal(size=(args.examples, args.models))
    unlearned = rng.normal(args.shift, 1.0, size=(args.examples, args.models))
    loop_epsilon = load_loop_epsilon()

    print(f"numpy {np.__version__} | {platform.processor() or platform.machine()} | "
          f"{args.examples} examples x {args.models} models per side | shift {args.shift:g} sd")
    sys.stdout.flush()
    timed(example_epsilon, retrained[:1], unlearned[:1])  # warm-up
    vec_times = []
    for r in range(args.repeats):
        s, vec_eps = timed(example_epsilon, retrained, unlearned)
        vec_times.append(s)
        print(f"repeat {r + 1}/{args.repeats} vectorised {s:8.3f} s  {1e3 * s / args.examples:9.2f} ms/example")
    loop_s, loop_eps = timed(loop_epsilon, retrained, unlearned)
    print(f"loop                  {loop_s:8.3f} s  {1e3 * loop_s / args.examples:9.2f} ms/example")
    diff = float(np.max(np.abs(loop_eps - vec_eps)))
    print(f"max |eps loop - eps vectorised| = {diff:.3g} (eps: {np.array2string(vec_eps, precision=3)})")
    if diff > 1e-9:
        print("the two implementations disagree: timings are not comparable")
        return 1
    vec = statistics.median(vec_times)
    print(f"vectorised {1e3 * vec / args.examples:.2f} ms/example (median of {args.repeats}), "
          f"loop {1e3 * loop_s / args.examples:.2f} ms/example")
    print(f"ratio (loop / vectorised): {loop_s / vec:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
