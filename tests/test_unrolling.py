"""Unrolling SGD (Thudi et al. 2022): verification error, proxy, Hessian power iteration,
SD regulariser and single-gradient unlearning, each pinned on a case with a known answer."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlib import methods
from unlearnlib.data import Split, index_batches
from unlearnlib.evaluation.verification import (
    proxy_for,
    top_hessian_eigenvalue,
    unlearning_error_proxy,
    verification_error,
    weight_distance,
)
from unlearnlib.methods import UnlearnData
from unlearnlib.methods.sgu import mean_schedule_lr, single_gradient_unlearn
from unlearnlib.models import build_model
from unlearnlib.store import Store
from unlearnlib.studies.unrolling import unrolled_models
from unlearnlib.training import Recipe, sd_lambda_at, sd_loss, train

PLAIN_SGD = dict(momentum=0.0, weight_decay=0.0, schedule="constant")


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


class _Quadratic(nn.Module):
    """Output = its parameter w, whatever the input: with loss 0.5 w^T A w, H = A."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w


# --------------------------------------------------------------------------- distances


def test_verification_error_zero_for_identical_models_and_ignores_buffers(splits):
    a = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0)
    b = copy.deepcopy(a)
    for m in b.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.add_(7.0)  # buffers are excluded
    assert verification_error(a, b) == 0.0
    with torch.no_grad():
        p = next(b.parameters())
        p.view(-1)[0] += 3.0
        p.view(-1)[1] += 4.0
    assert verification_error(a, b) == pytest.approx(5.0, rel=1e-6)
    assert weight_distance(b, a.state_dict()) == pytest.approx(5.0, rel=1e-6)


# --------------------------------------------------------------------------- SD regulariser


def test_sd_loss_hand_values():
    # stds (unbiased) across classes: [1, 2, 3] -> 1, [0, 0, 0] -> 0; B * C = 6
    assert float(sd_loss(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))) == pytest.approx(1 / 6)
    # [1, 3] -> sqrt(2), [2, 2] -> 0; B * C = 4
    assert float(sd_loss(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))) == pytest.approx(math.sqrt(2) / 4)
    with pytest.raises(ValueError, match="batch, classes"):
        sd_loss(torch.ones(3))


def test_sd_lambda_decays_every_ten_epochs():
    assert [sd_lambda_at(1.0, 2.0, e) for e in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert sd_lambda_at(0.3, 1.0, 50) == 0.3
    with pytest.raises(ValueError, match="sd_decay must be > 0"):
        sd_lambda_at(1.0, 0.0, 3)


def test_recipe_sd_fields_validate_and_keep_cache_keys():
    r = Recipe(epochs=2, lr=0.1)
    assert "sd_lambda" not in r.as_dict() and "sd_decay" not in r.as_dict()
    assert r.with_(sd_lambda=0.5).as_dict()["sd_lambda"] == 0.5
    with pytest.raises(ValueError, match="sd_lambda >= 0"):
        Recipe(epochs=2, lr=0.1, sd_lambda=-1.0)
    with pytest.raises(ValueError, match="sd_decay > 0"):
        Recipe(epochs=2, lr=0.1, sd_decay=0.0)


def test_sd_lambda_zero_is_plain_cross_entropy_sgd(splits):
    """train() with the default sd_lambda matches a hand-written CE + SGD loop exactly."""
    data = splits.train.subset(torch.arange(512))
    recipe = Recipe(epochs=2, lr=0.05, batch_size=64, **PLAIN_SGD)
    init = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=1).to(data.x.device)
    ours = copy.deepcopy(init)
    train(ours, data, recipe, seed=3, show_progress=False)

    ref = copy.deepcopy(init).train()
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(3)
    for _ in range(recipe.epochs):
        for idx in index_batches(len(data), recipe.batch_size, gen):
            idx = idx.to(data.x.device)
            loss = F.cross_entropy(ref(data.x[idx]), data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values(), strict=True))


def test_sd_regulariser_lowers_logit_std(splits):
    data = splits.train.subset(torch.arange(1024))
    init = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0).to(data.x.device)
    stds = {}
    for lam in (0.0, 2.0):
        m = copy.deepcopy(init)
        train(m, data, Recipe(epochs=3, lr=0.05, batch_size=128, sd_lambda=lam, **PLAIN_SGD), 0, False)
        with torch.no_grad():
            stds[lam] = float(m(data.x).std(dim=1).mean())
    assert stds[2.0] < stds[0.0]


# --------------------------------------------------------------------------- Hessian and proxy


def test_power_iteration_linear_regression_matches_exact_eigenvalue():
    torch.manual_seed(0)
    x = torch.randn(50, 6, dtype=torch.float64) * torch.tensor([3.0, 1, 1, 0.5, 0.5, 0.2], dtype=torch.float64)
    y = torch.randn(50, dtype=torch.float64)
    model = nn.Linear(6, 1, bias=False).double()
    exact = float(torch.linalg.eigvalsh(x.T @ x / len(x)).max())  # H of 0.5 * mean squared error
    pi = top_hessian_eigenvalue(model, x, y, _mse, tol=1e-10, max_iter=500)
    assert pi.converged
    assert pi.eigenvalue == pytest.approx(exact, rel=1e-6)
    assert pi.sigma == pytest.approx(math.sqrt(exact), rel=1e-6)
    capped = top_hessian_eigenvalue(model, x, y, _mse, tol=1e-12, max_iter=2)
    assert not capped.converged and capped.iterations == 2


def test_power_iteration_finds_largest_magnitude_of_indefinite_quadratic():
    torch.manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([-5.0, 3.0, 1.0, 0.5], dtype=torch.float64)) @ q.T
    pi = top_hessian_eigenvalue(_Quadratic(4), torch.zeros(1), torch.zeros(1),
                                lambda w, _: 0.5 * w @ a @ w, tol=1e-10, max_iter=1000)
    assert pi.eigenvalue == pytest.approx(-5.0, rel=1e-6)
    assert pi.sigma == pytest.approx(math.sqrt(5.0), rel=1e-6)


def test_power_iteration_restores_batchnorm_buffers(splits):
    model = build_model("cnn1d", splits.input_shape, splits.num_classes, seed=0).to(splits.device)
    before = copy.deepcopy(model.state_dict())
    pi = top_hessian_eigenvalue(model, splits.forget.x[:64], splits.forget.y[:64], max_iter=5)
    assert pi.iterations >= 1 and math.isfinite(pi.eigenvalue)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_proxy_hand_value_on_tiny_linear_model():
    # 0.5 * mean squared error on X = [[2, 0], [0, 1]]: H = X^T X / 2 = diag(2, 0.5)
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, -1.0], dtype=torch.float64)
    model = nn.Linear(2, 1, bias=False).double()
    init = {"weight": torch.zeros(1, 2, dtype=torch.float64)}
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))  # ||w_t - w_0|| = 5
    p = proxy_for(model, init, x, y, lr=0.1, steps=10, loss_fn=_mse, tol=1e-12, max_iter=200)
    # e = 0.1^2 * 10 * 0.5 * 5 * sqrt(2)
    assert p.distance == pytest.approx(5.0)
    assert p.eigenvalue == pytest.approx(2.0, rel=1e-8)
    assert p.proxy == pytest.approx(0.25 * math.sqrt(2), rel=1e-8)
    assert unlearning_error_proxy(0.2, 3, 2.0, 4.0) == pytest.approx(0.04 * 3 * 0.5 * 2 * 4)
    with pytest.raises(ValueError, match=">= 0"):
        unlearning_error_proxy(-0.1, 3, 2.0, 4.0)


# --------------------------------------------------------------------------- single-gradient unlearning


def _orthogonal_case(seed: int = 0):
    """12 rows, batch 4, one epoch of plain SGD on a bias-free linear model. The rows of
    the first batch live on features 0-1 and all others on features 2-3, so skipping the
    first step leaves every later logit (and gradient) unchanged: retraining without
    that batch differs from the original run by exactly lr * grad L(w_0; x*)."""
    n, b = 12, 4
    first = next(index_batches(n, b, torch.Generator().manual_seed(seed)))
    g = torch.Generator().manual_seed(42)
    x = torch.zeros(n, 4, dtype=torch.float64)
    is_first = torch.zeros(n, dtype=torch.bool)
    is_first[first] = True
    x[is_first, :2] = torch.randn(b, 2, generator=g, dtype=torch.float64)
    x[~is_first, 2:] = torch.randn(n - b, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    data = Split(x, y, torch.arange(n))
    recipe = Recipe(epochs=1, lr=0.5, batch_size=b, **PLAIN_SGD)
    init = nn.Linear(4, 3, bias=False).double()
    return data, recipe, init, is_first, seed


def test_sgu_recovers_retrained_weights_exactly_when_first_order_is_exact():
    data, recipe, init, is_first, seed = _orthogonal_case()
    original, retrained = copy.deepcopy(init), copy.deepcopy(init)
    log = train(original, data, recipe, seed, show_progress=False, record_order=True)
    train(retrained, data, recipe, seed, show_progress=False, skip_batches={0})
    assert torch.equal(torch.sort(log.batch_order[0]).values, torch.nonzero(is_first).squeeze(1))

    forget, retain = data.subset(torch.nonzero(is_first).squeeze(1)), data.subset(torch.nonzero(~is_first).squeeze(1))
    ud = UnlearnData(retain, forget, retain, num_classes=3, seed=0, init_state=init.state_dict(),
                     train_recipe=recipe)
    unlearned = methods.get("sgu")(original, ud)
    assert verification_error(original, retrained) > 1e-2
    assert verification_error(unlearned, retrained) < 1e-12
    # scale = 0 is the identity
    assert verification_error(methods.get("sgu")(original, ud, scale=0.0), original) == 0.0


def test_sgu_step_and_errors(splits, refs):
    assert mean_schedule_lr(Recipe(epochs=3, lr=0.2, batch_size=10, schedule="constant"), 95) == pytest.approx(0.2)
    # cosine mean over N steps: 0.5 + 0.5 / N (sum_{s<N} cos(pi s / N) = 1)
    n_steps = 3 * 10
    assert mean_schedule_lr(Recipe(epochs=3, lr=0.2, batch_size=10), 95) == pytest.approx(
        0.2 * (0.5 + 0.5 / n_steps))
    sgu = methods.get("sgu")
    assert "sgu" in methods.available() and sgu.search_space["scale"].high == 2.0
    with pytest.raises(ValueError, match="init_state"):
        sgu(refs.original, UnlearnData.from_splits(splits))
    ud = UnlearnData.from_splits(splits, init_state=refs.init_state, train_recipe=refs.recipe)
    a, b = sgu(refs.original, ud), sgu(refs.original, ud, scale=2.0)
    d1, d2 = verification_error(a, refs.original), verification_error(b, refs.original)
    assert d1 > 0 and d2 == pytest.approx(2 * d1, rel=1e-4)  # the update is linear in scale
    assert torch.equal(a.state_dict()["blocks.1.1.running_mean"],
                       refs.original.state_dict()["blocks.1.1.running_mean"])


def test_single_gradient_unlearn_leaves_init_untouched():
    data, recipe, init, is_first, _ = _orthogonal_case()
    state = copy.deepcopy(init.state_dict())
    model = copy.deepcopy(init)
    single_gradient_unlearn(model, state, data.x[is_first], data.y[is_first], step=0.1, batch_size=4)
    assert torch.equal(init.weight, state["weight"]) and not torch.equal(model.weight, state["weight"])


# --------------------------------------------------------------------------- unrolled runs


def test_unrolled_models_replay_minus_one_batch_and_cache(splits, tmp_path):
    store = Store(tmp_path)
    recipe = Recipe(epochs=1, lr=0.005, batch_size=128, **PLAIN_SGD)  # small lr: first order is good
    run = unrolled_models(splits, "cnn1d", recipe, seed=0, forget_step=0, store=store)
    assert len(run.forgotten) == 128 and run.steps == math.ceil(len(splits.train) / 128)
    assert verification_error(run.original, run.retrained) > 0
    # single-gradient unlearning of that batch (seen once, at w_0) moves toward the replay
    x, y = splits.train.x[run.forgotten], splits.train.y[run.forgotten]
    unlearned = single_gradient_unlearn(copy.deepcopy(run.original), run.init_state, x, y,
                                        recipe.lr / recipe.batch_size, recipe.batch_size)
    assert verification_error(unlearned, run.retrained) < verification_error(run.original, run.retrained)
    misses = store.misses
    again = unrolled_models(splits, "cnn1d", recipe, seed=0, forget_step=0, store=store)
    assert store.misses == misses and torch.equal(again.forgotten, run.forgotten)
    with pytest.raises(ValueError, match="forget_step must be in"):
        unrolled_models(splits, "cnn1d", recipe, seed=0, forget_step=10_000, store=store)
