"""``scrub``: SCRUB, teacher-student unlearning (Kurmanji et al. 2023, NeurIPS).

The student starts at the original model, the teacher is a frozen copy. Each
epoch e = 1..E:
- if e <= msteps, a max-step: one pass over D_f minimising -KL_T(student, teacher);
- a min-step: one pass over D_r minimising gamma * CE + alpha * KL_T(student, teacher);
both plus ``smoothing * sum_l ||theta_l - theta_0_l||_F`` (the reference's
``param_dist`` to its SWA model, which equals theta_0 throughout because the
SWA update starts at epoch ``sstart`` = 10 >= E). KL_T is Hinton's distillation
KL at temperature ``kd_T``, times T^2. The learning rate is multiplied by 0.1
after 0.5, 0.8 and 0.9 of E. Adam, as in Deep Unlearn (Cadet et al. 2024,
arXiv 2410.01276), whose defaults these are.

Model selection (SCRUB+R, as METHODS.md asks; Deep Unlearn's code skipped it):
after every epoch the weights and the forget error are recorded; the returned
model is the epoch whose forget error is closest to the FINAL model's
validation error (ties: the later epoch). The choice is recorded on the
returned model as ``scrub_selected_epoch`` (1-based) and ``scrub_info``.

Departures from the reference code:
- the forget pass uses ``forget_batch_size`` (Deep Unlearn's code overwrote that
  loader and iterated D_f at the retain batch size);
- ``beta`` (weight of a feature-distillation term that is identically 0 for
  plain KL distillation), ``clip`` and ``sstart`` (SWA) have no effect there and
  are not hyperparameters here;
- each pass runs the shared loop; one Adam state is carried across all passes,
  as the reference keeps one optimiser.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..evaluation import accuracy
from . import STD_SPACE, Choice, Epochs, Float, UnlearnData, register
from ._distill import distill_kl, frozen_copy, teacher_logits
from ._loop import Batch, LoopConfig, run_loop

LR_DECAY_RATE = 0.1
LR_DECAY_AT = (0.5, 0.8, 0.9)


def lr_factor(epoch: int, epochs: int) -> float:
    """The reference's step decay: 0.1 ** (number of milestones int(f * E) that ``epoch`` (1-based) has passed)."""
    return LR_DECAY_RATE ** sum(epoch > int(f * epochs) for f in LR_DECAY_AT)


def select_epoch(forget_errors: list[float], val_error: float) -> int:
    """1-based epoch whose forget error is closest to ``val_error`` (ties: the later one)."""
    if not forget_errors:
        raise ValueError("No epoch was run; nothing to select.")
    gaps = [abs(e - val_error) for e in forget_errors]
    best = min(gaps)
    return max(i for i, g in enumerate(gaps) if g == best) + 1


@register(
    "scrub",
    name="SCRUB",
    paper="Kurmanji et al. 2023, Towards Unbounded Machine Unlearning (NeurIPS); Cadet et al. 2024.",
    defaults={"epochs": 10, "lr": 5e-4, "batch_size": 32, "forget_batch_size": 64, "weight_decay": 0.1,
              "gamma": 1.0, "alpha": 0.5, "smoothing": 0.5, "msteps": 3, "kd_T": 2.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "forget_batch_size": Choice(32, 64, 128, 256),
                  "gamma": Float(0.0, 1.0), "alpha": Float(0.0, 1.0), "smoothing": Float(0.0, 1.0),
                  "msteps": Epochs(0.2), "kd_T": Float(0.05, 5.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, lr: float, batch_size: int, forget_batch_size: int,
    weight_decay: float, gamma: float, alpha: float, smoothing: float, msteps: int, kd_T: float,
    bn_mode: str,
) -> nn.Module:
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"SCRUB needs a whole number of epochs >= 1; got {epochs}.")
    if len(data.val) == 0:
        raise ValueError("SCRUB selects its epoch by the validation error; data.val is empty.")
    epochs = int(epochs)
    teacher = frozen_copy(model)
    theta0 = [p.detach().clone() for p in model.parameters()]

    def proximity(m: nn.Module) -> torch.Tensor | float:
        if not smoothing:
            return 0.0
        dists = (torch.linalg.vector_norm(p - p0) for p, p0 in zip(m.parameters(), theta0, strict=True))
        return smoothing * sum(dists)

    def max_loss(m: nn.Module, f: Batch, r: Batch | None) -> torch.Tensor:
        return -distill_kl(m(f.x), teacher_logits(teacher, f.x), kd_T, t_squared=True) + proximity(m)

    def min_loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out = m(r.x)
        return (gamma * F.cross_entropy(out, r.y)
                + alpha * distill_kl(out, teacher_logits(teacher, r.x), kd_T, t_squared=True) + proximity(m))

    budget = data.max_sample_grads
    states: list[dict[str, torch.Tensor]] = []
    forget_errors: list[float] = []
    opt_state: dict | None = None  # one Adam across all max- and min-steps, as in SCRUB
    for epoch in range(1, epochs + 1):
        lr_e = lr * lr_factor(epoch, epochs)
        phases = [(max_loss, "forget", forget_batch_size)] if epoch <= msteps else []
        phases.append((min_loss, "retain", batch_size))
        out_of_budget = False
        for i, (loss_fn, driver, bs) in enumerate(phases):
            cfg = LoopConfig(1, lr_e, bs, weight_decay=weight_decay, optimizer="adam",
                             schedule="constant", driver=driver, bn_mode=bn_mode)
            log = run_loop(model, data.retain, data.forget, loss_fn, cfg, data.seed + 100 * epoch + i,
                           max_sample_grads=budget, optimizer_state=opt_state)
            opt_state = log.optimizer_state
            if budget is not None:
                budget -= log.sample_grads
            if log.stopped_by_budget:
                out_of_budget = True
                break
        states.append(copy.deepcopy(model.state_dict()))
        forget_errors.append(1.0 - accuracy(model, data.forget))
        if out_of_budget:
            break
    val_error = 1.0 - accuracy(model, data.val)
    selected = select_epoch(forget_errors, val_error)
    model.load_state_dict(states[selected - 1])
    model.scrub_selected_epoch = selected
    model.scrub_info = {"selected_epoch": selected, "forget_errors": forget_errors, "val_error": val_error}
    return model
