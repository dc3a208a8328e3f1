import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlib import methods
from unlearnlib.evaluation import accuracy, per_sample_loss
from unlearnlib.methods import Float, UnlearnData, register
from unlearnlib.methods._loop import LoopConfig, run_loop


def _data(splits, refs, **kw):
    return UnlearnData.from_splits(
        splits, seed=0, model_name="cnn1d", init_state=refs.init_state, train_recipe=refs.recipe, **kw
    )


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_registry_contract():
    keys = methods.available()
    assert keys[:2] == ["original", "retrain"]
    assert {"ft", "ga", "srl", "ngplus"} <= set(keys)
    ga = methods.get("ga")
    assert ga.defaults["lr"] == 0.01 and ga.defaults["epochs"] == 10
    assert set(ga.search_space) <= set(ga.defaults)
    assert ga.space(train_epochs=40)["epochs"].high == 8  # ceil(0.2 * 40)
    with pytest.raises(ValueError, match="allowed: original, retrain"):
        methods.get("nope")
    with pytest.raises(ValueError, match="no hyperparameter.*momentum_typo.*allowed: epochs"):
        ga.resolve_hparams({"momentum_typo": 1})


def test_search_space_must_name_used_hyperparameters():
    with pytest.raises(ValueError, match="no default"):
        register("bogus", "Bogus", "-", defaults={"lr": 0.1}, search_space={"tau": Float(0, 5)})(
            lambda model, data, lr: model)


def test_ga_raises_forget_loss_and_lowers_forget_accuracy(splits, refs):
    data = _data(splits, refs)
    out = methods.get("ga")(refs.original, data, epochs=10, lr=0.02)
    assert per_sample_loss(out, splits.forget).mean() > 2 * per_sample_loss(refs.original, splits.forget).mean()
    assert accuracy(out, splits.forget) < accuracy(refs.original, splits.forget) - 0.05


# Retain-accuracy floors (chance is 0.1). ft and ngplus keep about 0.985 (the original: 0.98);
# SRL's random labels on the forget set cost retain accuracy: 0.834 and 0.853 measured on one
# machine's AVX512 and AVX2 kernel paths, so a floor of 0.85 failed on one CPU and passed on another.
RETAIN_FLOOR = {"ft": 0.95, "srl": 0.75, "ngplus": 0.95}


@pytest.mark.parametrize("key", ["ft", "srl", "ngplus"])
def test_loss_methods_raise_forget_loss_keep_retain(key, splits, refs):
    data = _data(splits, refs)
    out = methods.get(key)(refs.original, data, epochs=3)
    assert per_sample_loss(out, splits.forget).mean() > per_sample_loss(refs.original, splits.forget).mean()
    assert accuracy(out, splits.retain) > RETAIN_FLOOR[key]


@pytest.mark.parametrize("key", ["ft", "ga", "srl", "ngplus"])
def test_caller_model_untouched_and_seed_determinism(key, splits, refs):
    before = {k: v.clone() for k, v in refs.original.state_dict().items()}
    data = _data(splits, refs)
    a = methods.get(key)(refs.original, data, epochs=1)
    b = methods.get(key)(refs.original, data, epochs=1)
    assert all(torch.equal(before[k], v) for k, v in refs.original.state_dict().items())
    assert _same_weights(a, b)
    assert not _same_weights(a, refs.original)
    c = methods.get(key)(refs.original, UnlearnData.from_splits(splits, seed=1), epochs=1)
    assert not _same_weights(a, c)  # another seed, another batch order


def _loop_configs(module, monkeypatch) -> list[LoopConfig]:
    """Record every LoopConfig ``module`` passes to the shared loop."""
    seen: list[LoopConfig] = []
    real = module.run_loop

    def spy(model, retain, forget, loss_fn, cfg, seed, **kw):
        seen.append(cfg)
        return real(model, retain, forget, loss_fn, cfg, seed, **kw)

    monkeypatch.setattr(module, "run_loop", spy)
    return seen


def test_srl_keeps_a_constant_learning_rate(splits, refs, monkeypatch):
    """Deep Unlearn's SRL builds a scheduler and discards it: SGD at a constant lr."""
    import unlearnlib.loop as loop_module  # srl declares its loss as data (issue 36)
    from unlearnlib.methods import srl

    assert methods.get("srl").objective is srl.OBJECTIVE
    seen = _loop_configs(loop_module, monkeypatch)
    methods.get("srl")(refs.original, _data(splits, refs), epochs=1)
    assert [(c.schedule, c.momentum, c.lr, c.driver) for c in seen] == [("constant", 0.9, 0.1, "union")]


def test_ngplus_follows_deep_unlearn(splits, refs, monkeypatch):
    """Optimiser weight decay 0, proximal weight 0 and not searched, alpha searched; BatchNorm
    mode an explicit choice with train mode by default (METHODS.md "do better")."""
    from unlearnlib.methods import ngplus

    m = methods.get("ngplus")
    assert (m.defaults["weight_decay"], m.defaults["lam"], m.defaults["alpha"]) == (0.0, 0.0, 0.95)
    assert (m.defaults["lr"], m.defaults["epochs"], m.defaults["batch_size"]) == (0.01, 10, 256)
    assert "lam" not in m.search_space and "alpha" in m.search_space
    assert m.defaults["bn_mode"] == "train"
    import unlearnlib.loop as loop_module  # ngplus declares its loss as data; the engine's loop runs it

    assert m.objective is ngplus.OBJECTIVE
    seen = _loop_configs(loop_module, monkeypatch)
    m(refs.original, _data(splits, refs), epochs=1)
    assert [(c.weight_decay, c.momentum, c.schedule, c.bn_mode) for c in seen] == [(0.0, 0.9, "constant", "train")]


def test_retrain_follows_the_protocol(splits, refs):
    """retrain = same init, same recipe and data-order seed, D_r only: the cached gold model."""
    out = methods.get("retrain")(refs.original, _data(splits, refs))
    assert _same_weights(out, refs.retrained)
    assert accuracy(out, splits.forget) < accuracy(refs.original, splits.forget)
    with pytest.raises(ValueError, match="init_state"):
        methods.get("retrain")(refs.original, UnlearnData.from_splits(splits))


def test_original_is_identity(splits, refs):
    assert _same_weights(methods.get("original")(refs.original, _data(splits, refs)), refs.original)


def test_loop_budget_stops_where_it_says(splits, refs):
    model = methods.get("original")(refs.original, _data(splits, refs))
    cfg = LoopConfig(epochs=5, lr=0.01, batch_size=64, driver="retain", use_forget=True)
    log = run_loop(model, splits.retain, splits.forget, lambda m, f, r: m(r.x).sum() * 0 + m(f.x).sum() * 0,
                   cfg, seed=0, max_sample_grads=1000)
    # each step sees a retain batch and a forget batch: at most 128 per-sample gradients
    assert log.stopped_by_budget and 1000 - 128 < log.sample_grads <= 1000
    assert log.steps >= 1000 // 128


def test_loop_keep_fixed_and_grad_scale(splits, refs):
    model = methods.get("original")(refs.original, _data(splits, refs))
    name, p = next((n, q) for n, q in model.named_parameters() if q.dim() > 1)
    mask = torch.zeros_like(p, dtype=torch.bool)
    mask.view(-1)[::2] = True
    before = p.detach().clone()
    cfg = LoopConfig(epochs=1, lr=0.1, batch_size=128, weight_decay=0.1, driver="retain")
    import torch.nn.functional as F
    run_loop(model, splits.retain, splits.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y), cfg, 0,
             keep_fixed={name: mask})
    after = dict(model.named_parameters())[name].detach()
    assert torch.equal(after[mask], before[mask])  # weight decay and momentum included
    assert not torch.equal(after[~mask], before[~mask])
    model2 = methods.get("original")(refs.original, _data(splits, refs))
    run_loop(model2, splits.retain, splits.forget, lambda m, f, r: F.cross_entropy(m(r.x), r.y),
             LoopConfig(epochs=1, lr=0.1, batch_size=128, momentum=0.0), 0,
             grad_scale={name: torch.zeros_like(p)})
    assert torch.equal(dict(model2.named_parameters())[name].detach(), before)


def _old_ngplus(alpha, lam, theta0):
    """ngplus's loss as its module wrote it before it was declared as data."""
    def loss(m, f, r):
        retain_term = F.cross_entropy(m(r.x), r.y)
        if lam:
            retain_term = retain_term + lam / 2 * sum(
                (p - p0).pow(2).sum() for p, p0 in zip(m.parameters(), theta0, strict=True))
        return alpha * retain_term - (1 - alpha) * F.cross_entropy(m(f.x), f.y)
    return loss


@pytest.mark.parametrize("key,hp,old", [
    ("ft", {"bn_mode": "train"}, lambda t: (lambda m, f, r: F.cross_entropy(m(r.x), r.y))),
    ("ga", {"bn_mode": "eval"}, lambda t: (lambda m, f, r: -F.cross_entropy(m(f.x), f.y))),
    ("ngplus", {"lam": 0.1}, lambda t: _old_ngplus(0.95, 0.1, t)),
])
def test_declared_objectives_run_as_the_handwritten_loops(key, hp, old, splits, refs):
    """Issue 35: ft, ga and ngplus declare their loss once as data (an Objective: loss,
    streams, driver, schedule); run through the loop it gives the very bits the modules'
    hand-written loss functions and LoopConfigs gave."""
    from unlearnlib.loop import run_objective

    m = methods.get(key)
    hp = m.resolve_hparams({"epochs": 1, "batch_size": 128, **hp})
    obj = m.objective
    cfg = obj.config(hp)
    assert (cfg.driver, cfg.schedule, cfg.momentum, cfg.lr) == (obj.driver, obj.schedule, 0.9, hp["lr"])
    assert cfg.use_forget == (key == "ngplus") and not cfg.use_retain
    a, b = copy.deepcopy(refs.original), copy.deepcopy(refs.original)
    run_objective(a, splits.retain, splits.forget, obj, hp, 3)
    theta0 = [p.detach().clone() for p in b.parameters()]
    run_loop(b, splits.retain, splits.forget, old(theta0), cfg, 3)
    assert _same_weights(a, b)


def test_batch_plan_is_the_loops_lazy_draw_order():
    """One plan for the loop and the engine: the driver's randperm per epoch, the side set's
    batches cycled beside it, drawn from one generator in that order; a partial last epoch."""
    from unlearnlib.data import index_batches
    from unlearnlib.loop import batch_plan

    gen = torch.Generator().manual_seed(5)

    def cycle():
        while True:
            yield from index_batches(7, 3, gen)

    side, want = cycle(), []
    for _ in range(3):
        want.append([(d, next(side)) for d in index_batches(10, 3, gen)])
    want[-1] = want[-1][:2]  # 2.5 epochs of 4 steps: 10 steps
    got = list(batch_plan(10, 7, 2.5, 3, 5))
    assert [len(e) for e in got] == [4, 4, 2]
    assert all(torch.equal(a, c) and torch.equal(b, d) for ge, we in zip(got, want, strict=True)
               for (a, b), (c, d) in zip(ge, we, strict=True))
    assert list(batch_plan(10, None, 0, 3, 5)) == []


def test_an_objective_must_match_its_epoch_set():
    from unlearnlib.loop import Objective

    with pytest.raises(ValueError, match="driver 'forget' must be a stream"):
        Objective(lambda out, hp: out.ce("retain"), reads=("retain",), driver="forget")
    with pytest.raises(ValueError, match="streams among"):
        Objective(lambda out, hp: out.ce("retain"), reads=("both",))
    with pytest.raises(ValueError, match="reads nothing else"):  # union is a stream since issue 36
        Objective(lambda out, hp: out.ce("union"), reads=("union", "retain"), driver="union")
    Objective(lambda out, hp: out.ce("union"), reads=("union",), driver="union")
    obj = Objective(lambda out, hp: -out.ce("forget"), reads=("forget",), driver="forget")
    with pytest.raises(ValueError, match="epochs_over='forget'"):
        register("never_registered", name="x", paper="x", defaults={}, objective=obj)(lambda model, data: model)
    assert "never_registered" not in methods.available()


def test_bad_loop_config():
    with pytest.raises(ValueError, match="allowed: train, eval"):
        LoopConfig(epochs=1, lr=0.1, bn_mode="frozen")
    with pytest.raises(ValueError, match="allowed: retain, forget, union"):
        LoopConfig(epochs=1, lr=0.1, driver="both")


# --------------------------------------------------------------------------- defaults that scale

from unlearnlib.methods import REFERENCE_SIZES, DataScale, scale_epochs  # noqa: E402

CIFAR = DataScale(REFERENCE_SIZES["retain"], REFERENCE_SIZES["forget"], 182)


def test_default_epochs_are_deep_unlearns_on_cifar10():
    for key in methods.available():
        m = methods.get(key)
        hp = m.resolve_hparams({}, CIFAR)
        assert {k: hp[k] for k in m.epoch_params} == {k: m.defaults[k] for k in m.epoch_params}, key


def test_default_epochs_keep_the_optimiser_steps_within_the_budget_bound():
    # MSG: 5 epochs of batch 64 over CIFAR-10's 38,250 retain rows are 2,990 steps
    small = DataScale(3_672 * 4, 408, 200)  # bound ceil(0.2 * 200) = 40 epochs: no cap
    epochs = methods.get("msg").resolve_hparams({}, small)["epochs"]
    assert epochs == round(5 * math.ceil(38_250 / 64) / math.ceil(small.n_retain / 64))
    # the same data with a 40-epoch original: the bound ceil(0.2 * 40) = 8 applies
    assert methods.get("msg").resolve_hparams({}, DataScale(3_672, 408, 40))["epochs"] == 8
    # a larger set than CIFAR-10 needs fewer epochs for the same steps (at least one)
    assert methods.get("ft").resolve_hparams({}, DataScale(38_250 * 4, 4_250, 182))["epochs"] == 1


def test_epoch_scaling_uses_the_set_an_epoch_iterates_and_keeps_ratios():
    # GA's epochs are passes over D_f: only the forget set's size matters
    a = methods.get("ga").resolve_hparams({}, DataScale(3_672, 4_250, 182))
    assert a["epochs"] == methods.get("ga").defaults["epochs"]
    # one factor for all of a method's epoch counts (SCRUB: msteps <= epochs)
    out = scale_epochs({"epochs": 5, "msteps": 3}, 32, "retain", DataScale(3_672, 408, 40))
    assert out == {"epochs": 8, "msteps": 5}
    # given values are used as they are; fractional counts stay fractional (PRMQ's 3.2)
    assert methods.get("msg").resolve_hparams({"epochs": 2}, DataScale(3_672, 408, 40))["epochs"] == 2
    assert scale_epochs({"epochs": 3.2}, 64, "retain", CIFAR) == {"epochs": 3.2}
    with pytest.raises(ValueError, match="allowed: retain, forget, union"):
        scale_epochs({"epochs": 1}, 64, "test", CIFAR)


def test_a_method_call_runs_the_scaled_defaults(splits, refs):
    calls = []
    data = methods.UnlearnData.from_splits(splits, seed=0, train_recipe=refs.recipe)
    key = "_scaled_probe"
    methods.register(key, "probe", "test", {"epochs": 5, "batch_size": 64},
                     {"epochs": methods.Epochs(0.2)})(lambda model, data, epochs, batch_size: calls.append(epochs) or model)
    try:
        methods.get(key)(refs.original, data)
        methods.get(key)(refs.original, data, epochs=1)
    finally:
        methods._REGISTRY.pop(key)
    assert calls == [math.ceil(0.2 * refs.recipe.epochs), 1]
