"""``bt``: Bad Teacher / blindspot unlearning (Chundawat et al. 2023, AAAI).

The student starts at the original model and is distilled on D_r u D_f
(shuffled together) towards softmax(teacher / T): on forget samples the teacher
is an "incompetent" randomly initialised model, on retain samples the original
model. Loss: KL(teacher mix || softmax(student / T)), Adam. Defaults from Deep
Unlearn (Cadet et al. 2024, arXiv 2410.01276): lr 0.01, 10 epochs, batch 256, T 1.

Departures from the reference code (both "do better" fixes):
- the incompetent teacher has the SAME architecture as the model (a deep copy
  whose parameters and BatchNorm statistics are reset with ``reset_parameters``,
  seeded by the run's seed); the reference always built a ResNet-18;
- KL is averaged per sample ("batchmean"); the reference's ``F.kl_div`` default
  averaged over samples x classes (a constant factor 1/C, nearly irrelevant for Adam).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._distill import frozen_copy, kl_to_probs, teacher_logits
from ._loop import Batch, LoopConfig, run_loop


def incompetent_teacher(model: nn.Module) -> nn.Module:
    """A frozen, randomly re-initialised copy of ``model`` (same architecture, same device).

    Every submodule with ``reset_parameters`` (convolutions, linear layers,
    BatchNorm incl. running statistics) is reset from the current global RNG.
    """
    teacher = frozen_copy(model)
    n_reset = 0
    for m in teacher.modules():
        if callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
            n_reset += 1
    if n_reset == 0:
        raise ValueError(f"{type(model).__name__} has no layer with reset_parameters(); "
                         "cannot build a randomly initialised teacher of the same architecture.")
    return teacher.requires_grad_(False)


@register(
    "bt",
    name="Bad Teacher",
    paper="Chundawat et al. 2023, Can Bad Teaching Induce Forgetting? (AAAI); Cadet et al. 2024.",
    defaults={"epochs": 10, "lr": 0.01, "batch_size": 256, "weight_decay": 0.0,
              "kl_temperature": 1.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "kl_temperature": Float(0.05, 5.0)},
    epochs_over="union",
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, kl_temperature: float, bn_mode: str,
) -> nn.Module:
    if kl_temperature <= 0:
        raise ValueError(f"kl_temperature must be > 0; got {kl_temperature}.")
    good = frozen_copy(model)
    bad = incompetent_teacher(model)
    T = kl_temperature

    def loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        p_good = F.softmax(teacher_logits(good, r.x) / T, dim=1)
        p_bad = F.softmax(teacher_logits(bad, r.x) / T, dim=1)
        target = torch.where(r.is_forget[:, None], p_bad, p_good)
        return kl_to_probs(m(r.x), target, T)

    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, optimizer="adam",
                     schedule="constant", driver="union", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, loss, cfg, data.seed, max_sample_grads=data.max_sample_grads)
    return model
