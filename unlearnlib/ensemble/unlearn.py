"""Unlearning K models as one computation: :func:`unlearn_ensemble`.

The engine holds no losses of its own. A method runs batched when its registry entry
declares its loss as data, an :class:`~unlearnlib.loop.Objective` this engine supports
(:func:`supports`); the engine runs that declaration, with the batch order of
:func:`unlearnlib.loop.batch_plan`, on stacked outputs (:class:`StackedOutputs`). The
table of batched methods (:func:`batched_methods`) is read off the registry. The
references run batched by definition: ``original`` is a copy, ``retrain`` is
:func:`~unlearnlib.ensemble.train_ensemble` from the initial weights. Every other
method falls back to the per-model call ``methods.get(key)(model_k, data_k, **hp)``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from .. import methods
from ..data import Split
from ..loop import Objective, RunRandom, loop_plan
from ..training import Recipe, progress
from .optim import StackedAdam, StackedSGD, _ce, lr_sequence
from .paths import _check_masks, _default_chunk, _first_batches, _groups, _oom_chunks, choose_path
from .stack import Ensemble
from .train import train_ensemble

#: Methods the engine runs batched by what they are, not by a loss: a copy and retraining.
REFERENCES = ("original", "retrain")


#: Why each tunable method without a batched objective runs per model (issue 36): one line
#: each. Batched today: the references and every method whose declared objective the
#: engine supports (:func:`batched_methods`): ft, ga, gd, ngd, ngplus, srl, amnesiac.
NOT_BATCHED: dict[str, str] = {
    "bt": "distils from two teachers (the original and a random one drawn from the global RNG), Adam: "
          "needs stacked teacher logits, which Outputs does not offer",
    "kde": "resets the first conv and head from the global RNG, then distils from the frozen original "
           "in two phases with different optimisers",
    "scrub": "teacher distillation with alternating max (D_f) and min (D_r) passes per epoch and a "
             "milestone schedule: several objectives sharing one optimiser",
    "prmq": "global L1 pruning and re-initialisation from the global RNG, an entropy term against the "
            "pruned model's teacher, then an fp16 round trip: surgery around the loop",
    "cfk": "freezes all but the last k blocks (a per-parameter trainable set) under a step-decay callable "
           "schedule; the engine trains every parameter under a named schedule",
    "euk": "as cfk, after re-initialising the trainable blocks (surgery) and with optional augmentation",
    "cfw": "adds first-layer noise from the global RNG before the run and inside it (after epoch E-1), "
           "and weights CE by each model's retain class counts",
    "ct": "transposes / flips every conv kernel (surgery) and steps its cosine schedule per epoch (a "
          "callable schedule)",
    "msg": "per-model gradient-magnitude masks re-initialise conv weights and scale gradients (1.0 / 0.1) "
           "during fine-tuning: per-model grad_scale is not in the engine",
    "rni": "a fresh optimiser over a random parameter subset each epoch, with noise from the global RNG: "
           "per-epoch surgery",
    "salun": "a per-model saliency mask scales gradients and pins entries (keep_fixed) during its srl "
             "phase: per-model masks are not in the engine",
    "fcs": "three phases with their own optimisers, and a contrastive loss on detached retain outputs "
           "inside a forget-driven round",
    "nabla_tau": "a per-step adaptive rule: tau (the validation loss) is recomputed every 5 epochs from "
                 "the model itself, and alpha from the set sizes",
    "ff": "no training loop: Fisher noise from per-sample gradients (a one-shot edit)",
    "iu": "no training loop: one WoodFisher Newton step (a one-shot edit)",
    "ssd": "no training loop: Fisher-ratio dampening (a one-shot edit)",
    "sgu": "no training loop: one summed gradient at the initial weights (a one-shot edit)",
}

#: Optimisers the batched paths implement (:class:`StackedSGD`, :class:`StackedAdam`).
OPTIMIZERS = ("sgd", "adam")


def supports(objective: Objective | None, hp: Mapping[str, Any] | None = None) -> bool:
    """Whether the batched paths run ``objective`` (with hyperparameters ``hp``, when given):
    SGD (:class:`~unlearnlib.ensemble.StackedSGD`) or Adam (:class:`StackedAdam`) and a
    named schedule."""
    if objective is None:
        return False
    optimizer = (hp or {}).get("optimizer", objective.optimizer)
    return optimizer in OPTIMIZERS and isinstance(objective.schedule, str)


def batched_methods() -> tuple[str, ...]:
    """The methods :func:`unlearn_ensemble` runs batched: the references, then every
    registered method whose declared objective the engine supports (read off the registry).
    :data:`NOT_BATCHED` says, one line each, why every other tunable method is not."""
    return REFERENCES + tuple(k for k in methods.available()
                              if k not in REFERENCES and supports(methods.get(k).objective))


class StackedOutputs:
    """:class:`~unlearnlib.loop.Outputs` of K stacked models on one step's K batches per
    stream: every loss term is a (K,) tensor, one entry per model. A stream's batch is
    ``(x, y, is_forget or None)`` with a leading K dimension; random draws come from one
    :class:`~unlearnlib.loop.RunRandom` per model, in the loop's order for each."""

    def __init__(self, ens: Ensemble, batches: Mapping[str, tuple[torch.Tensor, torch.Tensor, Any]],
                 start: dict[str, torch.Tensor] | None, train: bool, path: str,
                 rngs: Sequence[RunRandom] = (), num_classes: int | None = None) -> None:
        self.ens, self.batches, self.start, self.train, self.path = ens, batches, start, train, path
        self.rngs, self.num_classes = rngs, num_classes
        self._logits: dict[str, torch.Tensor] = {}

    def logits(self, stream: str) -> torch.Tensor:
        if stream not in self._logits:
            self._logits[stream] = self.ens.forward(self.batches[stream][0], train=self.train, path=self.path)
        return self._logits[stream]

    def labels(self, stream: str) -> torch.Tensor:
        return self.batches[stream][1]

    def ce(self, stream: str, labels: torch.Tensor | None = None) -> torch.Tensor:
        return _ce(self.logits(stream), self.labels(stream) if labels is None else labels)

    def is_forget(self, stream: str) -> torch.Tensor:
        mask = self.batches[stream][2]
        if mask is None:
            raise ValueError(f"The {stream} batch marks no forget rows; only the union batch does.")
        return mask

    def random_labels(self, stream: str) -> torch.Tensor:
        y = self.batches[stream][1]
        return torch.stack([torch.randint(0, self.num_classes, y.shape[1:], generator=r.gen("cpu"))
                            for r in self.rngs]).to(y.device)

    def noise_dot(self, sigma: float) -> torch.Tensor:
        dev = self.ens.device
        total = 0
        for p in self.ens.params.values():  # the loop's parameter order, one generator per model
            xi = torch.stack([torch.randn(p.shape[1:], generator=r.gen(dev), device=dev) for r in self.rngs])
            total = total + (p * sigma * xi).flatten(1).sum(1)
        return total

    def sq_dist_to_start(self) -> torch.Tensor:
        if self.start is None:
            raise ValueError("This objective declares no anchor; the starting weights were not kept.")
        return sum((p - self.start[n]).pow(2).flatten(1).sum(1) for n, p in self.ens.params.items())


def _unlearn_batched(
    objective: Objective, ens: Ensemble, data: Split, retain_masks: torch.Tensor, forget_masks: torch.Tensor,
    hp: dict[str, Any], seeds: list[int], path: str, num_classes: int | None = None,
) -> None:
    """``objective`` on one group (equal retain and forget sizes) by ``path``, in place: each
    model's :func:`unlearnlib.loop.run_objective`, step for step."""
    cfg = objective.config(hp)
    K = len(ens)
    dev = data.x.device
    rows = {"retain": torch.stack([torch.nonzero(m).squeeze(1) for m in retain_masks]).to(dev),
            "forget": torch.stack([torch.nonzero(m).squeeze(1) for m in forget_masks]).to(dev)}
    n_retain = rows["retain"].shape[1]
    rows["union"] = torch.cat([rows["retain"], rows["forget"]], 1)  # Split.concat(retain, forget)
    rngs = [RunRandom(s) for s in seeds]
    labels = data.y
    if objective.relabel_forget is not None:  # each model's forget labels, drawn as the loop draws them
        labels = data.y.expand(K, -1).clone()
        for k in range(K):
            f = rows["forget"][k]
            labels[k, f] = objective.relabel_forget(data.y[f], num_classes, rngs[k].gen("cpu"))
    side = objective.side
    plans = [loop_plan(rows[cfg.driver].shape[1], rows[side].shape[1] if side else None, cfg.epochs,
                       cfg.batch_size, s) for s in seeds]
    total = len(plans[0])
    lrs = lr_sequence(cfg.lr, cfg.schedule, total, cfg.eta_min_ratio)
    start = {k: v.detach().clone() for k, v in ens.params.items()} if objective.anchored(hp) else None
    ens.requires_grad_(True)
    if cfg.optimizer == "adam":
        opt = StackedAdam(ens.params, cfg.weight_decay)
    else:
        opt = StackedSGD(ens.params, cfg.momentum, cfg.weight_decay)
    train_bn = cfg.bn_mode == "train"
    ar = torch.arange(K, device=dev)[:, None]

    def batch(stream: str, local: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        at = torch.stack(local).to(dev)
        idx = rows[stream][ar, at]
        y = labels[idx] if labels.dim() == 1 else labels[ar, idx]
        return data.x[idx], y, (at >= n_retain) if stream == "union" else None

    for t in range(total):
        batches = {cfg.driver: batch(cfg.driver, [p[t][0] for p in plans])}
        if side:
            batches[side] = batch(side, [p[t][1] for p in plans])
        loss = objective.loss(StackedOutputs(ens, batches, start, train_bn, path, rngs, num_classes), hp)
        loss.sum().backward()
        opt.step(lrs[t])
    ens.requires_grad_(False)
    ens.base.eval()


def unlearn_ensemble(
    key: str,
    ens: Ensemble,
    data: Split,
    retain_masks: torch.Tensor,
    forget_masks: torch.Tensor,
    seeds: Sequence[int],
    num_classes: int,
    hparams: dict[str, Any] | None = None,
    init: Ensemble | None = None,
    train_recipe: Recipe | None = None,
    val: Split | None = None,
    model_name: str | None = None,
    path: str = "auto",
    chunk: int | None = None,
    show_progress: bool = False,
) -> Ensemble:
    """Unlearn with method ``key`` in every model; returns a new ensemble.

    Model k forgets ``data.subset(forget_masks[k])`` and keeps
    ``data.subset(retain_masks[k])``, with ``seeds[k]`` as its ``UnlearnData.seed``;
    the result equals ``methods.get(key)(model_k, data_k, **hparams)``. ``init``
    (the initial weights) and ``train_recipe`` are needed by ``retrain``.
    Methods outside :func:`batched_methods` (and any ``path="loop"``) run that
    per-model call.
    """
    method = methods.get(key)
    hp = method.resolve_hparams(hparams)
    K, N = len(ens), len(data)
    retain_masks = _check_masks(retain_masks, K, N, "retain_masks")
    forget_masks = _check_masks(forget_masks, K, N, "forget_masks")
    if (retain_masks & forget_masks).any():
        raise ValueError("A sample is in both a model's retain and forget mask.")
    if len(seeds) != K:
        raise ValueError(f"Need one seed per model: {K} models, {len(seeds)} seeds.")
    if key == "retrain" and (init is None or train_recipe is None):
        raise ValueError("retrain needs `init` (the initial weights as an Ensemble) and `train_recipe`.")
    if key == "original":
        return ens.clone()
    if key == "retrain" and path != "loop":
        out = init.clone()
        train_ensemble(out, data, retain_masks, train_recipe, seeds, path=path, chunk=chunk,
                       show_progress=show_progress)
        return out
    out = ens.clone()
    objective = method.objective
    batched = path != "loop" and supports(objective, hp)
    for _, rows in _groups(retain_masks.sum(1), forget_masks.sum(1)).items():
        chosen = "loop"
        if batched:
            drive = {"forget": forget_masks, "retain": retain_masks,
                     "union": retain_masks | forget_masks}[objective.driver]
            n_drive = int(drive[rows[0]].sum())
            steps = int(math.ceil(hp["epochs"] * math.ceil(n_drive / hp["batch_size"])))
            sub = out.select(rows)
            first = _first_batches(data, drive[rows], hp["batch_size"])
            chosen = choose_path(path, sub, *first, steps * len(objective.reads))  # forwards per model
        if chosen != "loop":
            def run(part: list[int], path: str = chosen) -> None:
                work = out.select(part)
                _unlearn_batched(objective, work, data, retain_masks[part], forget_masks[part], hp,
                                 [int(seeds[i]) for i in part], path, num_classes)
                out.assign(part, work)

            _oom_chunks(run, rows, chunk or _default_chunk(chosen, sub, first[0]))
            continue
        for i in progress(rows, f"{key} (loop)", enabled=show_progress):
            ud = methods.UnlearnData(
                retain=data.subset(torch.nonzero(retain_masks[i]).squeeze(1)),
                forget=data.subset(torch.nonzero(forget_masks[i]).squeeze(1)),
                val=val if val is not None else data.subset(torch.zeros(0, dtype=torch.long)),
                num_classes=num_classes, seed=int(seeds[i]), model_name=model_name,
                init_state=init.model_state(i) if init is not None else None,
                train_recipe=train_recipe,
            )
            out.assign([i], Ensemble.from_models([method(out.model(i), ud, **hp)]))
    return out
