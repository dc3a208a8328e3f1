"""unlearnlib.ensemble: batched training and unlearning reproduce the per-model code."""

from __future__ import annotations

import pytest
import torch

from unlearnlib import methods
from unlearnlib.ensemble import (
    Ensemble,
    StackedSGD,
    choose_path,
    loop_plan,
    lr_sequence,
    train_ensemble,
    unlearn_ensemble,
)
from unlearnlib.training import Recipe, train

TINY = Recipe(epochs=2, lr=0.05, batch_size=64)


@pytest.fixture(autouse=True)
def no_tf32():
    """Exact comparisons on CUDA: TF32 convolutions would differ between paths."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture(scope="module")
def pool(splits):
    return splits.train.subset(torch.arange(400))


def _masks(k: int, n: int, sizes: list[int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(k, n, dtype=torch.bool)
    for i, s in enumerate(sizes):
        m[i, torch.randperm(n, generator=g)[:s]] = True
    return m


def _max_diff(a: Ensemble, b: Ensemble) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


def test_stacked_sgd_matches_torch_sgd():
    p = torch.randn(1, 5, requires_grad=True)
    q = p.detach()[0].clone().requires_grad_(True)
    ours = StackedSGD({"w": p}, momentum=0.9, weight_decay=5e-4)
    ref = torch.optim.SGD([q], lr=0.1, momentum=0.9, weight_decay=5e-4)
    for step in range(3):
        g = torch.randn(5)
        p.grad, q.grad = g[None].clone(), g.clone()
        ours.step(0.1 / (step + 1))
        for group in ref.param_groups:
            group["lr"] = 0.1 / (step + 1)
        ref.step()
    torch.testing.assert_close(p.detach()[0], q.detach(), rtol=0, atol=1e-7)


def test_lr_sequence_is_the_training_schedule():
    lrs = lr_sequence(0.1, "cosine", 10)
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < 0.01 and len(lrs) == 10
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_train_vmap_reproduces_per_model_train(splits, pool):
    """K=2, own inits, own subsets, own batch orders: weights and BatchNorm statistics match."""
    masks = _masks(2, len(pool), [200, 200])
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [3, 4], splits.device)
    log = train_ensemble(ens, pool, masks, TINY, [10, 11], path="vmap")
    assert log.paths == {(200,): "vmap"} and log.steps == [8, 8]
    ref = Ensemble.build("cnn1d", splits.input_shape, 10, [3, 4], splits.device)
    for k in range(2):  # the reference: training.train on each model
        m = ref.model(k)
        train(m, pool.subset(torch.nonzero(masks[k]).squeeze(1)), TINY, [10, 11][k], show_progress=False)
        ref.assign([k], Ensemble.from_models([m]))
    assert _max_diff(ens, ref) < 1e-5
    untrained = Ensemble.build("cnn1d", splits.input_shape, 10, [3, 4], splits.device)
    assert _max_diff(ens, untrained) > 1e-3  # it did train
    bn = "blocks.1.1.running_mean"
    assert not torch.allclose(ens.buffers[bn][0], ens.buffers[bn][1])  # per-model statistics


def test_unequal_subsets_are_grouped(splits, pool):
    masks = _masks(3, len(pool), [150, 200, 150], seed=1)
    outs = []
    for path in ("vmap", "loop"):
        ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1, 2], splits.device)
        log = train_ensemble(ens, pool, masks, TINY, [5, 6, 7], path=path)
        outs.append(ens)
    assert set(log.paths) == {(150,), (200,)}
    assert _max_diff(*outs) < 1e-5


def test_ensemble_logits_match_single_models(splits, pool):
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    z = ens.logits(pool.x)
    assert z.shape == (2, len(pool), 10)
    torch.testing.assert_close(z[1], ens.model(1)(pool.x), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def trained(splits, pool):
    masks = _masks(2, len(pool), [240, 240], seed=2)
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    train_ensemble(ens, pool, masks, TINY, [0, 1], path="loop")
    forget = torch.zeros_like(masks)
    for k in range(2):
        forget[k, torch.nonzero(masks[k]).squeeze(1)[:40]] = True
    return ens, masks & ~forget, forget


def _per_model(key, ens, pool, retain, forget, seeds, splits, hp, init=None):
    out = []
    for k in range(len(ens)):
        data = methods.UnlearnData(
            pool.subset(torch.nonzero(retain[k]).squeeze(1)), pool.subset(torch.nonzero(forget[k]).squeeze(1)),
            splits.val, 10, seed=seeds[k], init_state=init.model_state(k) if init else None, train_recipe=TINY)
        out.append(methods.get(key)(ens.model(k), data, **hp))
    return Ensemble.from_models(out)


@pytest.mark.parametrize("key,hp", [
    ("ft", {"epochs": 2, "batch_size": 64}),
    ("ga", {"epochs": 2, "batch_size": 16}),
    ("ngplus", {"epochs": 1, "batch_size": 64, "lam": 0.1}),
])
def test_batched_unlearning_matches_registry(key, hp, splits, pool, trained):
    ens, retain, forget = trained
    got = unlearn_ensemble(key, ens, pool, retain, forget, [7, 8], 10, hp, path="vmap")
    want = _per_model(key, ens, pool, retain, forget, [7, 8], splits, hp)
    assert _max_diff(got, want) < 1e-5
    assert _max_diff(got, ens) > 1e-4  # the method changed the weights


def test_batched_retrain_matches_registry(splits, pool, trained):
    ens, retain, forget = trained
    init = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    got = unlearn_ensemble("retrain", ens, pool, retain, forget, [3, 4], 10, init=init, train_recipe=TINY,
                           path="vmap")
    want = _per_model("retrain", ens, pool, retain, forget, [3, 4], splits, {}, init=init)
    assert _max_diff(got, want) < 1e-5
    with pytest.raises(ValueError, match="retrain needs"):
        unlearn_ensemble("retrain", ens, pool, retain, forget, [3, 4], 10)


def test_other_methods_fall_back_to_the_registry(splits, pool, trained):
    ens, retain, forget = trained
    hp = {"epochs": 1, "batch_size": 64}
    got = unlearn_ensemble("srl", ens, pool, retain, forget, [1, 2], 10, hp, val=splits.val)
    want = _per_model("srl", ens, pool, retain, forget, [1, 2], splits, hp)
    assert _max_diff(got, want) == 0.0


def test_loop_plan_replays_run_loop_batches():
    plan = loop_plan(10, 3, epochs=1.5, batch_size=4, seed=0)
    assert len(plan) == 5  # ceil(1.5 * ceil(10 / 4))
    assert all(side is not None and len(side) <= 3 for _, side in plan)
    first_epoch = torch.cat([d for d, _ in plan[:3]])
    assert sorted(first_epoch.tolist()) == list(range(10))


def test_bad_input_fails_early(splits, pool):
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    with pytest.raises(ValueError, match="shape"):
        train_ensemble(ens, pool, torch.ones(3, len(pool), dtype=torch.bool), TINY, [0, 1, 2])
    with pytest.raises(ValueError, match="one data-order seed"):
        train_ensemble(ens, pool, torch.ones(2, len(pool), dtype=torch.bool), TINY, [0])
    with pytest.raises(ValueError, match="Unknown path"):
        choose_path("fast", ens, pool.x[:4], pool.y[:4], 100)
    with pytest.raises(ValueError, match="both a model's retain and forget"):
        m = torch.ones(2, len(pool), dtype=torch.bool)
        unlearn_ensemble("ft", ens, pool, m, m, [0, 1], 10)


def test_auto_path_on_cpu_is_loop_for_tiny_runs(splits, pool):
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    expected = "vmap" if splits.device.type == "cuda" else "loop"
    assert choose_path("auto", ens, pool.x[:8], pool.y[:8], steps=5) == expected
