"""Forget quality: TOFU's Kolmogorov-Smirnov test against the retrained model.

TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs",
arXiv 2401.06121) scores an unlearned model by the p-value of a two-sample
Kolmogorov-Smirnov test between a per-sample statistic on the forget set under
the unlearned model and the same statistic under the retain model (trained
without the forget set). A high p-value (1 at best) means the two cannot be told
apart; a small one that the unlearned model still differs from retraining.

What is computed here: ``scipy.stats.ks_2samp(s_u, s_r).pvalue`` (two-sided,
scipy's default method: exact for small samples), where ``s_u[i]`` and ``s_r[i]``
are the statistic of forget sample ``i`` under the unlearned and the retrained
model(s).

The statistic (departure: TOFU's is the truth ratio of an LLM's answers).
TOFU's truth ratio of a question is P(perturbed wrong answers) / P(paraphrased
correct answer). For a classifier whose wrong answers are the other classes,
that ratio is (1 - p_y) / p_y = exp(-phi), with phi = log p_y - log(1 - p_y) the
LiRA statistic (:func:`unlearnlib.evaluation.lira.phi`). The KS statistic
depends only on the ranks of the pooled values, and exp(-phi), phi and the loss
-log p_y are strictly monotone functions of one another, so with one model pair
the p-value is the SAME for all three (a test pins this). TOFU's geometric means
over several paraphrases and perturbations and its length normalisation have no
classification analogue and are not reproduced.

Several model pairs (N unlearned and N retrained models, e.g. shadow rows): the
statistic of each forget sample is AVERAGED over the models (phi averaged over
the rows that forgot the sample), so the test still compares one value per forget
sample, as TOFU does. Pooling all (model, sample) values instead would multiply
the sample sizes by N while the values of one sample under different models are
correlated, which breaks the KS test's independence assumption and makes the
p-value shrink with N for the same per-sample behaviour. With averaging the
statistic is phi, not a monotone transform of it (the mean of phi and the mean of
the loss order samples differently), so the choice is stated: mean phi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import ks_2samp
from torch import nn

from ..data import Split
from ..predict import logits as model_logits
from .lira import ShadowOutputs, ShadowSet, phi

STATISTICS = ("phi", "loss", "truth_ratio")


@dataclass(frozen=True)
class ForgetQuality:
    """KS test of the per-sample statistic on D_f, unlearned vs retrained."""

    pvalue: float       # TOFU's forget quality (1 = indistinguishable)
    statistic: float    # the KS distance sup |F_u - F_r|
    n: int              # forget samples compared (per side)
    stat: str           # which per-sample statistic


def forget_quality(unlearned: np.ndarray, retrained: np.ndarray, stat: str = "phi") -> ForgetQuality:
    """KS p-value between per-sample statistics of the unlearned and the retrained model.

    ``unlearned`` and ``retrained`` are (n,) arrays, one value per forget sample, or
    (M, n) arrays of M models each, averaged over the models first (see the module
    docstring). ``stat`` only labels the result.
    """
    u, r = _per_sample(unlearned, "unlearned"), _per_sample(retrained, "retrained")
    if u.shape != r.shape:
        raise ValueError(f"Need one value per forget sample on both sides; got {u.shape} and {r.shape}.")
    res = ks_2samp(u, r)
    return ForgetQuality(float(res.pvalue), float(res.statistic), int(len(u)), stat)


def _per_sample(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(0)
    if x.ndim != 1 or len(x) < 1 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a finite (n,) or (models, n) array with n >= 1; got shape {x.shape}.")
    return x


def per_sample_statistic(model: nn.Module, split: Split, stat: str = "phi") -> np.ndarray:
    """phi, cross-entropy or classification truth ratio (1 - p_y) / p_y of each sample of ``split``."""
    if stat not in STATISTICS:
        raise ValueError(f"Unknown statistic {stat!r}; allowed: {', '.join(STATISTICS)}.")
    z = model_logits(model, split).double()
    f = phi(z, split.y).cpu().numpy()
    if stat == "phi":
        return f
    if stat == "truth_ratio":
        return np.exp(-f)
    return torch.nn.functional.cross_entropy(z, split.y, reduction="none").cpu().numpy()


def forget_quality_of_models(
    unlearned: nn.Module, retrained: nn.Module, forget: Split, stat: str = "phi"
) -> ForgetQuality:
    """TOFU's forget quality of one unlearned model against one retrained model on ``forget``."""
    return forget_quality(per_sample_statistic(unlearned, forget, stat),
                          per_sample_statistic(retrained, forget, stat), stat)


def forget_quality_on_shadows(
    shadows: ShadowSet, unlearned: ShadowOutputs, retrained: ShadowOutputs
) -> ForgetQuality:
    """Forget quality over shadow rows: per target, phi averaged over the rows that forgot it.

    ``retrained`` are the reference models retrained without each row's forget set
    (``ShadowRunner.outputs("retrained-reference")``), so a sample's two means are
    over the same rows. Targets forgotten by no row are left out.
    """
    forget = shadows.forget_masks.numpy()
    for out in (unlearned, retrained):
        if out.phi.shape != forget.shape:
            raise ValueError(f"{out.role} phi has shape {out.phi.shape}; the shadow set has {forget.shape}.")
    if not forget.any():
        raise ValueError("No shadow row forgets any sample; nothing to compare.")
    _, u = per_target_means(shadows, unlearned)
    _, r = per_target_means(shadows, retrained)
    return forget_quality(u, r, "phi")


def per_target_means(shadows: ShadowSet, out: ShadowOutputs) -> tuple[np.ndarray, np.ndarray]:
    """(columns, mean phi over the rows that forgot each column): the per-sample statistic
    of :func:`forget_quality_on_shadows`, for the targets that some row forgets."""
    forget = shadows.forget_masks.numpy()
    cols = np.nonzero(forget.any(0))[0]
    f = forget[:, cols]
    return cols, np.where(f, out.phi[:, cols], 0.0).sum(0) / f.sum(0)


def ks_distance(u: np.ndarray, r: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Two-sample KS distance sup |F_u - F_r| where sample i of both sides has weight
    ``sample_weight[b, i]`` (B weightings, a (B,) array; None: one, all ones). At unit
    weights this is ``scipy.stats.ks_2samp(u, r).statistic`` (:func:`forget_quality`'s
    ``statistic``); integer weights give the distance of the samples repeated that often."""
    u, r = np.asarray(u, float), np.asarray(r, float)
    w = np.ones((1, len(u))) if sample_weight is None else np.atleast_2d(sample_weight).astype(float)
    x = np.r_[u, r]
    order = np.argsort(x, kind="stable")
    x = x[order]
    wu = np.concatenate([w, np.zeros_like(w)], axis=1)[:, order]
    wr = np.concatenate([np.zeros_like(w), w], axis=1)[:, order]
    ends = np.r_[np.nonzero(np.diff(x))[0], len(x) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        fu = np.cumsum(wu, axis=1)[:, ends] / wu.sum(1, keepdims=True)
        fr = np.cumsum(wr, axis=1)[:, ends] / wr.sum(1, keepdims=True)
    return np.abs(fu - fr).max(axis=1)


__all__ = ["ForgetQuality", "forget_quality", "per_sample_statistic", "forget_quality_of_models",
           "forget_quality_on_shadows", "per_target_means", "ks_distance", "STATISTICS"]
