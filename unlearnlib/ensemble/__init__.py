"""Many models of one architecture trained as one computation (shadows and seeds).

LiRA (Carlini et al. 2022) and U-LiRA (Hayes et al. 2024, arXiv 2403.01218)
need tens to hundreds of shadow models; the NeurIPS 2023 unlearning challenge
score (Triantafillou et al. 2024) needs N retrained and N unlearned models. An
:class:`Ensemble` holds K models as stacked parameters and buffers
(``torch.func.stack_module_state``); one step runs all of them, by one of two
batched paths:

- ``grouped`` (the "folded" path): the K models become one wider network. A
  convolution runs once with ``groups=K`` over K*C channels (model k owns
  channel block k), BatchNorm normalises the K*C channels (each channel's
  statistics are one model's), pooling and ReLU act per channel (these folded
  activations are channels-last in memory, see :func:`_fold`), and a linear
  layer is a batched matmul over the K models. Only plain trunks of Conv1d/2d,
  BatchNorm1d/2d, ReLU, MaxPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Linear and
  the registry's reshape module fold (``cnn1d``, ``small_cnn``, ``mlp``); see
  :func:`fold_plan`. Others (ResNet-18) use vmap or the loop.
- ``vmap``: ``torch.vmap`` over ``torch.func.functional_call`` of the base model.

Semantics are those of the per-model code, exactly (up to floating-point
summation order):

- :func:`train_ensemble` does what :func:`unlearnlib.training.train` does for each
  model ``k`` on ``data.subset(masks[k])`` with data-order seed ``seeds[k]``: the
  same CPU generator calls (one ``randperm`` per epoch, then augmentation draws),
  the same per-step schedule (taken from :func:`~unlearnlib.training.make_schedule`),
  the same loss (cross-entropy, plus Thudi et al.'s SD term when the recipe has
  one) and ``torch.optim.SGD``'s update (weight decay added to the gradient,
  momentum buffer initialised with the first gradient, dampening 0, no Nesterov).
- :func:`unlearn_ensemble` does what ``methods.get(key)(model_k, data_k, **hp)``
  does. It restates no method's loss: a method whose registry entry declares its loss
  as data (an :class:`~unlearnlib.loop.Objective`: ``ft``, ``ga``, ``gd``, ``ngd``, ``ngplus``,
  ``srl``, ``amnesiac``; SGD or Adam, a retain-, forget- or union-driven batch order,
  per-model random draws from each model's own seed) runs
  batched from that declaration, with the batch order of
  :func:`unlearnlib.loop.batch_plan` that the per-model loop uses too; ``retrain`` and
  ``original`` run batched by what they are; every other registered method falls
  back to that per-model call. :func:`batched_methods` lists them, read off the registry;
  ``unlearn.NOT_BATCHED`` says in one line per method why each other tunable method is
  not batched (surgery, teachers, per-step adaptive rules, one-shot edits).

BatchNorm: each model's running statistics are updated in place as a train-mode
``nn.BatchNorm`` updates them (momentum, unbiased running variance,
``num_batches_tracked`` + 1 per step), and eval mode normalises with them. The
vmap path passes the stacked buffers through ``functional_call``, so
``F.batch_norm`` updates one slice per model; the grouped path hands
``F.batch_norm`` the (K*C,) views of the stacked (K, C) buffers. The
alternative, ``torch.func.replace_all_batch_norm_modules_``, drops the running
statistics (eval mode would then use batch statistics) and would change what a
trained model predicts, so it is not used.

Models whose subsets differ in size cannot share a step (batch shapes differ),
so they are grouped by subset size and each group runs as one computation.

Path choice (``path="auto"``): on CUDA always vmap (measured 20x over the loop
for K=64 cnn1d on an H200; the grouped path is not measured there). On the CPU,
runs shorter than 20 steps use the loop; otherwise :func:`calibrate` times a
training step of the loop and of one batched path (grouped where the model
folds, else vmap) on the same K models (throw-away copies) and the same K
batches (grouped in the chunks of models it trains in, :func:`grouped_chunk`),
after a warm-up step of each, and picks the batched path only if it beats the
loop by :data:`CPU_BATCHED_MARGIN`, so the engine is not slower than the
per-model loop beyond the calibration itself. vmap is not timed where the model
folds: grouped was faster than vmap in every calibration measured (cnn1d, K = 4,
8, 16 and 64, batch 128 and 256, 1 and 2 threads) and in every 1-thread
training run (``benchmarks/ensemble.py`` times all three); the one exception
seen was a 2-thread run at load 5 to 7 on 2 cores (vmap 71 s, grouped 85 s, the
loop 458 s). Decisions are cached per (architecture, batch shape, K, device,
threads).

Modules, by concern: :mod:`.stack` (the container, :class:`Ensemble`, and the grouped
path's chunk size), :mod:`.fold` (the grouped path's layers, with the custom-autograd
BatchNorm), :mod:`.optim` (:class:`StackedSGD`, the learning-rate sequence, the per-model
loss), :mod:`.paths` (calibration and path choice, grouping by subset size),
:mod:`.train` (:func:`train_ensemble`) and :mod:`.unlearn` (:func:`unlearn_ensemble`).
Issue 35 split them out of one 1,000-line module; every name it offered is here.
"""

from __future__ import annotations

from ..loop import batch_plan, loop_plan
from .fold import FOLD_LEAVES, fold_plan
from .optim import StackedAdam, StackedSGD, lr_sequence
from .paths import (
    CPU_BATCHED_MARGIN,
    MIN_CALIBRATED_STEPS,
    PATHS,
    batched_paths,
    calibrate,
    choose_path,
    pick_path,
)
from .stack import GROUPED_CHUNK_BYTES, Ensemble, arch_key, grouped_chunk
from .train import EnsembleLog, train_ensemble
from .unlearn import REFERENCES, StackedOutputs, batched_methods, supports, unlearn_ensemble


def __getattr__(name: str):
    """``BATCHED_METHODS``: :func:`batched_methods`, read off the registry on first use (it
    loads every method module, which importing the engine should not)."""
    if name == "BATCHED_METHODS":
        return batched_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Ensemble", "EnsembleLog", "StackedAdam", "StackedSGD", "StackedOutputs", "train_ensemble", "unlearn_ensemble",
    "batched_methods", "supports", "REFERENCES", "BATCHED_METHODS", "batch_plan", "loop_plan",
    "fold_plan", "FOLD_LEAVES", "lr_sequence", "grouped_chunk", "GROUPED_CHUNK_BYTES", "arch_key",
    "PATHS", "CPU_BATCHED_MARGIN", "MIN_CALIBRATED_STEPS", "batched_paths", "calibrate", "choose_path",
    "pick_path",
]
