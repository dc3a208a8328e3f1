"""Evaluation: accuracies, population MIA, and comparisons to the retrained model.

Formulas follow ../shared/reference/EVALUATION.md (Deep Unlearn, Cadet et al.
2024; nabla-tau, Trippa et al. 2024; Unrolling SGD, Thudi et al. 2022).

Evaluation imports nothing above the engine (issue 35; tests/test_architecture.py): the
shadow models that per-sample attacks score are trained by :mod:`unlearnlib.shadows`, and
the predictions below (``accuracy``, ``logits``, ``per_sample_loss``, ...) live in the
engine, :mod:`unlearnlib.predict` (before: ``unlearnlib.evaluation.accuracy``), and are
re-exported here.
"""

from ..predict import (
    accuracy,
    accuracy_of,
    entropy_of,
    logits,
    loss_of,
    per_sample_entropy,
    per_sample_loss,
)
from .entropy_mia import entropy_mia, features_of, loss_entropy_features
from .metrics import (
    deviation,
    indiscernibility,
    indiscernibility_to,
    l2_distance,
    ratios,
    retdev,
    rte,
)
from .mia import population_mia
from .registry import METRICS, Metric
from .report import compare_to_reference, evaluate_model

__all__ = [
    "accuracy", "accuracy_of", "loss_of", "entropy_of", "features_of", "logits", "per_sample_loss",
    "per_sample_entropy",
    "population_mia", "indiscernibility", "indiscernibility_to", "deviation", "retdev", "ratios", "rte", "l2_distance",
    "evaluate_model", "compare_to_reference", "entropy_mia", "loss_entropy_features", "METRICS", "Metric",
]
