"""Distillation helpers shared by the teacher-student methods (BT, SCRUB, KDE, FCS).

All take logits and return a scalar averaged over the batch ("batchmean"), the
reduction under which KL divergence is a per-sample quantity.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off: a teacher that never changes."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a frozen teacher (kept in eval mode: its BatchNorm statistics never move)."""
    teacher.eval()
    return teacher(x)


def kl_to_probs(student_logits: torch.Tensor, target_probs: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """KL(target || softmax(student / T)), averaged over the batch."""
    if T <= 0:
        raise ValueError(f"Temperature must be > 0; got {T}.")
    return F.kl_div(F.log_softmax(student_logits / T, dim=1), target_probs, reduction="batchmean")


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0,
               t_squared: bool = False) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), batch mean.

    ``t_squared`` multiplies by T^2 (Hinton et al.'s scaling, used by SCRUB's DistillKL)
    so the gradient magnitude does not shrink as the temperature grows.
    """
    kl = kl_to_probs(student_logits, F.softmax(teacher_logits / T, dim=1), T)
    return kl * T * T if t_squared else kl


def soft_cross_entropy(student_logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """-sum_c q_c log softmax(student)_c, batch mean."""
    return -(target_probs * F.log_softmax(student_logits, dim=1)).sum(1).mean()


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || softmax(logits)), batch mean: zero when the prediction is uniform."""
    uniform = torch.full_like(logits, 1.0 / logits.shape[1])
    return kl_to_probs(logits, uniform)
