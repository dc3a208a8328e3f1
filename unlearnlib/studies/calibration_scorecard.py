"""Do the scorecard's two verdicts keep their promise? Calibration by simulation (issue 31).

The scorecard (:mod:`.scorecard`) decides two claims from one joint bootstrap
(:func:`~.scorecard.scorecard_verdicts`):

- **"Population MIAs give a false sense of success"** (``which="false sense"``): the number
  of methods (references aside) that keep their utility, pass the population loss-MIA and
  fail a deeper test; holds when its interval lies above 1/2;
- **"No unlearning method passes every test"** (``which="none passes"``): the number of
  methods passing every resolved test; the claim holds when its interval lies below 1/2.

This module simulates per-seed scorecard rows from a known truth and runs the scorecard's
own pipeline on them (:func:`~.scorecard.bootstrap_values` -> :func:`~.scorecard.scores` ->
:func:`~.scorecard.utility_mask` -> :func:`~.scorecard.classify` ->
:func:`~.scorecard.scorecard_verdicts`), so that the harness of :mod:`.calibration` can
count coverage, wrong verdicts and power as it does for every other claim of the book.

**The truth** (:func:`scorecard_truth`) is given on the scorecard's own scale: per method,
each seed test's true *normalised score* (0 = like the original model, 1 = like the
retrained model) and its test accuracy. It is turned into raw means with fixed reference
values per test (:data:`REFERENCE_VALUES`: original and retrained model, in the raw test's
units), ``v = v_original + s * (v_retrained - v_original)``, and into a
:class:`~.calibration.Truth` whose columns are the methods. Rows are drawn by
:func:`.calibration.simulate` (normal, skewed or heavy-tailed seed noise,
:func:`.calibration.standard_noise`; a seed effect shared by every method of a seed, share
``rho`` of the variance) and laid out as :func:`~.scorecard.seed_rows` lays out real rows
(:func:`rows_of`). **Seed noise is stated in score units**: ``seed_sd`` (default
:data:`SEED_SD` = 0.15) is one seed's sd as a share of the test's original-retrained gap,
the same for every column (so the normalised score of a method carries the noise of its
own column and of both references'); test accuracy has sd :data:`ACC_SD` (0.003). RetDev
and the verification error are distances to the same seed's retrained model, so the
retrained model's own value is exactly 0 in every seed (no noise in that column).

**What rows alone exercise.** Only the tests whose source is "seeds" (:data:`SEED_TESTS`:
forget accuracy, RetDev, the loss- and entropy-MIA, the relearning attack, the verification
error) come from per-seed rows. The shadow tests (U-LiRA, RMIA, NeurIPS F, KLOM, forget
quality) and the poisoning GUS need shadows and poisoning rows; without them their values
are NaN, their gaps unresolved, and :func:`~.scorecard.classify` leaves them out of every
reading. So:

- "none passes" is calibrated over the six seed tests (an unresolved test counts
  nowhere, as in the book);
- "false sense" is calibrated through its one deeper test that rows carry, the relearning
  attack (group "relearning"; :data:`~.scorecard.DEEPER_GROUPS`). The per-sample and
  poisoning tests cannot be exercised here: their resampling level (shadow targets,
  poisoning seeds) is not simulated, and a simulation without ``relearn_acc`` has no deeper
  test at all, so its count is 0 in every draw and the claim could only read "does not
  hold" -- :func:`scorecard_claim` refuses it rather than fake a calibration.

**The true value of a count** (:func:`true_count`). A method counts when its true scores
satisfy the reading's rule (pass = ``|s - 1| <= TOL``; utility kept when its test accuracy is
at most ``UTILITY`` below the retrained model's). The count is a step function of the true
means: where a method sits exactly on a pass boundary (``s = 1 - TOL`` or ``1 + TOL``, within
1e-9) an arbitrarily small change flips it, and the sampling distribution of the rows is
continuous in the means, so no procedure can tell the truth on the boundary from the truth
just inside or just outside it. Where counting the boundary methods in or out puts the
count on both sides of the threshold (a **knife edge**), the true value is taken to be the
threshold itself (1/2), exactly as a continuous statistic sitting on its threshold: *both*
verdicts, "holds" and "does not hold", are wrong there, and each must happen at most 2.5%
of the time for the interval to keep its 95% promise in the boundary's neighbourhood (the
rates are continuous in the truth, so they are the limit of the rates just inside, where
"holds" is wrong, and just outside, where "does not hold" is). Coverage of 1/2 then means
"inconclusive". Elsewhere the true value is the count under the closed rule, and the one
verdict on the wrong side of it is the wrong one (:attr:`ScorecardCalibration.wrong`).

**Measured** (:func:`scenarios`: ``seed_sd`` 0.15 of the gap, ``rho`` 0.5,
:data:`~.scorecard.N_BOOT` draws; normal noise, the knife edges at 1,000 experiments, so a
rate near 2.5% carries a Monte Carlo se of 0.005 and the bar is 0.025 + 2 se = 0.035; the
other scenarios and the skewed and heavy noise at 400 experiments, bar 0.041). "before":
the count's interval read from the bootstrap draws of the count (the scorecard before
issue 31's fix); "now": from the per-test score bounds (:func:`~.scorecard.every_test_bounds`,
:func:`~.scorecard.false_sense_bounds`):

=====================================  =======  ===================  =====================  ===============
scenario (claim)                       seeds    wrong "holds"        wrong "does not hold"  right
                                                before -> now        before -> now          before -> now
=====================================  =======  ===================  =====================  ===============
(a) none passes, knife edge            5        **0.101** -> 0.003   0.011 -> 0.000         --
                                       10       **0.053** -> 0.004   0.029 -> 0.001
    skewed / heavy noise               5        **0.075/0.103** ->   **0.045**/0.035 ->     --
                                                0.000/0.003          0.000/0.000
(b) none passes, retrained as method   5        0.000 -> 0.000       --                     0.08 -> 0.00
                                       10       0.000 -> 0.000                              0.55 -> 0.05
(c) false sense, no method has it      5        0.000 -> 0.000       --                     0.73 -> 0.22
                                       10       0.000 -> 0.000                              0.97 -> 0.84
(c) false sense, knife edge            5        **0.056** -> 0.010   **0.086** -> 0.018     --
                                       10       **0.057** -> 0.019   **0.060** -> 0.014
    skewed / heavy noise               5        **0.083/0.063** ->   **0.085/0.083** ->     --
                                                0.013/0.008          0.023/0.020
(d) none passes, power (score 1.0)     5        0.000 -> 0.000       --                     0.12 -> 0.00
                                       10       0.000 -> 0.000                              0.74 -> 0.13
=====================================  =======  ===================  =====================  ===============

("right": the share of experiments deciding the claim the true way; the rest are
"inconclusive". Before the fix, skewed and heavy noise gave (b) 0.19 / 0.23 right at 5
seeds; not rerun.) Away from a boundary neither claim is ever decided the wrong way, before
or now. **Before, at a knife edge both claims exceeded 2.5% a side** (in bold): the
verdict's interval was the t-scaled interval of the *count's* bootstrap draws, and a count
is a sum of 0/1 indicators. When at least 97.5% of the draws agree with the estimate, the
percentile interval's side toward the threshold has zero length, and
:func:`~.verdicts.t_scale` stretches a zero-length side by nothing; the boundary method was
then decided by the plain plug-in bootstrap (about 1.75 standard errors at 5 seeds where
Student's t needs 2.78), exactly what the t-scaling was introduced to avoid. For "none
passes" the draws also failed a method on *any* of its tests (six here), which pushed the
draws toward 0 and so the wrong verdict toward "holds".

**Now** (:func:`~.scorecard.scorecard_verdicts`) a method certainly passes a test when its
t-scaled score bounds lie inside ``[1 - TOL, 1 + TOL]`` and certainly fails it when they lie
wholly outside; the count's interval is [methods certainly counting, methods not certainly
excluded], each bound at a tail corrected by Bonferroni for the tests and methods that side
combines (2.5% / M methods, 2.5% / T tests, 2.5% / (M D) for D deeper tests, 2.5% / 2: the
reasoning is in :func:`~.scorecard.scorecard_verdicts`). Every wrong rate is within its bar.
The corrections are written for the worst case (any of the M methods or T tests on a
boundary); here one test of one method sits there, so the rates come out below 2.5%, most
of all for "none passes" (wrong "holds" needs the edge method declared failing on one of six
tests at 2.5% / 6 each, only one of which is on the edge; wrong "does not hold" needs it
declared passing all six at 2.5% / 3, five of which it passes only by 0.2 of a noisy
score). The price is power: (d) a method at score 1.0 on six tests is rarely certain to pass
them all (0.00 at 5 seeds, 0.13 at 10, where the count's draws, which under-covered, gave 0.12
and 0.74), and (c)'s null reads "does not hold" at 0.22 / 0.84 instead of 0.73 / 0.97.

Caveat on (b): another retrained model is taken from the *simulated* rows
(:func:`.calibration.another_retrained_model`), where the retrained model's RetDev and
weight distance are 0 in every seed, so the stand-in reads 0 too and scores exactly 1. A real
retrained model of another seed is not at distance 0 from this seed's retrained model, so
on real rows those two tests may fail it: that is a property of the tests, which this
harness does not calibrate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import scorecard as sc
from .calibration import Calibration, Truth, another_retrained_model, calibrate_claim
from .verdicts import FAILS, HOLDS, MIN_SEEDS, Evidence, Tables

#: The scorecard's tests whose numbers come from per-seed full-data rows.
SEED_TESTS: tuple[str, ...] = tuple(t.key for t in sc.TESTS if t.source == "seeds")
#: Raw values of the original and the retrained model per seed test (the test's units),
#: typical of the book's small settings; only the gap's sign and size matter to a score.
REFERENCE_VALUES: dict[str, tuple[float, float]] = {
    "forget_acc": (0.97, 0.88),
    "retdev": (0.12, 0.0),
    "mia_test": (0.60, 0.50),
    "mia_entropy_test": (0.58, 0.50),
    "relearn_acc": (0.96, 0.88),
    "l2_to_retrained": (25.0, 0.0),
}
#: Tests that are distances to the same seed's retrained model: its own value is exactly 0.
AT_ZERO = ("retdev", "l2_to_retrained")
#: One seed's sd, as a share of the test's original-retrained gap (score units).
SEED_SD = 0.15
#: Test accuracy of the retrained and the original model, and one seed's sd of it.
RETRAIN_ACC, ORIGINAL_ACC, ACC_SD = 0.90, 0.905, 0.003
#: The two claims, by the short name :func:`scorecard_claim` takes, and their thresholds' side.
CLAIMS: dict[str, str] = {
    "false sense": "Population MIAs give a false sense of success",
    "none passes": "No unlearning method passes every test",
}
HOLDS_ABOVE = {"false sense": True, "none passes": False}
THRESHOLD = 0.5
#: How close to a pass or utility boundary a true value counts as on it.
EDGE = 1e-9


def _check_which(which: str) -> None:
    if which not in CLAIMS:
        raise ValueError(f"Unknown scorecard claim {which!r}; allowed: {', '.join(CLAIMS)}.")


def _check_tests(tests: Sequence[str]) -> list[str]:
    out = list(tests)
    for k in out:
        if k not in SEED_TESTS:
            where = next((t.source for t in sc.TESTS if t.key == k), None)
            why = f" ({k!r} is a {where} test: per-seed rows cannot give it)" if where else ""
            raise ValueError(f"Unknown seed test {k!r}{why}; allowed: {', '.join(SEED_TESTS)}.")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"tests must name distinct seed tests; got {out!r}; allowed: {', '.join(SEED_TESTS)}.")
    return out


# --------------------------------------------------------------------------- the truth


def scorecard_truth(scores: Mapping[str, float | Mapping[str, float]], test_acc: Mapping[str, float] | None = None,
                    seed_sd: float = SEED_SD, tests: Sequence[str] = SEED_TESTS, acc_sd: float = ACC_SD
                    ) -> Truth:
    """A :class:`~.calibration.Truth` of scorecard rows from true normalised scores.

    ``scores``: per method (the references aside), one score for every test in ``tests``
    or a mapping with a score for each of them (0 = the original model, 1 = the retrained
    one). ``test_acc``: per method (references included) its true test accuracy, default
    :data:`RETRAIN_ACC` (the retrained model's; the original's :data:`ORIGINAL_ACC`).
    ``seed_sd``: one seed's sd in score units (share of each test's gap), for every column
    but the retrained model's distances (:data:`AT_ZERO`). Columns: original, retrain, then
    the methods in order. One clear ``ValueError`` for a test, method or score outside what
    is allowed.
    """
    tests = _check_tests(tests)
    methods = list(scores)
    bad = [m for m in methods if m in sc.REFERENCES]
    if bad:
        raise ValueError(f"{', '.join(bad)} are the references (scores 0 and 1 by definition); "
                         f"give scores for the other methods only.")
    if not methods:
        raise ValueError("scorecard_truth needs at least one method besides the references.")
    if not (math.isfinite(seed_sd) and seed_sd >= 0) or not (math.isfinite(acc_sd) and acc_sd >= 0):
        raise ValueError(f"seed_sd and acc_sd are sds (finite, >= 0); got {seed_sd!r}, {acc_sd!r}.")
    columns = [*sc.REFERENCES, *methods]
    per = {}
    for m in methods:
        s = scores[m]
        if isinstance(s, Mapping):
            unknown = [k for k in s if k not in tests]
            if unknown:
                raise ValueError(f"Unknown test {unknown[0]!r} in the scores of {m!r}; allowed: {', '.join(tests)}.")
            missing = [k for k in tests if k not in s]
            if missing:
                raise ValueError(f"The scores of {m!r} lack {', '.join(missing)}; give every test of {tests}.")
            per[m] = {k: float(s[k]) for k in tests}
        else:
            per[m] = dict.fromkeys(tests, float(s))
        if not all(math.isfinite(v) for v in per[m].values()):
            raise ValueError(f"The scores of {m!r} must be finite; got {per[m]}.")
    acc = {"original": ORIGINAL_ACC, **{m: RETRAIN_ACC for m in ["retrain", *methods]}}
    for m, v in (test_acc or {}).items():
        if m not in acc:
            raise ValueError(f"test_acc for unknown method {m!r}; allowed: {', '.join(columns)}.")
        acc[m] = float(v)
    means, sds = {}, {}
    for k in tests:
        vo, vr = REFERENCE_VALUES[k]
        gap = vr - vo
        s = np.array([0.0, 1.0, *(per[m][k] for m in methods)])
        means[k] = vo + s * gap
        sd = np.full(len(columns), seed_sd * abs(gap))
        if k in AT_ZERO:
            sd[1] = 0.0
        sds[k] = sd
    means["test_acc"] = np.array([acc[m] for m in columns])
    sds["test_acc"] = np.full(len(columns), acc_sd)
    return Truth(columns, means, sds)


def truth_scores(truth: Truth) -> dict[str, np.ndarray]:
    """The truth's normalised score per seed test (columns as ``truth.columns``)."""
    o, r = truth.columns.index("original"), truth.columns.index("retrain")
    t = {k: np.asarray(v, float)[None, :] for k, v in truth.means.items() if k in SEED_TESTS}
    return {k: sc.normalise(v, o, r)[0] for k, v in t.items()}


def tested(truth: Truth) -> list[str]:
    """The seed tests a truth simulates, in the scorecard's order."""
    return [k for k in SEED_TESTS if k in truth.means]


def rows_of(t: Tables, start: int = 0) -> pd.DataFrame:
    """Per-seed tables (:func:`.calibration.simulate` of a :func:`scorecard_truth`) as the
    scorecard's full-data rows: one row per (method, seed), every seed test's column (NaN
    where not simulated) and ``test_acc``; seeds numbered from ``start``."""
    n = t.n_seeds
    out = {"method": np.tile(np.array(t.columns, dtype=object), n),
           "seed": np.repeat(np.arange(start, start + n), len(t.columns))}
    for k in SEED_TESTS:
        out[k] = t.arrays[k].reshape(-1) if k in t.arrays else np.full(n * len(t.columns), np.nan)
    out["test_acc"] = t.arrays["test_acc"].reshape(-1)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- the claims


def scorecard_claim(which: str, tests: Sequence[str] = SEED_TESTS, n_boot: int = sc.N_BOOT,
                    retrained_as: str | None = None, seed: int = 0
                    ) -> Callable[[Tables | pd.DataFrame], Evidence]:
    """``evidence_of(rows) -> Evidence`` for claim ``which`` ("false sense" or "none
    passes"), through the scorecard's real pipeline on full-data rows alone (no shadows, no
    poisoning rows: those tests are unresolved and count nowhere).

    ``rows``: a DataFrame as :func:`~.scorecard.seed_rows` gives, or per-seed
    :class:`~.verdicts.Tables` (:func:`rows_of` lays them out). ``tests``: the seed tests
    the rows carry (for "false sense" it must include the loss-MIA and the relearning
    attack, its only deeper test on rows). ``retrained_as``: the name of a "method" added
    to the rows that is another retrained model (:func:`.calibration.another_retrained_model`).
    The Evidence is read from the claim's :class:`~.verdicts.Verdict`: its estimate and
    interval (the per-test score bounds, :func:`~.scorecard.scorecard_verdicts`); ``state`` is
    holds / does not hold in the claim's sense, or "inconclusive" (any other verdict: the
    interval contains the threshold, or too few seeds).
    """
    _check_which(which)
    tests = _check_tests(tests)
    if which == "false sense":
        need = [k for k in (sc.POPULATION_TEST, "relearn_acc") if k not in tests]
        if need:
            raise ValueError(f"'false sense' on per-seed rows needs the tests {', '.join(need)}: the loss-MIA and "
                             f"the relearning attack (the only deeper test rows carry; the per-sample and "
                             f"poisoning tests need shadows and poisoning rows); got {tests}.")
    counter = iter(range(seed, seed + 10**9))

    def evidence_of(rows: Tables | pd.DataFrame) -> Evidence:
        df = rows if isinstance(rows, pd.DataFrame) else rows_of(rows)
        if retrained_as is not None:
            df = another_retrained_model(df, name=retrained_as)
        draws = sc.bootstrap_values(df, n_boot=n_boot, seed=next(counter))
        score = sc.scores(draws)
        reading = sc.classify(score, sc.utility_mask(draws.test_acc, draws.col("retrain")), draws.methods)
        v = next(v for v in sc.scorecard_verdicts(draws, reading, "calibration") if v.claim == CLAIMS[which])
        state = v.state if v.state in (HOLDS, FAILS) else "inconclusive"
        return Evidence(state, v.estimate, v.low, v.high, v.n_seeds)

    return evidence_of


@dataclass(frozen=True)
class TrueCount:
    """A claim's count at the truth: ``low`` with boundary methods counted out, ``high``
    with them counted in, ``value`` the true value (the threshold at a knife edge)."""

    value: float
    low: int
    high: int
    knife_edge: bool


def true_count(truth: Truth, which: str, retrained_as: str | None = None) -> TrueCount:
    """The claim's count of methods at ``truth``'s true scores and accuracies, by the
    reading's rules (module docstring: a knife edge's true value is the threshold).
    ``retrained_as``: count another retrained model too (true scores 1 everywhere)."""
    _check_which(which)
    s = truth_scores(truth)
    tests = tested(truth)
    cols = list(truth.columns)
    ta = np.asarray(truth.means["test_acc"], float)
    r = cols.index("retrain")
    methods = [j for j, m in enumerate(cols) if m not in sc.REFERENCES]
    d = {k: np.abs(s[k] - 1.0) for k in tests}
    extra = 1 if retrained_as is not None else 0  # like retraining on every test: counts for "none passes" only
    margin = ta - (ta[r] - sc.UTILITY)
    keeps_in, keeps_out = margin >= -EDGE, margin > EDGE
    pass_in = {k: d[k] <= sc.TOL + EDGE for k in tests}    # passes when boundary methods count as passing
    pass_out = {k: d[k] < sc.TOL - EDGE for k in tests}    # passes when they count as failing
    closed = {k: d[k] <= sc.TOL for k in tests}
    if which == "none passes":
        lo = sum(bool(keeps_out[j] and all(pass_out[k][j] for k in tests)) for j in methods) + extra
        hi = sum(bool(keeps_in[j] and all(pass_in[k][j] for k in tests)) for j in methods) + extra
        val = sum(bool(ta[j] >= ta[r] - sc.UTILITY and all(closed[k][j] for k in tests)) for j in methods) + extra
    else:
        deep = [k for k in tests if sc.test_of(k).group in sc.DEEPER_GROUPS]
        p = sc.POPULATION_TEST
        lo = sum(bool(keeps_out[j] and pass_out[p][j] and any(not pass_in[k][j] for k in deep)) for j in methods)
        hi = sum(bool(keeps_in[j] and pass_in[p][j] and any(not pass_out[k][j] for k in deep)) for j in methods)
        val = sum(bool(ta[j] >= ta[r] - sc.UTILITY and closed[p][j] and any(not closed[k][j] for k in deep))
                  for j in methods)
    edge = lo < THRESHOLD < hi
    return TrueCount(THRESHOLD if edge else float(val), int(lo), int(hi), bool(edge))


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class ScorecardCalibration:
    """One scorecard claim at one seed count and noise. ``calibration`` is
    :func:`.calibration.calibrate_claim`'s (its ``holds`` / ``fails`` are the shares of
    intervals wholly above / below the threshold); ``holds`` and ``does_not_hold`` here are
    the shares of the claim's own verdicts."""

    which: str
    calibration: Calibration
    truth: TrueCount

    @property
    def holds(self) -> float:
        c = self.calibration
        return c.holds if HOLDS_ABOVE[self.which] else c.fails

    @property
    def does_not_hold(self) -> float:
        c = self.calibration
        return c.fails if HOLDS_ABOVE[self.which] else c.holds

    @property
    def claim_true(self) -> bool | None:
        """Whether the claim is true at the truth (None at a knife edge)."""
        if self.truth.knife_edge:
            return None
        above = self.truth.value > THRESHOLD
        return above == HOLDS_ABOVE[self.which]

    @property
    def wrong(self) -> dict[str, float]:
        """The wrong verdicts' shares: both at a knife edge, else the one against the truth."""
        if self.claim_true is None:
            return {HOLDS: self.holds, FAILS: self.does_not_hold}
        return {FAILS: self.does_not_hold} if self.claim_true else {HOLDS: self.holds}

    @property
    def power(self) -> float | None:
        """The share of right verdicts (None at a knife edge, where none is right)."""
        if self.claim_true is None:
            return None
        return self.holds if self.claim_true else self.does_not_hold

    def mc_se(self, rate: float) -> float:
        """The Monte Carlo standard error of a share ``rate`` of the experiments."""
        return math.sqrt(max(rate * (1 - rate), 1e-12) / self.calibration.n_sims)

    def row(self) -> dict:
        c = self.calibration
        wrong = self.wrong
        return {"claim": self.which, "statistic": c.statistic, "noise": c.noise, "seeds": c.n_seeds,
                "experiments": c.n_sims, "true count": self.truth.value, "knife edge": self.truth.knife_edge,
                "holds": self.holds, "does not hold": self.does_not_hold,
                "wrong holds": wrong.get(HOLDS, math.nan), "wrong does not hold": wrong.get(FAILS, math.nan),
                "power": math.nan if self.power is None else self.power, "coverage": c.coverage,
                "mc se at 2.5%": math.sqrt(0.025 * 0.975 / c.n_sims)}


def calibrate_scorecard(which: str, truth: Truth, n_seeds: int, noise: str = "normal", n_sims: int = 200,
                        rho: float = 0.5, seed: int = 0, n_boot: int = sc.N_BOOT,
                        retrained_as: str | None = None, name: str | None = None) -> ScorecardCalibration:
    """:func:`.calibration.calibrate_claim` for a scorecard claim: ``n_sims`` experiments of
    ``n_seeds`` seeds drawn from ``truth`` (:func:`scorecard_truth`), each decided by the
    scorecard's pipeline (:func:`scorecard_claim`), against the true count
    (:func:`true_count`). The scorecard tests nothing below :data:`~.verdicts.MIN_SEEDS`."""
    _check_which(which)
    if n_seeds < MIN_SEEDS:
        raise ValueError(f"The scorecard's verdicts need at least {MIN_SEEDS} seeds; got {n_seeds}.")
    true = true_count(truth, which, retrained_as)
    ev = scorecard_claim(which, tested(truth), n_boot, retrained_as, seed)
    cal = calibrate_claim(name or which, ev, truth, true.value, n_seeds, noise, THRESHOLD, n_sims, rho, seed)
    return ScorecardCalibration(which, cal, true)


# --------------------------------------------------------------------------- the scenarios


#: A method failing clearly: a third of the way from the original on every test.
FAILING = 0.3


def knife_edge_truth(seed_sd: float = SEED_SD, edge_test: str = sc.POPULATION_TEST) -> Truth:
    """(a): "edge" on ``edge_test``'s pass boundary (score 1 - TOL), every other test at
    1.0; two methods failing clearly (score :data:`FAILING` everywhere)."""
    _check_tests([edge_test])
    edge = {k: 1.0 for k in SEED_TESTS} | {edge_test: 1.0 - sc.TOL}
    return scorecard_truth({"edge": edge, "weak": FAILING, "weaker": FAILING / 2}, seed_sd=seed_sd)


def null_truth(seed_sd: float = SEED_SD) -> Truth:
    """(b): two methods failing clearly; :func:`calibrate_scorecard` with ``retrained_as``
    adds another retrained model as a third."""
    return scorecard_truth({"weak": FAILING, "weaker": FAILING / 2}, seed_sd=seed_sd)


def no_false_sense_truth(seed_sd: float = SEED_SD) -> Truth:
    """(c), the null: no method passes the loss-MIA and fails relearning -- "honest" is like
    retraining everywhere, "weak" fails both the MIA and relearning."""
    return scorecard_truth({"honest": 1.0, "weak": FAILING}, seed_sd=seed_sd)


def false_sense_edge_truth(seed_sd: float = SEED_SD) -> Truth:
    """(c), the knife edge: "shallow" on the loss-MIA's pass boundary and failing
    relearning clearly (0.3), so whether it counts flips at the boundary."""
    shallow = {k: 1.0 for k in SEED_TESTS} | {sc.POPULATION_TEST: 1.0 - sc.TOL, "relearn_acc": FAILING}
    return scorecard_truth({"shallow": shallow, "weak": FAILING}, seed_sd=seed_sd)


def power_truth(seed_sd: float = SEED_SD) -> Truth:
    """(d): "good" at score 1.0 on every test, two methods failing clearly."""
    return scorecard_truth({"good": 1.0, "weak": FAILING, "weaker": FAILING / 2}, seed_sd=seed_sd)


#: name -> (claim, truth, retrained_as): the scenarios :func:`scenarios` runs.
SCENARIOS: dict[str, tuple[str, Callable[[], Truth], str | None]] = {
    "a: none passes, knife edge": ("none passes", knife_edge_truth, None),
    "b: none passes, retrained as method": ("none passes", null_truth, "retrain (another seed)"),
    "c: false sense, none has it": ("false sense", no_false_sense_truth, None),
    "c: false sense, knife edge": ("false sense", false_sense_edge_truth, None),
    "d: none passes, power": ("none passes", power_truth, None),
}


def scenarios(seeds: Sequence[int] = (5, 10), noises: Sequence[str] = ("normal",), n_sims: int = 1000,
              names: Sequence[str] | None = None, n_boot: int = sc.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Every scenario of :data:`SCENARIOS` (or ``names``) at each seed count and noise: one
    :meth:`ScorecardCalibration.row` each."""
    rows = []
    for nm in names or SCENARIOS:
        if nm not in SCENARIOS:
            raise ValueError(f"Unknown scenario {nm!r}; allowed: {', '.join(SCENARIOS)}.")
        which, make, null = SCENARIOS[nm]
        for noise in noises:
            for n in seeds:
                got = calibrate_scorecard(which, make(), n, noise, n_sims, seed=seed, n_boot=n_boot,
                                          retrained_as=null, name=nm)
                rows.append(got.row())
    return pd.DataFrame(rows)


__all__ = ["SEED_TESTS", "REFERENCE_VALUES", "AT_ZERO", "SEED_SD", "RETRAIN_ACC", "ORIGINAL_ACC", "ACC_SD",
           "CLAIMS", "HOLDS_ABOVE", "THRESHOLD", "scorecard_truth", "truth_scores", "tested", "rows_of",
           "scorecard_claim", "TrueCount", "true_count", "ScorecardCalibration", "calibrate_scorecard",
           "FAILING", "knife_edge_truth", "null_truth", "no_false_sense_truth", "false_sense_edge_truth",
           "power_truth", "SCENARIOS", "scenarios"]
