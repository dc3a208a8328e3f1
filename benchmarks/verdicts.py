"""Calibration of the verdicts' intervals (issue 31): coverage, wrong-verdict rates and power.

For every statistic shape the book's seed-bootstrap verdicts use, simulates experiments of
5 and 10 seeds from a known truth (``unlearnlib.studies.calibration``) under normal,
skewed and heavy-tailed seed noise, and prints one table row per (statistic, noise, seeds):

- coverage of the true value by the t-scaled interval the book prints, beside the plain
  percentile interval's (the book's interval before issue 31);
- for the paired difference, the wrong-verdict rates with the truth exactly on the
  threshold (each at most 2.5% for a 95% interval) and the power at 1 seed sd of effect.

The Deep Unlearn statistics (ranks among every method, NG+'s margin) are simulated from the
per-method means and seed sds of the shipped tuned table's reruns (mnist1d/cnn1d/random:0.1).

    python benchmarks/verdicts.py                 # 1,000 experiments per cell (300 for ranks)
    python benchmarks/verdicts.py --sims 200      # quicker, coarser
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from unlearnlib.studies import calibration as C
from unlearnlib.studies import verdicts as V


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=1000, help="simulated experiments per cell")
    ap.add_argument("--rank-sims", type=int, default=300, help="simulated experiments per rank-statistic cell")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per interval")
    args = ap.parse_args()
    start = time.perf_counter()
    two = C.Truth(["a", "b"], {"x": np.array([1.0, 0.5])}, {"x": np.array([1.0, 1.0])})
    far = C.Truth(["a", "b"], {"x": np.array([2.0, 0.5])}, {"x": np.array([1.0, 1.0])})
    grid = C.shipped_grid_truth()
    shapes = [
        ("mean of one method", C.mean_of("x"), two, None, args.sims),
        ("paired difference", C.paired_difference("x", 0, 1), two, 0.5, args.sims),
        ("worse rank of MSG and CT (24 methods)", V.rank_of(["msg", "ct"], True, True), grid, None, args.rank_sims),
        ("better quality rank of GA and SRL", V.rank_of(["ga", "srl"], False, False), grid, None, args.rank_sims),
        ("NG+'s smallest margin", V.baseline_margin(["ft", "ga", "srl"]), grid, None, args.rank_sims),
    ]
    rows = []
    for name, stat, truth, threshold, sims in shapes:
        for noise in C.NOISES:
            for n in (5, 10):
                new = C.calibrate(name, stat, truth, n, noise, threshold, sims, args.boot)
                old = C.calibrate(name, stat, truth, n, noise, None, sims, args.boot, interval="percentile")
                row = {"statistic": name, "noise": noise, "seeds": n, "experiments": sims,
                       "coverage": new.coverage, "+-": 2 * new.mc_error, "percentile coverage": old.coverage,
                       "wrong 'holds'": new.holds, "wrong 'fails'": new.fails}
                if threshold is not None:
                    row["power at 1 sd"] = C.calibrate(name, stat, far, n, noise, threshold, sims, args.boot).holds
                rows.append(row)
                print(f"{name:40s} {noise:7s} {n:2d} seeds: coverage {new.coverage:.3f} "
                      f"(percentile {old.coverage:.3f})", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    ok = table["coverage"].between(0.93, 0.97)
    print(f"\n{int(ok.sum())} of {len(table)} cells within 0.93-0.97; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
