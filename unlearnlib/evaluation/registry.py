"""The metric registry: every metric of the library declared once.

A :class:`Metric` names its key (the result-row column and store field), its label (how
tables, figures and verdicts name it), its group, its direction, the paper it comes from,
what its raw value is, and the function that computes it. Where the metric summarises
samples (shadow targets, forget samples), the function accepts weights: ``sample_weight``
(or ``pos_weight`` / ``neg_weight`` for the two sides of a membership game), None being the
plain, unweighted value, and integer weights the value of the samples repeated that often
(a bootstrap resample). The scorecard resamples through exactly these functions, so a
metric has one definition, not a library form and a bootstrap form.

Who reads it: :func:`~unlearnlib.evaluation.report.evaluate_model` and
:func:`~unlearnlib.evaluation.report.compare_to_reference` return exactly the metrics of
their table, in registry order (:func:`select`); the scorecard's ``TESTS`` take label, group
and direction from here and compute every shadow test with :meth:`Metric.on_arrays`.

Adding a metric: write its function in one module of ``unlearnlib/evaluation/`` (with
``sample_weight=None`` where it summarises samples) and add one :class:`Metric` to
:data:`METRICS` below (or :func:`register` it from a package above evaluation). The
functions are named as ``"module:function"`` strings and imported on first use, so this
module imports no metric module and no import circle can form.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

#: What a metric's direction can be: a larger value is better, a smaller one is, or the
#: value should match the retrained model's (the reference of unlearning).
DIRECTIONS = ("higher", "lower", "closer-to-retrained")
#: Where a metric's value is produced: the per-model report (``evaluate_model``), the
#: comparison to the retrained model (``compare_to_reference``), the experiment row
#: (weight distance, timing), the relearning attack, the shadow set, the poisoning rows.
TABLES = ("report", "comparison", "row", "relearning", "shadows", "poison")
#: Which units the scorecard's bootstrap resamples for a metric of each table.
RESAMPLES = {"report": "seeds", "comparison": "seeds", "row": "seeds", "relearning": "seeds",
             "shadows": "shadows", "poison": "poison"}


@dataclass(frozen=True)
class Metric:
    """One metric, declared once (module docstring).

    ``fn`` is the function (``"package.module:function"`` or a callable; None where it lives
    in a package above evaluation and is named in ``reads``). For a shadow metric,
    ``inputs`` maps the function's parameters to the per-target arrays of the scorecard's
    shadow evaluation and ``weights`` its weight parameters to the array of target columns
    each value belongs to (None: the values are indexed by target column themselves), so
    :meth:`on_arrays` can score any weighting of the targets. ``bounds``: the range of the
    raw value (None: unbounded).
    """

    key: str
    label: str
    group: str
    direction: str
    source: str
    fn: str | Callable[..., Any] | None
    table: str
    reads: str = ""
    bounds: tuple[float, float] | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    weights: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Metric {self.key!r}: direction must be one of {', '.join(DIRECTIONS)}; "
                             f"got {self.direction!r}.")
        if self.table not in TABLES:
            raise ValueError(f"Metric {self.key!r}: table must be one of {', '.join(TABLES)}; got {self.table!r}.")
        if self.table == "shadows" and not self.inputs:
            raise ValueError(f"Shadow metric {self.key!r} must name its inputs (the per-target arrays it reads).")

    @property
    def function(self) -> Callable[..., Any] | None:
        """The metric's function, imported on first use."""
        if self.fn is None or callable(self.fn):
            return self.fn
        module, _, name = self.fn.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def weighted(self) -> bool:
        """Whether the function accepts sample weights."""
        f = self.function
        if f is None:
            return False
        params = inspect.signature(f).parameters
        return "sample_weight" in params or {"pos_weight", "neg_weight"} <= set(params)

    @property
    def resamples(self) -> str:
        """The units the scorecard's bootstrap resamples for this metric: seeds, shadows or poison."""
        return RESAMPLES[self.table]

    def on_arrays(self, arrays: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """A shadow metric under B weightings ``weights`` (B, pool columns) of the targets:
        every pair, example or point carries its target column's weight. A row of ones gives
        the metric itself, a row of bootstrap counts the metric of that resample. (B,)."""
        if self.table != "shadows":
            raise ValueError(f"{self.key!r} is not a shadow metric; on_arrays reads per-target arrays.")
        W = np.atleast_2d(np.asarray(weights, float))
        kw: dict[str, Any] = {p: arrays[a] for p, a in self.inputs.items()}
        kw.update({p: W if c is None else W[:, arrays[c]] for p, c in self.weights.items()})
        return self.function(**kw)


#: Every metric, by key, in the order the report and the comparison return them.
METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS`; a key registered twice is an error."""
    if metric.key in METRICS:
        raise ValueError(f"Metric {metric.key!r} is registered already.")
    METRICS[metric.key] = metric
    return metric


def metric(key: str) -> Metric:
    """The registered metric ``key``; an unknown key fails with the allowed ones."""
    try:
        return METRICS[key]
    except KeyError:
        raise ValueError(f"Unknown metric {key!r}; allowed: {', '.join(METRICS)}.") from None


def metrics(table: str | None = None) -> list[Metric]:
    """The registered metrics (of ``table``), in registry order."""
    if table is not None and table not in TABLES:
        raise ValueError(f"Unknown table {table!r}; allowed: {', '.join(TABLES)}.")
    return [m for m in METRICS.values() if table is None or m.table == table]


def keys(table: str | None = None) -> tuple[str, ...]:
    return tuple(m.key for m in metrics(table))


def select(table: str, values: Mapping[str, float]) -> dict[str, float]:
    """``values`` in ``table``'s registry order; they must be exactly the table's metrics, so
    a metric computed but not registered (or registered but not computed) fails here."""
    want = keys(table)
    extra, missing = sorted(set(values) - set(want)), [k for k in want if k not in values]
    if extra or missing:
        raise RuntimeError(f"The {table} computes {', '.join(extra) or 'no unregistered metric'} and misses "
                           f"{', '.join(missing) or 'no registered one'}: register each metric once in "
                           f"unlearnlib.evaluation.registry and compute it.")
    return {k: values[k] for k in want}


# --------------------------------------------------------------------------- declarations

DEEP_UNLEARN = "Cadet et al. 2024 (Deep Unlearn)"
NABLA_TAU = "Trippa et al. 2024 (nabla-tau)"
_M = "unlearnlib.evaluation."
_ACC = "unlearnlib.predict:accuracy_of"
_MIA = _M + "mia:population_mia"
_UNIT = (0.0, 1.0)
_POSITIVE = (0.0, math.inf)
_ULIRA = {"pos_weight": "ulira_pos_col", "neg_weight": "ulira_neg_col"}
_RMIA = {"pos_weight": "rmia_pos_col", "neg_weight": "rmia_neg_col"}

for _m in (
    # per model: evaluate_model
    Metric("retain_acc", "retain accuracy", "accuracy", "higher", DEEP_UNLEARN, _ACC, "report", "accuracy on D_r", _UNIT),
    Metric("forget_acc", "forget accuracy", "accuracy", "closer-to-retrained", DEEP_UNLEARN, _ACC, "report",
           "accuracy on D_f", _UNIT),
    Metric("val_acc", "validation accuracy", "accuracy", "higher", DEEP_UNLEARN, _ACC, "report", "accuracy on D_v", _UNIT),
    Metric("test_acc", "test accuracy", "accuracy", "higher", DEEP_UNLEARN, _ACC, "report", "accuracy on D_t", _UNIT),
    Metric("mia_val", "loss-MIA (val)", "population", "closer-to-retrained", DEEP_UNLEARN, _MIA, "report",
           "logistic-regression attack on the loss, D_f vs D_v", _UNIT),
    Metric("mia_test", "loss-MIA", "population", "closer-to-retrained", DEEP_UNLEARN, _MIA, "report",
           "logistic-regression attack on the loss, D_f vs D_t", _UNIT),
    Metric("indisc", "Indisc (val MIA)", "population", "higher", DEEP_UNLEARN, _M + "metrics:indiscernibility",
           "report", "1 - |2 MIA_val - 1|", _UNIT),
    Metric("forget_loss", "forget loss L_f", "loss", "closer-to-retrained", NABLA_TAU, _M + "metrics:mean_loss",
           "report", "mean cross-entropy on D_f", _POSITIVE),
    Metric("val_loss", "validation loss (tau)", "loss", "closer-to-retrained", NABLA_TAU, _M + "metrics:mean_loss",
           "report", "mean cross-entropy on D_v (nabla-tau's stopping point tau)", _POSITIVE),
    Metric("mia_entropy_val", "entropy-MIA (val)", "population", "closer-to-retrained", NABLA_TAU, _MIA, "report",
           "logistic-regression attack on the prediction entropy, D_f vs D_v", _UNIT),
    Metric("mia_joint_val", "joint MIA (val)", "population", "closer-to-retrained", NABLA_TAU, _MIA, "report",
           "logistic-regression attack on loss and entropy, D_f vs D_v", _UNIT),
    Metric("mia_entropy_test", "entropy-MIA", "population", "closer-to-retrained", NABLA_TAU, _MIA, "report",
           "logistic-regression attack on the prediction entropy, D_f vs D_t", _UNIT),
    Metric("mia_joint_test", "joint MIA", "population", "closer-to-retrained", NABLA_TAU, _MIA, "report",
           "logistic-regression attack on loss and entropy, D_f vs D_t", _UNIT),
    # against the retrained model: compare_to_reference
    Metric("rr", "RR", "accuracy", "closer-to-retrained", DEEP_UNLEARN, _M + "metrics:ratios", "comparison",
           "RA / RA_R"),
    Metric("fr", "FR", "accuracy", "closer-to-retrained", DEEP_UNLEARN, _M + "metrics:ratios", "comparison",
           "FA / FA_R"),
    Metric("tr", "TR", "accuracy", "closer-to-retrained", DEEP_UNLEARN, _M + "metrics:ratios", "comparison",
           "TA / TA_R"),
    Metric("retdev", "RetDev", "accuracy", "lower", DEEP_UNLEARN, _M + "metrics:retdev", "comparison",
           "|RR-1| + |FR-1| + |TR-1| against the retrained model", _POSITIVE),
    Metric("indisc_retrained", "Indisc (vs retrained)", "population", "higher",
           "this library (EVALUATION.md, corrections: class forgetting)", _M + "metrics:indiscernibility_to",
           "comparison", "1 - min(1, 2 |MIA_val - MIA_val,R|)", _UNIT),
    # the experiment row
    Metric("l2_to_retrained", "verification error", "weights", "lower", "Thudi et al. 2022 (Unrolling SGD)",
           _M + "metrics:l2_distance", "row", "L2 distance of the weights to the retrained model", _POSITIVE),
    Metric("rte", "RTE (wall time)", "cost", "higher", DEEP_UNLEARN, _M + "metrics:rte", "row",
           "t_retrain / t_method (> 1: faster than retraining)", _POSITIVE),
    Metric("relearn_acc", "relearning", "relearning", "closer-to-retrained", "Siddiqui et al. 2025",
           _M + "relearning:relearning_attack", "relearning",
           "forget accuracy after fine-tuning on the retain set alone (held-out part of D_f)", _UNIT),
    # per target, on the shadow set (the scorecard's shadow tests)
    Metric("ulira_accuracy", "U-LiRA accuracy", "per-sample", "closer-to-retrained", "Hayes et al. 2024 (U-LiRA)",
           _M + "game:balanced_accuracy", "shadows",
           "balanced accuracy of the per-sample likelihood-ratio attack on unlearned shadows", _UNIT,
           {"pos": "ulira_pos", "neg": "ulira_neg", "threshold": "ulira_threshold"}, _ULIRA),
    Metric("ulira_tpr", "U-LiRA TPR@1%FPR", "per-sample", "closer-to-retrained", "Hayes et al. 2024 (U-LiRA)",
           _M + "game:tpr_at_low_fpr", "shadows", "U-LiRA's true-positive rate below 1% FPR", _UNIT,
           {"pos": "ulira_pos", "neg": "ulira_neg"}, _ULIRA),
    Metric("rmia_auc", "RMIA AUC", "per-sample", "closer-to-retrained", "Zarifzadeh et al. 2024 (RMIA)",
           _M + "game:roc_auc", "shadows", "AUC of offline RMIA on the same shadows", _UNIT,
           {"pos": "rmia_pos", "neg": "rmia_neg"}, _RMIA),
    Metric("neurips_f", "NeurIPS F", "per-sample", "higher", "Triantafillou et al. 2024 (NeurIPS 2023 challenge)",
           _M + "neurips:mean_example_score", "shadows",
           "NeurIPS 2023 forgetting quality (mean 2^-bin of the per-example epsilon)", _UNIT,
           {"h": "neurips_h"}, {"sample_weight": "neurips_col"}),
    Metric("klom", "KLOM", "per-sample", "lower", "Georgiev et al. 2024 (KLOM, data-unlearning-bench)",
           _M + "klom:klom_percentile", "shadows",
           "95th percentile over forget points of the binned KL(oracle || unlearned) of margins", _POSITIVE,
           {"values": "klom"}, {"sample_weight": None}),
    Metric("ks_distance", "forget quality (KS D)", "per-sample", "lower", "Maini et al. 2024 (TOFU)",
           _M + "forget_quality:ks_distance", "shadows",
           "KS distance of per-sample mean phi on D_f, unlearned vs oracle (TOFU's forget quality is its p-value)",
           _UNIT, {"u": "fq_u", "r": "fq_r"}, {"sample_weight": "fq_col"}),
    # Pawelczyk et al.'s poisoning test: computed by unlearnlib.poisoning.gaussian.gaussian_scores
    # (a floor above evaluation, so no function here)
    Metric("gus", "poison GUS", "poisoning", "closer-to-retrained", "Pawelczyk et al. 2024", None, "poison",
           "Gaussian Unlearning Score of the poisons after unlearning them within the budget"),
):
    register(_m)
del _m


def target_columns() -> tuple[str, ...]:
    """The arrays of target columns that the shadow metrics' weights read."""
    return tuple(dict.fromkeys(c for m in metrics("shadows") for c in m.weights.values() if c is not None))


__all__ = ["Metric", "METRICS", "DIRECTIONS", "TABLES", "RESAMPLES", "register", "metric", "metrics", "keys",
           "select", "target_columns"]
