"""Relearning attack: how fast does forgotten knowledge come back?

Siddiqui et al. 2025, "From Dormant to Deleted: Tamper-Resistant Unlearning
Through Weight-Space Regularization" (arXiv 2505.22310), after the relearning
attacks on unlearned LLMs (Hu et al. 2024, "Jogging the Memory of Unlearned LLMs
Through Targeted Relearning Attacks", arXiv 2406.13356): fine-tune an unlearned
model for a few steps and see whether the forget-set performance returns
(Siddiqui et al. find that fine-tuning on the retain set ALONE brings the forget
accuracy of many unlearned vision classifiers back to nearly 100%, while a
retrained model stays at its test-level accuracy). A model that never saw
D_f, the retrained one, is the reference: fine-tuned with the same steps on the
same data, it shows what the fine-tuning data alone teach, so an unlearned model
that relearns faster than it still holds knowledge of D_f.

Two cases, each run from the unlearned and from the retrained model:

- ``retain``: fine-tune on D_r only (the benign case: nothing of D_f is shown);
- ``forget``: fine-tune on a random ``fraction`` of D_f (the relearn set S).

Recovery is measured on E = D_f minus S, the forget samples NOT used for
relearning, in BOTH cases, so the two cases are scored on the same samples and
case ``forget`` cannot score itself on what it was just trained on. Reported per
case and model: accuracy and mean cross-entropy on E after 0, 1, ..., ``steps``
updates; the first step at which the accuracy on E reaches the original model's
accuracy on E (None if never within ``steps``); and ``step_ratio`` = that step of
the unlearned model / that of the retrained model (NaN when either never
reaches it; < 1: the unlearned model relearns faster than retraining).

The fine-tuning is the project's shared loop (:func:`unlearnlib.loop.run_loop`):
SGD with momentum 0.9, no weight decay, constant learning rate, cross-entropy,
BatchNorm in train mode (``bn_mode``), batches drawn by index from a generator
seeded with ``seed``; the unlearned and the retrained model see the same batch sequence. The
accuracy after s updates is read at the start of step s, inside the loss function
(eval mode, no gradients: no state of the model or the loop changes), and once
after the last step. Deterministic for a seed on the CPU.

Departures: Siddiqui et al.'s relearning protocol (optimiser, epochs, learning
rate, data augmentation) is not reproduced; here the fine-tuning is a fixed small
number of SGD steps at a constant learning rate, and "steps to the original's
forget accuracy" with its unlearned / retrained ratio is this module's summary of
the recovery curves (they report the recovered accuracy). Hu et al. attack LLMs
with public or partial forget data; the ``forget`` case is its classifier analogue.

Layering (issue 35): the shared loop moved down from ``unlearnlib.methods._loop`` into the
engine (:mod:`unlearnlib.loop`) rather than this attack moving up. The loop is generic
training machinery (batching by index, optimiser, schedule, BatchNorm mode), nothing of any
method; the attack is an evaluation. With the loop in the engine, evaluation imports nothing
above it and the fine-tuning stays the very loop the methods use, with no copy to drift.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split, Splits
from ..loop import BN_MODES, LoopConfig, run_loop
from ..predict import logits as model_logits

CASES = ("retain", "forget")


@dataclass(frozen=True)
class RelearnCurve:
    """One model's accuracy and loss on the evaluation samples after 0..steps updates."""

    accuracy: tuple[float, ...]
    loss: tuple[float, ...]
    steps_to_original: int | None   # first step with accuracy >= the original's (None: not reached)

    @property
    def before(self) -> float:
        return self.accuracy[0]

    @property
    def after(self) -> float:
        return self.accuracy[-1]


@dataclass(frozen=True)
class RelearnCase:
    """One relearning case: the unlearned and the retrained model fine-tuned on the same data."""

    data: str            # "retain" (D_r) or "forget" (the relearn subset S of D_f)
    n_train: int         # samples fine-tuned on
    unlearned: RelearnCurve
    retrained: RelearnCurve
    step_ratio: float    # unlearned / retrained steps to the original's accuracy (NaN: one not reached)


@dataclass(frozen=True)
class RelearnResult:
    """The relearning attack's numbers; recovery is measured on E = D_f minus S (``n_eval`` samples)."""

    steps: int
    lr: float
    batch_size: int
    fraction: float
    seed: int
    n_eval: int
    original_accuracy: float   # the original model's accuracy on E (the target)
    original_loss: float
    retain: RelearnCase
    forget: RelearnCase

    def as_row(self) -> dict[str, float | int | None]:
        """Flat numbers for a results table (curves left out)."""
        row: dict[str, float | int | None] = {k: v for k, v in asdict(self).items()
                                              if not isinstance(v, dict)}
        for case in (self.retain, self.forget):
            p = f"relearn_{case.data}"
            for who in ("unlearned", "retrained"):
                c = getattr(case, who)
                row.update({f"{p}_{who}_acc_before": c.before, f"{p}_{who}_acc_after": c.after,
                            f"{p}_{who}_loss_before": c.loss[0], f"{p}_{who}_loss_after": c.loss[-1],
                            f"{p}_{who}_steps_to_original": c.steps_to_original})
            row[f"{p}_step_ratio"] = case.step_ratio
        return row


def relearn_split(forget: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(S, E): a random ``fraction`` of D_f to relearn on (at least one sample) and the rest.

    The draw comes from a CPU generator seeded with ``seed``; both parts keep D_f's order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1) so that some forget samples are left to score; got {fraction}.")
    n = len(forget)
    n_s = max(1, int(round(fraction * n)))
    if n_s >= n:
        raise ValueError(f"fraction {fraction} of {n} forget samples leaves none to evaluate on.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    chosen = torch.zeros(n, dtype=torch.bool)
    chosen[perm[:n_s]] = True
    rows = torch.arange(n)
    return forget.subset(rows[chosen]), forget.subset(rows[~chosen])


def _epochs_for(steps: int, n: int, batch_size: int) -> float:
    """Epochs for which the loop runs exactly ``steps`` updates (``ceil(epochs * steps_per_epoch)``)."""
    per_epoch = math.ceil(n / batch_size)
    epochs = steps / per_epoch
    while math.ceil(epochs * per_epoch) > steps:  # guard against rounding up past ``steps``
        epochs = math.nextafter(epochs, 0.0)
    return epochs


def _evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    z = model_logits(model, split)
    return (z.argmax(1) == split.y).float().mean().item(), F.cross_entropy(z, split.y).item()


def _first_reach(accuracy: list[float], target: float) -> int | None:
    return next((s for s, a in enumerate(accuracy) if a >= target), None)


def _relearn(
    model: nn.Module, case: str, retain: Split, subset: Split, evaluate_on: Split,
    steps: int, lr: float, batch_size: int, seed: int, target: float, bn_mode: str,
) -> RelearnCurve:
    """Fine-tune a copy of ``model`` for ``steps`` updates and record accuracy / loss on ``evaluate_on``."""
    m = copy.deepcopy(model)
    acc: list[float] = []
    loss: list[float] = []

    def record() -> None:
        a, lo = _evaluate(m, evaluate_on)  # eval mode and no_grad; restores train mode
        acc.append(a)
        loss.append(lo)

    def loss_fn(net: nn.Module, fb, rb) -> torch.Tensor:
        record()  # the model after len(acc) updates, before this step's
        b = fb if case == "forget" else rb
        return F.cross_entropy(net(b.x), b.y)

    n = len(subset) if case == "forget" else len(retain)
    cfg = LoopConfig(epochs=_epochs_for(steps, n, batch_size), lr=lr, batch_size=batch_size,
                     schedule="constant", driver=case, bn_mode=bn_mode)
    log = run_loop(m, retain, subset, loss_fn, cfg, seed)
    if log.steps != steps:
        raise RuntimeError(f"The loop ran {log.steps} steps instead of {steps}.")
    record()
    return RelearnCurve(tuple(acc), tuple(loss), _first_reach(acc, target))


def _ratio(u: int | None, r: int | None) -> float:
    if u is None or r is None:
        return float("nan")
    if r == 0:
        return 1.0 if u == 0 else float("inf")
    return u / r


def relearning_attack(
    unlearned: nn.Module, retrained: nn.Module, original: nn.Module, splits: Splits,
    steps: int = 30, lr: float = 0.005, batch_size: int = 128, fraction: float = 0.1, seed: int = 0,
    target_accuracy: float | None = None, bn_mode: str = "train",
) -> RelearnResult:
    """Relearn from ``unlearned`` and from ``retrained`` on D_r and on a ``fraction`` of D_f.

    Recovery is scored on the forget samples not used for relearning (module
    docstring). ``target_accuracy``: the accuracy whose first reach is counted
    (default: the original model's accuracy on those samples). The models are not
    modified. ``bn_mode``: BatchNorm during the fine-tuning (``train``, as in training,
    or ``eval``: statistics frozen).
    """
    if steps < 1 or lr <= 0 or batch_size < 1:
        raise ValueError(f"Need steps >= 1, lr > 0 and batch_size >= 1; got {steps}, {lr}, {batch_size}.")
    if bn_mode not in BN_MODES:
        raise ValueError(f"Unknown bn_mode {bn_mode!r}; allowed: {', '.join(BN_MODES)}.")
    subset, rest = relearn_split(splits.forget, fraction, seed)
    orig_acc, orig_loss = _evaluate(original, rest)
    target = orig_acc if target_accuracy is None else float(target_accuracy)
    cases = {}
    for case in CASES:
        curves = [_relearn(m, case, splits.retain, subset, rest, steps, lr, batch_size, seed, target, bn_mode)
                  for m in (unlearned, retrained)]
        n_train = len(subset) if case == "forget" else len(splits.retain)
        cases[case] = RelearnCase(case, n_train, curves[0], curves[1],
                                  _ratio(curves[0].steps_to_original, curves[1].steps_to_original))
    return RelearnResult(steps, lr, batch_size, fraction, seed, len(rest), orig_acc, orig_loss,
                         cases["retain"], cases["forget"])


__all__ = ["relearning_attack", "relearn_split", "RelearnResult", "RelearnCase", "RelearnCurve", "CASES"]
