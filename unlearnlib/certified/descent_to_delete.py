"""Descent-to-Delete: perturbed projected gradient descent whose published noise certifies
each deletion (Neel, Roth and Sharifi-Malvajerdi, ALT 2021, arXiv 2007.02923), on the same
L2-regularised one-vs-rest logistic head as :mod:`.newton_removal`.

**The mechanism** (the paper's Algorithm 1, perturbed gradient descent). Per class k the loss
is ``f_D(theta) = (1/n) sum_i [log(1 + exp(-y_i theta.x_i)) + (lambda / 2) ||theta||^2]``
on the ball ``||theta|| <= R``. Training runs ``T0`` projected gradient steps of size
``eta = 2 / (m + M)`` from zero; every update (a deletion) runs ``T`` more steps from the
previous *secret* iterate on the data that is left; what is published after each is the
secret iterate plus Gaussian noise ``N(0, sigma^2 I)``. Because each step contracts the
distance to the optimum by ``gamma = (M - m) / (M + m)``, the secret iterate stays within
a shrinking distance of the current optimum, and the noise hides the rest:

    sigma = 4 sqrt(2) L gamma^T / (m n (1 - gamma^T) (sqrt(log(1/delta) + epsilon) - sqrt(log(1/delta))))

(the paper's noise for strongly convex, smooth losses; :func:`noise_scale`), with ``n`` the
training-set size.

**Assumptions**, with the constants of this loss: ``||x|| <= 1`` (rows normalised), so the
per-sample loss is ``m = lambda``-strongly convex and ``M = 1/4 + lambda``-smooth, and on the
ball of radius ``R`` it is ``L = 1 + lambda R``-Lipschitz; the initial training must reach
the optimum's neighbourhood the bound assumes (the paper's ``T0`` grows with the initial
distance; :func:`initial_steps` uses ``T0 = T + ceil(log(2 R m n / (2 L)) / log(1 / gamma))``,
enough for ``gamma^T0 2R <= gamma^T 2L / (m n)``).

**Departures from the paper** (one binary model there): the K one-vs-rest models are
published together, so the noise is ``sqrt(K)`` times the per-model scale (the L2 sensitivity
of K models each within the per-model bound); the gradient is computed on the whole data
(full-batch, as in the paper's deterministic variant). An update may delete ``k`` rows at
once (``deletions_per_update``; the paper deletes one per update): the optima of D and of D
without k rows are at most ``k`` single-deletion sensitivities apart (the triangle inequality
along D, D - 1 row, ..., each at most ``2 L / (m n')`` with ``n' >= n - k + 1``), so the noise is
``k`` times the paper's with ``n - k + 1`` in place of ``n`` (:func:`noise_scale`; ``k = 1`` is
the paper's formula exactly). More steps per update (``T``) pay for it: the noise falls as
``gamma^T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .newton_removal import normalise, signed_labels


def constants(lam: float, radius: float) -> dict[str, float]:
    """Strong convexity m, smoothness M and Lipschitz constant L of the regularised logistic
    loss on ``||x|| <= 1`` and ``||theta|| <= radius``, the contraction ``gamma`` and step ``eta``."""
    m, big_m = float(lam), 0.25 + float(lam)
    return {"m": m, "M": big_m, "L": 1.0 + float(lam) * float(radius), "gamma": (big_m - m) / (big_m + m),
            "eta": 2.0 / (m + big_m)}


def noise_scale(epsilon: float, delta: float, n: int, steps: int, lam: float, radius: float,
                deletions: int = 1) -> float:
    """The published noise of one binary model after ``steps`` gradient steps per update
    (module docstring; Neel et al. 2021, perturbed gradient descent), for updates that
    delete up to ``deletions`` rows each (1: the paper's)."""
    if not (epsilon > 0 and 0 < delta < 1):
        raise ValueError(f"epsilon must be positive and delta in (0, 1); got {epsilon!r}, {delta!r}.")
    if not (n >= 1 and steps >= 1 and lam > 0 and radius > 0 and 1 <= deletions < n):
        raise ValueError("n, steps, lam and radius must be positive, and 1 <= deletions < n.")
    c = constants(lam, radius)
    g = c["gamma"] ** int(steps)
    gap = math.sqrt(math.log(1 / delta) + epsilon) - math.sqrt(math.log(1 / delta))
    k = int(deletions)
    return k * 4 * math.sqrt(2) * c["L"] * g / (c["m"] * (int(n) - k + 1) * (1 - g) * gap)


def initial_steps(n: int, steps: int, lam: float, radius: float) -> int:
    """``T0``: the initial training's steps (module docstring)."""
    c = constants(lam, radius)
    extra = math.log(max(2 * radius * c["m"] * n / (2 * c["L"]), 1.0)) / math.log(1 / c["gamma"])
    return int(steps) + math.ceil(extra)


def _step(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lam: float, eta: float, radius: float) -> torch.Tensor:
    s = torch.sigmoid(y * (x @ theta))
    grad = x.T @ ((s - 1.0) * y) / len(x) + lam * theta
    theta = theta - eta * grad
    norms = theta.norm(dim=0, keepdim=True)
    return theta * torch.clamp(radius / norms.clamp_min(1e-300), max=1.0)  # projection per model


def publish(secret: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """What an update releases: the secret iterate plus Gaussian noise of scale ``sigma``. The
    secret iterate is a deterministic function of the data, so many released heads of one
    mechanism are one secret and many draws (a study's models differ only here)."""
    return secret + sigma * torch.randn(secret.shape, dtype=torch.float64, generator=generator)


@dataclass
class D2DHead:
    """The secret iterate, the data left and the published noisy head (module docstring)."""

    x: torch.Tensor
    y: torch.Tensor
    lam: float
    radius: float
    steps: int
    sigma: float             # the published noise (all K models: sqrt(K) x the per-model scale)
    deletions_per_update: int
    secret: torch.Tensor     # (d, K)
    published: torch.Tensor  # (d, K)
    keep: torch.Tensor
    generator: torch.Generator

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return normalise(features) @ self.published

    def _descend(self, iters: int) -> None:
        c = constants(self.lam, self.radius)
        x, y = self.x[self.keep], self.y[self.keep]
        for _ in range(int(iters)):
            self.secret = _step(self.secret, x, y, self.lam, c["eta"], self.radius)
        self.published = publish(self.secret, self.sigma, self.generator)

    def remove(self, rows: torch.Tensor | list[int]) -> "D2DHead":
        """Delete rows, one update each: ``steps`` projected gradient steps from the secret
        iterate on the data left, then a fresh noisy publication. In place; returns self."""
        for i in [int(r) for r in torch.as_tensor(rows).flatten().tolist()]:
            if not bool(self.keep[i]):
                raise ValueError(f"row {i} is not in the training data (removed already?).")
            self.keep[i] = False
            self._descend(self.steps)
        return self

    def remove_batch(self, rows: torch.Tensor | list[int]) -> "D2DHead":
        """Delete ``rows`` in one update (at most :attr:`deletions_per_update`, the number the
        noise was computed for): ``steps`` projected gradient steps, one noisy publication."""
        idx = torch.as_tensor(rows, dtype=torch.long).flatten()
        if len(idx) > self.deletions_per_update:
            raise ValueError(f"{len(idx)} rows in one update; this head's noise covers at most "
                             f"{self.deletions_per_update} (train it with deletions_per_update={len(idx)}).")
        if not bool(self.keep[idx].all()) or len(set(idx.tolist())) != len(idx):
            raise ValueError("every row must be in the training data, once.")
        self.keep[idx] = False
        self._descend(self.steps)
        return self


def train(features: torch.Tensor, labels: torch.Tensor, n_classes: int, epsilon: float, delta: float,
          steps: int = 20, lam: float = 0.05, radius: float | None = None, seed: int = 0,
          noise_factor: float = 1.0, deletions_per_update: int = 1, sigma: float | None = None) -> D2DHead:
    """Train a :class:`D2DHead` by :func:`initial_steps` projected gradient steps from zero and
    publish it with the certified noise. ``radius`` defaults to ``1 / lambda`` (the optimum's
    norm is at most ``||grad at 0|| / m <= 1 / lambda``). ``noise_factor`` below 1 builds a
    deliberately under-noised mechanism, which the attacks must catch; nothing certifies it.
    ``sigma`` publishes with a given noise instead (the certified retrained model: the same
    mechanism, and the same published noise, on the data without the forget set)."""
    radius = 1.0 / lam if radius is None else float(radius)
    x, y = normalise(features), signed_labels(labels, n_classes)
    if sigma is None:
        sigma = noise_factor * math.sqrt(n_classes) * noise_scale(epsilon, delta, len(x), steps, lam, radius,
                                                                  deletions_per_update)
    gen = torch.Generator().manual_seed(int(seed))
    head = D2DHead(x=x, y=y, lam=float(lam), radius=radius, steps=int(steps), sigma=float(sigma),
                   deletions_per_update=int(deletions_per_update),
                   secret=torch.zeros(x.shape[1], n_classes, dtype=torch.float64),
                   published=torch.zeros(x.shape[1], n_classes, dtype=torch.float64),
                   keep=torch.ones(len(x), dtype=torch.bool), generator=gen)
    head._descend(initial_steps(len(x), steps, lam, radius))
    return head


__all__ = ["constants", "noise_scale", "initial_steps", "publish", "D2DHead", "train"]
