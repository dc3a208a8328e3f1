"""``msg``: Masked Small Gradients (Kaggle NeurIPS 2023 unlearning challenge #2; Deep Unlearn).

(1) Accumulate the gradient of +CE on a random retain subset of size |D_f| and of
-CE on D_f, as sums of batch means (retain batches of 64, forget batches of B); (2) in every convolution pick exactly ``round(init_rate * numel)``
weights with the smallest |grad|; (3) re-initialise those (Kaiming normal,
fan_out, relu) and keep the rest; (4) fine-tune on D_r with CE, SGD (momentum
0.9), gradients multiplied by 1.0 on re-initialised and 0.1 on kept conv weights,
learning rate warmed up linearly then decayed linearly. Deep Unlearn (Cadet et
al. 2024, arXiv 2410.01276) finds MSG among the best methods.
Defaults: init_rate 0.3, lr 1e-3, 5 epochs, batch 64, weight decay 5e-4.

Departures from the reference code:
- Conv1d layers are treated like Conv2d (the reference only knew Conv2d). A model
  without convolutions (an MLP) gets the same surgery on its Linear weights (our
  extension, ``_surgery.weight_layers``). So does a token model (``text_bag``): its
  Linear layers are masked and re-initialised, while its ``nn.Embedding`` is no surgery
  target (rows of words in neither gradient set have |grad| exactly 0, so "smallest
  gradients" would pick among ties) and is fine-tuned at the full rate, as the
  reference fine-tunes every non-conv layer.
- Step (1) weighs the two sets as the reference does (``kgltop2.py``
  ``get_grads_for_snip``; loaders of ``get_dataset.py``): it sums the batch-mean
  gradients over retain batches of 64 (:data:`MASK_RETAIN_BATCH`, the reference's own
  loader) and over forget batches of the method's (tuned) batch size B, so with equal
  set sizes the retain term weighs B / 64 times the forget term (4x at B = 256). Both
  sets are batched in a fixed order (the retain subset is already a random draw; the
  reference shuffles its retain loader), which only decides what the last short batch
  holds. The model is in eval mode so BatchNorm statistics are not touched (the
  reference leaves the mode as it finds it).
- The warm-up/decay schedule is per step (``warmup_linear``: up over the first
  half, down over the second) instead of per epoch over E+1 epochs.
- The 1.0/0.1 scaling is a gradient scale in the shared loop, not a masked conv
  module, so the model's architecture is unchanged. Weight decay is not scaled,
  as in the reference (its mask acted on the loss gradient only).
- BatchNorm mode during fine-tuning is an explicit hyperparameter (train by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import STD_SPACE, Float, UnlearnData, register
from ._loop import LoopConfig, run_loop
from ._surgery import remaining_budget, summed_batch_mean_grads, weight_layers

#: Gradient scale on kept (not re-initialised) conv weights during fine-tuning.
KEPT_SCALE = 0.1
#: Batch size of the retain batches behind the mask: the reference builds its own loader
#: of 64 for them, whatever the tuned batch size (``kgltop2.py``, ``get_grads_for_snip``).
MASK_RETAIN_BATCH = 64


def small_gradient_masks(model: nn.Module, data: UnlearnData, init_rate: float,
                         forget_batch_size: int) -> dict[str, torch.Tensor]:
    """Steps (1)-(2): per conv weight, a boolean mask of the ``round(init_rate * numel)``
    entries with the smallest |g|, where g sums the batch-mean gradients of +CE over a
    random retain subset of size |D_f| in batches of :data:`MASK_RETAIN_BATCH` and of -CE
    over D_f in batches of ``forget_batch_size`` (the reference's weighting)."""
    if not 0.0 <= init_rate <= 1.0:
        raise ValueError(f"init_rate must lie in [0, 1]; got {init_rate}.")
    convs = weight_layers(model, "MSG (Masked Small Gradients)")
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    n_f = len(data.forget)
    rows = torch.randperm(len(data.retain))[:n_f]
    summed_batch_mean_grads(model, data.retain.subset(rows), +1.0, MASK_RETAIN_BATCH)
    summed_batch_mean_grads(model, data.forget, -1.0, forget_batch_size)
    masks: dict[str, torch.Tensor] = {}
    for name, conv in convs:
        g = conv.weight.grad.abs().reshape(-1)
        k = round(init_rate * g.numel())
        mask = torch.zeros_like(g, dtype=torch.bool)
        if k:
            mask[torch.topk(-g, k).indices] = True
        masks[f"{name}.weight"] = mask.view_as(conv.weight)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return masks


@torch.no_grad()
def reinit_masked_(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Step (3): re-initialise the masked entries (Kaiming normal, fan_out, relu)."""
    named = dict(model.named_parameters())
    for name, mask in masks.items():
        w = named[name]
        fresh = nn.init.kaiming_normal_(torch.empty_like(w), mode="fan_out", nonlinearity="relu")
        w[mask] = fresh[mask]


def grad_scales(masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Step (4)'s gradient multipliers: 1.0 on re-initialised entries, 0.1 on kept ones."""
    return {n: torch.where(m, 1.0, KEPT_SCALE).to(torch.float32) for n, m in masks.items()}


@register(
    "msg",
    name="Masked Small Gradients",
    paper="Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276); Kaggle NeurIPS 2023 unlearning challenge.",
    defaults={"epochs": 5, "lr": 1e-3, "batch_size": 64, "weight_decay": 5e-4, "init_rate": 0.3,
              "bn_mode": "train"},
    search_space={**STD_SPACE, "init_rate": Float(0.0, 1.0)},
    version=2,  # 2: the mask's retain term weighs B / 64 as in the reference (was equal weights)
)
def unlearn(
    model: nn.Module, data: UnlearnData, epochs: float, lr: float, batch_size: int,
    weight_decay: float, init_rate: float, bn_mode: str,
) -> nn.Module:
    masks = small_gradient_masks(model, data, init_rate, batch_size)
    reinit_masked_(model, masks)
    scale = {n: s.to(data.device) for n, s in grad_scales(masks).items()}
    cfg = LoopConfig(epochs, lr, batch_size, weight_decay=weight_decay, schedule="warmup_linear",
                     driver="retain", bn_mode=bn_mode)
    run_loop(model, data.retain, data.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y), cfg,
             data.seed, grad_scale=scale, max_sample_grads=remaining_budget(data, 2 * len(data.forget)))
    return model
