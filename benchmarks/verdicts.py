"""Calibration of the verdicts' intervals (issue 31): coverage, wrong-verdict rates and power.

For every statistic shape the book's seed-bootstrap verdicts use, simulates experiments of
5 and 10 seeds from a known truth (``unlearnlib.studies.calibration``) under normal,
moderately skewed (the shipped reruns' 90th percentile of skewness), strongly skewed and
heavy-tailed seed noise, and prints one table row per (statistic, noise, seeds):

- coverage of the true value by the t-scaled interval the book prints, beside the plain
  percentile interval's (the book's interval before issue 31);
- for the paired difference, the wrong-verdict rates with the truth exactly on the
  threshold (each at most 2.5% for a 95% interval) and the power at 1 seed sd of effect.

The Deep Unlearn statistics (ranks among every method, NG+'s margin) are simulated from the
per-method means and seed sds of the shipped tuned table's reruns (mnist1d/cnn1d/random:0.1).

The claims that take an extreme over several comparisons (Pawelczyk's two findings over
methods x attacks, nabla-tau's claims over forget sets and baselines) are simulated through
the claim functions themselves: wrong-verdict rates with the truth on the threshold
(including every comparison on it at once), a retrained model posing as a method, and
power at stated effects.

The scorecard's two count claims run through the scorecard's own pipeline on simulated
per-seed rows (knife edges, a retrained model posing as a method, power).

``--real`` adds the null built from the project's own models: the poisoning chapter's rows
(its notebook's defaults; read from the store when the book was built here) with a
"method" that is another retrained model (the retrained row of another seed), for every
seed shift, and the error rates simulated at those rows' own means and seed spread.

    python benchmarks/verdicts.py                 # 1,000 experiments per cell (300 for ranks, 400 for claims)
    python benchmarks/verdicts.py --sims 200      # quicker, coarser
    python benchmarks/verdicts.py --real          # also the retrained-as-method null from real models
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
    ap.add_argument("--claim-sims", type=int, default=400, help="simulated experiments per claim cell")
    ap.add_argument("--only-claims", action="store_true", help="skip the single-statistic table")
    ap.add_argument("--real", action="store_true", help="add the retrained-as-method null from real models")
    ap.add_argument("--scorecard-sims", type=int, default=400, help="simulated experiments per scorecard cell")
    args = ap.parse_args()
    if args.only_claims:
        claims_table(args.claim_sims)
        scorecard_table(args.scorecard_sims)
        if args.real:
            real_null(args.claim_sims)
        return
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
    claims_table(args.claim_sims)
    scorecard_table(args.scorecard_sims)
    if args.real:
        real_null(args.claim_sims)


def scorecard_table(sims: int) -> None:
    """The scorecard's two count claims through its own pipeline (:mod:`unlearnlib.studies.calibration_scorecard`)."""
    from unlearnlib.studies import calibration_scorecard as CS

    start = time.perf_counter()
    table = CS.scenarios((5, 10), ("normal",), sims)
    print()
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    print(f"(scorecard: {sims} experiments per cell, {time.perf_counter() - start:.0f} s)")


FRACTIONS = ["fraction:0.03", "fraction:0.15", "fraction:0.3"]


def claim_scenarios() -> list[tuple]:
    """(claim, scenario, evidence function, truth, true value, threshold, which verdict is
    wrong: "both" on the threshold, "holds"/"fails" for a null, "power" for an effect)."""
    out = []

    def poison(name, which, truth, threshold, wrong, attacks=("backdoor",)):
        out.append(("Pawelczyk " + ("1 (no method removes)" if which == "removed" else "2 (MIA false success)"),
                    name, C.poisoning_claim(which, attacks), truth, C.poisoning_true_value(truth, which, attacks),
                    threshold, wrong))

    poison("best method on the threshold (shares 0.1, 0.5, 0.8)", "removed",
           C.poisoning_truth({"a": 0.1, "b": 0.5, "c": 0.8}), 0.1, "both")
    poison("another retrained model among 3 methods (share 0)", "removed",
           C.poisoning_truth({"retrain2": 0.0, "b": 0.5, "c": 0.8}), 0.1, "holds")
    poison("another retrained model alone, noise 60% of the gap", "removed",
           C.poisoning_truth({"retrain2": 0.0}, metric_sd=0.6), 0.1, "holds")
    poison("every method of 8 x 2 attacks on the threshold", "removed",
           C.poisoning_truth({f"m{i}": 0.1 for i in range(8)}, attacks=("backdoor", "gaussian")), 0.1, "both",
           ("backdoor", "gaussian"))
    poison("power: best method leaves 0.5", "removed", C.poisoning_truth({"a": 0.5, "b": 0.8}), 0.1, "power")
    poison("one method on the threshold (MIA 0.05 off, share 0.8)", "false success",
           C.poisoning_truth({"a": 0.8, "b": 0.8}, {"a": 0.05, "b": 0.2}), 0.0, "both")
    poison("every method of 8 x 2 attacks on the threshold", "false success",
           C.poisoning_truth({f"m{i}": 0.8 for i in range(8)}, {f"m{i}": 0.05 for i in range(8)},
                             attacks=("backdoor", "gaussian")), 0.0, "both", ("backdoor", "gaussian"))
    poison("another retrained model passes the MIA (share 0, MIA 0 off)", "false success",
           C.poisoning_truth({"retrain2": 0.0, "b": 0.8}, {"retrain2": 0.0, "b": 0.2}), 0.0, "holds")
    poison("power: a method passes (MIA 0.01 off) leaving 0.8", "false success",
           C.poisoning_truth({"a": 0.8}, {"a": 0.01}), 0.0, "power")

    def nabla(name, which, truth, threshold, wrong):
        out.append(("nabla-tau " + ("forgets up to 30%" if which == "forgets" else "needs no tuning"), name,
                    C.nabla_claim(which, truth), truth, C.nabla_true_value(truth, which), threshold, wrong))

    eq = V.EQUIVALENCE
    nabla("closeness 0.5 at one fraction, 0.8 at two", "forgets",
          C.nabla_truth(dict(zip(FRACTIONS, [0.5, 0.8, 0.8], strict=True))), 0.5, "both")
    nabla("another retrained model as nabla-tau (closeness 1)", "forgets",
          C.nabla_truth(dict.fromkeys(FRACTIONS, 1.0)), 0.5, "fails")
    nabla("power: closeness 0.8 everywhere", "forgets", C.nabla_truth(dict.fromkeys(FRACTIONS, 0.8)), 0.5, "power")
    margins = {f: {b: -eq for b in ("ft", "ngplus", "scrub", "ssd", "amnesiac", "msg", "ct")} for f in FRACTIONS}
    nabla("7 baselines x 3 fractions all on the threshold", "no tuning",
          C.nabla_truth(dict.fromkeys(FRACTIONS, 0.8), margins), -eq, "both")
    one = {f: {b: (-eq if (f, b) == (FRACTIONS[0], "ft") else 0.05) for b in margins[f]} for f in FRACTIONS}
    nabla("one of 21 on the threshold, the rest 0.05 behind", "no tuning",
          C.nabla_truth(dict.fromkeys(FRACTIONS, 0.8), one), -eq, "both")
    ahead = {f: {b: 0.02 for b in margins[f]} for f in FRACTIONS}
    nabla("power: every baseline 0.02 behind nabla-tau", "no tuning",
          C.nabla_truth(dict.fromkeys(FRACTIONS, 0.8), ahead), -eq, "power")
    return out


def claims_table(sims: int) -> None:
    """Wrong-verdict rates and power of the claims over several comparisons."""
    start = time.perf_counter()
    rows = []
    for claim, scenario, evidence_of, truth, true, threshold, wrong in claim_scenarios():
        for noise in (C.NOISES if wrong != "power" else ("normal",)):
            for n in (5, 10):
                c = C.calibrate_claim(claim, evidence_of, truth, true, n, noise, threshold, sims)
                rows.append({"claim": claim, "scenario": scenario, "noise": noise, "seeds": n, "experiments": sims,
                             "true value": true, "coverage": c.coverage, "no interval": c.undefined,
                             "wrong 'holds'": c.holds if wrong in ("both", "holds") else np.nan,
                             "wrong 'does not hold'": c.fails if wrong in ("both", "fails") else np.nan,
                             "power": c.holds if wrong == "power" else np.nan})
                print(f"{claim:32s} {scenario[:44]:44s} {noise:7s} {n:2d}: holds {c.holds:.3f} fails {c.fails:.3f} "
                      f"coverage {c.coverage:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    worst = table[["wrong 'holds'", "wrong 'does not hold'"]].max().max()
    print(f"\nlargest wrong-verdict rate {worst:.3f} (bar 0.025, Monte Carlo 2 se at 0.025: "
          f"{2 * np.sqrt(0.025 * 0.975 / sims):.3f}); {time.perf_counter() - start:.0f} s")


def real_null(sims: int) -> None:
    """The poisoning chapter's real rows with another retrained model posing as a method."""
    import ast
    from pathlib import Path

    from unlearnlib import methods
    from unlearnlib.book.build import notebook_parameters
    from unlearnlib.poisoning import HARM_SIGN, METRICS
    from unlearnlib.studies import poisoning_verdicts as PV
    from unlearnlib.studies.experiment import parse_seeds
    from unlearnlib.studies.poisoning_study import clean_splits, run_attacks
    from unlearnlib.training import default_recipe

    start = time.perf_counter()
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "poisoning.ipynb"
    p = {k: ast.literal_eval(v["default"]) for k, v in notebook_parameters(nb).items()}
    seeds = parse_seeds(p["seeds"])
    clean = clean_splits(p["dataset"], "fraction:0.02", p["data_root"], p["device"], standardize=True)
    df = run_attacks(clean, p["attacks"], p["model_name"], seeds, methods.parse_methods(p["methods_wanted"]),
                     p["fractions"], p["attack_params"], budgets=p["budgets"],
                     recipe=default_recipe(p["dataset"]).with_(epochs=p["epochs"]))
    print(f"\nreal rows: {p['dataset']}/{p['model_name']}, attacks {', '.join(p['attacks'])}, seeds {p['seeds']} "
          f"({time.perf_counter() - start:.0f} s)")
    top = float(df.loc[~df["method"].isin(["original", "retrain", "clean"]), "budget"].max())
    name = "retrain (another seed)"
    rows = []
    for shift in range(1, len(seeds)):
        d = C.another_retrained_model(df, name=name, shift=shift, budget=top)
        one, two = PV.poisoning_verdicts(d, setting="null")
        t = PV.tables(PV.at_top_budget(d)[0])
        working, _ = PV.findings(t, {a: HARM_SIGN[METRICS[a]] for a in p["attacks"]})
        comps = PV.comparisons(t, working)
        null = [c for (a, k), c in comps.items() if k == name]
        share_lo = max(PV.share_left(c, 0.025, False) for c in null) if null else np.nan
        mia_lo = max(c.mia.abs_bounds(0.025)[0] for c in null) if null else np.nan
        rows.append({"shift": shift, "working attacks": ", ".join(working), "finding 1": one.state,
                     "finding 2": two.state, "null share left, largest lower bound": share_lo,
                     "null |MIA offset|, largest lower bound": mia_lo})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"finding 1 'holds' with a retrained model among the methods: {int((table['finding 1'] == V.HOLDS).sum())}"
          f" of {len(table)} shifts; the null's share left shown above 0 in "
          f"{int((table['null share left, largest lower bound'] > 0).sum())}, its MIA offset in "
          f"{int((table['null |MIA offset|, largest lower bound'] > 0).sum())}")
    # error rates at these rows' own means and seed spread, the null's means set to the retrained model's
    d = C.another_retrained_model(df, name=name, shift=1, budget=top)
    t = PV.tables(PV.at_top_budget(d)[0])
    attacks = list(dict.fromkeys(a for a, _ in t.columns))
    truth = C.fitted_truth(t, {(a, name): (a, "retrain") for a in attacks})
    signs = {a: HARM_SIGN[METRICS[a]] for a in attacks}
    for which in ("removed", "false success"):
        def evidence_of(tb, which=which):
            _, ev = PV.findings(tb, signs)
            return ev.get(which, V.Evidence("inconclusive", np.nan, np.nan, np.nan, tb.n_seeds))
        true = PV.finding_evidence(PV.comparisons(truth.tables(), [a for a in attacks]), which, 1).estimate
        threshold = PV.REMOVED if which == "removed" else 0.0
        c = C.calibrate_claim(which, evidence_of, truth, true, len(seeds), "normal", threshold, sims)
        print(f"fitted truth with the null, finding {'1' if which == 'removed' else '2'} (true value {true:.3f}, "
              f"threshold {threshold}), {len(seeds)} seeds, {sims} experiments: 'holds' {c.holds:.3f}, "
              f"'does not hold' {c.fails:.3f}, coverage {c.coverage:.3f}, no interval {c.undefined:.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
