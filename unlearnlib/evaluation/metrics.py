"""Closed-form summary metrics of Deep Unlearn and Unrolling SGD."""

from __future__ import annotations

import math

import torch
from torch import nn


def indiscernibility(mia: float) -> float:
    """1 - |2 * MIA - 1|: 1 when the attacker is at chance, 0 when it is perfect."""
    return 1.0 - abs(2.0 * mia - 1.0)


def indiscernibility_to(mia: float, mia_ref: float) -> float:
    """1 - min(1, 2 |MIA - MIA_R|): indiscernibility measured against the retrained
    model's own MIA value instead of chance (1 when the two attacks score alike).

    For class forgetting the retrained model itself is far from chance (it never saw
    the class, so a forget-vs-val attack scores ~0.93 on it: EVALUATION.md,
    corrections); closeness to *its* value is what unlearning should reach. With
    ``mia_ref = 0.5`` this is :func:`indiscernibility`.
    """
    return 1.0 - min(1.0, 2.0 * abs(mia - mia_ref))


def ratios(ra: float, fa: float, ta: float, ra_r: float, fa_r: float, ta_r: float) -> dict[str, float]:
    """RR, FR, TR: accuracies relative to the retrained model's (NaN where that is 0)."""

    def div(a: float, b: float) -> float:
        return a / b if b else math.nan

    return {"rr": div(ra, ra_r), "fr": div(fa, fa_r), "tr": div(ta, ta_r)}


def deviation(a: float, ref: float) -> float:
    """One RetDev term: ``|a / ref - 1|``, or ``|a - ref|`` when ``ref`` is 0.

    The ratio is undefined when the retrained model scores 0, which is the rule for
    class forgetting (FA_R = 0: the retrained model never saw the class), where
    class-unlearning papers report the forget accuracy itself, i.e. its distance to
    0. The difference is in the same units as the other terms' deviations near
    ``ref = 1`` and is 0 exactly when the model matches the reference.
    """
    return abs(a / ref - 1) if ref else abs(a - ref)


def retdev(ra: float, fa: float, ta: float, ra_r: float, fa_r: float, ta_r: float) -> float:
    """RetDev = |RR-1| + |FR-1| + |TR-1| (0 = behaves like the retrained model; Deep Unlearn).

    Departure, for class forgetting: a term whose reference accuracy is 0 is the
    difference of the accuracies instead of the (undefined) ratio (:func:`deviation`).
    """
    return deviation(ra, ra_r) + deviation(fa, fa_r) + deviation(ta, ta_r)


def mean_loss(loss: torch.Tensor, sample_weight: torch.Tensor | None = None) -> float:
    """Mean of the per-sample losses ``loss`` (nabla-tau's L_f and L_val), weighted by
    ``sample_weight`` (one weight per sample; integer weights: the mean over the samples
    repeated that often). None: the plain mean, in ``loss``'s dtype."""
    if sample_weight is None:
        return float(loss.mean())
    w = torch.as_tensor(sample_weight, dtype=torch.float64, device=loss.device)
    return float((loss.double() * w).sum() / w.sum())


def rte(retrain_seconds: float, method_seconds: float) -> float:
    """Run-time efficiency t_retrain / t_method (> 1: faster than retraining)."""
    return retrain_seconds / method_seconds if method_seconds > 0 else math.inf


def l2_distance(a: nn.Module, b: nn.Module) -> float:
    """L2 norm of the difference of all trainable parameters (``requires_grad``; buffers
    such as BatchNorm statistics excluded).

    Thudi et al. 2022's verification error when ``b`` is the retrained model.
    """
    pa = {k: p for k, p in a.named_parameters() if p.requires_grad}
    pb = {k: p for k, p in b.named_parameters() if p.requires_grad}
    if pa.keys() != pb.keys():
        raise ValueError("Models have different parameters; L2 distance needs the same architecture.")
    total = sum(((pa[k].detach() - pb[k].detach().to(pa[k].device)) ** 2).sum() for k in pa)
    return float(torch.as_tensor(total).sqrt())
