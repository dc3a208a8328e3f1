"""Certified removal (Guo et al. 2020) on constructed cases: the noise formula, the Newton
step against exact retraining on a strongly convex problem, the residual bound against the
exact residual, and the retraining when the budget is spent."""

from __future__ import annotations

import math

import numpy as np
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


# --------------------------------------------------------------------------- the attacks against the bound

from unlearnlib.certified.bound_check import bound_excess  # noqa: E402


def test_the_bound_check_on_constructed_scores():
    """Identical distributions never violate; separated ones violate beyond sampling error;
    the excess is TPR - (e^eps FPR + delta) at the best threshold."""
    rng = np.random.default_rng(0)
    same = bound_excess(rng.normal(size=400), rng.normal(size=400), epsilon=0.5, delta=1e-5)
    assert not same.violated and same.estimate < 0.1
    apart = bound_excess(rng.normal(3, 1, 400), rng.normal(size=400), epsilon=0.5, delta=1e-5)
    assert apart.violated and apart.direction == ">=" and apart.estimate == pytest.approx(
        apart.tpr - (math.exp(0.5) * apart.fpr + 1e-5))
    flipped = bound_excess(rng.normal(-3, 1, 400), rng.normal(size=400), epsilon=0.5, delta=1e-5)
    assert flipped.violated and flipped.direction == "<="
    with pytest.raises(ValueError, match="at least 2 finite scores"):
        bound_excess([1.0], [0.0, 1.0], 1.0, 1e-5)


def _margins(sigma: float, enforce: bool, n_models: int = 120, eps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The removed point's true-class margin under certified-unlearned heads (train, then
    remove row 0) and certified-retrained heads (the same mechanism without row 0)."""
    x, labels = _data(n=120, d=5)
    x0, y0 = nr.normalise(x[:1]), int(labels[0])
    u, r = [], []
    for s in range(n_models):
        head = nr.train(x, labels, 3, epsilon=eps, delta=1e-5, sigma=sigma, lam=0.05, seed=s).remove(
            [0], enforce_budget=enforce)
        u.append(float((x0 @ head.w)[0, y0]))
        ret = nr.train(x[1:], labels[1:], 3, epsilon=eps, delta=1e-5, sigma=sigma, lam=0.05, seed=10_000 + s)
        r.append(float((x0 @ ret.w)[0, y0]))
    return np.array(u), np.array(r)


def test_an_under_noised_removal_is_caught_and_the_certified_one_is_not():
    """The check can fail: at 1/10,000 of the noise its residual needs, a Newton removal without
    retraining is told from retraining by the removed point's own margin; at the formula's
    noise it is not (beyond sampling error)."""
    x, labels = _data(n=120, d=5)
    probe = nr.train(x, labels, 3, epsilon=1.0, delta=1e-5, sigma=1.0, lam=0.05, seed=0).remove([0])
    sigma = nr.perturbation_scale(1.0, 1e-5, 2 * probe.bounds[0])  # twice the removal's residual bound
    broken = bound_excess(*_margins(sigma / 10_000, enforce=False), epsilon=1.0, delta=1e-5)
    assert broken.violated and broken.estimate > 0.5, broken
    certified = bound_excess(*_margins(sigma, enforce=True), epsilon=1.0, delta=1e-5)
    assert not certified.violated, certified


def test_the_public_extractor_never_sees_the_private_draw_and_its_features_separate_the_classes():
    """Issue 37: the head's features come from a cnn1d trained on another MNIST-1D seed; a
    certified head on them classifies the private (embedded) test set well above chance."""
    from unlearnlib.certified import features
    from unlearnlib.data import load_splits

    with pytest.raises(ValueError, match="embedded \\(private\\) MNIST-1D"):
        features.public_mnist1d(seed=42)
    px, _ = features.public_mnist1d(num_samples=400)
    splits = load_splits("mnist1d", "random:0.1")
    assert not any(torch.equal(px[i], splits.retain.x[j]) for i in range(20) for j in range(200))  # another draw
    ext = features.public_extractor(epochs=6, num_samples=2000)
    f_train, f_test = ext(splits.retain.x), ext(splits.test.x)
    assert f_train.shape[1] == f_test.shape[1] > 10
    head = nr.train(f_train[:1500], splits.retain.y[:1500], 10, epsilon=1.0, delta=1e-5, sigma=0.1, lam=1e-3)
    acc = float((head.logits(f_test).argmax(1) == splits.test.y).float().mean())
    assert acc > 0.5, acc  # chance is 0.1


# --------------------------------------------------------------------------- Descent-to-Delete

from unlearnlib.certified import descent_to_delete as d2d  # noqa: E402


def test_the_d2d_noise_is_the_papers_formula_and_the_iterate_reaches_the_optimum():
    # lambda 0.05, R 20: m 0.05, M 0.3, gamma 5/7, L 2; T 20, n 120, eps 1, delta 1e-5
    g = (5 / 7) ** 20
    gap = math.sqrt(math.log(1e5) + 1) - math.sqrt(math.log(1e5))
    want = 4 * math.sqrt(2) * 2.0 * g / (0.05 * 120 * (1 - g) * gap)
    assert d2d.noise_scale(1.0, 1e-5, 120, 20, 0.05, 20.0) == pytest.approx(want, rel=1e-12)
    assert d2d.noise_scale(1.0, 1e-5, 120, 40, 0.05, 20.0) < want / 100  # more steps per update, less noise
    x, labels = _data(n=120, d=5)
    head = d2d.train(x, labels, 3, epsilon=1.0, delta=1e-5, steps=20, lam=0.05, seed=0)
    assert head.sigma == pytest.approx(math.sqrt(3) * want)  # three one-vs-rest models published together
    exact = nr.fit(head.x, head.y, 0.05, torch.zeros_like(head.secret))  # the same minimiser (sum form)
    assert float((head.secret - exact).norm()) < 1e-6
    head.remove([0])
    exact = nr.fit(head.x[1:], head.y[1:], 0.05, torch.zeros_like(head.secret))
    assert float((head.secret - exact).norm()) < 1e-2 * float(exact.norm())
    with pytest.raises(ValueError, match="epsilon must be positive"):
        d2d.noise_scale(0.0, 1e-5, 120, 20, 0.05, 20.0)


def test_d2d_under_noised_is_caught_and_certified_is_not():
    x, labels = _data(n=120, d=5)
    x0, y0 = nr.normalise(x[:1]), int(labels[0])

    def margins(factor: float) -> tuple[np.ndarray, np.ndarray]:
        u = [float((x0 @ d2d.train(x, labels, 3, 1.0, 1e-5, seed=s, noise_factor=factor).remove([0]).published)[0, y0])
             for s in range(120)]
        r = [float((x0 @ d2d.train(x[1:], labels[1:], 3, 1.0, 1e-5, seed=10_000 + s,
                                   noise_factor=factor).published)[0, y0]) for s in range(120)]
        return np.array(u), np.array(r)

    broken = bound_excess(*margins(1e-6), epsilon=1.0, delta=1e-5)  # a millionth of the noise
    assert broken.violated and broken.estimate > 0.5, broken
    certified = bound_excess(*margins(1.0), epsilon=1.0, delta=1e-5)
    assert not certified.violated, certified


def test_a_batch_removal_is_one_newton_step_within_its_bound():
    x, labels = _data()
    head = nr.train(x, labels, 3, epsilon=1.0, delta=1e-5, sigma=10.0, lam=0.05, seed=3)
    rows = list(range(0, 24))  # 10% of the data at once
    head.remove_batch(rows)
    assert head.retrainings == 0 and len(head.bounds) == 1
    exact = nr.fit(head.x[head.keep], head.y[head.keep], head.lam, head.b)
    assert head.residual() <= head.spent + 1e-6
    assert float((head.w - exact).norm()) <= head.spent / (head.lam * int(head.keep.sum())) + 1e-9
    with pytest.raises(ValueError, match="every row must be in the training data, once"):
        head.remove_batch([0])
