"""The scorecard's catalogue: its tests (:data:`TESTS`, one per column, each a metric of
:mod:`unlearnlib.evaluation.registry`), what each reads and where its numbers come from
(seeds, shadows or poison), the rules every reading shares (:data:`TOL`, :data:`UTILITY`,
:data:`DEEPER_GROUPS`), the options a scorecard may take (:func:`check_options`), and whether
KLOM can read anything on a shadow design (:func:`klom_resolution`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...evaluation import registry as metric_registry
from ...evaluation.klom import max_klom, small_sample_floor
from ...evaluation.lira import ShadowSet
from .. import verdicts as vd

#: Bump when what a cached scorecard entry holds changes.
SCORECARD_VERSION = 1
REFERENCES = ("original", "retrain")
#: A method may lose at most this much test accuracy against retraining (the book's rule).
UTILITY = vd.UTILITY
#: A method passes a test when its normalised score is within TOL of 1.
TOL = 0.2
#: Bootstrap draws behind every interval of the scorecard.
N_BOOT = 400
#: Methods whose cost no compute budget bounds: FF's Fisher pass and IU's Hessian estimate
#: are not capped by ``max_sample_grads`` (their docstrings), so they cannot take part in
#: Pawelczyk et al.'s budgeted protocol.
UNBUDGETED = ("ff", "iu")


@dataclass(frozen=True)
class Test:
    """One column of the scorecard: a metric of the registry
    (:mod:`unlearnlib.evaluation.registry`, where its label, group, direction and paper are
    declared), seen by the scorecard (:meth:`of`)."""

    key: str
    label: str
    group: str    # accuracy, population, per-sample, relearning, weights, poisoning
    source: str   # seeds, shadows or poison: which rows (and which bootstrap) give its numbers
    reads: str    # what the raw value is
    direction: str = "closer-to-retrained"   # the registry's (the normalised score needs none)
    paper: str = ""                          # the registry's source

    @classmethod
    def of(cls, key: str) -> Test:
        m = metric_registry.metric(key)
        return cls(m.key, m.label, m.group, m.resamples, m.reads, m.direction, m.source)


#: The scorecard's columns, in order: keys of the metric registry.
COLUMNS = ("forget_acc", "retdev", "mia_test", "mia_entropy_test", "ulira_accuracy", "ulira_tpr", "rmia_auc",
           "neurips_f", "klom", "ks_distance", "relearn_acc", "l2_to_retrained", "gus")
TESTS: tuple[Test, ...] = tuple(Test.of(k) for k in COLUMNS)
TEST_KEYS = tuple(t.key for t in TESTS)
#: Tests whose failure, next to a passed population MIA, is a false sense of success.
DEEPER_GROUPS = ("per-sample", "relearning", "poisoning")
#: The population MIA whose pass the false sense of success is about (Pawelczyk et al.'s).
POPULATION_TEST = "mia_test"


ULIRA_MODES = ("online", "offline", "fixed_variance")


def check_options(hparams_from: str = "shipped", deeper: str = "utility", ulira_mode: str = "fixed_variance",
                  poison_budget: float = 0.1, n_boot: int = N_BOOT) -> None:
    """One clear ``ValueError`` for a scorecard option outside what is allowed."""
    if hparams_from not in ("shipped", "defaults"):
        raise ValueError(f"hparams_from must be 'shipped' or 'defaults'; got {hparams_from!r}.")
    if deeper not in ("utility", "all"):
        raise ValueError(f"deeper must be 'utility' (the methods keeping their test accuracy) or 'all'; got {deeper!r}.")
    if ulira_mode not in ULIRA_MODES:
        raise ValueError(f"ulira_mode must be one of {', '.join(ULIRA_MODES)}; got {ulira_mode!r}.")
    if not 0.0 < float(poison_budget) <= 1.0:
        raise ValueError(f"poison_budget is a fraction of the training compute in (0, 1]; got {poison_budget!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer >= 10; got {n_boot!r}.")


def test_of(key: str) -> Test:
    for t in TESTS:
        if t.key == key:
            return t
    raise ValueError(f"Unknown scorecard test {key!r}; allowed: {', '.join(TEST_KEYS)}.")


#: The range of a test's raw value where it has one (the registry's ``bounds``: accuracies,
#: AUCs, rates, F and the KS distance lie in [0, 1]; RetDev, KLOM and the weights' distance
#: are >= 0): the t-scaled stretch may reach past it, which covers nothing more. Others (and
#: the scores) are unbounded.
VALUE_RANGE: dict[str, tuple[float, float]] = {
    t.key: metric_registry.metric(t.key).bounds for t in TESTS if metric_registry.metric(t.key).bounds is not None}


# --------------------------------------------------------------------------- KLOM's resolution



#: KLOM stays in the scorecard only when its small-sample floor (what the retrained model
#: itself reads at the shadows' N) leaves at least this share of its ceiling (what a model
#: that kept everything reads at most) below the ceiling: the room in which the original
#: and the retrained model can differ. A choice of this book, not the authors'.
KLOM_MIN_ROOM = 0.25
#: Models per side in the authors' KLOM (Georgiev et al. 2024; data-unlearning-bench's N).
AUTHORS_N = 100


@dataclass(frozen=True)
class KlomResolution:
    """Whether KLOM can read anything on a shadow design (:func:`klom_resolution`)."""

    keep: bool
    n_median: float   # models per side of a forget point: median, min, max over the points
    n_min: int
    n_max: int
    floor: float      # 95th percentile of KLOM for two draws of one distribution at those N
    ceiling: float    # log(1 + 1/eps)
    n_needed: int     # models per side (every point) whose floor leaves KLOM_MIN_ROOM
    reason: str

    @property
    def left_out(self) -> tuple[str, ...]:
        """The test keys the scorecard leaves out for it (``bootstrap_values``' ``leave_out``)."""
        return () if self.keep else ("klom",)


def klom_resolution(shadows: ShadowSet, min_room: float = KLOM_MIN_ROOM, seed: int = 0) -> KlomResolution:
    """Whether KLOM resolves anything with ``shadows``' numbers of models per forget point.

    A forget point's KLOM compares the rows that forgot it, unlearned against their oracles
    (:func:`~unlearnlib.evaluation.klom.klom_on_shadows`), so its N is that number of rows
    (about k/2 of k shadow splits). :func:`~unlearnlib.evaluation.klom.small_sample_floor`
    measures, at exactly those N, what a perfect unlearning reads (two independent draws
    of one distribution); KLOM is kept when that floor is at most ``1 - min_room`` of the
    ceiling ``log(1 + 1/eps)``. ``reason`` says why, from the computed numbers.
    """
    if not 0.0 < min_room < 1.0:
        raise ValueError(f"min_room is a share of KLOM's ceiling in (0, 1); got {min_room!r}.")
    forget = shadows.forget_masks.numpy()
    n = forget.sum(0)[forget.any(0)]
    if not len(n):
        raise ValueError("The shadow set forgets no point; KLOM has nothing to read.")
    ceiling = max_klom()
    limit = (1.0 - min_room) * ceiling
    floor = small_sample_floor(n, seed=seed)
    lo, hi = 2, 2
    while small_sample_floor(hi, seed=seed) > limit:  # smallest N (every point) within the limit
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if small_sample_floor(mid, seed=seed) > limit else (lo, mid)
    keep = bool(floor <= limit)
    med = float(np.median(n))
    at = (f"with {shadows.config.k} shadow splits a forget point has N = {med:g} models per side "
          f"(median; {int(n.min())} to {int(n.max())}), and at those N two independent draws of one "
          f"distribution read {floor:.2f} (95th percentile), {floor / ceiling:.0%} of KLOM's ceiling "
          f"{ceiling:.2f}")
    if keep:
        reason = f"KLOM kept: {at}, leaving at least {min_room:.0%} of the ceiling below it."
    else:
        reason = (f"KLOM left out: {at}, so the retrained model reads about what an untouched one does and "
                  f"the column cannot resolve the gap between them. Its floor leaves {min_room:.0%} of the "
                  f"ceiling from N = {hi} models per side at every point; at the authors' N = {AUTHORS_N} it "
                  f"is {small_sample_floor(AUTHORS_N, seed=seed):.2f}.")
    return KlomResolution(keep, med, int(n.min()), int(n.max()), float(floor), float(ceiling), hi, reason)


__all__ = [
    "SCORECARD_VERSION", "REFERENCES", "UTILITY", "TOL", "N_BOOT", "UNBUDGETED", "Test", "COLUMNS", "TESTS",
    "TEST_KEYS", "DEEPER_GROUPS", "POPULATION_TEST", "ULIRA_MODES", "check_options", "test_of", "VALUE_RANGE",
    "KLOM_MIN_ROOM", "AUTHORS_N", "KlomResolution", "klom_resolution",
]
