"""Reading the scorecard's draws: every raw value normalised against the two reference
models (:func:`normalise`, :func:`scores`, on the tests whose gap is resolved,
:func:`resolved_gaps`), pass or fail per draw, method and test (:func:`classify`), the
readings over tests (:func:`passes_every_test`, :func:`false_sense`), the tests' rankings
compared (:func:`kendall_matrix`), the tidy frames (:func:`scorecard_frame`,
:func:`summaries`) and the two claims as verdicts, with their calibrated counts
(:func:`scorecard_verdicts`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import methods as registry
from .. import verdicts as vd
from .catalogue import (
    DEEPER_GROUPS,
    POPULATION_TEST,
    REFERENCES,
    TEST_KEYS,
    TOL,
    UTILITY,
    VALUE_RANGE,
    test_of,
)
from .collection import Draws

# --------------------------------------------------------------------------- normalise and read


def normalise(values: np.ndarray, original: int, retrained: int) -> np.ndarray:
    """(v - v_original) / (v_retrained - v_original) per row: 0 = original, 1 = retrained.

    ``values`` is (draws, methods); ``original`` and ``retrained`` are column indices. A
    row whose two references coincide (no gap) gives NaN.
    """
    v = np.asarray(values, float)
    o, r = v[:, [original]], v[:, [retrained]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r != o, (v - o) / (r - o), np.nan)


def resolved_gaps(draws: Draws, level: float = 0.95) -> dict[str, bool]:
    """Per test: whether the retrained-minus-original gap has a ``level`` interval that
    excludes 0: the scorecard's t-scaled interval (:func:`_interval`; a percentile interval
    would call gaps resolved that 5 seeds cannot resolve; one seed resolves nothing). One
    draw only: whether the gap is non-zero."""
    o, r = draws.col("original"), draws.col("retrain")
    out = {}
    for k, v in draws.values.items():
        gap = v[:, r] - v[:, o]
        if not np.isfinite(gap[0]) or gap[0] == 0:
            out[k] = False
        elif not np.isfinite(gap[1:]).any():
            out[k] = True
        else:
            lo, hi = _interval(gap, draws.sample_size(k), level)
            out[k] = bool(lo > 0 or hi < 0)
    return out


def scores(draws: Draws, resolved: Mapping[str, bool] | None = None) -> dict[str, np.ndarray]:
    """Normalised scores per test, (draws, methods); NaN for an unresolved test."""
    resolved = resolved_gaps(draws) if resolved is None else resolved
    o, r = draws.col("original"), draws.col("retrain")
    return {k: normalise(v, o, r) if resolved.get(k, False) else np.full(v.shape, np.nan)
            for k, v in draws.values.items()}


def utility_mask(test_acc: np.ndarray, retrained: int, utility: float = UTILITY) -> np.ndarray:
    """(draws, methods): whether each method's test accuracy is at most ``utility`` below
    the retrained model's (column ``retrained``). NaN accuracies count as lost."""
    ta = np.asarray(test_acc, float)
    with np.errstate(invalid="ignore"):
        return ta >= ta[:, [retrained]] - utility


@dataclass
class Reading:
    """Pass/fail of every (draw, method, test): ``passed`` is True/False where ``known``.

    ``resolved`` (tests,) marks the tests that can read anything (a resolved gap); an
    unresolved test is known for no method and counts nowhere.
    """

    methods: list[str]
    tests: list[str]
    passed: np.ndarray    # (draws, methods, tests) bool
    known: np.ndarray     # (draws, methods, tests) bool
    utility: np.ndarray   # (draws, methods) bool
    resolved: np.ndarray  # (tests,) bool


def classify(score: Mapping[str, np.ndarray], utility: np.ndarray, methods: Sequence[str],
             tests: Sequence[str] | None = None, tol: float = TOL,
             poison_utility: np.ndarray | None = None) -> Reading:
    """Pass (|s - 1| <= ``tol``) or fail per draw, method and test.

    A test is resolved when any of its scores is finite (:func:`scores` gives an unresolved
    test NaN everywhere). On a resolved test, a method without its utility (``utility``
    False) fails, whether the test ran for it or not (the book's rule); a method that keeps
    it passes or fails by its score, and is unknown where the test did not run for it.
    ``poison_utility`` (optional, (draws, methods)) applies the same rule to the poisoning
    test with the poisoning setting's own test accuracy, where that test ran.
    """
    tests = list(tests or [k for k in TEST_KEYS if k in score])
    s = np.stack([np.asarray(score[k], float) for k in tests], axis=-1)
    finite = np.isfinite(s)
    resolved = finite.any(axis=(0, 1))
    with np.errstate(invalid="ignore"):
        close = np.abs(s - 1.0) <= tol
    keeps = np.repeat(np.asarray(utility, bool)[..., None], len(tests), axis=-1)
    if poison_utility is not None and "gus" in tests:
        j = tests.index("gus")
        keeps[..., j] &= np.asarray(poison_utility, bool) | ~finite[..., j]
    passed = keeps & finite & close & resolved
    known = (finite | ~keeps) & resolved
    return Reading(list(methods), tests, passed, known, np.asarray(utility, bool), resolved)


def read_draws(draws: Draws, tol: float = TOL) -> tuple[dict[str, np.ndarray], Reading]:
    """The scorecard's reading of ``draws``: the normalised scores (:func:`scores`) and their
    pass / fail (:func:`classify`) under the book's utility rule, for the full-data test
    accuracy and, on the poisoning test, the poisoning setting's own (:func:`utility_mask`
    against the retrained model of each)."""
    score = scores(draws)
    ret = draws.col("retrain")
    reading = classify(score, utility_mask(draws.test_acc, ret), draws.methods, tol=tol,
                       poison_utility=utility_mask(draws.poison_acc, ret))
    return score, reading


def _deeper(tests: Sequence[str]) -> list[int]:
    return [i for i, k in enumerate(tests) if test_of(k).group in DEEPER_GROUPS]


def passes_every_test(reading: Reading) -> np.ndarray:
    """(draws, methods): keeps its utility and passes every resolved test; a resolved test
    that did not run for the method counts as not passed (nothing shows it passes)."""
    r = reading.resolved
    if not r.any():  # no resolved test: nothing shows any method passes (not "all of none")
        return np.zeros(reading.utility.shape, bool)
    return reading.utility & reading.passed[..., r].all(-1)


def false_sense(reading: Reading, population: str = POPULATION_TEST) -> np.ndarray:
    """(draws, methods): keeps its utility, passes ``population`` and fails a known
    per-sample, relearning or poisoning test (:data:`DEEPER_GROUPS`)."""
    p = reading.tests.index(population)
    deep = _deeper(reading.tests)
    failed = (reading.known & ~reading.passed)[..., deep].any(-1)
    return reading.utility & reading.passed[..., p] & failed


def _non_reference(methods: Sequence[str]) -> np.ndarray:
    return np.array([m not in REFERENCES for m in methods])


# --------------------------------------------------------------------------- rankings


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b of two score lists over the same items (NaN pairs dropped; NaN when
    fewer than 3 items remain or one list is constant)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(kendalltau(a[ok], b[ok]).statistic)


def distance_to_retrained(score: Mapping[str, np.ndarray], methods: Sequence[str] | None = None,
                          row: int = 0) -> pd.DataFrame:
    """|s - 1| of every method (rows, named by ``methods``) and test (columns) in draw
    ``row``: 0 = like retraining. A test ranks the methods by it."""
    return pd.DataFrame({k: np.abs(np.asarray(v, float)[row] - 1.0) for k, v in score.items()},
                        index=None if methods is None else list(methods))


def ranking_distances(score: Mapping[str, np.ndarray], reading: Reading) -> pd.DataFrame:
    """:func:`distance_to_retrained` of the methods that keep their utility (point estimate,
    references left out: they sit at 0 and 1 by construction) on the resolved tests."""
    d = distance_to_retrained(score, reading.methods)
    keep = [m for j, m in enumerate(reading.methods) if reading.utility[0, j] and m not in REFERENCES]
    return d.loc[keep, [t for t, ok in zip(reading.tests, reading.resolved, strict=True) if ok]]


#: Fewest methods whose rankings the tests' Kendall matrix compares: tau between rankings of n
#: items moves in steps of 4 / (n (n - 1)), so with 3 methods every value is +-1/3 or +-1.
KENDALL_MIN_METHODS = 5


def kendall_matrix(distance: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau between the rankings of methods (rows of ``distance``) by each pair of
    tests (columns); 1 = the same order, -1 = reversed."""
    cols = list(distance.columns)
    out = pd.DataFrame(np.nan, index=cols, columns=cols)
    for i, a in enumerate(cols):
        for b in cols[i:]:
            out.loc[a, b] = out.loc[b, a] = kendall_tau(distance[a], distance[b])
    return out


# --------------------------------------------------------------------------- tidy results


def _interval(x: np.ndarray, n_seeds: int, level: float = 0.95,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """The ``level`` interval of a statistic from its draws (row 0 the estimate, rows 1..
    the resamples): the library's t-scaled bootstrap interval at ``n_seeds``
    (:func:`~unlearnlib.studies.verdicts.interval_from_draws`; the percentile interval
    under-covers at few seeds, Hesterberg 2015), clipped to the statistic's range ``bounds``."""
    x = np.asarray(x, float)
    lo, hi = vd.interval_from_draws(float(x[0]), x[1:], n_seeds, level)
    if math.isfinite(lo) and math.isfinite(hi):
        lo, hi = float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))
    return lo, hi


def scorecard_frame(draws: Draws, score: Mapping[str, np.ndarray], reading: Reading,
                    sources: Mapping[str, str] | None = None, model: str | None = None) -> pd.DataFrame:
    """One tidy row per (method, test): raw value and score with their 95% intervals
    (:func:`_interval`; the value's clipped to :data:`VALUE_RANGE`), and the reading (pass /
    fail / unknown / unresolved). ``method_label`` is how the figure and the table name the method on the registered ``model`` (:meth:`~unlearnlib.methods.Method.label`:
    CT on ``cnn1d`` is ``ct (1-D extension)``)."""
    resolved = dict(zip(reading.tests, reading.resolved.tolist(), strict=True))
    rows = []
    for j, m in enumerate(draws.methods):
        name = registry.get(m).label(model) if m in registry.available() else m
        for t_i, k in enumerate(reading.tests):
            v, s = draws.values[k][:, j], score[k][:, j]
            n = draws.sample_size(k)
            v_lo, v_hi = _interval(v, n, bounds=VALUE_RANGE.get(k, (-math.inf, math.inf)))
            s_lo, s_hi = _interval(s, n)
            known, ok = reading.known[0, j, t_i], reading.passed[0, j, t_i]
            state = ("unresolved" if not resolved[k] else "pass" if ok else "fail" if known else "not run")
            rows.append({"method": m, "method_label": name, "test": k, "label": test_of(k).label, "group": test_of(k).group,
                         "value": float(v[0]), "value_low": v_lo, "value_high": v_hi,
                         "score": float(s[0]), "score_low": s_lo, "score_high": s_hi,
                         "reading": state, "keeps_utility": bool(reading.utility[0, j]),
                         "test_acc": float(draws.test_acc[0, j]),
                         "hparams": (sources or {}).get(m, "")})
    return pd.DataFrame(rows)


def summaries(draws: Draws, reading: Reading) -> pd.DataFrame:
    """Per method (point estimate and share of draws): keeps utility, passes every test, false
    sense of success, and which tests it fails."""
    every, false = passes_every_test(reading), false_sense(reading)
    out = []
    for j, m in enumerate(draws.methods):
        fails = [test_of(k).label for i, k in enumerate(reading.tests)
                 if reading.known[0, j, i] and not reading.passed[0, j, i]]
        out.append({"method": m, "keeps utility": bool(reading.utility[0, j]),
                    "passes every test": bool(every[0, j]), "share of draws (every test)": float(every[1:, j].mean()),
                    "false sense of success": bool(false[0, j]), "share of draws (false sense)": float(false[1:, j].mean()),
                    "fails": ", ".join(fails) if reading.utility[0, j] else "every test (utility lost)"})
    return pd.DataFrame(out).set_index("method")


# --------------------------------------------------------------------------- verdicts

PAWELCZYK = "Pawelczyk et al. 2024; Hayes et al. 2024"
BOOK = "this book (the scorecard)"


#: The error each side of a verdict's 95% interval keeps (one-sided).
ALPHA = (1 - vd.LEVEL) / 2


def score_bounds(x: np.ndarray, n: int, tail: float) -> tuple[float, float]:
    """Lower and upper bound of a statistic from its draws ``x`` (row 0 the estimate, rows
    1.. the resamples of ``n`` units), each with ``tail`` probability beyond it.

    :meth:`~unlearnlib.studies.verdicts.Resampled.bound`: the draws' quantile at ``tail``
    (``1 - tail``) stretched around the estimate by sqrt(n/(n-1)) t_{n-1,1-tail} / z_{1-tail},
    the one-sided form of :func:`_interval`'s stretch; each bound is then widened to the
    estimate where the draws lie all on one side of it, as
    :func:`~unlearnlib.studies.verdicts.interval_from_draws` does, so the estimate always lies
    within its bounds. *Resolution*: a tail below 1 / draws cannot be read from the draws (the
    quantile would be the extreme draw, which sits near tail 1 / draws whatever was asked);
    such a bound is read at 1 / draws and its distance to the estimate stretched by
    t_{n-1,1-tail} / t_{n-1,1-1/draws} (exact for a mean of normal units, whose bounds are the
    estimate -/+ t times its standard error). NaN bounds when nothing can be read (no finite
    draw, a NaN estimate, fewer than 2 units)."""
    from scipy.stats import t

    x = np.asarray(x, float)
    est, d = float(x[0]), x[1:][~np.isnan(x[1:])]
    if not (len(d) and math.isfinite(est) and n >= 2):
        return math.nan, math.nan
    read = max(float(tail), 1.0 / len(d))
    r = vd.Resampled(est, d, int(n))
    lo, hi = min(r.bound(read, False), est), max(r.bound(read, True), est)
    if read > tail:
        c = float(t.ppf(1 - tail, n - 1) / t.ppf(1 - read, n - 1))
        lo, hi = est - c * (est - lo), est + c * (hi - est)
    return float(lo), float(hi)


def _reading_scores(draws: Draws, reading: Reading) -> dict[str, np.ndarray]:
    """:func:`scores` of ``draws`` on the tests ``reading`` resolved."""
    return scores(draws, dict(zip(reading.tests, reading.resolved.tolist(), strict=True)))


def certain_readings(draws: Draws, reading: Reading, tail: float,
                     score: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(certainly passes, certainly fails), each (methods, tests) in ``reading``'s order, with
    at most ``tail`` error each: a reading is wrong only when the truth lies beyond one of the
    bounds of :func:`score_bounds` at ``tail``.

    A method *certainly passes* a resolved test that ran for it when the score's bounds lie
    inside [1 - TOL, 1 + TOL] (a truth outside the band lies beyond one of them: error at most
    ``tail``), and *certainly fails* it when they lie wholly outside the band (a truth inside
    is beyond the near bound: error at most ``tail``; the far side adds the chance that the
    interval misses the truth by the band's whole width 2 TOL, which is neglected), or when a
    utility rule fails it. Utility is read at the point estimate, as the reading's row 0 does
    (not resampled: a method on the utility boundary is decided by its estimate): a method
    without its utility certainly fails every resolved test, and a test that row 0 fails
    though its score lies within TOL (or did not run) was failed by a utility rule (the
    poisoning setting's own, :func:`classify`) and certainly fails too. A test that did not
    run for a method keeping its utility is neither. ``score``: the normalised scores the
    reading was made from (default :func:`scores` of ``draws`` on the reading's resolved tests).
    """
    score = _reading_scores(draws, reading) if score is None else score
    s0 = np.stack([np.asarray(score[k], float)[0] for k in reading.tests], axis=-1)
    known, passed, resolved = reading.known[0], reading.passed[0], reading.resolved[None, :]
    finite = np.isfinite(s0)
    with np.errstate(invalid="ignore"):
        close = np.abs(s0 - 1.0) <= TOL
    lost = (~reading.utility[0][:, None] | (known & ~passed & (~finite | close))) & resolved
    ran = finite & resolved & ~lost
    lo, hi = np.full(s0.shape, np.nan), np.full(s0.shape, np.nan)
    for j, i in zip(*np.nonzero(ran), strict=True):
        k = reading.tests[i]
        lo[j, i], hi[j, i] = score_bounds(np.asarray(score[k], float)[:, j], draws.sample_size(k), tail)
    with np.errstate(invalid="ignore"):
        inside = ran & (lo >= 1.0 - TOL) & (hi <= 1.0 + TOL)
        outside = lost | (ran & ((hi < 1.0 - TOL) | (lo > 1.0 + TOL)))
    return inside, outside


def every_test_bounds(draws: Draws, reading: Reading, level: float = vd.LEVEL) -> tuple[float, float]:
    """The ``level`` interval of the number of methods (references aside) passing every
    resolved test: [methods certainly passing all of them, methods certainly failing none
    of them] (:func:`certain_readings`; tails in :func:`scorecard_verdicts`). A test that did
    not run for a method keeps it from passing every test, as in :func:`passes_every_test`."""
    a = (1 - level) / 2
    nonref = _non_reference(reading.methods)
    r = reading.resolved
    n_tests, n_methods = int(r.sum()), int(nonref.sum())
    if not n_tests or not n_methods:
        return 0.0, 0.0
    score = _reading_scores(draws, reading)
    inside, _ = certain_readings(draws, reading, a / n_methods, score)
    _, outside = certain_readings(draws, reading, a / n_tests, score)
    not_run = ~reading.known[0] & r
    util = reading.utility[0]
    low = util & inside[:, r].all(-1)
    high = util & ~(outside | not_run)[:, r].any(-1)
    return float(low[nonref].sum()), float(high[nonref].sum())


def false_sense_bounds(draws: Draws, reading: Reading, level: float = vd.LEVEL,
                       population: str = POPULATION_TEST) -> tuple[float, float]:
    """The ``level`` interval of the number of methods (references aside) with a false sense
    of success: [methods certainly passing ``population`` and certainly failing a deeper
    test, methods not certainly failing ``population`` and not certainly passing every deeper
    test] (:func:`certain_readings`; tails in :func:`scorecard_verdicts`). A deeper test that
    did not run is no failure, as in :func:`false_sense`."""
    a = (1 - level) / 2
    nonref = _non_reference(reading.methods)
    p = reading.tests.index(population)
    deep = [i for i in _deeper(reading.tests) if reading.resolved[i]]
    n_methods = int(nonref.sum())
    if not (reading.resolved[p] and deep and n_methods):
        return 0.0, 0.0
    util = reading.utility[0]
    score = _reading_scores(draws, reading)
    mia_in, _ = certain_readings(draws, reading, a / n_methods, score)
    _, deep_out = certain_readings(draws, reading, a / (n_methods * len(deep)), score)
    sure_in, sure_out = certain_readings(draws, reading, a / 2, score)
    known = reading.known[0]  # ran, or failed by a utility rule: a test that can fail
    low = util & mia_in[:, p] & deep_out[:, deep].any(-1)
    high = util & known[:, p] & ~sure_out[:, p] & (known & ~sure_in)[:, deep].any(-1)
    return float(low[nonref].sum()), float(high[nonref].sum())


def _count_evidence(estimate: float, bounds: tuple[float, float], draws: Draws, holds_above: bool) -> vd.Evidence:
    """A count of methods against 1/2 (:func:`~unlearnlib.studies.verdicts.side`); the
    verdict's seeds are the full-data seeds."""
    lo, hi = bounds
    return vd.Evidence(vd.side(lo, hi, 0.5, holds_above), float(estimate), lo, hi, draws.n_seeds,
                       holds_above=holds_above)


def scorecard_verdicts(draws: Draws, reading: Reading, budget: str, chapter: str = "scorecard") -> list[vd.Verdict]:
    """The scorecard's claims as verdicts (:func:`unlearnlib.studies.verdicts.decide`): the
    number of methods (references aside) with a false sense of success (the claim holds when
    its interval lies above 1/2) and the number passing every resolved test (the claim "none
    does" holds when the interval lies below 1/2). The estimate is the count at the point
    estimate (draw 0).

    The counts' intervals are not read from the draws of the counts: a count is a sum of 0/1
    readings, and wherever 97.5% of its draws agree its interval has a zero-length side,
    which the t-scale stretches by nothing, so a method on a pass boundary would be decided by
    the plain percentile bootstrap (:mod:`.calibration_scorecard` measured 5-10% wrong
    verdicts a side). They are built from the per-(method, test) score bounds instead
    (:func:`certain_readings`, :func:`score_bounds`), each one-sided bound at a tail chosen so
    that each side of the count's interval keeps its a = 2.5% error whatever the number of
    methods M (references aside) and resolved tests T: a side that is wrong when *one* of m
    readings is wrong gets each of them at a / m (Bonferroni), a side that needs *all* of them
    wrong goes uncorrected (the rule of :func:`~unlearnlib.studies.verdicts.extreme_evidence`).

    - "No method passes every test" (:func:`every_test_bounds`). Low end: the methods
      certainly passing every test. It is too high, and "does not hold" wrongly reachable,
      when a method that truly fails (one test truly outside the band or on its edge) is
      declared passing all; that needs its failing test declared inside, and any of the M
      methods may be the one: each bound at a / M (no correction over the tests: declaring a
      method passing needs all of them). High end: the methods not certainly failing any
      test. It is too low, and "holds" wrongly reachable, when a method that truly passes
      is declared failing; one such method suffices, but one of its T tests declared outside
      is enough: each bound at a / T.
    - "False sense of success" (:func:`false_sense_bounds`; D resolved deeper tests). Low
      end: the methods certainly passing the loss-MIA and certainly failing a deeper test.
      It is too high, and "holds" wrongly reachable, when one of M methods truly without it
      is counted; that method truly fails the MIA (declared inside: error at the MIA's
      tail) or truly passes every deeper test (one of D declared outside: D times the
      deeper tail): the MIA's bound at a / M, each deeper test's at a / (M D). High end: the
      methods neither certainly failing the MIA nor certainly passing every deeper test. It
      is too low, and "does not hold" wrongly reachable, when the one method truly with it
      is excluded: its MIA declared outside or its truly failing deeper test declared inside
      (either of two): every bound at a / 2.

    The price is power: a method must clear the band by its corrected one-sided bound, so
    at 5 seeds a method like retraining is rarely certain to pass six tests
    (:mod:`.calibration_scorecard` has the table). The text of each claim's criterion says
    so.
    """
    nonref = _non_reference(draws.methods)
    fs = float(false_sense(reading)[0, nonref].sum())
    ev = float(passes_every_test(reading)[0, nonref].sum())
    deep = ", ".join(test_of(k).label for k in reading.tests if test_of(k).group in DEEPER_GROUPS)
    util = (f"methods losing more than {UTILITY:.0%} test accuracy against retraining (point estimate) "
            "pass no test")
    how = ("the count's 95% interval runs from the methods that certainly count to those not certainly "
           "excluded, by each method's per-test score intervals, corrected for the number of "
           "tests and methods (Bonferroni)")
    out = [
        vd.decide(
            "Population MIAs give a false sense of success", PAWELCZYK, chapter,
            f"at least one method passes the population loss-MIA (normalised score within {TOL} of the retrained "
            f"model's 1) and fails a per-sample, relearning or poisoning test ({deep}); {util}; {how}",
            "number of methods passing the loss-MIA and failing a deeper test", 0.5,
            _count_evidence(fs, false_sense_bounds(draws, reading), draws, True), None, budget),
        vd.decide(
            "No unlearning method passes every test", BOOK, chapter,
            f"no method (references aside) has every resolved test within {TOL} of the retrained model's score; "
            f"{util}; {how}",
            "number of methods passing every test", 0.5,
            _count_evidence(ev, every_test_bounds(draws, reading), draws, False), None, budget),
    ]
    scope = vd.scope_of(pd.DataFrame({"method": draws.methods}))
    return vd.scoped(out, f"{scope}, {int(np.sum(reading.resolved))} of {len(reading.tests)} tests resolved")


__all__ = [
    "normalise", "resolved_gaps", "scores", "utility_mask", "Reading", "classify", "read_draws", "passes_every_test",
    "false_sense", "kendall_tau", "distance_to_retrained", "ranking_distances", "KENDALL_MIN_METHODS",
    "kendall_matrix", "scorecard_frame", "summaries", "PAWELCZYK", "BOOK", "ALPHA", "score_bounds",
    "certain_readings", "every_test_bounds", "false_sense_bounds", "scorecard_verdicts",
]
