"""unlearnlib.ensemble: batched training and unlearning reproduce the per-model code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unlearnlib import methods
from unlearnlib.data import Split
from unlearnlib.ensemble import (
    PATHS,
    Ensemble,
    StackedSGD,
    batched_paths,
    calibrate,
    choose_path,
    fold_plan,
    loop_plan,
    lr_sequence,
    pick_path,
    train_ensemble,
    unlearn_ensemble,
)
from unlearnlib.ensemble import batched_methods as ensemble_batched_methods
from unlearnlib.models import build_model
from unlearnlib.training import Recipe, train

TINY = Recipe(epochs=2, lr=0.05, batch_size=64)


pytestmark = pytest.mark.usefixtures("no_tf32")  # exact comparisons: tests/conftest.py


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
@pytest.mark.parametrize("path", ["vmap", "grouped"])
def test_batched_unlearning_matches_registry(key, hp, path, splits, pool, trained):
    ens, retain, forget = trained
    got = unlearn_ensemble(key, ens, pool, retain, forget, [7, 8], 10, hp, path=path)
    want = _per_model(key, ens, pool, retain, forget, [7, 8], splits, hp)
    assert _max_diff(got, want) < 1e-5
    assert _max_diff(got, ens) > 1e-4  # the method changed the weights


@pytest.mark.parametrize("path", ["vmap", "grouped"])
def test_batched_retrain_matches_registry(path, splits, pool, trained):
    ens, retain, forget = trained
    init = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    got = unlearn_ensemble("retrain", ens, pool, retain, forget, [3, 4], 10, init=init, train_recipe=TINY,
                           path=path)
    want = _per_model("retrain", ens, pool, retain, forget, [3, 4], splits, {}, init=init)
    assert _max_diff(got, want) < 1e-5
    with pytest.raises(ValueError, match="retrain needs"):
        unlearn_ensemble("retrain", ens, pool, retain, forget, [3, 4], 10)


def test_other_methods_fall_back_to_the_registry(splits, pool, trained):
    ens, retain, forget = trained
    hp = {"epochs": 1, "batch_size": 64}
    assert "cfk" not in ensemble_batched_methods()
    got = unlearn_ensemble("cfk", ens, pool, retain, forget, [1, 2], 10, hp, val=splits.val)
    want = _per_model("cfk", ens, pool, retain, forget, [1, 2], splits, hp)
    assert _max_diff(got, want) == 0.0


def test_the_batched_methods_are_read_off_the_registry():
    """Issue 35: the engine's method table is the registry's loss-driven methods, not a list
    written beside it, and the engine restates none of their losses."""
    import unlearnlib.ensemble as ensemble_module
    from unlearnlib.ensemble import REFERENCES, batched_methods

    declared = tuple(k for k in methods.available() if methods.get(k).objective is not None)
    assert {"ft", "ga", "ngplus"} <= set(declared)
    assert batched_methods() == ensemble_module.BATCHED_METHODS == REFERENCES + declared


def test_a_method_declaring_an_objective_runs_batched_untouched_engine(splits, pool, trained, monkeypatch):
    """Adding a method to the many-model engine touches the method only: a new objective (a
    forget-driven one with retain batches cycled beside it, a combination no method had when
    the engine restated losses) runs batched and matches the per-model loop."""
    from unlearnlib.loop import Objective
    from unlearnlib.methods._loop import unlearn_by

    def loss(out, hp):
        return -out.ce("forget") + hp["beta"] * out.ce("retain")

    objective = Objective(loss, reads=("forget", "retain"), driver="forget", schedule="cosine")

    def unlearn(model, data, **hp):
        return unlearn_by(objective, model, data, hp)

    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    methods.register("test_gd_forget", name="test", paper="test", epochs_over="forget", objective=objective,
                     defaults={"epochs": 1, "lr": 0.01, "batch_size": 16, "weight_decay": 5e-4, "beta": 0.5})(unlearn)
    from unlearnlib.ensemble import batched_methods

    assert "test_gd_forget" in batched_methods()
    ens, retain, forget = trained
    got = unlearn_ensemble("test_gd_forget", ens, pool, retain, forget, [7, 8], 10, path="vmap")
    want = _per_model("test_gd_forget", ens, pool, retain, forget, [7, 8], splits, {})
    assert _max_diff(got, want) < 1e-5
    assert _max_diff(got, ens) > 1e-4


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


# --------------------------------------------------------------------------- the grouped (folded) path

#: The registered models that fold: (name, input shape). small_cnn at 16 px also pools after block 2.
FOLDABLE = [("cnn1d", (40,)), ("small_cnn", (1, 8, 8)), ("small_cnn", (1, 16, 16)), ("mlp", (1, 8, 8))]
IDS = ["cnn1d", "small_cnn8", "small_cnn16", "mlp"]


def _cast(ens: Ensemble, dtype: torch.dtype) -> Ensemble:
    return Ensemble(ens.base, {k: v.to(dtype) for k, v in ens.params.items()},
                    {k: v.to(dtype) if v.is_floating_point() else v.clone() for k, v in ens.buffers.items()})


def _synthetic(shape: tuple[int, ...], n: int, seed: int, dtype: torch.dtype = torch.float32) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, *shape, generator=g).to(dtype), torch.randint(0, 10, (n,), generator=g),
                 torch.arange(n))


def _loop_grads(ens: Ensemble, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, dict]:
    """The reference: each model as an ordinary module in train mode, model k on batch k.
    Returns its gradients and its BatchNorm buffers after that forward, stacked over models."""
    grads, bufs = {}, {}
    for k in range(len(ens)):
        m = ens.model(k).train()
        F.cross_entropy(m(x[k]), y[k]).backward()
        for n, p in m.named_parameters():
            grads.setdefault(n, []).append(p.grad)
        for n, b in m.named_buffers():
            bufs.setdefault(n, []).append(b)
    return ({n: torch.stack(v) for n, v in grads.items()}, {n: torch.stack(v) for n, v in bufs.items()})


def _grouped_grads(ens: Ensemble, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, dict]:
    work = ens.clone().requires_grad_(True)
    out = work.forward(x, path="grouped")
    K = len(ens)
    F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(K, -1).mean(1).sum().backward()
    return {n: p.grad for n, p in work.params.items()}, work.buffers


def _rel_err(got: dict, ref: dict) -> float:
    """Worst model's ||got_k - ref_k|| / ||ref_k|| over all its tensors."""
    num = sum((got[n].double() - ref[n].double()).pow(2).flatten(1).sum(1) for n in ref)
    den = sum(ref[n].double().pow(2).flatten(1).sum(1) for n in ref)
    return (num / den).sqrt().max().item()


@pytest.mark.parametrize("name,shape", FOLDABLE, ids=IDS)
def test_grouped_gradients_match_the_per_model_loop(name, shape):
    """fp64: the same function to rounding; fp32: within fp32 rounding of the fp64 loop."""
    K, B = 3, 16
    ens = Ensemble.build(name, shape, 10, [5, 6, 7])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(K, B, *shape, generator=g) * 2 + 1  # a mean offset, as after a ReLU
    y = torch.randint(0, 10, (K, B), generator=g)
    e64 = _cast(ens, torch.float64)
    ref, ref_bufs = _loop_grads(e64, x.double(), y)
    got, got_bufs = _grouped_grads(e64, x.double(), y)
    assert _rel_err(got, ref) < 1e-12
    assert _rel_err(_grouped_grads(ens, x, y)[0], ref) < 1e-5
    for n, b in ref_bufs.items():  # running statistics updated per model, as one train-mode forward does
        torch.testing.assert_close(got_bufs[n], b, rtol=1e-12, atol=1e-12)
    assert all((v == 1).all() for n, v in got_bufs.items() if n.endswith("num_batches_tracked"))
    # each model's gradient is its own: model 1 on model 0's batch changes model 1's gradient
    swapped = _grouped_grads(e64, torch.stack([x[0], x[0], x[2]]).double(), torch.stack([y[0], y[0], y[2]]))[0]
    assert _rel_err({n: v[1:2] for n, v in swapped.items()}, {n: v[1:2] for n, v in ref.items()}) > 1e-3


def _train_both(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[Ensemble, Ensemble, Ensemble, Split]:
    """(grouped, loop, init, data): 3 models, own inits, subsets and data orders; augmentation on images."""
    data = _synthetic(shape, 160, seed=1, dtype=dtype)
    masks = _masks(3, 160, [100, 100, 100], seed=3)
    recipe = Recipe(epochs=2, lr=0.05, batch_size=32, augment=len(shape) == 3)
    init = _cast(Ensemble.build(name, shape, 10, [0, 1, 2]), dtype)
    got, want = init.clone(), init.clone()
    log = train_ensemble(got, data, masks, recipe, [4, 5, 6], path="grouped")
    assert log.paths == {(100,): "grouped"} and log.steps == [8, 8, 8]
    train_ensemble(want, data, masks, recipe, [4, 5, 6], path="loop")
    return got, want, init, data


@pytest.mark.parametrize("name,shape", FOLDABLE, ids=IDS)
def test_grouped_training_matches_the_per_model_loop(name, shape):
    """A full training run: weights, BatchNorm statistics and eval-mode logits match ``training.train``.

    fp64: equal to rounding. fp32: as close to the fp32 loop as rounding allows, where
    that scale is the fp32 loop's own distance from the fp64 run (max-pool ties on the
    zero-padded crops of 16 px images make it 5e-4 there; 1e-7 elsewhere).
    """
    got, want, init, data = _train_both(name, shape, torch.float64)
    assert _max_diff(got, want) < 1e-10
    assert _max_diff(got, init) > 1e-3  # it did train
    if got.buffers:
        bn = next(n for n in got.buffers if n.endswith("running_mean"))
        assert not torch.allclose(got.buffers[bn][0], got.buffers[bn][1])  # per-model statistics
        assert all((v == 8).all() for n, v in got.buffers.items() if n.endswith("num_batches_tracked"))
    # eval mode: each model as its own module in eval mode (running statistics) gives the same logits
    z = got.logits(data.x, path="grouped")
    for k in range(3):
        torch.testing.assert_close(z[k], got.model(k)(data.x), rtol=1e-10, atol=1e-10)
    if got.buffers:  # and they are not the batch-statistics logits
        assert (z - got.forward(data.x, shared=True, train=True, path="grouped")).abs().max() > 1e-3
    got32, want32, _, data32 = _train_both(name, shape, torch.float32)
    rounding = _max_diff(want32, want)
    assert _max_diff(got32, want32) < max(1e-5, 10 * rounding)
    z32 = got32.logits(data32.x, path="grouped")
    for k in range(3):
        torch.testing.assert_close(z32[k], got32.model(k)(data32.x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", ["vmap", "grouped"])
def test_batched_training_adds_the_sd_term(path):
    """Thudi et al.'s SD regulariser in the recipe is trained by the batched paths as by ``train``."""
    data = _synthetic((1, 8, 8), 96, seed=2, dtype=torch.float64)
    masks = _masks(2, 96, [64, 64], seed=4)
    recipe = Recipe(epochs=2, lr=0.05, batch_size=32, sd_lambda=1.0)
    init = _cast(Ensemble.build("mlp", (1, 8, 8), 10, [0, 1]), torch.float64)
    got, want, plain = init.clone(), init.clone(), init.clone()
    train_ensemble(got, data, masks, recipe, [1, 2], path=path)
    train_ensemble(want, data, masks, recipe, [1, 2], path="loop")
    train_ensemble(plain, data, masks, recipe.with_(sd_lambda=0.0), [1, 2], path="loop")
    assert _max_diff(got, want) < 1e-10
    assert _max_diff(got, plain) > 1e-4  # the term changed the training


def test_fold_plan_covers_the_plain_models_only():
    for name, shape in FOLDABLE:
        assert fold_plan(build_model(name, shape, 10)) is not None, name
        assert Ensemble.build(name, shape, 10, [0, 1]).foldable
    resnet = Ensemble.build("resnet18_cifar", (3, 32, 32), 10, [0, 1])
    assert fold_plan(resnet.base) is None and batched_paths(resnet) == ("vmap",)
    with pytest.raises(ValueError, match="does not fold"):
        choose_path("grouped", resnet, torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.long), 100)
    # a leaf with a forward the grouped path does not implement (here Tanh) is refused, not mis-run
    odd = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Tanh())
    assert fold_plan(odd) is None


def test_pick_path_prefers_the_loop_unless_a_batched_path_clearly_wins():
    assert pick_path({"grouped": 1.0, "vmap": 2.0, "loop": 1.1}) == "loop"
    assert pick_path({"grouped": 1.0, "vmap": 2.0, "loop": 1.2}) == "grouped"
    assert pick_path({"grouped": 3.0, "vmap": 1.0, "loop": 2.0}) == "vmap"


def test_calibration_times_every_path_on_copies():
    """Times grouped, vmap and the loop on the same K models and K batches; the ensemble is untouched."""
    ens = Ensemble.build("cnn1d", (40,), 10, [0, 1, 2])
    before = ens.clone()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 16, 40, generator=g), torch.randint(0, 10, (3, 16), generator=g)
    t = calibrate(ens, x, y, n_steps=1)
    assert set(t) == {"grouped", "vmap", "loop"} and all(0 < v < math.inf for v in t.values())
    assert _max_diff(ens, before) == 0.0
    with pytest.raises(ValueError, match="one batch per model"):
        calibrate(ens, x[:2], y[:2])


def test_auto_picks_a_path_that_runs_the_model(splits, pool):
    """On the CPU auto calibrates among the paths this model can run; training by it matches the loop."""
    masks = _masks(2, len(pool), [200, 200], seed=5)
    ens = Ensemble.build("cnn1d", splits.input_shape, 10, [0, 1], splits.device)
    recipe = Recipe(epochs=3, lr=0.05, batch_size=32)  # 21 steps: calibrated
    idx = torch.stack([torch.nonzero(m).squeeze(1)[:32] for m in masks]).to(splits.device)
    chosen = choose_path("auto", ens, pool.x[idx], pool.y[idx], steps=21)
    assert chosen in PATHS[1:] and (chosen == "loop" or chosen in batched_paths(ens))
    ref = ens.clone()
    log = train_ensemble(ens, pool, masks, recipe, [3, 4])
    assert log.paths == {(200,): chosen}  # the cached decision
    train_ensemble(ref, pool, masks, recipe, [3, 4], path="loop")
    assert _max_diff(ens, ref) < 1e-5


def test_grouped_chunk_keeps_one_activation_within_the_budget(monkeypatch):
    """cnn1d's largest layer output is its first conv's, 32 channels x 20 positions per sample."""
    import unlearnlib.ensemble.stack as ensemble_module  # where the budget and the chunk size live

    ens = Ensemble.build("cnn1d", (40,), 10, list(range(5)))
    x = torch.zeros(5, 16, 40)
    act = 16 * 32 * 20 * 4
    assert ensemble_module._largest_activation_bytes(ens, x) == act
    monkeypatch.setattr(ensemble_module, "GROUPED_CHUNK_BYTES", int(2.5 * act))
    assert ensemble_module.grouped_chunk(ens, x) == 2  # at most 2 per chunk: 2 + 2 + 1
    monkeypatch.setattr(ensemble_module, "GROUPED_CHUNK_BYTES", 4 * act)
    assert ensemble_module.grouped_chunk(ens, x) == 3  # at most 4: balanced as 3 + 2
    monkeypatch.setattr(ensemble_module, "GROUPED_CHUNK_BYTES", 1)
    assert ensemble_module.grouped_chunk(ens, x) == 1


def test_grouped_training_in_chunks_matches_the_loop(monkeypatch):
    """Models in chunks (here of 2 and 1) train and predict as in one piece: as the loop does."""
    import unlearnlib.ensemble.stack as stack_module
    import unlearnlib.ensemble.train as train_module

    monkeypatch.setattr(stack_module, "GROUPED_CHUNK_BYTES", 2 * 32 * 32 * 20 * 8)  # two models at batch 32
    sizes = []
    real = train_module._train_batched
    monkeypatch.setattr(train_module, "_train_batched",
                        lambda ens, *a, **k: (sizes.append(len(ens)), real(ens, *a, **k))[1])
    data = _synthetic((40,), 160, seed=1, dtype=torch.float64)
    masks = _masks(3, 160, [100, 100, 100], seed=3)
    recipe = Recipe(epochs=2, lr=0.05, batch_size=32)
    init = _cast(Ensemble.build("cnn1d", (40,), 10, [0, 1, 2]), torch.float64)
    got, want = init.clone(), init.clone()
    train_ensemble(got, data, masks, recipe, [4, 5, 6], path="grouped")
    assert sizes == [2, 1]
    train_ensemble(want, data, masks, recipe, [4, 5, 6], path="loop")
    assert _max_diff(got, want) < 1e-10
    z = got.logits(data.x, batch_size=64)  # auto on the CPU: grouped, in chunks
    for k in range(3):
        torch.testing.assert_close(z[k], got.model(k)(data.x), rtol=1e-10, atol=1e-10)


def test_grouped_fp32_gradients_are_as_accurate_as_the_loop():
    """Many rows per BatchNorm channel (512 x 20): the grouped path's fp32 gradients are as close
    to the fp64 loop as the fp32 loop's own, tensor by tensor (torch's channels-last BatchNorm,
    which sums the rows one by one in fp32, fails this)."""
    K, B = 2, 512
    ens = Ensemble.build("cnn1d", (40,), 10, [0, 1])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(K, B, 40, generator=g) * 2 + 1
    y = torch.randint(0, 10, (K, B), generator=g)
    ref = _loop_grads(_cast(ens, torch.float64), x.double(), y)[0]
    loop32 = _loop_grads(ens, x, y)[0]
    got = _grouped_grads(ens, x, y)[0]
    for n in ref:
        one = {n: ref[n]}
        assert _rel_err({n: got[n]}, one) < 2 * _rel_err({n: loop32[n]}, one) + 1e-7, n
