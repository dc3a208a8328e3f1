"""Closed-form summary metrics of Deep Unlearn and Unrolling SGD."""

from __future__ import annotations

import math

import torch
from torch import nn


def indiscernibility(mia: float) -> float:
    """1 - |2 * MIA - 1|: 1 when the attacker is at chance, 0 when it is perfect."""
    return 1.0 - abs(2.0 * mia - 1.0)


def ratios(ra: float, fa: float, ta: float, ra_r: float, fa_r: float, ta_r: float) -> dict[str, float]:
    """RR, FR, TR: accuracies relative to the retrained model's."""

    def div(a: float, b: float) -> float:
        return a / b if b else math.nan

    return {"rr": div(ra, ra_r), "fr": div(fa, fa_r), "tr": div(ta, ta_r)}


def retdev(ra: float, fa: float, ta: float, ra_r: float, fa_r: float, ta_r: float) -> float:
    """RetDev = |RR-1| + |FR-1| + |TR-1| (0 = behaves like the retrained model)."""
    r = ratios(ra, fa, ta, ra_r, fa_r, ta_r)
    return abs(r["rr"] - 1) + abs(r["fr"] - 1) + abs(r["tr"] - 1)


def rte(retrain_seconds: float, method_seconds: float) -> float:
    """Run-time efficiency t_retrain / t_method (> 1: faster than retraining)."""
    return retrain_seconds / method_seconds if method_seconds > 0 else math.inf


def l2_distance(a: nn.Module, b: nn.Module) -> float:
    """L2 norm of the difference of all trainable parameters (buffers excluded).

    Thudi et al. 2022's verification error when ``b`` is the retrained model.
    """
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    if pa.keys() != pb.keys():
        raise ValueError("Models have different parameters; L2 distance needs the same architecture.")
    total = sum(((pa[k].detach() - pb[k].detach().to(pa[k].device)) ** 2).sum() for k in pa)
    return float(torch.as_tensor(total).sqrt())
