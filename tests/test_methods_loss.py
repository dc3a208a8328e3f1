"""Loss-based methods of issues 4 and 7 (FCS, KDE, BT, SalUn, SCRUB, Amnesiac, GD, NGD,
nabla-tau) and the entropy population MIA. Each test runs in seconds on the CPU."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlib import methods
from unlearnlib.data import Split, Splits, load_splits
from unlearnlib.evaluation import accuracy, per_sample_loss
from unlearnlib.evaluation.entropy_mia import entropy_mia
from unlearnlib.methods import UnlearnData
from unlearnlib.methods import scrub as scrub_mod
from unlearnlib.methods.amnesiac import wrong_labels
from unlearnlib.methods.bt import incompetent_teacher
from unlearnlib.methods.kde import reset_first_conv_and_head
from unlearnlib.methods.nabla_tau import (
    alpha_at,
    forget_fraction,
    initial_alpha,
    nabla_tau_loss,
    num_forget_epochs,
)
from unlearnlib.methods.salun import saliency_mask
from unlearnlib.methods.scrub import forget_validation, lr_factor, select_epoch
from unlearnlib.store import Store
from unlearnlib.training import Recipe, train_reference_models

#: Short settings per method (a second or two each on an idle CPU) that still forget.
FAST = {
    "fcs": {"epochs": 1},
    "kde": {"epochs": 1, "retain_epochs": 1, "batch_size": 128, "lr": 0.01, "retain_lr": 0.01},
    "bt": {"epochs": 1},
    "salun": {"epochs": 2},
    "scrub": {"epochs": 2, "msteps": 2, "batch_size": 256, "forget_batch_size": 128, "lr": 0.02},
    "amnesiac": {"epochs": 1, "lr": 1e-3},
    "gd": {"epochs": 1},
    "ngd": {"epochs": 1},
    "nabla_tau": {},
}
#: nabla-tau has no epoch knob (its length is a formula): a compute budget keeps this run short.
BUDGET = {"nabla_tau": 6000}
_RUNS: dict[tuple[str, int], nn.Module] = {}


def _data(splits, refs, **kw):
    return UnlearnData.from_splits(
        splits, seed=0, model_name="cnn1d", init_state=refs.init_state, train_recipe=refs.recipe, **kw
    )


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _run(key, splits, refs) -> nn.Module:
    """The FAST run of ``key`` on the session's reference model, computed once."""
    if (key, id(refs)) not in _RUNS:
        data = _data(splits, refs, max_sample_grads=BUDGET.get(key))
        _RUNS[key, id(refs)] = methods.get(key)(refs.original, data, **FAST[key])
    return _RUNS[key, id(refs)]


def _forget_loss(model, splits) -> float:
    return per_sample_loss(model, splits.forget).mean().item()


@pytest.mark.parametrize("key", list(FAST))
def test_runs_untouched_caller_and_seed_determinism(key, splits, refs):
    assert key in methods.available()
    m = methods.get(key)
    assert set(m.search_space) <= set(m.defaults)
    before = {k: v.clone() for k, v in refs.original.state_dict().items()}
    a = _run(key, splits, refs)
    b = m(refs.original, _data(splits, refs, max_sample_grads=BUDGET.get(key)), **FAST[key])
    assert all(torch.equal(before[k], v) for k, v in refs.original.state_dict().items())
    assert _same_weights(a, b)
    assert not _same_weights(a, refs.original)
    assert all(torch.isfinite(p).all() for p in a.parameters())


@pytest.mark.parametrize("key", ["fcs", "bt", "salun", "scrub", "amnesiac", "kde"])
def test_forgetting_methods_raise_forget_loss(key, splits, refs):
    """(nabla-tau's forgetting is tested on a 30% forget set below.)"""
    out = _run(key, splits, refs)
    assert _forget_loss(out, splits) > 1.2 * _forget_loss(refs.original, splits)
    assert accuracy(out, splits.retain) > 0.5


# --------------------------------------------------------------------------- BT


def test_bt_teacher_has_the_models_architecture(refs):
    torch.manual_seed(0)
    teacher = incompetent_teacher(refs.original)
    assert type(teacher) is type(refs.original) and repr(teacher) == repr(refs.original)
    s, t = refs.original.state_dict(), teacher.state_dict()
    assert s.keys() == t.keys() and all(s[k].shape == t[k].shape for k in s)
    assert not any(torch.equal(s[k], t[k]) for k in s if k.endswith("weight") and s[k].dim() > 1)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training


# --------------------------------------------------------------------------- SalUn


def test_salun_mask_is_global_top_fraction(splits, refs):
    model = methods.get("original")(refs.original, _data(splits, refs))
    masks = saliency_mask(model, splits.forget, threshold=0.3)
    n = sum(p.numel() for p in model.parameters())
    assert sum(int(m.sum()) for m in masks.values()) == int(0.3 * n)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        saliency_mask(model, splits.forget, threshold=1.5)


def test_salun_momentum_is_deep_unlearns_fixed_09():
    """Deep Unlearn's search fixes SGD momentum at 0.9 (it is not a search dimension)."""
    m = methods.get("salun")
    assert m.defaults["momentum"] == 0.9 and "momentum" not in m.search_space
    assert (m.defaults["lr"], m.defaults["weight_decay"], m.defaults["threshold"]) == (0.01, 0.0, 0.5)


def test_salun_leaves_masked_parameters_untouched(splits, refs):
    """Even with momentum and weight decay, masked-out entries end at the original weights."""
    masks = saliency_mask(methods.get("original")(refs.original, _data(splits, refs)), splits.forget, 0.5)
    out = methods.get("salun")(refs.original, _data(splits, refs), epochs=1, threshold=0.5,
                               momentum=0.9, weight_decay=0.1)
    orig = dict(refs.original.named_parameters())
    for name, p in out.named_parameters():
        keep = ~masks[name]
        assert torch.equal(p.detach()[keep], orig[name].detach()[keep]), name
    changed = sum(int((p.detach() != orig[n].detach())[masks[n]].sum()) for n, p in out.named_parameters())
    assert changed > 0.5 * sum(int(m.sum()) for m in masks.values())


# --------------------------------------------------------------------------- SCRUB


def test_scrub_lr_decay_and_selection_rule():
    assert [lr_factor(e, 10) for e in range(1, 11)] == pytest.approx(
        [1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.001])
    # scrubv2's 5 epochs: milestones int(2.5), int(4.0), int(4.5) = 2, 4, 4
    assert [lr_factor(e, 5) for e in range(1, 6)] == pytest.approx([1, 1, 0.1, 0.1, 0.001])
    # index 0 is the original model, index e the model after e epochs
    assert select_epoch([0.0, 0.3, 0.5, 0.1], target=0.35) == 1
    assert select_epoch([0.0, 0.2, 0.4, 0.2], target=0.3) == 1  # ties: the first (Python's min)
    assert select_epoch([0.3, 0.0, 0.1], target=0.3) == 2  # the original is closest: scrubv2 keeps the final
    with pytest.raises(ValueError, match="No epoch"):
        select_epoch([0.0], target=0.1)


def test_scrub_is_scrubv2(splits, refs, monkeypatch):
    """Deep Unlearn's SCRUB: SGD momentum 0.9, weight decay 5e-4, 5 epochs; beta and
    smoothing (no effect there) are not hyperparameters; forget batches {64, 128, 256}."""
    m = methods.get("scrub")
    d = m.defaults
    assert (d["epochs"], d["lr"], d["weight_decay"], d["batch_size"], d["forget_batch_size"]) == (5, 5e-4, 5e-4, 32, 64)
    assert (d["gamma"], d["alpha"], d["msteps"], d["kd_T"]) == (1.0, 0.5, 3, 2.0)
    assert not {"beta", "smoothing", "momentum"} & set(m.defaults)
    assert m.search_space["forget_batch_size"].choices == (64, 128, 256)
    assert m.search_space["batch_size"].choices == (64, 128, 256)
    seen = []
    real = scrub_mod.run_loop

    def spy(model, retain, forget, loss_fn, cfg, seed, **kw):
        seen.append((cfg.driver, cfg.optimizer, cfg.momentum, cfg.weight_decay, cfg.lr, cfg.batch_size))
        return real(model, retain, forget, loss_fn, cfg, seed, **kw)

    monkeypatch.setattr(scrub_mod, "run_loop", spy)
    m(refs.original, _data(splits, refs, max_sample_grads=2000), **{**FAST["scrub"], "msteps": 1})
    assert seen[0][:4] == ("forget", "sgd", 0.9, 5e-4) and seen[0][5] == 128
    assert seen[1][:4] == ("retain", "sgd", 0.9, 5e-4) and seen[1][5] == 256


def test_scrub_returns_the_epoch_it_says(splits, refs):
    out = _run("scrub", splits, refs)
    info = out.scrub_info
    assert len(info["forget_errors"]) == FAST["scrub"]["epochs"] + 1
    assert info["forget_errors"][0] == pytest.approx(1 - accuracy(refs.original, splits.forget))
    assert out.scrub_selected_epoch == info["selected_epoch"] >= 1
    assert info["selected_epoch"] == select_epoch(info["forget_errors"], info["target_error"])
    # the returned weights are that epoch's: their forget error is the one recorded for it
    assert 1 - accuracy(out, splits.forget) == pytest.approx(info["forget_errors"][out.scrub_selected_epoch])


def test_forget_validation_keeps_the_forgotten_classes():
    def split(y):
        y = torch.tensor(y)
        return Split(torch.arange(len(y), dtype=torch.float32)[:, None], y, torch.arange(len(y)))

    val = split([0, 1, 2, 3, 3, 1])
    sub = forget_validation(val, split([3, 3]))
    assert sub.y.tolist() == [3, 3] and sub.index.tolist() == [3, 4]
    assert forget_validation(val, split([1, 2, 0, 3])).index.tolist() == list(range(6))  # every class: all of D_v
    with pytest.raises(ValueError, match="no sample"):
        forget_validation(val, split([7]))


def _final_scrub_model(model, data, monkeypatch, **hp):
    """SCRUB's last-epoch model: the same (deterministic) run with the selection forced to the end."""
    monkeypatch.setattr(scrub_mod, "select_epoch", lambda errors, target: len(errors) - 1)
    final = methods.get("scrub")(model, data, **hp)
    monkeypatch.undo()
    return final


def test_scrub_selects_against_the_forgotten_classes_val_error(splits, refs, monkeypatch):
    """Class forgetting: the target is the final model's error on the validation samples of
    the forgotten class (SCRUB; scrubv2), not its overall validation error."""
    pool = Split.concat(splits.retain, splits.forget)
    is3 = pool.y == 3
    data = UnlearnData(pool.subset(torch.nonzero(~is3).squeeze(1)), pool.subset(torch.nonzero(is3).squeeze(1)),
                       splits.val, splits.num_classes, seed=0)
    hp = FAST["scrub"]
    out = methods.get("scrub")(refs.original, data, **hp)
    final = _final_scrub_model(refs.original, data, monkeypatch, **hp)
    val3 = splits.val.subset(torch.nonzero(splits.val.y == 3).squeeze(1))
    want = 1 - accuracy(final, val3)
    assert out.scrub_info["target_error"] == pytest.approx(want)
    assert out.scrub_info["forget_classes"] == [3]
    assert abs(want - (1 - accuracy(final, splits.val))) > 0.05  # the two targets differ here


def test_scrub_target_for_a_random_forget_set_is_the_val_error(splits, refs, monkeypatch):
    data = _data(splits, refs, max_sample_grads=BUDGET.get("scrub"))
    out = _run("scrub", splits, refs)
    final = _final_scrub_model(refs.original, data, monkeypatch, **FAST["scrub"])
    assert set(out.scrub_info["forget_classes"]) == set(range(splits.num_classes))
    assert out.scrub_info["target_error"] == pytest.approx(1 - accuracy(final, splits.val))


# --------------------------------------------------------------------------- KDE, Amnesiac, GD, NGD


def test_kde_resets_first_conv_and_head_only(refs):
    model = copy.deepcopy(refs.original)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    conv, head = reset_first_conv_and_head(model)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    names = {id(m): n for n, m in model.named_modules()}
    assert changed == {f"{names[id(conv)]}.weight", f"{names[id(head)]}.weight", f"{names[id(head)]}.bias"}


def test_amnesiac_labels_are_always_wrong():
    y = torch.arange(10).repeat(200)
    z = wrong_labels(y, 10, torch.Generator().manual_seed(0))
    assert not (z == y).any() and set(z[y == 3].tolist()) == set(range(10)) - {3}


def test_ngd_is_gd_plus_noise(splits, refs):
    gd = methods.get("gd")(refs.original, _data(splits, refs), epochs=1)
    assert _same_weights(methods.get("ngd")(refs.original, _data(splits, refs), epochs=1, noise_var=0.0), gd)
    noisy = methods.get("ngd")(refs.original, _data(splits, refs), epochs=1, noise_var=1e-4)
    assert not _same_weights(noisy, gd)


def test_gd_obeys_the_compute_budget(splits, refs):
    out = methods.get("gd")(refs.original, _data(splits, refs, max_sample_grads=100), epochs=3)
    assert _same_weights(out, refs.original)  # the first batch (256 rows) already exceeds it


# --------------------------------------------------------------------------- nabla-tau


def test_nabla_tau_ascent_gradient_vanishes_at_tau():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    xf, yf, xr, yr = torch.randn(8, 4), torch.randint(0, 3, (8,)), torch.randn(8, 4), torch.randint(0, 3, (8,))

    def grads(tau, alpha, gap="one-sided"):
        net.zero_grad()
        lf = F.cross_entropy(net(xf), yf)
        nabla_tau_loss(lf, F.cross_entropy(net(xr), yr), tau(lf.item()), alpha, gap).backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    assert torch.count_nonzero(grads(lambda lf: lf - 1e-3, alpha=1.0)) == 0  # L_f past tau: no ascent
    assert torch.count_nonzero(grads(lambda lf: lf, alpha=1.0)) == 0  # exactly at tau
    assert grads(lambda lf: lf + 0.5, alpha=1.0).abs().sum() > 0  # below tau: ascent
    assert grads(lambda lf: lf - 0.5, alpha=1.0, gap="two-sided").abs().sum() > 0
    retain_only = grads(lambda lf: lf + 10, alpha=0.0)
    assert torch.allclose(grads(lambda lf: lf - 1e-3, alpha=0.4), 0.6 * retain_only)
    # analytic gradient of the ascent term: -2 * (tau - L_f) * dL_f
    net.zero_grad()
    F.cross_entropy(net(xf), yf).backward()
    dlf = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert torch.allclose(grads(lambda lf: lf + 0.5, alpha=1.0), -2 * 0.5 * dlf, atol=1e-6)
    with pytest.raises(ValueError, match="allowed: one-sided, two-sided"):
        nabla_tau_loss(torch.tensor(1.0), torch.tensor(1.0), 1.0, 0.5, gap="both")


def test_nabla_tau_schedule_formulas():
    assert [initial_alpha(f) for f in (0.03, 0.15, 0.3)] == pytest.approx([0.05, 0.25, 0.5])
    assert initial_alpha(0.9) == 1.0
    alphas = [alpha_at(e, 0.5, 10) for e in range(12)]
    assert alphas[0] == 0.5 and alphas[10] == pytest.approx(0) and alphas[11] == 0.0
    assert all(a - b == pytest.approx(0.05) for a, b in zip(alphas[:10], alphas[1:11], strict=True))
    assert num_forget_epochs(3672, 408, 256) == int(15 / (2 * 2) * 6) == 22
    assert num_forget_epochs(2640, 1440, 256) == int(11 / 12 * 6) == 5
    assert num_forget_epochs(10, 10_000, 256) == 1
    assert forget_fraction(3360, 1440) == pytest.approx(0.3)


def _bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def test_nabla_tau_runs_in_eval_mode_by_default(splits, refs):
    """The reference runs everything in net.eval(): BatchNorm keeps the original statistics."""
    assert methods.get("nabla_tau").defaults["bn_mode"] == "eval"
    before = _bn_buffers(refs.original)
    assert before  # cnn1d has BatchNorm
    out = _run("nabla_tau", splits, refs)
    assert not _same_weights(out, refs.original)
    assert all(torch.equal(v, before[k]) for k, v in _bn_buffers(out).items())
    trained = methods.get("nabla_tau")(refs.original, _data(splits, refs, max_sample_grads=BUDGET["nabla_tau"]),
                                       bn_mode="train")
    assert not all(torch.equal(v, before[k]) for k, v in _bn_buffers(trained).items())


@pytest.fixture(scope="module")
def fraction_setup(device, tmp_path_factory):
    splits = load_splits("mnist1d", "fraction:0.3", device=device)
    refs = train_reference_models(splits, "cnn1d", 0, Recipe(epochs=20, lr=0.05, batch_size=128),
                                  Store(tmp_path_factory.mktemp("store30")), show_progress=False)
    return splits, refs


def test_nabla_tau_forgets_30_percent_toward_val_loss(fraction_setup):
    splits, refs = fraction_setup
    data = UnlearnData.from_splits(splits, seed=0, model_name="cnn1d")
    out = methods.get("nabla_tau")(refs.original, data)
    info = out.nabla_tau_info
    assert info["alpha0"] == pytest.approx(0.5)
    assert info["forget_epochs"] == num_forget_epochs(len(splits.retain), len(splits.forget), 256)
    lf0, lv0 = _forget_loss(refs.original, splits), per_sample_loss(refs.original, splits.val).mean().item()
    lf1, lv1 = _forget_loss(out, splits), per_sample_loss(out, splits.val).mean().item()
    assert lf0 < lv0  # the original remembers its forget set
    print(f"L_f {lf0:.3f} -> {lf1:.3f}, L_val {lv0:.3f} -> {lv1:.3f}")
    assert lf1 > lf0 and abs(lv1 - lf1) < abs(lv0 - lf0)  # forget loss raised toward the val loss
    assert accuracy(out, splits.retain) > 0.6


# --------------------------------------------------------------------------- entropy MIA


def _toy_splits(x_forget, x_other, y_forget, y_other) -> Splits:
    def split(x, y):
        return Split(x, y, torch.arange(len(y)))

    return Splits("toy", "random:0.5", split(x_forget, y_forget), split(x_forget, y_forget),
                  split(x_other, y_other), split(x_other.flip(0), y_other.flip(0)), 3, (1,))


def test_entropy_mia_separable_and_identical():
    model = nn.Linear(1, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[8.0], [0.0], [0.0]]))
        model.bias.zero_()
    g = torch.Generator().manual_seed(0)
    n = 300
    zeros = torch.zeros(n, dtype=torch.long)
    # members: x ~ 1 -> confident and correct; non-members: x ~ 0 -> uniform prediction
    sep = _toy_splits(1 + 0.05 * torch.randn(n, 1, generator=g), 0.05 * torch.randn(n, 1, generator=g),
                      zeros, zeros)
    out = entropy_mia(model, sep, seed=0)
    assert set(out) == {"mia_entropy_val", "mia_entropy_test", "mia_joint_val", "mia_joint_test"}
    assert all(v > 0.95 for v in out.values()), out
    x = torch.randn(n, 1, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    same = _toy_splits(x, x.clone(), y, y.clone())
    out = entropy_mia(model, same, seed=0)
    assert all(abs(v - 0.5) < 0.1 for v in out.values()), out
