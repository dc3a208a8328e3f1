"""Certified removal for an L2-regularised logistic head (Guo, Goldstein, Hannun and van der
Maaten, "Certified Data Removal from Machine Learning Models", ICML 2020, arXiv 1911.03030).

**The mechanism.** One-vs-rest logistic regression on features ``X`` (rows L2-normalised:
``||x|| = 1``) with labels ``Y`` in {-1, +1}^(n x K), one binary model per class. Training
minimises, per class k, the *perturbed* objective

    L_b(w; D) = sum_i log(1 + exp(-y_i w.x_i)) + (lambda n / 2) ||w||^2 + b.w,

with ``b ~ N(0, sigma^2)^d`` drawn once and kept secret (objective perturbation; the
reference code's ``b.dot(w) / n`` on the mean loss is the same minimiser). Removing a point
(x, y) from the current data D (n points) takes one Newton step on the rest D' (n - 1 points):

    g = grad l(w.x, y) + lambda w,    H = sum_{D'} s(1 - s) x x^T + lambda (n - 1) I,
    w_new = w + H^-1 g                (s = sigmoid(y w.x) per point of D'),

since the gradient of L_b(.; D') at the old optimum is -g.

**What certifies it.** The gradient residual ``||grad L_b(w_new; D')||`` is what a Newton
step leaves of the exact retraining's optimality condition. The paper bounds it (its
Theorem 1 and Corollaries 1-2); this module uses the data-dependent bound of the authors'
code (``test_removal.py``): ``gamma ||X'||_2 ||H^-1 g|| ||X' H^-1 g||`` with ``gamma = 1/4`` (the
Lipschitz constant of the logistic loss' second derivative) and ``||X'||_2`` the largest
singular value of the remaining features, summed over the K binary models (the code's
``grad_norm_approx``) and accumulated over removals. With Gaussian perturbation of scale
``sigma``, a released model whose residual is at most ``eps_r`` is (epsilon, delta)-certified
removal when ``sigma = c eps_r / epsilon`` with ``c = sqrt(2 log(1.5 / delta))`` (the paper's
Gaussian-perturbation theorem, Theorem 3 in the arXiv version): so for a chosen ``sigma``
the residual budget is ``eps_r = sigma epsilon / c`` (:func:`residual_budget`), and once the
accumulated bound exceeds it the head is retrained from scratch on what is left with a fresh
``b`` (the paper's removal algorithm).

**Assumptions** (each one the proof needs): the loss is convex and its second derivative
is gamma-Lipschitz (logistic: gamma = 1/4); ``||x|| <= 1`` (rows are normalised here); the
L2 regulariser makes the objective lambda n-strongly convex; the minimiser is exact (L-BFGS
then Newton steps in float64, to a gradient norm far below the residual budget). The features must carry no information about the private data
(the book's head sits on an extractor trained on a separate MNIST-1D draw), else the
guarantee covers the head only.

**Departures from the reference code** (``facebookresearch/certified-removal``): float64
throughout (the reference trains in float32); the K binary models are trained jointly by
one L-BFGS run on their summed objectives, as the reference's ``ovr_lr_optimize`` does,
without its negative subsampling; the retraining when the budget is spent is the paper's
algorithm, which the reference script does not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

#: Lipschitz constant of the logistic loss' second derivative (the paper's gamma).
GAMMA = 0.25


def perturbation_scale(epsilon: float, delta: float, residual: float) -> float:
    """The Gaussian perturbation's standard deviation that makes a removal with gradient
    residual at most ``residual`` (epsilon, delta)-certified: ``c residual / epsilon`` with
    ``c = sqrt(2 log(1.5 / delta))`` (Guo et al. 2020, Gaussian objective perturbation)."""
    _check_budget(epsilon, delta)
    return math.sqrt(2.0 * math.log(1.5 / delta)) * float(residual) / float(epsilon)


def residual_budget(epsilon: float, delta: float, sigma: float) -> float:
    """The gradient residual a head trained with perturbation scale ``sigma`` may accumulate
    and stay (epsilon, delta)-certified: the inverse of :func:`perturbation_scale`."""
    _check_budget(epsilon, delta)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma!r}.")
    return float(sigma) * float(epsilon) / math.sqrt(2.0 * math.log(1.5 / delta))


def _check_budget(epsilon: float, delta: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a positive number; got {epsilon!r}.")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}.")


def normalise(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (the proof's ``||x|| <= 1``), in float64."""
    x = features.to(torch.float64)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def signed_labels(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """One-vs-rest targets in {-1, +1}, (n, K), float64."""
    y = -torch.ones(len(labels), n_classes, dtype=torch.float64)
    y[torch.arange(len(labels)), labels.long()] = 1.0
    return y


def objective(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lam: float, b: torch.Tensor) -> torch.Tensor:
    """The summed perturbed objective of the K binary models (module docstring)."""
    margins = y * (x @ w)
    return (torch.nn.functional.softplus(-margins).sum() + 0.5 * lam * len(x) * w.pow(2).sum() + (b * w).sum())


def gradient(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lam: float, b: torch.Tensor) -> torch.Tensor:
    """Its gradient, (d, K): ``X^T ((s - 1) y) + lambda n w + b`` with ``s = sigmoid(y w.x)``."""
    s = torch.sigmoid(y * (x @ w))
    return x.T @ ((s - 1.0) * y) + lam * len(x) * w + b


def hessian(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """The K Hessians, (K, d, d): ``X^T diag(s (1 - s)) X + lambda n I`` per class."""
    s = torch.sigmoid(y * (x @ w))  # (n, K)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    return torch.einsum("nk,ni,nj->kij", s * (1 - s), x, x) + lam * len(x) * eye


def fit(x: torch.Tensor, y: torch.Tensor, lam: float, b: torch.Tensor, tol: float = 1e-10,
        max_iter: int = 200) -> torch.Tensor:
    """The minimiser of :func:`objective` (d, K): L-BFGS (strong-Wolfe line search) from zero,
    then Newton steps with the exact Hessians, in float64, until the gradient norm is at most
    ``tol`` times the larger of the number of rows and ``||b||`` (float64 sums of that size
    round at about 1e-16 of it); raises otherwise (the proof assumes the exact minimiser)."""
    w = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=0.0,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective(w, x, y, lam, b)
        loss.backward()
        return loss

    opt.step(closure)
    w = w.detach()
    limit = tol * max(1.0, len(x), float(b.norm()))
    for _ in range(50):  # Newton's method converges quadratically from here
        g = gradient(w, x, y, lam, b)
        if float(g.norm()) <= limit:
            return w
        step = torch.linalg.solve(hessian(w, x, y, lam), g.T.unsqueeze(-1)).squeeze(-1).T
        w = w - step
    g = float(gradient(w, x, y, lam, b).norm())
    if g > limit:
        raise RuntimeError(f"the fit stopped at gradient norm {g:.3g}, above {limit:.3g}.")
    return w


@dataclass
class CertifiedHead:
    """A one-vs-rest logistic head trained with objective perturbation, its removals and the
    residual budget they spend (module docstring). ``keep`` marks the training rows still in
    the data; ``spent`` is the accumulated residual bound since the last (re)training."""

    x: torch.Tensor          # (n, d) normalised features of every training row
    y: torch.Tensor          # (n, K) signed one-vs-rest labels
    lam: float
    sigma: float
    epsilon: float
    delta: float
    w: torch.Tensor          # (d, K)
    b: torch.Tensor          # (d, K), secret
    keep: torch.Tensor       # (n,) bool
    generator: torch.Generator
    spent: float = 0.0
    retrainings: int = 0
    bounds: list[float] = field(default_factory=list)

    @property
    def budget(self) -> float:
        """The residual this head may accumulate (:func:`residual_budget`)."""
        return residual_budget(self.epsilon, self.delta, self.sigma)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Scores of the K binary models on ``features`` (normalised here), (m, K)."""
        return normalise(features) @ self.w

    def remove(self, rows: torch.Tensor | list[int], enforce_budget: bool = True) -> "CertifiedHead":
        """Remove training rows one at a time by a Newton step each, accumulating the
        data-dependent residual bound; retrain from scratch on what is left, with a fresh
        perturbation, whenever the next step would exceed the budget. In place; returns self.

        ``enforce_budget=False`` never retrains: with too little noise for its residual, that
        is a deliberately broken mechanism, which the attacks must catch (the check that the
        bound checks can fail); nothing certifies it."""
        for i in [int(r) for r in torch.as_tensor(rows).flatten().tolist()]:
            if not bool(self.keep[i]):
                raise ValueError(f"row {i} is not in the training data (removed already?).")
            self._newton_step(torch.tensor([i]), enforce_budget)
        return self

    def remove_batch(self, rows: torch.Tensor | list[int], enforce_budget: bool = True) -> "CertifiedHead":
        """Remove ``rows`` together by one Newton step on what is left (the gradient ``g`` is
        the sum of the removed rows' ``grad l + lambda w``); the residual bound is the same
        Taylor-remainder bound as for one row (the paper's analysis does not depend on how
        many rows ``g`` sums), so a batch spends one bound instead of one per row but a larger
        one (it grows with the square of the step). Retrains when it would exceed the budget."""
        idx = torch.as_tensor(rows, dtype=torch.long).flatten()
        if len(idx) == 0:
            return self
        if not bool(self.keep[idx].all()) or len(set(idx.tolist())) != len(idx):
            raise ValueError("every row must be in the training data, once.")
        self._newton_step(idx, enforce_budget)
        return self

    def _newton_step(self, idx: torch.Tensor, enforce_budget: bool) -> None:
        """Drop rows ``idx`` and take one Newton step on what is left: ``g`` sums the removed
        rows' ``grad l + lambda w``, ``H_k^-1 g_k`` per class, the data-dependent residual bound
        recorded and spent, or a retraining when it would exceed the budget."""
        self.keep[idx] = False
        xb, yb = self.x[idx], self.y[idx]
        g = xb.T @ ((torch.sigmoid(yb * (xb @ self.w)) - 1.0) * yb) + len(idx) * self.lam * self.w  # (d, K)
        xr, yr = self.x[self.keep], self.y[self.keep]
        step = torch.linalg.solve(hessian(self.w, xr, yr, self.lam), g.T.unsqueeze(-1)).squeeze(-1).T
        bound = GAMMA * float(torch.linalg.matrix_norm(xr, ord=2)) * float((step.norm(dim=0) * (xr @ step).norm(dim=0)).sum())
        self.bounds.append(bound)
        if enforce_budget and self.spent + bound > self.budget:
            self._retrain()
        else:
            self.w = self.w + step
            self.spent += bound

    def _retrain(self) -> None:
        self.b = self.sigma * torch.randn(self.b.shape, dtype=torch.float64, generator=self.generator)
        self.w = fit(self.x[self.keep], self.y[self.keep], self.lam, self.b)
        self.spent, self.retrainings = 0.0, self.retrainings + 1

    def residual(self) -> float:
        """The exact gradient residual ``||grad L_b(w; D')||`` of the released head (summed over
        the K models, like the bound), for tests: it must not exceed :attr:`spent`."""
        g = gradient(self.w, self.x[self.keep], self.y[self.keep], self.lam, self.b)
        return float(g.norm(dim=0).sum())


def train(features: torch.Tensor, labels: torch.Tensor, n_classes: int, epsilon: float, delta: float,
          sigma: float, lam: float = 1e-3, seed: int = 0) -> CertifiedHead:
    """Train a :class:`CertifiedHead`: features normalised, ``b ~ N(0, sigma^2)`` from ``seed``,
    the exact minimiser of the perturbed objective. The certified retrained model is the
    same call on the data without the forget rows (another draw of ``b``)."""
    _check_budget(epsilon, delta)
    if not (lam > 0 and sigma > 0):
        raise ValueError(f"lam and sigma must be positive; got lam={lam!r}, sigma={sigma!r}.")
    x, y = normalise(features), signed_labels(labels, n_classes)
    gen = torch.Generator().manual_seed(int(seed))
    b = sigma * torch.randn(x.shape[1], n_classes, dtype=torch.float64, generator=gen)
    return CertifiedHead(x=x, y=y, lam=float(lam), sigma=float(sigma), epsilon=float(epsilon), delta=float(delta),
                         w=fit(x, y, lam, b), b=b, keep=torch.ones(len(x), dtype=torch.bool), generator=gen)


__all__ = ["GAMMA", "perturbation_scale", "residual_budget", "normalise", "signed_labels", "objective",
           "gradient", "hessian", "fit", "CertifiedHead", "train"]
