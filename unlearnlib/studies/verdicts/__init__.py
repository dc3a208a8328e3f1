"""Verdicts the budget can support: every claim the book tests, computed from result rows.

A claim is ``holds``, ``does not hold``, ``inconclusive at this budget`` (it was tested:
the interval contains the threshold) or ``not tested at this budget`` (too few seeds, a
budget check that failed, or nothing to measure: e.g. no gap between the original and
the retrained model), by a criterion written next to it:

- **Uncertainty over seeds.** The claim's statistic is computed from the per-seed rows
  and its 95% interval from a paired bootstrap over seeds (seeds are resampled with
  replacement, every method of a resampled seed comes along, so comparisons are
  paired), each side of the percentile interval stretched by :func:`t_scale` (the
  plain percentile interval covers a normal mean about 83% of the time at 5 seeds;
  :mod:`.calibration` measures each statistic's coverage by simulation, and
  ``benchmarks/verdicts.py`` prints the table). The claim holds when the whole
  interval lies on its side of the criterion's threshold, does not hold when the whole
  interval lies on the other side, and is inconclusive otherwise. Fewer than
  :data:`MIN_SEEDS` seeds test nothing. Ranks share ties (:data:`TIES`), and a tie that
  decides a claim counts against it.
- **Budget check.** A conclusive verdict counts only when the same analysis on the
  half-budget rows (hyperparameters chosen from the first half of every study's
  trials, :func:`unlearnlib.studies.hpo.in_budget`) gives the same verdict, unless more
  tuning can only push the claim further the way it already went (``decide``'s
  ``tuning_moves``); otherwise the search had not converged far enough to tell.
- An ``inconclusive`` or ``not tested`` verdict names what would decide it: the seeds that
  would decide it with 80% power (:func:`seeds_needed`) or more trials.

Utility constraint: a method whose mean test accuracy is more than :data:`UTILITY`
below the retrained model's cannot be "best" or "close to retraining": a destroyed
model is at chance for every MIA and cheap to compute. Such methods rank after every
method that keeps its accuracy (the poisoning chapter's rule, made general).

Cost: methods are ranked by ``cost_rte``, retraining's per-sample gradient evaluations
over the method's (load-independent; :mod:`unlearnlib.cost`), with wall-clock
RTE kept as measured information.

Modules, by concern: :mod:`.core` (states, evidence, the seed bootstrap, :func:`decide`,
scope), :mod:`.comparisons` (several comparisons at once), one module per group of
claims (:mod:`.deep_unlearn`: tuned grids and rankings; :mod:`.nabla_tau`;
:mod:`.hyperparameters`: the explorer's premise) and :mod:`.report` (tables, Markdown,
publishing). Every name is importable from this package.
"""

from __future__ import annotations

from .comparisons import (
    Ratio,
    Resampled,
    abs_bounds,
    boot_size,
    extreme_evidence,
    resample,
    tails,
)
from .core import (
    BEST_RANK,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    INTERVALS,
    LEVEL,
    MIN_SEEDS,
    N_BOOT,
    POWER,
    REFERENCES,
    STATES,
    UNTESTED,
    UTILITY,
    Evidence,
    Stat,
    Tables,
    Verdict,
    decide,
    evidence,
    interval_from_draws,
    pivot,
    registered_methods,
    scope_of,
    scoped,
    seed_bootstrap,
    seeds_needed,
    side,
    t_half_width,
    t_scale,
)
from .deep_unlearn import (
    BOOK_TEXT,
    DEEP_UNLEARN,
    TIES,
    baseline_margin,
    deep_unlearn_verdicts,
    grid_tables,
    method_means,
    objective_norms,
    rank_of,
    ranking_table,
    ranking_transfer_verdicts,
    ranks,
)
from .hyperparameters import (
    BOOK,
    credited_share,
    hyperparameter_verdicts,
)
from .nabla_tau import (
    EQUIVALENCE,
    NABLA_TAU,
    NT_UTILITY,
    carried_baselines,
    closeness,
    nabla_tau_verdicts,
    nt_forgets_evidence,
    nt_gap,
    nt_margin,
    nt_no_tuning_evidence,
    nt_ratio,
)
from .report import (
    PUBLISH_ENV,
    as_records,
    load_published,
    publish,
    verdict_table,
    verdicts_markdown,
)

__all__ = [
    "HOLDS", "FAILS", "INCONCLUSIVE", "UNTESTED", "STATES", "MIN_SEEDS", "UTILITY", "Evidence",
    "Verdict", "seed_bootstrap", "side", "evidence", "decide", "seeds_needed", "pivot", "grid_tables",
    "method_means", "ranks", "ranking_table", "rank_of", "baseline_margin", "t_scale", "t_half_width", "INTERVALS",
    "deep_unlearn_verdicts", "nabla_tau_verdicts", "carried_baselines", "nt_ratio", "nt_margin",
    "nt_gap", "closeness", "nt_forgets_evidence", "nt_no_tuning_evidence", "Ratio", "abs_bounds",
    "Resampled", "resample", "tails", "boot_size", "extreme_evidence", "hyperparameter_verdicts",
    "ranking_transfer_verdicts", "scope_of", "scoped", "registered_methods", "credited_share",
    "verdict_table", "verdicts_markdown", "as_records", "publish", "load_published", "PUBLISH_ENV",
    "BEST_RANK", "N_BOOT", "LEVEL", "REFERENCES", "Tables", "Stat", "interval_from_draws", "POWER",
    "objective_norms", "TIES", "DEEP_UNLEARN", "BOOK_TEXT", "NABLA_TAU", "NT_UTILITY", "EQUIVALENCE",
    "BOOK",
]
