"""``ff``: Fisher Forgetting (Golatkar et al. 2020, "Eternal Sunshine of the Spotless Net"; Deep Unlearn).

Diagonal Fisher from D_r, h = mean_i sum_y p_i(y) * grad CE(x_i, y)^2 (model in
eval mode); variance var = alpha * clamp(1/(h + 1e-8), max 1e3) with the
classifier's clamp at 1e2; for weight tensors var is averaged over the input
dimension (dim 1) as in Golatkar's code; x10 for the classifier and for 1-D
parameters; then theta += sqrt(var) * N(0, 1). No fine-tuning.

Departures from the reference code:
- Per-sample gradients (vmap), i.e. Golatkar's batch size 1; the Deep Unlearn /
  Unlearn-Sparse port squared the gradient of a batch-mean loss, which shrinks the
  Fisher with the batch size and made batch size a hidden hyperparameter.
- The clamp is applied before scaling by alpha, as in Golatkar's code.
- "The classifier" is the Linear head of the model's last block, not any tensor
  whose first dimension happens to equal the number of classes.
- The Fisher pass costs |D_r| * C per-sample gradients and is not capped by
  ``max_sample_grads``.
- Default alpha 1e-6 (the reference's 0.2 turns every weight with a tiny Fisher
  into noise of std ~14 and destroys the model); alpha is searched log-uniformly.
"""

from __future__ import annotations

import torch
from torch import nn

from . import Float, UnlearnData, register
from ._surgery import _chunks, grad_chunk_size, head_modules, per_sample_grads


@torch.no_grad()
def class_expected_fisher(model: nn.Module, data: UnlearnData) -> dict[str, torch.Tensor]:
    """h = mean over D_r of sum_y p(y|x) * (grad CE(x, y))^2, per parameter entry."""
    model.eval()
    names = [n for n, _ in model.named_parameters()]
    h = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    x_all, n = data.retain.x, len(data.retain)
    for s in _chunks(n, grad_chunk_size(model)):
        x = x_all[s]
        probs = model(x).softmax(1)
        for c in range(probs.shape[1]):
            y = torch.full((x.shape[0],), c, dtype=torch.long, device=x.device)
            with torch.enable_grad():
                g = per_sample_grads(model, x, y, names)
            w = probs[:, c]
            for name in names:
                h[name] += torch.einsum("b,b...->...", w, g[name].pow(2))
    return {k: v / max(1, n) for k, v in h.items()}


def fisher_variance(model: nn.Module, data: UnlearnData, alpha: float) -> dict[str, torch.Tensor]:
    """The per-entry noise variance Fisher Forgetting adds to each parameter."""
    h = class_expected_fisher(model, data)
    head = {id(p) for m in head_modules(model) for p in m.parameters()}
    out = {}
    for name, p in model.named_parameters():
        is_head = id(p) in head
        var = (1.0 / (h[name] + 1e-8)).clamp(max=1e2 if is_head else 1e3) * alpha
        if p.dim() > 1:
            var = var.mean(dim=1, keepdim=True).expand_as(p).clone()
        if is_head or p.dim() == 1:
            var = var * 10
        out[name] = var
    return out


@register(
    "ff",
    name="Fisher Forgetting",
    paper="Golatkar et al. 2020 (arXiv 1911.04933); Cadet et al. 2024, Deep Unlearn (arXiv 2410.01276).",
    defaults={"alpha": 1e-6},
    search_space={"alpha": Float(1e-10, 1.0, log=True)},
)
def unlearn(model: nn.Module, data: UnlearnData, alpha: float) -> nn.Module:
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0; got {alpha}.")
    var = fisher_variance(model, data, alpha)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(var[name].sqrt() * torch.randn_like(p))
    return model
