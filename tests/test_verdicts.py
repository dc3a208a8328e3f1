"""Verdicts computed from rows: a clear win, a tie and a budget-unstable case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unlearnlib.studies import verdicts as V

REF = {"retain_acc": 1.0, "forget_acc": 0.9, "val_acc": 0.9, "test_acc": 0.9, "mia_val": 0.5, "mia_test": 0.5}


def grid(quality: dict[str, float], seeds: int = 6, noise: float = 0.002, cost: dict | None = None,
         test_drop: dict | None = None, seed: int = 0, forget: str = "random:0.1") -> pd.DataFrame:
    """Rows of a tuned grid: method m misses the retrained model by q = quality[m] on every
    objective term (plus per-seed noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        rows.append({"method": "retrain", "seed": s, "forget": forget, **REF, "rte": 1.0, "cost_rte": 1.0})
        rows.append({"method": "original", "seed": s, "forget": forget, **REF, "forget_acc": 1.0,
                     "mia_val": 0.58, "mia_test": 0.58, "rte": 1e4, "cost_rte": 1e4})
        for m, q in quality.items():
            e = q + rng.normal(0, noise)
            rows.append({"method": m, "seed": s, "forget": forget, "retain_acc": 1 - e, "forget_acc": 0.9 + e,
                         "val_acc": 0.9 - e, "test_acc": 0.9 - 0.1 * e - (test_drop or {}).get(m, 0.0),
                         "mia_val": 0.5 + e, "mia_test": 0.5 + e,
                         "rte": 5.0, "cost_rte": (cost or {}).get(m, 5.0)})
    return pd.DataFrame(rows)


def by_claim(vs):
    """Verdicts by their claim's first word (the first claim of each: "MSG" is the conjunction)."""
    out = {}
    for v in vs:
        out.setdefault(v.claim.split()[0], v)
    return out


GOOD = {"msg": 0.01, "ct": 0.012, "ngplus": 0.02, "ft": 0.06, "cfw": 0.07, "ff": 0.08, "scrub": 0.09,
        "ga": 0.2, "srl": 0.25}


def test_a_clear_win_holds_and_its_reversal_does_not_hold():
    df = grid(GOOD)
    v = by_claim(V.deep_unlearn_verdicts(df, df, "test budget"))
    assert v["MSG"].state == V.HOLDS and v["GA"].state == V.HOLDS and v["NG+"].state == V.HOLDS
    assert v["MSG"].low <= v["MSG"].estimate <= v["MSG"].high and v["MSG"].n_seeds == 6
    flipped = {**GOOD, "msg": 0.3, "ct": 0.31, "ga": 0.011, "srl": 0.013, "ngplus": 0.4}
    w = by_claim(V.deep_unlearn_verdicts(grid(flipped), grid(flipped), "test budget"))
    assert {x.state for x in w.values()} == {V.FAILS}


def test_the_conjunction_is_shown_per_part_and_the_verdicts_name_their_scope():
    """Issue 34: "MSG and CT are the best" comes with each part, so a reader sees that CT
    alone decides it here; every verdict names the methods, data and forget set it ran on."""
    df = grid({**GOOD, "ct": 0.15}).assign(dataset="digits", model="small_cnn")  # MSG first, CT far behind
    vs = {v.claim: v for v in V.deep_unlearn_verdicts(df, None, "b")}
    assert vs["MSG and CT are the best methods"].state == V.FAILS
    assert vs["MSG is among the best methods"].state == V.HOLDS
    assert vs["CT is among the best methods"].state == V.FAILS
    n = len(V.registered_methods())
    assert n >= 24
    assert {v.scope for v in vs.values()} == {f"9 of {n} methods, digits/small_cnn, random:0.1"}, {v.scope for v in vs.values()}
    assert V.scope_of(df[df["method"] != "ft"]).startswith(f"8 of {n} methods")
    assert V.scope_of(df, V.registered_methods()).startswith(f"all {n} methods")
    assert V.scope_of(df, ["ft", "ga"], what="baselines").startswith("2 baselines")
    fractions = df.assign(forget=np.repeat(["fraction:0.03", "fraction:0.15", "fraction:0.3"], len(df) // 3 + 1)[:len(df)])
    assert V.scope_of(fractions).endswith("digits/small_cnn, fraction:0.03-0.3")


def test_ct_on_a_1d_model_is_reported_as_the_extension_it_is():
    """Issue 30: on cnn1d "CT" is the Conv1d kernel-flip extension; the verdict, the summary
    table and the figures name it so; on a 2-D CNN it is the reference's CT."""
    from unlearnlib.book import plots
    from unlearnlib.studies.tables import summary_table

    for model, want in (("cnn1d", "ct (1-D extension)"), ("small_cnn", "ct")):
        df = grid(GOOD).assign(model=model)
        claim = by_claim(V.deep_unlearn_verdicts(df, None, "b"))["MSG"].claim
        assert claim == f"MSG and {want.replace('ct', 'CT')} are the best methods"
        assert want in summary_table(df).index
        names = {t.name for t in plots.metric_vs_cost(df, metric="mia_val").data} | set(plots.accuracy_bars(df).data[0].x)
        assert want in names and ("ct" in names) == (model == "small_cnn")


def test_a_tie_is_not_tested_and_names_the_seeds_that_would_test_it():
    tie = {"ngplus": 0.05, "ft": 0.05, "ga": 0.05, "srl": 0.05, "msg": 0.05, "ct": 0.05}
    v = by_claim(V.deep_unlearn_verdicts(grid(tie, noise=0.02), None, "test budget"))["NG+"]
    assert v.state == V.INCONCLUSIVE and v.low < 0 < v.high and "seeds" in v.needed


def test_a_tie_counts_against_the_claim_it_decides():
    """Issue 31: ties used to break by column order (alphabetically: ct before ft). MSG and CT
    tied with two others at the top of six methods share ranks 1-4: the claim "in the top
    third (<= 2)" does not hold; GA and SRL tied with the best do not count as weak."""
    tie = {"ct": 0.01, "msg": 0.01, "scrub": 0.01, "srl": 0.01, "ga": 0.2, "ngplus": 0.3}
    v = by_claim(V.deep_unlearn_verdicts(grid(tie, noise=0.0), None, "b"))
    assert v["MSG"].state == V.FAILS and v["MSG"].estimate == 4  # the worst of the tied ranks
    assert v["GA"].estimate == 1 and v["GA"].state == V.FAILS    # SRL's best tied rank, not 4
    mm = {"norm": np.array([[0.1, 0.1, 0.2]]), "cost": np.ones((1, 3)), "utility": np.ones((1, 3), bool)}
    assert V.ranks(mm, False).tolist() == [[1.5, 1.5, 3]]  # mid-ranks to show a ranking
    assert V.ranks(mm, False, ties="max").tolist() == [[2, 2, 3]]
    assert V.ranks(mm, False, ties="min").tolist() == [[1, 1, 3]]
    with pytest.raises(ValueError, match="allowed: average, max, min"):
        V.ranks(mm, False, ties="ordinal")


def test_seeds_needed_targets_80_percent_power_from_the_side_facing_the_threshold():
    """Closed form: the facing half-width 1.96 at 5 seeds is an SE of 1; a gap of 1 is cleared
    with 80% power at 5 x (1.96 + 0.8416)^2 = 39.25 -> 40 seeds (50% power would say 20)."""
    ev = V.Evidence("inconclusive", 1.0, -0.96, 2.96, 5)
    assert V.seeds_needed(ev, 0.0) == 40
    lopsided = V.Evidence("inconclusive", 1.0, -0.96, 9.0, 5)  # the far side does not count
    assert V.seeds_needed(lopsided, 0.0) == 40
    above = V.Evidence("inconclusive", -1.0, -2.96, 0.96, 5)
    assert V.seeds_needed(above, 0.0) == 40
    assert V.seeds_needed(V.Evidence("inconclusive", 0.0, -1.0, 1.0, 5), 0.0) is None


def test_best_means_the_top_of_the_ranking_not_its_top_third():
    """Issue 31: among 24 methods, ranks 4 and 6 are in the top third (8) but not "the best":
    at most one other method may be ahead of MSG or CT."""
    q = {f"m{i:02d}": 0.01 * (i + 1) for i in range(22)}
    q.update({"msg": 0.035, "ct": 0.045})  # ranks 4 and 6 (the others: 0.01, 0.02, 0.03, 0.04, ...)
    v = by_claim(V.deep_unlearn_verdicts(grid(q, noise=0.0005), None, "b"))["MSG"]
    assert v.estimate == 6 and v.state == V.FAILS and "at most 3" in v.criterion

    # a statistic's interval stays within its range (a rank in [1, n]) where the t stretch reaches past it
    t = V.Tables(["a"], {"x": np.array([[1.0], [1.0], [1.0], [1.0], [10.0]])})
    assert V.seed_bootstrap(t, lambda m, _: m["x"][:, 0])[1] < 1
    ev = V.evidence(t, lambda m, _: m["x"][:, 0], 5.0, bounds=(1, 10))
    assert ev.low == 1 and ev.high <= 10


def test_fewer_than_five_seeds_test_nothing():
    v = by_claim(V.deep_unlearn_verdicts(grid(GOOD, seeds=4), None, "b"))["MSG"]
    assert v.state == V.UNTESTED and "at least 5" in v.reason


def test_a_verdict_the_half_budget_contradicts_is_not_conclusive():
    half = {**GOOD, "ngplus": 0.3}  # at half the trials NG+ had not been found yet
    v = by_claim(V.deep_unlearn_verdicts(grid(GOOD), grid(half), "b", more_trials="200 trials"))["NG+"]
    assert v.state == V.UNTESTED and v.half_state == V.FAILS and v.needed == "200 trials"


def test_the_half_budget_demotes_only_what_more_tuning_could_reverse():
    """Issue 31: "an untuned method matches tuned baselines" can only move toward 'does not
    hold' with more trials; its 'does not hold' stands when the half budget disagrees, its
    'holds' does not, and a claim without a direction is demoted either way."""
    fails, holds = V.Evidence(V.FAILS, -0.2, -0.3, -0.1, 6), V.Evidence(V.HOLDS, 0.2, 0.1, 0.3, 6)
    unsure = V.Evidence("inconclusive", 0.0, -0.1, 0.1, 6)
    args = ("c", "s", "ch", "crit", "stat", 0.0)
    kept = V.decide(*args, fails, unsure, "b", tuning_moves=V.FAILS)
    assert kept.state == V.FAILS and "toward 'does not hold'" in kept.reason
    demoted = V.decide(*args, holds, unsure, "b", tuning_moves=V.FAILS)
    assert demoted.state == V.UNTESTED and "toward 'does not hold'" in demoted.reason
    assert V.decide(*args, fails, unsure, "b").state == V.UNTESTED
    with pytest.raises(ValueError, match="tuning_moves"):
        V.decide(*args, fails, unsure, "b", tuning_moves="up")


def test_a_destroyed_model_ranks_last_whatever_its_mia():
    # "sgu" at chance (its metrics equal retraining's on the objective) but 40 points of test accuracy lost
    q = {**GOOD, "sgu": 0.0}
    t = V.grid_tables(grid(q, test_drop={"sgu": 0.4}, cost={"sgu": 100.0}))
    means = {k: np.nanmean(a, axis=0)[None, :] for k, a in t.arrays.items()}
    mm = V.method_means(means, t)
    r = dict(zip(mm["methods"], V.ranks(mm, with_cost=True)[0], strict=True))
    assert r["sgu"] == len(q) and r["msg"] < r["ct"] + 1


def test_cost_enters_the_best_rank():
    slow = {"msg": 0.01, "ct": 0.011, "a": 0.0105, "b": 0.0106, "c": 0.2, "d": 0.3}
    fast_others = grid(slow, cost={"msg": 1.0, "ct": 1.0, "a": 50.0, "b": 50.0, "c": 50.0, "d": 50.0})
    v = by_claim(V.deep_unlearn_verdicts(fast_others, None, "b"))["MSG"]
    assert v.estimate > 2  # top third of 6 is rank 2; cheaper rivals push MSG and CT down


def nabla_rows(closed: float, seeds: int = 6, baseline_closer: float = 0.0) -> pd.DataFrame:
    frames = []
    for f in ("fraction:0.03", "fraction:0.3"):
        rows = []
        rng = np.random.default_rng(len(f))
        for s in range(seeds):
            for m, mia in (("original", 0.58), ("retrain", 0.50), ("nabla_tau", 0.58 - 0.08 * closed),
                           ("ft", 0.58 - 0.08 * closed - baseline_closer)):
                rows.append({"method": m, "seed": s, "forget": f, "mia_test": mia + rng.normal(0, 0.002),
                             "test_acc": 0.9, "tuned_on": f if m == "ft" else ""})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def test_nabla_tau_claims_follow_the_rows():
    ok = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(nabla_rows(0.8), nabla_rows(0.8), "b")}
    assert ok["forgets"].state == V.HOLDS and ok["needs"].state == V.HOLDS
    bad = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(nabla_rows(0.2, baseline_closer=0.05), None, "b")}
    assert bad["forgets"].state == V.FAILS and bad["needs"].state == V.FAILS
    assert bad["forgets"].estimate == pytest.approx(0.2, abs=0.05)


def test_nabla_tau_overshooting_the_retrained_model_is_not_forgetting():
    """Issue 31: the signed share (O - nt) / (O - R) called an overshoot to twice the gap a
    success (share 2); closeness 1 - |nt - R| / |O - R| reads it as 0."""
    over = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(nabla_rows(2.0), None, "b")}["forgets"]
    assert over.state == V.FAILS and over.estimate == pytest.approx(0.0, abs=0.1)


def test_nabla_tau_on_an_unresolved_gap_is_not_tested():
    """Where the original and the retrained model's loss-MIA do not differ, no share of the
    gap means anything: the claim is not tested, and the reason says why."""
    rows = nabla_rows(0.8)
    rows.loc[rows["method"] == "original", "mia_test"] -= 0.078  # O - R = 0.002, the seed noise
    v = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(rows, None, "b")}["forgets"]
    assert v.state == V.UNTESTED and "gap is not resolved" in v.reason and "resolve the gap" in v.needed


def test_changing_one_row_changes_the_verdict():
    df = grid(GOOD)
    assert by_claim(V.deep_unlearn_verdicts(df, None, "b"))["NG+"].state == V.HOLDS
    worse = df.copy()
    worse.loc[worse["method"] == "ngplus", ["retain_acc", "val_acc"]] -= 0.5
    assert by_claim(V.deep_unlearn_verdicts(worse, None, "b"))["NG+"].state == V.FAILS
    table = V.verdict_table(V.deep_unlearn_verdicts(df, None, "b"))
    assert list(table["verdict"]) == [V.HOLDS] * 5 and "[" in table["estimate [95% CI]"].iloc[0]
    assert set(table["scope"]) == {f"9 of {len(V.registered_methods())} methods, random:0.1"}
    assert "**holds**" in V.verdicts_markdown(V.deep_unlearn_verdicts(df, None, "b"))


def test_ranking_transfer_between_datasets():
    same = V.ranking_transfer_verdicts(grid(GOOD), grid(GOOD, seed=1), "A", "B", "b")[0]
    assert same.state == V.HOLDS and same.estimate > 0.8
    reversed_q = {m: 0.3 - q for m, q in GOOD.items()}
    rev = V.ranking_transfer_verdicts(grid(GOOD), grid(reversed_q), "A", "B", "b")[0]
    assert rev.state == V.FAILS and rev.estimate < -0.8
    with pytest.raises(ValueError, match="at least 3 methods"):
        V.ranking_transfer_verdicts(grid({"ft": 0.1}), grid({"ft": 0.1}), "A", "B", "b")


def test_no_tuning_against_baselines_tuned_elsewhere_is_not_tested():
    """Issue 31: a baseline tuned on random:0.1 and carried to fraction:0.3 may be mistuned
    there; "no tuning needed" compares nabla-tau with baselines tuned where they run."""
    rows = nabla_rows(0.8)
    assert {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(rows, None, "b")}["needs"].state == V.HOLDS
    carried = rows.assign(tuned_on=np.where(rows["method"] == "ft", "random:0.1", ""))
    v = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(carried, None, "b")}["needs"]
    assert v.state == V.UNTESTED and "random:0.1 -> fraction:0.3" in v.reason and "each" in v.needed
    v = {v.claim.split()[1]: v for v in V.nabla_tau_verdicts(rows.drop(columns="tuned_on"), None, "b")}["needs"]
    assert v.state == V.UNTESTED and "do not name" in v.reason


def test_the_union_side_of_an_extreme_is_corrected_for_the_number_of_comparisons():
    """The smallest of m margins: its lower bound is the smallest component lower bound at
    2.5% (one component decides), its upper bound the smallest upper bound at 2.5% / m."""
    rng = np.random.default_rng(0)
    cols = [f"b{i}" for i in range(8)]
    t = V.Tables(cols, {"x": rng.normal(0.0, 1.0, (10, len(cols)))})
    def column(c):
        return lambda m, tb: m["x"][:, tb.col(c)]

    stats = {c: column(c) for c in cols}
    r = V.resample(t, stats, n_boot=V.boot_size(len(cols)))
    ev = V.extreme_evidence(r, lambda x, a: x.bound(a, False), lambda x, a: x.bound(a, True), "min", 0.0, True,
                            10, min(x.estimate for x in r.values()))
    assert V.tails(8, "min") == pytest.approx((0.025, 0.025 / 8))
    lo_tail, hi_tail = V.tails(8, "min")
    assert ev.low == pytest.approx(min(x.bound(lo_tail, False) for x in r.values()))
    assert ev.high == pytest.approx(min(x.bound(hi_tail, True) for x in r.values()))
    assert ev.high > min(x.bound(lo_tail, True) for x in r.values())  # wider than the uncorrected side
    # a bound on a plain mean at 10 seeds is Student's t bound at that tail
    from scipy.stats import t as student
    x = t.arrays["x"][:, 0]
    se = x.std(ddof=1) / np.sqrt(10)
    assert r["b0"].bound(0.025 / 8, True) == pytest.approx(x.mean() + student.ppf(1 - 0.025 / 8, 9) * se, rel=0.1)


def test_the_absolute_value_of_a_noisy_mean_is_not_read_as_a_floor():
    """|mean| of noise centred on 0 is about 0.8 standard errors; its lower bound must be 0."""
    rng = np.random.default_rng(1)
    t = V.Tables(["a"], {"x": rng.normal(0.0, 1.0, (5, 1))})
    r = V.resample(t, {"a": lambda m, tb: m["x"][:, 0]})["a"]
    lo, hi = r.abs_bounds(0.025)
    assert abs(r.estimate) > 0 and lo == 0.0 and hi >= abs(r.estimate)


def test_a_verdict_keeps_its_threshold_and_side_through_publishing(tmp_path):
    """The landing page draws each claim against its own threshold: the verdict records it
    and the side on which the claim holds, and publishing keeps both."""
    v = by_claim(V.deep_unlearn_verdicts(grid(GOOD), None, "b"))["NG+"]
    assert v.threshold == 0.0 and v.holds_above is True
    weak = by_claim(V.deep_unlearn_verdicts(grid(GOOD), None, "b"))["GA"]
    assert weak.holds_above is True  # GA and SRL rank low: holds above the rank threshold
    V.publish([v, weak], "methods", str(tmp_path))
    back = {w.claim: w for w in V.load_published(str(tmp_path))}
    assert back[v.claim].threshold == 0.0 and back[v.claim].holds_above is True
