"""Evaluation: accuracies, population MIA, and comparisons to the retrained model.

Formulas follow ../shared/reference/EVALUATION.md (Deep Unlearn, Cadet et al.
2024; nabla-tau, Trippa et al. 2024; Unrolling SGD, Thudi et al. 2022).
"""

from .accuracy import (
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
from .report import compare_to_reference, evaluate_model

__all__ = [
    "accuracy", "accuracy_of", "loss_of", "entropy_of", "features_of", "logits", "per_sample_loss",
    "per_sample_entropy",
    "population_mia", "indiscernibility", "indiscernibility_to", "deviation", "retdev", "ratios", "rte", "l2_distance",
    "evaluate_model", "compare_to_reference", "entropy_mia", "loss_entropy_features",
]
