import numpy as np
import pytest
import torch

from unlearnlib.data import (
    ForgetSpec,
    augment_batch,
    index_batches,
    load_raw,
    load_splits,
    make_splits,
)


def _idx(split):
    return set(split.index.cpu().tolist())


@pytest.mark.parametrize("dataset", ["mnist1d", "digits", "mnist5k"])
def test_protocol_sizes_and_disjointness(dataset):
    raw = load_raw(dataset)
    s = make_splits(raw, "random:0.1")
    n = len(raw.y_train)
    n_val = round(0.15 * n)
    assert len(s.val) == n_val
    assert len(s.forget) == round(0.1 * (n - n_val))
    assert len(s.retain) + len(s.forget) + len(s.val) == n
    assert len(s.test) == len(raw.y_test)
    r, f, v = _idx(s.retain), _idx(s.forget), _idx(s.val)
    assert not (r & f) and not (r & v) and not (f & v)
    assert r | f | v == set(range(n))
    # rows are the raw rows they claim to be
    i = s.forget.index[3]
    assert torch.equal(s.forget.x[3], raw.x_train[i]) and s.forget.y[3] == raw.y_train[i]


def test_embedded_shapes():
    assert load_raw("mnist1d").input_shape == (40,)
    assert load_raw("digits").input_shape == (1, 8, 8)
    raw = load_raw("mnist5k")
    assert raw.input_shape == (1, 28, 28)
    # a fixed 20% test split where the dataset has none
    assert len(raw.y_test) == 1000 and len(raw.y_train) == 4000


def test_splits_are_deterministic():
    a, b = load_splits("digits", "random:0.2"), load_splits("digits", "random:0.2")
    for part in ("retain", "forget", "val", "test"):
        assert torch.equal(getattr(a, part).index, getattr(b, part).index)
    c = load_splits("digits", "random:0.2", split_seed=7)
    assert not torch.equal(a.forget.index, c.forget.index)


def test_class_forgetting_and_fraction():
    s = load_splits("digits", "class:3")
    assert (s.forget.y == 3).all() and not (s.retain.y == 3).any()
    assert (s.val.y == 3).any() and (s.test.y == 3).any()  # class 3 still measurable

@pytest.mark.parametrize("fraction", [0.03, 0.15, 0.3])
def test_a_forget_fraction_is_a_share_of_the_data_the_original_model_trained_on(fraction):
    """nabla-tau's 3/15/30% are shares of the original model's training data D_r u D_f
    (issue 30: F of the whole pool, validation split included, forgot 35.3% at F = 0.3)."""
    for dataset in ("digits", "mnist1d"):
        f = load_splits(dataset, f"fraction:{fraction}")
        share = len(f.forget) / (len(f.retain) + len(f.forget))
        assert share == pytest.approx(fraction, abs=0.5 / (len(f.retain) + len(f.forget)))
        same = load_splits(dataset, f"random:{fraction}")
        assert torch.equal(f.forget.index, same.forget.index)  # one draw, two names


@pytest.mark.parametrize("spec,msg", [
    ("random:0", "(0, 1)"), ("random:1.5", "(0, 1)"), ("fraction:-0.1", "(0, 1)"),
    ("class:12", "not in the data"), ("klass:3", "allowed: random, fraction, class"),
    ("0.1", "random:F"), ("random:abc", "not a number"),
])
def test_bad_forget_specs(spec, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_splits("digits", spec)


def test_unknown_dataset_lists_allowed():
    with pytest.raises(ValueError, match="allowed: mnist1d, digits, mnist5k"):
        load_splits("imagenet")


def test_forget_spec_roundtrip():
    assert str(ForgetSpec.parse("random:0.1")) == "random:0.1"
    assert str(ForgetSpec.parse("class:3")) == "class:3"


def test_index_batches_cover_everything_once():
    g = torch.Generator().manual_seed(0)
    batches = list(index_batches(10, 4, g))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_augment_is_crop_and_flip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment_batch(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    # every output row is a (possibly flipped, shifted) window of the zero-padded input
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        found = False
        for dy in range(5):
            for dx in range(5):
                win = padded[i, :, dy:dy + 8, dx:dx + 8]
                if torch.equal(out[i], win) or torch.equal(out[i], win.flip(-1)):
                    found = True
        assert found
    assert np.isclose(augment_batch(x[:, 0, 0], torch.Generator()).sum(), x[:, 0, 0].sum())  # non-images pass
