"""``scrub``: SCRUB, teacher-student unlearning (Kurmanji et al. 2023, NeurIPS), as Deep
Unlearn's ``scrubv2`` (Cadet et al. 2024, arXiv 2410.01276; the key its ``settings.py``
calls SCRUB).

The student starts at the original model, the teacher is a frozen copy in eval
mode. Each epoch e = 1..E:
- if e <= msteps, a max-step: one pass over D_f minimising -KL_T(teacher || student);
- a min-step: one pass over D_r minimising gamma * CE + alpha * KL_T(teacher || student).
KL_T is Hinton's distillation KL at temperature ``kd_T`` times T^2 (RepDistiller's
``DistillKL``). One SGD optimiser (momentum 0.9, weight decay) serves every pass; its
learning rate is ``lr * 0.1 ** m`` with m the number of milestones int(0.5 E),
int(0.8 E), int(0.9 E) that e has passed (E = 5: epochs 1-2 at lr, 3-4 at 0.1 lr,
5 at 0.001 lr). The student trains with BatchNorm in train mode (``bn_mode``).
Defaults from ``scrubv2``: 5 epochs, lr 5e-4, weight decay 5e-4, retain batch 32,
forget batch 64, gamma 1, alpha 0.5, msteps 3, kd_T 2. Search space as Deep
Unlearn's: lr, weight decay, epochs, msteps, both batch sizes in {64, 128, 256},
gamma and alpha in [0, 1], kd_T in (0, 5]; momentum is fixed at 0.9 there.

Model selection (SCRUB's rule, as ``scrubv2`` applies it): the forget error
1 - FA is recorded for the original model (epoch 0) and after every epoch; the
target is the FINAL model's error on the "forget-validation" set, the
validation samples whose class occurs in D_f. The returned weights are those of
the first epoch whose forget error is closest to that target; when that epoch is
0 (the untouched original), ``scrubv2`` returns the final model, and so does this.
For a random forget set, which spans every class, the forget-validation set is
the whole validation set, so the target is the final model's overall validation
error; for class forgetting it is the error on that class's validation samples.
The choice is recorded on the returned model as ``scrub_selected_epoch`` and
``scrub_info``.

Not hyperparameters here: ``beta`` and ``smoothing`` have no effect in ``scrubv2``
(beta weighs a feature-distillation term that is 0 for plain KL distillation, and
its ``param_dist`` compares the student with itself), nor do ``clip`` and ``sstart``.

Departures from the reference code:
- the forget pass reshuffles D_f every time (``scrubv2``'s forget loader does not
  shuffle, so its max-steps see D_f in one fixed order);
- kd_T is searched in [0.05, 5] rather than [0, 5] (T = 0 divides by zero);
- the shared loop's compute budget (``data.max_sample_grads``) can stop a run
  early; the candidates are then the epochs reached, the last one partial.

Deep Unlearn's older ``scrub.py`` (``SCRUBOLD`` in its ``settings.py``: Adam, weight
decay 0.1, 10 epochs, a proximal term to an SWA average) is not kept under another
key: the paper reports ``scrubv2`` as SCRUB, so SCRUBOLD has no published result to
compare with, and another key would add a method to every ``all`` grid.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split
from ..predict import accuracy
from . import STD_SPACE, Choice, Epochs, Float, UnlearnData, register
from ._distill import distill_kl, frozen_copy, teacher_logits
from ._loop import Batch, LoopConfig, run_loop

LR_DECAY_RATE = 0.1
LR_DECAY_AT = (0.5, 0.8, 0.9)


def lr_factor(epoch: int, epochs: int) -> float:
    """The reference's step decay: 0.1 ** (number of milestones int(f * E) that ``epoch`` (1-based) has passed)."""
    return LR_DECAY_RATE ** sum(epoch > int(f * epochs) for f in LR_DECAY_AT)


def forget_validation(val: Split, forget: Split) -> Split:
    """The validation samples whose class occurs in the forget set (``scrubv2``'s forget-validation set)."""
    classes = torch.unique(forget.y)
    rows = torch.nonzero(torch.isin(val.y, classes)).squeeze(1)
    if len(rows) == 0:
        raise ValueError(
            f"SCRUB selects its epoch by the validation error on the forgotten classes "
            f"{classes.tolist()}, but data.val has no sample of them."
        )
    return val.subset(rows)


def select_epoch(forget_errors: list[float], target: float) -> int:
    """The epoch whose weights SCRUB returns; ``forget_errors[e]`` is the error after e epochs
    (index 0: the original). The first epoch closest to ``target`` wins; when that is the
    original, the last epoch is returned (``scrubv2``)."""
    if len(forget_errors) < 2:
        raise ValueError("No epoch was run; nothing to select.")
    gaps = [abs(e - target) for e in forget_errors]
    closest = gaps.index(min(gaps))
    return closest if closest > 0 else len(forget_errors) - 1


@register(
    "scrub",
    name="SCRUB",
    paper="Kurmanji et al. 2023, Towards Unbounded Machine Unlearning (NeurIPS); Cadet et al. 2024 (scrubv2).",
    defaults={"epochs": 5, "lr": 5e-4, "batch_size": 32, "forget_batch_size": 64, "weight_decay": 5e-4,
              "gamma": 1.0, "alpha": 0.5, "msteps": 3, "kd_T": 2.0, "bn_mode": "train"},
    search_space={**STD_SPACE, "forget_batch_size": Choice(64, 128, 256),
                  "gamma": Float(0.0, 1.0), "alpha": Float(0.0, 1.0),
                  "msteps": Epochs(0.2), "kd_T": Float(0.05, 5.0)},
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: int, lr: float, batch_size: int, forget_batch_size: int,
    weight_decay: float, gamma: float, alpha: float, msteps: int, kd_T: float, bn_mode: str,
) -> nn.Module:
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"SCRUB needs a whole number of epochs >= 1; got {epochs}.")
    if len(data.val) == 0:
        raise ValueError("SCRUB selects its epoch by the validation error; data.val is empty.")
    epochs = int(epochs)
    forget_val = forget_validation(data.val, data.forget)
    teacher = frozen_copy(model)

    def max_loss(m: nn.Module, f: Batch, r: Batch | None) -> torch.Tensor:
        return -distill_kl(m(f.x), teacher_logits(teacher, f.x), kd_T, t_squared=True)

    def min_loss(m: nn.Module, f: Batch | None, r: Batch) -> torch.Tensor:
        out = m(r.x)
        return gamma * F.cross_entropy(out, r.y) + alpha * distill_kl(
            out, teacher_logits(teacher, r.x), kd_T, t_squared=True)

    budget = data.max_sample_grads
    states: list[dict[str, torch.Tensor] | None] = [None]  # epoch 0 is never returned
    forget_errors = [1.0 - accuracy(model, data.forget)]
    opt_state: dict | None = None  # one SGD (momentum buffers) across all max- and min-steps
    for epoch in range(1, epochs + 1):
        lr_e = lr * lr_factor(epoch, epochs)
        phases = [(max_loss, "forget", forget_batch_size)] if epoch <= msteps else []
        phases.append((min_loss, "retain", batch_size))
        out_of_budget = False
        for i, (loss_fn, driver, bs) in enumerate(phases):
            cfg = LoopConfig(1, lr_e, bs, momentum=0.9, weight_decay=weight_decay, optimizer="sgd",
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
    target = 1.0 - accuracy(model, forget_val)
    selected = select_epoch(forget_errors, target)
    model.load_state_dict(states[selected])
    model.scrub_selected_epoch = selected
    model.scrub_info = {"selected_epoch": selected, "forget_errors": forget_errors, "target_error": target,
                        "forget_classes": torch.unique(data.forget.y).tolist()}
    return model
