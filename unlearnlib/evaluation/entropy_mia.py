"""Population MIA on the prediction entropy, alone and jointly with the loss.

nabla-tau (Trippa et al. 2024, arXiv 2403.14339) attacks with two 1-D features,
the per-sample CE loss and the prediction entropy -sum_c p_c log p_c. Members
are D_f, non-members D_v ("val") or D_t ("test"); the attacker is
:func:`~unlearnlib.evaluation.population_mia` (balanced classes, logistic
regression, 10-split shuffle-split CV accuracy; 0.5 is ideal after unlearning).
The joint attack sees both features at once, as an (n, 2) array.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Split, Splits
from ..predict import entropy_of, logits, loss_of
from .mia import population_mia


def features_of(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, 2) CPU tensor from logits ``z`` and labels ``y``: per-sample CE loss and entropy."""
    return torch.stack([loss_of(z, y), entropy_of(z)], dim=1)


def loss_entropy_features(model: nn.Module, split: Split) -> torch.Tensor:
    """(n, 2) CPU tensor: per-sample CE loss and prediction entropy."""
    return features_of(logits(model, split), split.y)


def entropy_mia(model: nn.Module, splits: Splits, seed: int = 0,
                feats: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Entropy-feature and joint loss+entropy population MIAs, forget vs val and vs test.

    Returns ``mia_entropy_val``, ``mia_entropy_test``, ``mia_joint_val`` and
    ``mia_joint_test`` (mean CV accuracies; 0.5 = the attacker is at chance).
    ``feats`` (split name -> :func:`features_of`) reuses features computed already.
    """
    if feats is None:
        feats = {name: loss_entropy_features(model, getattr(splits, name)) for name in ("forget", "val", "test")}
    out: dict[str, float] = {}
    for other in ("val", "test"):
        out[f"mia_entropy_{other}"] = population_mia(feats["forget"][:, 1], feats[other][:, 1], seed=seed)
        out[f"mia_joint_{other}"] = population_mia(feats["forget"], feats[other], seed=seed)
    return out
