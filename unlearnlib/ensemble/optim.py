"""The stacked optimiser, the learning-rate sequence and the per-model loss of K models."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..training import make_schedule


class StackedSGD:
    """``torch.optim.SGD`` (dampening 0, no Nesterov) applied to stacked parameters.

    Per parameter: ``g = grad + wd * p``; ``buf = g`` on the first step, else
    ``buf = momentum * buf + g``; ``p -= lr * buf``. The learning rate comes from
    the caller each step (the schedule is shared by every model of a group).
    """

    def __init__(self, params: dict[str, torch.Tensor], momentum: float, weight_decay: float):
        self.params = params
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.bufs: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, lr: float) -> None:
        names = [n for n, p in self.params.items() if p.grad is not None]
        params = [self.params[n] for n in names]
        grads = [p.grad for p in params]
        if not params:
            return
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if not self.bufs:  # first step: the buffer is the gradient itself
                self.bufs = {n: g.detach().clone() for n, g in zip(names, grads, strict=False)}
            else:
                bufs = [self.bufs[n] for n in names]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
            grads = [self.bufs[n] for n in names]
        torch._foreach_add_(params, grads, alpha=-lr)
        for p in params:
            p.grad = None


class StackedAdam:
    """``torch.optim.Adam`` (betas 0.9 / 0.999, eps 1e-8, no AMSGrad; its single-tensor
    update) applied to stacked parameters; the learning rate comes from the caller."""

    def __init__(self, params: dict[str, torch.Tensor], weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.weight_decay, self.betas, self.eps = params, weight_decay, betas, eps
        self.t = 0
        self.m: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        c1, c2_sqrt = 1 - b1 ** self.t, (1 - b2 ** self.t) ** 0.5
        for n, p in self.params.items():
            if p.grad is None:
                continue
            g = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
            if n not in self.m:
                self.m[n], self.v[n] = torch.zeros_like(p), torch.zeros_like(p)
            m, v = self.m[n], self.v[n]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / c2_sqrt).add_(self.eps), value=-lr / c1)
            p.grad = None


def lr_sequence(base_lr: float, schedule: str, total: int, eta_min_ratio: float = 0.0) -> list[float]:
    """The learning rates ``torch.optim.lr_scheduler.LambdaLR`` gives for steps 0..total-1,
    taken from :func:`unlearnlib.training.make_schedule` itself (same floats)."""
    dummy = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([dummy], lr=base_lr)
    sched = make_schedule(opt, schedule, total, eta_min_ratio)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _check_optimizer(name: str) -> None:
    if name != "sgd":
        raise ValueError(f"The batched path implements SGD only; got optimizer {name!r}. Use path='loop'.")


def _ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy: (K, B, C), (K, B) -> (K,)."""
    K = out.shape[0]
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none").view(K, -1).mean(1)

