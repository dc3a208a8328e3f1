"""The weight-surgery methods: ct, msg, cfw, prmq, ff, iu, ssd, cfk, euk, rni."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unlearnlib import methods
from unlearnlib.data import Split
from unlearnlib.evaluation import accuracy, per_sample_loss
from unlearnlib.methods import UnlearnData
from unlearnlib.methods import cfw as cfw_mod
from unlearnlib.methods import msg as msg_mod
from unlearnlib.methods._surgery import (
    fisher_diagonal,
    last_k_blocks,
    per_sample_grads,
    step_decay_epochs,
)
from unlearnlib.methods.ct import transpose_kernels_
from unlearnlib.methods.ff import fisher_variance
from unlearnlib.methods.iu import woodfisher_ihvp
from unlearnlib.methods.prmq import prune_and_reinit_
from unlearnlib.methods.ssd import dampen_
from unlearnlib.models import build_model, conv_layers

SURGERY = ["ct", "msg", "cfw", "prmq", "ff", "iu", "ssd", "cfk", "euk", "rni"]
#: Cheap settings per method for the generic checks (a fraction of the defaults' cost).
QUICK = {
    "ct": {"epochs": 1}, "msg": {"epochs": 1}, "cfw": {"epochs": 2}, "prmq": {"epochs": 1.0},
    "ff": {}, "iu": {}, "ssd": {"alpha": 2.0}, "cfk": {"epochs": 2}, "euk": {"epochs": 1},
    "rni": {"epochs": 3, "fine_epochs": 1},
}


def _data(splits, refs, **kw) -> UnlearnData:
    return UnlearnData.from_splits(
        splits, seed=0, model_name="cnn1d", init_state=refs.init_state, train_recipe=refs.recipe, **kw
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _images(n_retain=24, n_forget=8, classes=3, seed=0) -> UnlearnData:
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        return Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, classes, (n,), generator=g),
                     torch.arange(n))

    return UnlearnData(split(n_retain), split(n_forget), split(8), classes, seed=seed)


# --------------------------------------------------------------------------- registry and generic contract


def test_registered_with_reference_defaults():
    for key in SURGERY:
        m = methods.get(key)
        assert set(m.search_space) <= set(m.defaults), key
    msg = methods.get("msg").defaults
    assert (msg["init_rate"], msg["lr"], msg["epochs"], msg["batch_size"], msg["weight_decay"]) == (0.3, 1e-3, 5, 64, 5e-4)
    ct = methods.get("ct").defaults
    assert (ct["epochs"], ct["lr"], ct["batch_size"], ct["weight_decay"]) == (3, 1e-3, 64, 5e-4)
    assert methods.get("ssd").defaults == {"lam": 1.0, "alpha": 10.0}
    assert methods.get("prmq").defaults["epochs"] == 3.2 and methods.get("prmq").defaults["prune_amount"] == 0.99
    assert methods.get("prmq").space(train_epochs=40)["epochs"].kind == "float"
    assert methods.get("cfk").space(train_epochs=40)["k"].high == 10


@pytest.mark.parametrize("key", SURGERY)
def test_runs_leaves_caller_model_and_is_deterministic(key, splits, refs):
    before = _state(refs.original)
    data = _data(splits, refs)
    if key == "ff":  # its Fisher costs |D_r| x C per-sample gradients: a subset keeps the test short
        data.retain = splits.retain.subset(torch.arange(600))
    a = methods.get(key)(refs.original, data, **QUICK[key])
    b = methods.get(key)(refs.original, data, **QUICK[key])
    assert all(torch.equal(before[k], v) for k, v in refs.original.state_dict().items())
    assert _same(a, b)
    assert not _same(a, refs.original)
    assert all(torch.isfinite(p).all() for p in a.parameters())


def test_ct_rejects_models_without_convolutions(splits):
    """mnist1d inputs are 1-D: CT's MLP extension (square images) does not apply either."""
    mlp = build_model("mlp", (40,), 10, seed=0)
    with pytest.raises(ValueError, match="needs convolution layers"):
        methods.get("ct")(mlp, UnlearnData.from_splits(splits), epochs=0)


def test_msg_and_ct_on_an_mlp_over_images():
    """The conv-free extensions: MSG masks the Linear weights, CT transposes the first
    Linear layer's rows as images."""
    from unlearnlib.data import load_splits
    from unlearnlib.methods.ct import transpose_kernels_
    from unlearnlib.methods.msg import small_gradient_masks

    digits = load_splits("digits")
    mlp = build_model("mlp", digits.input_shape, 10, seed=0)
    first = next(m for m in mlp.modules() if isinstance(m, torch.nn.Linear))
    before = first.weight.detach().clone()
    transpose_kernels_(mlp, tuple(digits.retain.x.shape[1:]))
    c, h, _ = digits.retain.x.shape[1:]
    assert torch.equal(first.weight.view(-1, c, h, h), before.view(-1, c, h, h).transpose(2, 3))
    masks = small_gradient_masks(mlp, UnlearnData.from_splits(digits), 0.3, 64)
    linears = [n for n, m in mlp.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(masks) == sorted(f"{n}.weight" for n in linears)
    assert all(abs(m.float().mean().item() - 0.3) < 0.01 for m in masks.values())


@pytest.mark.parametrize("key", SURGERY)
def test_every_method_runs_on_2d_images(key):
    data = _images()
    model = build_model("small_cnn", (3, 32, 32), 3, seed=0)
    out = methods.get(key)(model, data, **QUICK[key])
    assert all(torch.isfinite(p).all() for p in out.parameters())
    assert out(data.val.x).shape == (8, 3)


@pytest.mark.parametrize("key", ["ct", "msg", "cfw", "cfk", "euk"])
def test_conv_surgeries_run_on_resnet18(key):
    data = _images(n_retain=16, n_forget=4)
    model = build_model("resnet18", (3, 32, 32), 3, seed=0)
    out = methods.get(key)(model, data, **{**QUICK[key], "epochs": 1})
    assert all(torch.isfinite(p).all() for p in out.parameters())


# --------------------------------------------------------------------------- CT


def test_ct_transposes_conv2d_and_flips_conv1d_kernels():
    for name, shape in [("small_cnn", (3, 32, 32)), ("resnet18", (3, 32, 32)), ("cnn1d", (40,))]:
        model = build_model(name, shape, 10, seed=0)
        before = [c.weight.detach().clone() for c in conv_layers(model)]
        transpose_kernels_(model)
        for w0, conv in zip(before, conv_layers(model), strict=True):
            want = w0.transpose(2, 3) if w0.dim() == 4 else w0.flip(-1)
            assert torch.equal(conv.weight, want)
        transpose_kernels_(model)  # an involution
        assert all(torch.equal(w0, c.weight) for w0, c in zip(before, conv_layers(model), strict=True))


def test_ct_method_with_no_training_is_the_transpose(splits, refs):
    out = methods.get("ct")(refs.original, _data(splits, refs), epochs=0)
    for w0, conv in zip([c.weight for c in conv_layers(refs.original)], conv_layers(out), strict=True):
        assert torch.equal(conv.weight, w0.flip(-1))


@pytest.mark.parametrize("epochs", [1, 3])
def test_ct_steps_its_cosine_schedule_once_per_epoch(splits, refs, monkeypatch, epochs):
    """Issue 30: the reference steps CosineAnnealingLR(T_max=epochs) after each epoch
    (``kgltop5.py``): epoch e runs at lr * (1 + cos(pi e / E)) / 2, one epoch at a constant lr."""
    lrs: list[float] = []
    real = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    methods.get("ct")(refs.original, _data(splits, refs), epochs=epochs, lr=0.01, batch_size=256)
    per_epoch = math.ceil(len(splits.retain) / 256)
    want = [0.01 * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs) for _ in range(per_epoch)]
    assert lrs == pytest.approx(want)


def test_ct_is_named_as_the_extension_it_is_on_each_model():
    """CT on a 1-D CNN is our Conv1d extension, not the reference's transpose: reports say so."""
    ct = methods.get("ct")
    assert [ct.label(m) for m in ("cnn1d", "small_cnn", "resnet18", "mlp")] == [
        "ct (1-D extension)", "ct", "ct", "ct (MLP extension)"]
    assert methods.get("msg").label("cnn1d") == "msg"


def test_ct_rejects_non_square_kernels():
    model = nn.Sequential(nn.Conv2d(1, 2, (3, 1)))
    with pytest.raises(ValueError, match="non-square"):
        transpose_kernels_(model)


# --------------------------------------------------------------------------- MSG


def _reference_mask_grads(model: nn.Module, retain: Split, forget: Split, forget_batch: int) -> dict:
    """The reference's mask gradient (Deep Unlearn ``kgltop2.py``, ``get_grads_for_snip``),
    written out: ``loss.backward()`` of the batch-mean CE over retain batches of 64, then of
    minus the batch-mean CE over forget batches of the tuned size, without zero_grad between."""
    model.eval()
    model.zero_grad()
    for s in range(0, len(retain), 64):
        nn.functional.cross_entropy(model(retain.x[s:s + 64]), retain.y[s:s + 64]).backward()
    for s in range(0, len(forget), forget_batch):
        (-nn.functional.cross_entropy(model(forget.x[s:s + forget_batch]), forget.y[s:s + forget_batch])).backward()
    grads = {n: p.grad.abs().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return grads


@pytest.mark.parametrize("batch_size", [64, 256])
def test_msg_masks_the_smallest_gradients_weighted_as_in_the_reference(splits, refs, batch_size):
    """Issue 30: the reference sums batch means over retain batches of 64 and forget batches
    of the tuned size B, so at B = 256 its retain term weighs 4x; the mask must be the one
    that weighting gives (with equal weights it differs at B = 256)."""
    data = _data(splits, refs)
    model = methods.get("original")(refs.original, data)
    torch.manual_seed(3)
    masks = msg_mod.small_gradient_masks(model, data, 0.3, batch_size)
    torch.manual_seed(3)
    rows = torch.randperm(len(data.retain))[: len(data.forget)]
    grads = _reference_mask_grads(model, data.retain.subset(rows), data.forget, batch_size)
    named = dict(model.named_parameters())
    assert set(masks) == {n for n, p in named.items() if p.dim() == 3}  # every Conv1d weight
    for name, mask in masks.items():
        g = grads[name]
        assert int(mask.sum()) == round(0.3 * mask.numel())
        assert g[mask].max() <= g[~mask].min() * (1 + 1e-5) + 1e-12
    if batch_size != 256:
        return
    # equal weights (one mean over each set) pick other entries at B = 256: the weighting matters
    model.zero_grad()
    (nn.functional.cross_entropy(model(data.retain.x[rows]), data.retain.y[rows])
     - nn.functional.cross_entropy(model(data.forget.x), data.forget.y)).backward()
    equal = {n: named[n].grad.abs() for n in masks}
    model.zero_grad()
    differ = sum(int((torch.topk(-equal[n].reshape(-1), int(m.sum())).indices.sort().values
                      != m.reshape(-1).nonzero().squeeze(1)).any()) for n, m in masks.items())
    assert differ > 0


def test_msg_method_reinitialises_only_masked_entries_and_scales_kept_grads(splits, refs, monkeypatch):
    data = _data(splits, refs)
    captured = {}
    real = msg_mod.run_loop

    def spy(*args, **kw):
        captured.update(kw)
        return real(*args, **kw)

    monkeypatch.setattr(msg_mod, "run_loop", spy)
    out = methods.get("msg")(refs.original, data, epochs=0, init_rate=0.3)
    scale = captured["grad_scale"]
    orig = dict(refs.original.named_parameters())
    for name, p in out.named_parameters():
        if name not in scale:
            assert torch.equal(p, orig[name])  # BN and head untouched by the surgery
            continue
        reinit = scale[name] == 1.0
        assert torch.all(reinit | torch.isclose(scale[name], torch.tensor(0.1)))
        assert int(reinit.sum()) == round(0.3 * p.numel())
        assert torch.equal(p[~reinit], orig[name][~reinit])
        assert (p[reinit] != orig[name][reinit]).float().mean() > 0.99
        # Kaiming normal, fan_out, relu: std sqrt(2 / (out_channels * kernel))
        std = math.sqrt(2.0 / (p.shape[0] * p[0, 0].numel()))
        assert p[reinit].std().item() == pytest.approx(std, rel=0.2)


def test_msg_with_a_tuned_lr_forgets_and_keeps_retain(splits, refs):
    out = methods.get("msg")(refs.original, _data(splits, refs), lr=0.05, epochs=3)
    assert per_sample_loss(out, splits.forget).mean() > per_sample_loss(refs.original, splits.forget).mean()
    # seeds 0-4 x kernel paths default, AVX2, AVX512 (issue 30): forget-loss rise 0.081-0.122,
    # retain accuracy 0.954-0.980 (mean 0.972, sd 0.007; the old floor 0.95 was 0.004 below the
    # lowest); 0.94 is mean - 4.6 sd
    assert accuracy(out, splits.retain) > 0.94


# --------------------------------------------------------------------------- CFW, PRMQ


def _noised(before: nn.Module, after: nn.Module) -> set[str]:
    orig = dict(before.named_parameters())
    return {n for n, p in after.named_parameters() if not torch.equal(p, orig[n])}


def test_cfw_noises_the_first_conv_only(splits, refs):
    """The reference noises ResNet-18's single first conv (std 0.6 is sized for it)."""
    out = methods.get("cfw")(refs.original, _data(splits, refs), epochs=0, start_std=0.5)
    first = conv_layers(out)[0]
    name = next(n for n, p in out.named_parameters() if p is first.weight)
    assert _noised(refs.original, out) == {name}
    delta = first.weight - dict(refs.original.named_parameters())[name]
    assert delta.std().item() == pytest.approx(0.5, rel=0.15)
    w = cfw_mod.balanced_class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(w, torch.tensor([4 / 6, 4 / 2, 0.0]))


@pytest.mark.parametrize("name, shape, want", [
    ("resnet18", (3, 32, 32), "blocks.0.0.weight"),  # the stem's conv1, not the 19 others
    ("mlp", (40,), "blocks.1.0.weight"),  # no convolution: the first Linear layer
])
def test_cfw_first_weight_layer_on_other_models(name, shape, want):
    data = _images(n_retain=8, n_forget=4) if len(shape) == 3 else UnlearnData(
        *[Split(torch.randn(n, *shape), torch.randint(0, 3, (n,)), torch.arange(n)) for n in (8, 4, 4)], 3)
    model = build_model(name, shape, 3, seed=0)
    out = methods.get("cfw")(model, data, epochs=0, start_std=0.5)
    assert _noised(model, out) == {want}


def test_prmq_prunes_globally_and_quantises(splits, refs):
    model = methods.get("original")(refs.original, _data(splits, refs))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = prune_and_reinit_(model, 0.9)
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.9 * total)
    kept_min = min(before[n][~m].abs().min() for n, m in masks.items() if (~m).any())
    pruned_max = max(before[n][m].abs().max() for n, m in masks.items() if m.any())
    assert pruned_max <= kept_min  # global L1: the smallest magnitudes go
    named = dict(model.named_parameters())
    for n, m in masks.items():
        p = named[n]
        assert torch.equal(p[~m], before[n][~m])
        if p.dim() == 1:
            assert (p[m] == 0).all()
        else:
            assert p[m].abs().max() <= math.sqrt(1 / p[0].numel())
    out = methods.get("prmq")(refs.original, _data(splits, refs), lr=0.05, prune_amount=0.5, epochs=2.0)
    assert all(torch.equal(t, t.half().float()) for t in out.state_dict().values() if t.is_floating_point())
    # retraining recovers what pruning took. Measured over seeds 0-4 x kernel paths default, AVX2
    # and AVX512 (issue 30): retain accuracy 0.810-0.929 (mean 0.897, sd 0.031; the old floor
    # 0.9 failed on AVX512 at 0.896); pruned without retraining 0.48-0.65 on AVX512. The floor
    # 0.75 is mean - 4.7 sd; the gain over the pruned model at least 0.21 where measured.
    pruned = methods.get("prmq")(refs.original, _data(splits, refs), lr=0.05, prune_amount=0.5, epochs=0.0)
    assert accuracy(out, splits.retain) > max(0.75, accuracy(pruned, splits.retain) + 0.1)
    assert per_sample_loss(out, splits.forget).mean() > per_sample_loss(refs.original, splits.forget).mean()


# --------------------------------------------------------------------------- FF, IU, SSD


def test_ff_adds_noise_of_the_stated_scale(splits, refs):
    data = _data(splits, refs)
    data.retain = splits.retain.subset(torch.arange(1200))  # a shorter Fisher pass
    work = methods.get("original")(refs.original, data)
    var = fisher_variance(work, data, alpha=1e-6)
    out = methods.get("ff")(refs.original, data, alpha=1e-6)
    orig = dict(refs.original.named_parameters())
    z = torch.cat([((p - orig[n]) / var[n].sqrt()).reshape(-1) for n, p in out.named_parameters()])
    assert z.std().item() == pytest.approx(1.0, abs=0.05)
    assert abs(z.mean().item()) < 0.05
    assert var["blocks.4.1.bias"].max() <= 1e-6 * 1e2 * 10 * (1 + 1e-6)  # classifier: clamp 1e2, x10
    assert max(v.max() for v in var.values()) <= 1e-6 * 1e3 * 10 * (1 + 1e-6)
    assert accuracy(out, splits.retain) > 0.95


def test_woodfisher_ihvp_matches_a_direct_solve():
    g = torch.Generator().manual_seed(0)
    n, p = 7, 20
    grads, v = torch.randn(n, p, generator=g), torch.randn(p, generator=g)
    want = torch.linalg.solve(torch.eye(p) + grads.T @ grads / n, v)
    for chunk, cache in [(n, True), (3, False), (2, True)]:
        got = woodfisher_ihvp(lambda s: grads[s], n, v, chunk, cache)
        assert torch.allclose(got, want, atol=1e-5)


def test_iu_raises_forget_loss_and_keeps_retain(splits, refs):
    out = methods.get("iu")(refs.original, _data(splits, refs))
    assert per_sample_loss(out, splits.forget).mean() > 1.5 * per_sample_loss(refs.original, splits.forget).mean()
    assert accuracy(out, splits.retain) > 0.97


def test_per_sample_fisher_matches_a_loop(splits, refs):
    model = methods.get("original")(refs.original, _data(splits, refs)).eval()
    sub = splits.forget.subset(torch.arange(5))
    fisher = fisher_diagonal(model, sub, chunk=2)
    want = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(5):
        model.zero_grad()
        nn.functional.cross_entropy(model(sub.x[i:i + 1]), sub.y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            want[n] += p.grad.pow(2) / 5
    # float32: an entry 1e-5 of its tensor's largest differs relatively by 4e-3 on an AVX512 CPU
    # (absolute 1.6e-6), so the absolute tolerance is relative to each tensor's scale
    assert all(torch.allclose(fisher[n], want[n], rtol=1e-4, atol=1e-5 * float(want[n].abs().max())) for n in want)
    g = per_sample_grads(model, sub.x, sub.y)
    assert next(iter(g.values())).shape[0] == 5


def test_ssd_dampens_only_selected_parameters(splits, refs):
    data = _data(splits, refs)
    work = methods.get("original")(refs.original, data).eval()
    imp_f = fisher_diagonal(work, splits.forget)
    imp_d = fisher_diagonal(work, Split.concat(splits.retain, splits.forget))
    out = methods.get("ssd")(refs.original, data, alpha=2.0, lam=1.0)
    orig = dict(refs.original.named_parameters())
    n_selected = 0
    for name, p in out.named_parameters():
        sel = imp_f[name] > 2.0 * imp_d[name]
        n_selected += int(sel.sum())
        assert torch.equal(p[~sel], orig[name][~sel])
        factor = (imp_d[name] / imp_f[name]).clamp(max=1.0)
        assert torch.allclose(p[sel], orig[name][sel] * factor[sel])
    assert n_selected > 0
    # the in-place helper reports the same selection
    copy = methods.get("original")(refs.original, data)
    selected = dampen_(copy, imp_f, imp_d, 1.0, 2.0)
    assert sum(int(s.sum()) for s in selected.values()) == n_selected
    # defaults on a random forget set: few entries qualify, retain accuracy is kept
    default = methods.get("ssd")(refs.original, data)
    assert accuracy(default, splits.retain) >= accuracy(refs.original, splits.retain) - 0.01


# --------------------------------------------------------------------------- CF-k, EU-k, RNI


def test_step_decay_segments():
    """fk_finetune: 0-based epoch e decays once per milestone int(f * E) it exceeds."""
    assert step_decay_epochs(10, 0.1) == [(6, 1.0), (3, 0.1), (1, pytest.approx(0.01))]
    assert step_decay_epochs(5, 0.5) == [(3, 1.0), (2, 0.5)]  # milestones 2, 4, 4
    assert step_decay_epochs(1, 0.1) == [(1, 1.0)]  # a 1-epoch run is never decayed


@pytest.mark.parametrize("k", [1, 2, 99])
def test_cfk_leaves_frozen_blocks_untouched(k, splits, refs):
    out = methods.get("cfk")(refs.original, _data(splits, refs), epochs=2, k=k, lr=0.05)
    trainable, frozen = last_k_blocks(out, k)
    orig_blocks = refs.original.blocks
    out_blocks = out.blocks
    for i, b in enumerate(out_blocks):
        same = all(torch.equal(x, y) for x, y in zip(b.state_dict().values(), orig_blocks[i].state_dict().values(), strict=True))
        if any(b is f for f in frozen):
            assert same  # parameters and BatchNorm statistics
        elif any(True for _ in b.parameters()):
            assert not same
    assert len(trainable) == min(k, 3) + 1  # cnn1d: 3 conv blocks + head
    assert all(p.requires_grad for p in out.parameters())  # freezing is undone


def test_cfk_keeps_retain_accuracy(splits, refs):
    out = methods.get("cfk")(refs.original, _data(splits, refs), epochs=3)
    assert accuracy(out, splits.retain) >= accuracy(refs.original, splits.retain) - 0.01


def _bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def test_cfk_and_euk_train_in_eval_mode_by_default(splits, refs):
    """The reference's run_train_epoch calls model.eval(): BatchNorm statistics never move."""
    before = _bn_buffers(refs.original)
    for key in ("cfk", "euk"):
        assert methods.get(key).defaults["bn_mode"] == "eval"
        out = methods.get(key)(refs.original, _data(splits, refs), epochs=2)
        assert not _same(out, refs.original)
        assert all(torch.equal(v, before[k]) for k, v in _bn_buffers(out).items()), key
    out = methods.get("cfk")(refs.original, _data(splits, refs), epochs=2, bn_mode="train")
    assert not torch.equal(_bn_buffers(out)["blocks.3.1.running_mean"], before["blocks.3.1.running_mean"])


def test_cfk_and_euk_defaults_and_space_follow_the_reference():
    for key in ("cfk", "euk"):
        m = methods.get(key)
        d = m.defaults
        assert (d["epochs"], d["lr"], d["batch_size"], d["k"], d["lam"], d["decay_rate"]) == (10, 0.01, 256, 1, 0.1, 0.1)
        assert set(m.search_space) == {"lr", "batch_size", "epochs", "k", "lam", "decay_rate"}, key


def test_euk_reinitialises_the_unfrozen_blocks(splits, refs):
    out = methods.get("euk")(refs.original, _data(splits, refs), epochs=0, k=1)
    orig = refs.original.blocks
    for b in list(out.blocks)[:3]:
        i = list(out.blocks).index(b)
        assert all(torch.equal(x, y) for x, y in zip(b.state_dict().values(), orig[i].state_dict().values(), strict=True))
    conv, bn = out.blocks[3][0], out.blocks[3][1]
    assert not torch.equal(conv.weight, orig[3][0].weight)
    bound = math.sqrt(6.0 / (conv.weight.shape[0] * conv.weight[0, 0].numel()))  # Kaiming uniform, fan_out
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert (bn.weight == 1).all() and (bn.bias == 0).all()
    # Deep Unlearn's init_weights leaves the running statistics as they were
    assert torch.equal(bn.running_mean, orig[3][1].running_mean) and torch.equal(bn.running_var, orig[3][1].running_var)
    head = out.blocks[4][1]
    assert (head.bias == 0).all() and not torch.equal(head.weight, orig[4][1].weight)


def test_euk_proximal_anchor_is_the_reinitialised_weights(splits, refs):
    """With a strong proximal term (lr * lam = 0.5: each step halves the distance to the
    anchor) the head stays at its re-initialised weights, far from theta_0."""
    reset = methods.get("euk")(refs.original, _data(splits, refs), epochs=0)
    out = methods.get("euk")(refs.original, _data(splits, refs), epochs=1, lr=0.01, lam=50.0)
    w_reset, w_out, w0 = (m.blocks[4][1].weight.detach() for m in (reset, out, refs.original))
    assert not torch.equal(w_out, w_reset)
    assert (w_out - w_reset).norm() < 0.05 * (w_out - w0).norm()


def test_euk_retrains_to_a_sensible_model(splits, refs):
    """Plain SGD at the reference's lr 0.01 leaves the re-initialised blocks under-trained on
    mnist1d (15 steps an epoch); lr 0.1 without the proximal term, both inside its search space,
    retrains them. The reference's epoch count is given: the default scales with the dataset
    (:func:`unlearnlib.methods.scale_epochs`)."""
    out = methods.get("euk")(refs.original, _data(splits, refs), epochs=10, lr=0.1, lam=1e-5)
    assert accuracy(out, splits.retain) > 0.7
    assert per_sample_loss(out, splits.forget).mean() > per_sample_loss(refs.original, splits.forget).mean()


def test_rni_resets_the_head_and_retrains(splits, refs):
    data = _data(splits, refs)
    reset = methods.get("rni")(refs.original, data, epochs=0)
    orig = dict(refs.original.named_parameters())
    for name, p in reset.named_parameters():
        assert torch.equal(p, orig[name]) == (not name.startswith("blocks.4."))
    out = methods.get("rni")(refs.original, data, epochs=9, reset_epochs=1, fine_epochs=4, lr=0.01, fine_lr=0.01, batch_size=128)
    assert accuracy(out, splits.retain) > 0.95
    assert per_sample_loss(out, splits.forget).mean() > per_sample_loss(refs.original, splits.forget).mean()


def test_budget_stops_the_fine_tuning(splits, refs):
    data = _data(splits, refs, max_sample_grads=300)
    for key in ("cfk", "rni", "msg"):
        methods.get(key)(refs.original, data)  # would take many seconds without the budget


def test_iu_streams_the_gradient_matrix_when_it_is_too_large(monkeypatch):
    from unlearnlib.methods import iu as iu_mod

    data = _images(n_retain=12, n_forget=4)
    model = build_model("small_cnn", (3, 32, 32), 3, seed=0)
    cached = methods.get("iu")(model, data, alpha=1.0)
    n_params = sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(iu_mod, "MAX_GRAM_ELEMS", 6 * n_params)  # blocks of 3 rows, 4 blocks
    streamed = methods.get("iu")(model, data, alpha=1.0)
    for a, b in zip(cached.parameters(), streamed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
