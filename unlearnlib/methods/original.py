"""``original``: no unlearning at all, the upper bound on leakage.

The reference row every table needs: what the trained model knows about D_f.
"""

from __future__ import annotations

from torch import nn

from . import UnlearnData, register


@register(
    "original",
    name="Original (no unlearning)",
    paper="Reference: the model trained on D_r u D_f (Cadet et al. 2024, arXiv 2410.01276).",
    defaults={},
    reference=True,
)
def unlearn(model: nn.Module, data: UnlearnData) -> nn.Module:
    """Return the model unchanged."""
    return model
