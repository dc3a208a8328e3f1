"""Certified removal (Guo et al. 2020) on constructed cases: the noise formula, the Newton
step against exact retraining on a strongly convex problem, the residual bound against the
exact residual, and the retraining when the budget is spent."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnlib.certified import newton_removal as nr


def _data(n: int = 240, d: int = 6, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(k, d, generator=g)
    labels = torch.randint(0, k, (n,), generator=g)
    return centres[labels] + torch.randn(n, d, generator=g), labels


def test_the_perturbation_scale_is_the_papers_formula():
    # c = sqrt(2 ln(1.5 / delta)); delta = 1e-5: c = sqrt(2 ln 150000) = 4.8823...
    c = math.sqrt(2 * math.log(150000.0))
    assert nr.perturbation_scale(1.0, 1e-5, 0.1) == pytest.approx(0.1 * c, rel=1e-12)
    assert nr.perturbation_scale(2.0, 1e-5, 0.1) == pytest.approx(0.05 * c, rel=1e-12)  # half the noise at 2 eps
    assert nr.residual_budget(1.0, 1e-5, nr.perturbation_scale(1.0, 1e-5, 0.37)) == pytest.approx(0.37)
    for bad in ({"epsilon": 0.0}, {"epsilon": math.inf}, {"delta": 1.0}, {"delta": 0.0}):
        with pytest.raises(ValueError, match="epsilon must|delta must"):
            nr.perturbation_scale(**{"epsilon": 1.0, "delta": 1e-5, **bad}, residual=0.1)


def test_the_gradient_and_hessian_are_the_objectives():
    x, labels = _data(n=30, d=4)
    x, y = nr.normalise(x), nr.signed_labels(labels, 3)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, dtype=torch.float64)
    (auto,) = torch.autograd.grad(nr.objective(w, x, y, 0.01, b), w)
    torch.testing.assert_close(nr.gradient(w.detach(), x, y, 0.01, b), auto)
    h = torch.autograd.functional.hessian(lambda v: nr.objective(v.reshape(4, 3), x, y, 0.01, b), w.detach().reshape(-1))
    blocks = nr.hessian(w.detach(), x, y, 0.01)
    for k in range(3):  # the K binary models are independent: block-diagonal in class-major order
        idx = torch.arange(4) * 3 + k
        torch.testing.assert_close(blocks[k], h[idx][:, idx])


def test_newton_removal_matches_retraining_within_its_residual_bound():
    """On a strongly convex problem the Newton head's exact gradient residual stays below the
    accumulated data-dependent bound, and its distance to exact retraining (the same b) below
    residual / (lambda n'), the strong-convexity bound; the bound is not vacuous."""
    x, labels = _data()
    head = nr.train(x, labels, 3, epsilon=1.0, delta=1e-5, sigma=1.0, lam=0.05, seed=1)
    assert head.residual() < 1e-6  # the exact minimiser the proof assumes
    head.remove([3, 17, 40, 41, 99])
    assert head.retrainings == 0 and len(head.bounds) == 5
    exact = nr.fit(head.x[head.keep], head.y[head.keep], head.lam, head.b)
    residual, n_left = head.residual(), int(head.keep.sum())
    assert residual <= head.spent + 1e-6
    assert 0 < head.spent < head.budget  # 5 of 240 points: within the budget, no retraining
    assert residual > 1e-4 * head.spent  # the bound has the residual's order, not far above it
    for k in range(3):
        assert float((head.w[:, k] - exact[:, k]).norm()) <= head.spent / (head.lam * n_left) + 1e-9
    gap = float((head.w - exact).norm())
    assert gap < 1e-2 * float(exact.norm())  # close to retraining, and not trivially: the step moved it
    before = nr.train(x, labels, 3, epsilon=1.0, delta=1e-5, sigma=1.0, lam=0.05, seed=1).w
    assert float((head.w - before).norm()) > 10 * gap


def test_a_spent_budget_retrains_from_scratch_with_fresh_noise():
    x, labels = _data()
    head = nr.train(x, labels, 3, epsilon=1.0, delta=1e-5, sigma=1e-4, lam=0.05, seed=2)  # a tiny budget
    b0 = head.b.clone()
    head.remove([0, 1, 2])
    assert head.retrainings >= 1 and not torch.equal(head.b, b0)
    assert head.residual() <= head.spent + 1e-6 and head.spent <= head.budget
    with pytest.raises(ValueError, match="row 1 is not in the training data"):
        head.remove([1])
