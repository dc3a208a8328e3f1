"""Poisoning attacks as unlearning tests (Pawelczyk et al. 2024): each attack's
metric must separate the poisoned model from a model that never saw the poisons."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnlib import methods
from unlearnlib.data import Split, load_raw, make_splits
from unlearnlib.methods import UnlearnData
from unlearnlib.models import build_model
from unlearnlib.poisoning import (
    attack_metric,
    budget_sample_grads,
    gaussian_scores,
    poison_splits,
)
from unlearnlib.poisoning.gaussian import input_gradients, statistic
from unlearnlib.store import Store
from unlearnlib.training import Recipe, train, train_reference_models

DIGITS_RECIPE = Recipe(epochs=20, lr=0.05, batch_size=64)
MNIST5K_RECIPE = Recipe(epochs=20, lr=0.05, batch_size=128)


def standardized(name: str):
    raw = load_raw(name)
    m, s = raw.x_train.mean(), raw.x_train.std()
    return dataclasses.replace(raw, x_train=(raw.x_train - m) / s, x_test=(raw.x_test - m) / s)


@pytest.fixture(scope="module")
def digits(device):
    return make_splits(load_raw("digits"), "fraction:0.05").to(device)


@pytest.fixture(scope="module")
def digits_clean(digits, session_store_env):
    return train_reference_models(digits, "mlp", 0, DIGITS_RECIPE, Store(session_store_env), False).original


def test_poison_splits_forget_set_is_the_poison_set(digits):
    out, info = poison_splits(digits, "gaussian", fraction=0.05, seed=1, eps=0.5)
    pool = digits.train
    assert len(out.retain) + len(out.forget) == len(pool)
    assert not set(out.retain.index.tolist()) & set(out.forget.index.tolist())
    assert torch.allclose(out.forget.x, info.x_base + info.delta)
    assert torch.equal(out.forget.y, info.y_base)  # Gaussian poisons keep their labels
    assert abs(float(info.delta.std()) - 0.5) < 0.05
    assert out.forget_spec.startswith("poison:gaussian:") and out.test is digits.test
    with pytest.raises(ValueError, match="allowed: gaussian"):
        poison_splits(digits, "nope")
    with pytest.raises(ValueError, match="surrogate"):
        poison_splits(digits, "targeted")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        poison_splits(digits, "backdoor", fraction=1.5)


def test_statistic_is_standard_normal_for_unseen_noise(digits_clean, digits):
    """A model that never saw xi: I_z ~ N(0, 1) over many draws at fixed bases."""
    pool = digits.train.subset(torch.arange(200))
    g = input_gradients(digits_clean, pool.x, pool.y)
    gen = torch.Generator().manual_seed(3)
    eps = 0.4
    i = statistic(g.cpu(), eps * torch.randn((50, *pool.x.shape), generator=gen), eps)
    assert abs(float(i.mean())) < 0.05  # 10,000 draws: sd of the mean 0.01
    assert abs(float(i.std()) - 1.0) < 0.05
    _, info = poison_splits(digits, "gaussian", 0.05, seed=2, eps=eps)
    scores = gaussian_scores(digits_clean, info, n_fresh=200)
    assert abs(scores["gus_z"]) < 4 and scores["tpr"] < 0.2


@pytest.mark.slow
def test_gaussian_shift_on_poisoned_mlp(device, session_store_env):
    """Positive control (EVALUATION.md): an MLP on standardised mnist5k trained on 2%
    Gaussian poisons (eps 1) shows a negative GUS; the retrained model does not."""
    clean = make_splits(standardized("mnist5k"), "fraction:0.02").to(device)
    splits, info = poison_splits(clean, "gaussian", 0.02, eps=1.0)
    refs = train_reference_models(splits, "mlp", 0, MNIST5K_RECIPE, Store(session_store_env), False)
    poisoned, retrained = gaussian_scores(refs.original, info), gaussian_scores(refs.retrained, info)
    assert poisoned["gus_z"] < -3.0  # shift is negative: training lowered the loss along xi
    assert abs(retrained["gus_z"]) < 3.0
    assert poisoned["gus"] < retrained["gus"] - 0.3


def test_backdoor_succeeds_only_on_poisoned_model(digits, digits_clean, session_store_env):
    splits, info = poison_splits(digits, "backdoor", 0.05, target=0, size=3)
    assert bool((splits.forget.y == 0).all()) and bool((info.y_base != 0).all())
    refs = train_reference_models(splits, "mlp", 0, DIGITS_RECIPE, Store(session_store_env), False)
    asr_p = attack_metric(refs.original, info, splits)["asr"]
    asr_c = attack_metric(digits_clean, info, splits)["asr"]
    asr_r = attack_metric(refs.retrained, info, splits)["asr"]
    assert asr_p > 0.8 and asr_c < 0.3 and asr_r < 0.3


def test_backdoor_on_signals():
    x = torch.zeros(4, 40)
    pool = Split(x, torch.arange(4) % 2, torch.arange(4))
    from unlearnlib.poisoning import backdoor

    c = backdoor.craft(pool, 2, torch.Generator().manual_seed(0), target=0, size=6)
    assert bool((c.y == 0).all()) and bool((c.x[:, :34] == 0).all())


@pytest.mark.slow
def test_targeted_raises_adversarial_rate(device, session_store_env):
    """Witches' Brew on standardised mnist5k (MLP, eps 1.5, 4 targets, 2% poisons).

    At eps 1.0 one or two of the four targets flip, depending on the draw; 1.5
    (0.47 of the [0, 1] pixel range: an MLP on MNIST needs large perturbations)
    flipped 3-4 of 4 for draws 0, 1 and 2."""
    store = Store(session_store_env)
    clean = make_splits(standardized("mnist5k"), "fraction:0.02").to(device)
    surrogate = train_reference_models(clean, "mlp", 0, MNIST5K_RECIPE, store, False).original
    splits, info = poison_splits(clean, "targeted", 0.02, surrogate=surrogate, n_targets=4, eps=1.5)
    assert float(info.delta.abs().max()) <= 1.5 + 1e-6  # the L_inf bound holds
    assert set(info.y_base.tolist()) <= set(info.extras["adv_labels"].tolist())  # poisons of the adv. class
    refs = train_reference_models(splits, "mlp", 0, MNIST5K_RECIPE, store, False)
    clean_rate = attack_metric(surrogate, info, splits)["adv_rate"]
    assert clean_rate == 0.0  # targets are chosen among the clean model's correct predictions
    assert attack_metric(refs.original, info, splits)["adv_rate"] >= 0.5
    assert attack_metric(refs.retrained, info, splits)["adv_rate"] < 0.5


def test_budget_stops_method_where_it_says(digits, digits_clean):
    recipe = DIGITS_RECIPE
    budget = budget_sample_grads(recipe, len(digits.train), 0.02)
    assert budget == round(0.02 * recipe.epochs * len(digits.train))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        budget_sample_grads(recipe, 100, 0.0)

    counted = {"rows": 0}

    class Counting(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            if torch.is_grad_enabled():
                counted["rows"] += x.shape[0]
            return self.inner(x)

    data = UnlearnData.from_splits(digits, train_recipe=recipe, max_sample_grads=budget)
    methods.get("ft")(Counting(digits_clean), data, epochs=5, batch_size=32)
    assert 0 < counted["rows"] <= budget < counted["rows"] + 32
    counted["rows"] = 0
    free = UnlearnData.from_splits(digits, train_recipe=recipe)
    methods.get("ft")(Counting(digits_clean), free, epochs=1, batch_size=32)
    assert counted["rows"] == len(digits.retain) > budget


def test_ssd_importance_passes_fit_the_budget(digits, digits_clean, monkeypatch):
    from unlearnlib.methods import ssd

    assert ssd.importance_sizes(10, 100, None) == (10, 100)
    assert ssd.importance_sizes(10, 100, 500) == (10, 100)
    assert ssd.importance_sizes(10, 100, 40) == (10, 30)
    assert ssd.importance_sizes(10, 100, 7) == (3, 4)
    with pytest.raises(ValueError, match="at least 2"):
        ssd.importance_sizes(10, 100, 1)
    seen = []
    real = ssd.fisher_diagonal
    monkeypatch.setattr(ssd, "fisher_diagonal", lambda m, split: seen.append(len(split)) or real(m, split))
    budget = len(digits.forget) + 50
    out = methods.get("ssd")(digits_clean, UnlearnData.from_splits(digits, max_sample_grads=budget))
    assert seen == [len(digits.forget), 50]
    assert any(not torch.equal(a, b) for a, b in zip(out.parameters(), digits_clean.parameters(), strict=True))


def test_trained_models_are_deterministic(digits):
    """Same seed, same poisons and same trained weights (reruns hit the store)."""
    a, _ = poison_splits(digits, "gaussian", 0.05, seed=4, eps=0.3)
    b, _ = poison_splits(digits, "gaussian", 0.05, seed=4, eps=0.3)
    assert a.fingerprint() == b.fingerprint()
    m1 = build_model("mlp", a.input_shape, a.num_classes, seed=0).to(a.device)
    m2 = build_model("mlp", a.input_shape, a.num_classes, seed=0).to(a.device)
    train(m1, a.train, Recipe(epochs=1, lr=0.05, batch_size=64), 0, show_progress=False)
    train(m2, b.train, Recipe(epochs=1, lr=0.05, batch_size=64), 0, show_progress=False)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))


# --------------------------------------------------------------------------- the findings as verdicts

from unlearnlib.studies import poisoning_verdicts as PV  # noqa: E402
from unlearnlib.studies import verdicts as V  # noqa: E402

#: attack -> (original's metric, retrained's metric): GUS falls when the noise is remembered.
GAPS = {"gaussian": (-1.0, 0.0), "backdoor": (0.95, 0.05)}


def poison_rows(methods: dict[str, dict], gaps: dict = GAPS, seeds: int = 6, noise: float = 0.005,
                seed: int = 0) -> pd.DataFrame:
    """Rows of run_attack's shape. ``methods[m]`` gives, per attack or for all (key ``"share"``),
    the share of the gap the method leaves (``share`` or ``share_<attack>``, signed: < 0 goes
    past the retrained model), its test-accuracy drop (``drop``) and its MIA minus the
    retrained model's (``mia``); the per-seed noise is added to every metric."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for attack, (orig, ret) in gaps.items():
            base = {"attack": attack, "seed": s, "fraction": 0.02}
            e = lambda: rng.normal(0, noise)  # noqa: E731
            rows.append({**base, "method": "original", "budget": np.nan, "metric": orig + e(), "test_acc": 0.95,
                         "mia_test": 0.85 + e()})
            rows.append({**base, "method": "retrain", "budget": np.nan, "metric": ret + e(), "test_acc": 0.95,
                         "mia_test": 0.55 + e()})
            for m, spec in methods.items():
                share = spec.get(f"share_{attack}", spec.get("share", 1.0))
                share = share[s % len(share)] if isinstance(share, list) else share
                for b in (0.02, 0.1):  # the low budget must be ignored: it is bad for every method
                    sh = share if b == 0.1 else 1.0
                    rows.append({**base, "method": m, "budget": b, "metric": ret + sh * (orig - ret) + e(),
                                 "test_acc": 0.95 - spec.get("drop", 0.0) + e(),
                                 "mia_test": 0.55 + (spec.get("mia", 0.3) if b == 0.1 else 0.3) + e()})
    return pd.DataFrame(rows)


def findings(df) -> tuple:
    one, two = PV.poisoning_verdicts(df, setting="constructed rows")
    return one, two


def test_no_method_removes_the_poisons_and_the_mia_is_fooled_hold():
    # the best method leaves half of each gap; "gd" passes the MIA (0.01 off) with 80% left
    df = poison_rows({"ga": {"share": 0.5}, "gd": {"share": 0.8, "mia": 0.01}, "ct": {"share": 0.9}})
    one, two = findings(df)
    assert one.state == V.HOLDS and two.state == V.HOLDS
    assert one.low > 0.1 and abs(one.estimate - 0.5) < 0.02  # min over attacks of the best share
    n = len(V.registered_methods())
    assert one.scope == two.scope and one.scope.startswith(f"3 of {n} methods, ") and " attacks working (" in one.scope
    # margin = min(0.05 - 0.01, 0.5 * (0.8 - 0.1)) = 0.04: the MIA condition binds
    assert 0.03 < two.estimate < 0.05 and two.low > 0 and two.n_seeds == 6  # noise: sd 0.003 per attack
    assert "seeds 0-5" in one.budget and "gaussian (2% poisons)" in one.budget and "at 10%" in one.budget


def test_a_method_that_removes_one_poison_breaks_finding_1():
    # "ssd" matches the retrained model on the backdoor and keeps its accuracy
    df = poison_rows({"ga": {"share": 0.5}, "ssd": {"share_backdoor": 0.0, "share_gaussian": 0.6}})
    one, _ = findings(df)
    assert one.state == V.FAILS and one.high < 0.1 and abs(one.estimate) < 0.03
    table = PV.attack_table(df)
    assert table.loc["backdoor", "best method"] == "ssd" and table.loc["gaussian", "best method"] == "ga"
    assert bool(table["works"].all())


def test_a_destroyed_model_removes_nothing():
    # "euk" matches retraining but loses 20 points of test accuracy: it does not count
    df = poison_rows({"ga": {"share": 0.5}, "euk": {"share": 0.0, "drop": 0.2, "mia": 0.0}})
    one, two = findings(df)
    assert one.state == V.HOLDS and abs(one.estimate - 0.5) < 0.02
    assert two.state == V.FAILS  # "ga" does not pass the MIA (0.3 off); euk passes but is destroyed


def test_going_past_the_retrained_model_is_not_removal():
    # GA turns GUS positive (share -1: as far past retraining as the poisoned model is before it)
    df = poison_rows({"ga": {"share_gaussian": -1.0, "share_backdoor": 0.5}})
    one, _ = findings(df)
    assert one.state == V.HOLDS and abs(one.estimate - 0.5) < 0.02


def test_the_mia_that_catches_every_remaining_poison_is_not_fooled():
    # the methods that pass the MIA removed the poison; those leaving it are caught (0.2 off)
    df = poison_rows({"gd": {"share": 0.02, "mia": 0.0}, "ga": {"share": 0.9, "mia": 0.2}})
    one, two = findings(df)
    # best margin: gd's min(0.05, 0.5 * (0.02 - 0.1)) = -0.04 (ga's: min(-0.15, 0.4))
    assert one.state == V.FAILS and two.state == V.FAILS and abs(two.estimate + 0.04) < 0.005


def test_a_method_on_the_edge_of_passing_the_mia_is_not_tested():
    # "gd" leaves the whole poison; its MIA is 0.03 or 0.07 off the retrained one, alternating: 0.05
    df = poison_rows({"gd": {"share": 1.0, "mia": 0.05}, "ga": {"share": 0.5}}, noise=0.0)
    flip = (df["method"] == "gd") & (df["budget"] == 0.1)
    df.loc[flip, "mia_test"] += np.where(df.loc[flip, "seed"] % 2 == 0, -0.02, 0.02)
    _, two = findings(df)
    assert two.state == V.INCONCLUSIVE and two.low < 0 < two.high


def test_a_tie_is_not_tested_and_says_how_many_seeds_would_test_it():
    # the best method leaves 0% or 20% of the backdoor's gap, alternating over seeds: mean 10%
    df = poison_rows({"ga": {"share_backdoor": [0.0, 0.2], "share_gaussian": 0.6}}, seeds=6)
    one, _ = findings(df)
    assert one.state == V.INCONCLUSIVE and one.low < 0.1 < one.high
    assert "interval contains the threshold" in one.reason and "seeds" in one.needed


def test_an_attack_without_a_gap_is_left_out_and_named():
    gaps = {**GAPS, "labelflip": (0.02, 0.02)}  # label flips that moved nothing
    df = poison_rows({"ga": {"share": 0.5}}, gaps=gaps)
    one, _ = findings(df)
    assert one.state == V.HOLDS and "left out, no gap between original and retrained: labelflip" in one.budget
    assert not PV.attack_table(df).loc["labelflip", "works"]
    # a backdoor whose success rate is LOWER on the poisoned model does not work either
    none = poison_rows({"ga": {"share": 0.5}}, gaps={"backdoor": (0.05, 0.6)})
    one, two = findings(none)
    assert one.state == two.state == V.UNTESTED and "no attack opened a gap" in one.reason


def test_fewer_than_five_seeds_test_nothing_and_bad_rows_fail_clearly():
    one, _ = findings(poison_rows({"ga": {"share": 0.5}}, seeds=4))
    assert one.state == V.UNTESTED and "at least 5" in one.reason
    df = poison_rows({"ga": {"share": 0.5}})
    with pytest.raises(ValueError, match="retrain"):
        PV.poisoning_verdicts(df[df["method"] != "retrain"])
    with pytest.raises(ValueError, match="columns"):
        PV.poisoning_verdicts(df.drop(columns="mia_test"))


# --------------------------------------------------------------------------- the poisons as verified store entries

from unlearnlib.poisoning import cache as PC  # noqa: E402


def test_crafted_extras_of_every_kind_survive_the_store(tmp_path):
    model = build_model("mlp", (4,), 3, seed=0)
    targets = Split(torch.randn(2, 4), torch.tensor([1, 2]), torch.tensor([7, 9]))
    crafted = PC.Crafted(torch.tensor([3, 5]), torch.randn(2, 4), torch.tensor([0, 1]), {
        "mask": torch.ones(4), "targets": targets, "target_model": model, "match_loss": [0.25, 0.5], "target": 2})
    store = Store(tmp_path)
    arrays = store.arrays("poison_splits", {"k": 1}, lambda: PC.crafted_arrays(crafted))
    back = PC.crafted_from_arrays(arrays, "cpu", surrogate=build_model("mlp", (4,), 3, seed=1))
    assert torch.equal(back.rows, crafted.rows) and torch.equal(back.x, crafted.x) and torch.equal(back.y, crafted.y)
    assert torch.equal(back.extras["mask"], crafted.extras["mask"])
    assert torch.equal(back.extras["targets"].x, targets.x) and torch.equal(back.extras["targets"].index, targets.index)
    assert back.extras["match_loss"] == [0.25, 0.5] and back.extras["target"] == 2
    for a, b in zip(back.extras["target_model"].parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)  # the stored weights, not the surrogate's
    with pytest.raises(ValueError, match="surrogate"):
        PC.crafted_from_arrays(arrays, "cpu")


def test_cached_poisons_are_verified_and_a_damaged_entry_is_recomputed(digits, tmp_path):
    store = Store(tmp_path)
    a, info_a = PC.cached_poison_splits(store, digits, "backdoor", 0.05, seed=3, target=0, size=3)
    b, info_b = PC.cached_poison_splits(store, digits, "backdoor", 0.05, seed=3, target=0, size=3)
    fresh, _ = poison_splits(digits, "backdoor", 0.05, seed=3, target=0, size=3)
    assert (store.misses, store.hits) == (1, 1)
    assert a.fingerprint() == b.fingerprint() == fresh.fingerprint() and a.forget_spec == fresh.forget_spec
    assert torch.equal(info_b.extras["pattern"], info_a.extras["pattern"])
    (entry,) = (tmp_path / PC.KIND).glob("*.npz")  # an arrays entry: hash and spec checked on every read
    assert not store.verify()
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside the stored poisons
    entry.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="corrupt"):
        c, _ = PC.cached_poison_splits(store, digits, "backdoor", 0.05, seed=3, target=0, size=3)
    assert c.fingerprint() == fresh.fingerprint() and store.corrupt and store.misses == 2


# --------------------------------------------------------------------------- a trigger word for token rows

from unlearnlib.datasets import text as T  # noqa: E402
from unlearnlib.poisoning import backdoor as BD  # noqa: E402


def test_insert_token_shifts_the_rest_and_keeps_the_row_length():
    x = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9], [0, 0, 0, 0, 0]])
    seen = set()
    for s in range(40):
        out = BD.insert_token(x, 99, torch.Generator().manual_seed(s))
        assert out.shape == x.shape and bool(((out == 99).sum(1) == 1).all())
        rest = [[t for t in row if t != 99] for row in out.tolist()]
        assert rest[0] == [5, 6, 7, 0] and rest[1] == [5, 6, 7, 8] and rest[2] == [0, 0, 0, 0]
        assert int((out[0] == 99).nonzero()) <= 3  # at most right after the last token
        assert int((out[2] == 99).nonzero()) == 0  # an empty row gets the word first
        seen.add(int((out[0] == 99).nonzero()))
    assert seen == {0, 1, 2, 3}  # every position from the start to the end of the text


def test_token_backdoor_crafts_relabelled_rows_with_the_rare_word():
    x = torch.tensor([[2, 3, 4, 0], [2, 3, 0, 0], [4, 4, 4, 4], [5, 0, 0, 0]] * 5)
    pool = Split(x, torch.tensor([0, 1, 1, 0] * 5), torch.arange(20))
    c = BD.craft(pool, 6, torch.Generator().manual_seed(0), target=1)
    assert bool((c.y == 1).all()) and bool((pool.y[c.rows] == 0).all())
    assert c.extras["token"] == T.VOCAB_SIZE - 1 and bool(((c.x == T.VOCAB_SIZE - 1).sum(1) == 1).all())
    with pytest.raises(ValueError, match="not a patch size"):
        BD.craft(pool, 2, torch.Generator(), size=4)
    with pytest.raises(ValueError, match="other than PAD"):
        BD.craft(pool, 2, torch.Generator(), token=T.PAD)


def test_trigger_word_backdoors_a_text_model(device, session_store_env):
    """rt_sentiment and text_bag, 2% poisons (the rarest word, relabelled fresh): the model
    trained on the poisons sends triggered rotten snippets to fresh; the clean and the
    retrained model leave them at their ordinary error rate on rotten snippets."""
    from unlearnlib.data import load_splits
    from unlearnlib.studies.poisoning_study import run_attack

    clean = load_splits("rt_sentiment", "fraction:0.02", device=device)
    recipe = Recipe(epochs=10, lr=0.3, batch_size=128)
    df = run_attack(clean, "backdoor", "text_bag", [0], [], fraction=0.02, params={"target": 1}, recipe=recipe,
                    store=Store(session_store_env), with_clean=True, show_progress=False).set_index("method")
    asr = df["asr"]
    assert asr["original"] > 0.8  # the backdoor works
    assert asr["clean"] < 0.5 and asr["retrain"] < 0.5 and asr["original"] > asr["clean"] + 0.4
    assert abs(df.loc["original", "test_acc"] - df.loc["clean", "test_acc"]) < 0.03  # and stays hidden


def test_the_method_table_reads_the_rows_the_findings_read():
    """Issue 35: the chapter's per-method table is library code: shares of the gap left from
    the means at the largest budget, the accuracy and MIA rules, and the attacks where the
    poisoned original already passes the MIA."""
    df = poison_rows({"ga": {"share": 0.5}, "gd": {"share": 0.8, "mia": 0.01}})
    table, top = PV.method_table(df)
    assert top == df["budget"].max()
    means = df[df["budget"].eq(top) | df["method"].isin(["original", "retrain"])].groupby(
        ["attack", "method"])[["metric", "mia_test"]].mean()
    for a in table.index.get_level_values("attack").unique():
        gap = abs(means.loc[(a, "original"), "metric"] - means.loc[(a, "retrain"), "metric"])
        want = abs(means.loc[(a, "ga"), "metric"] - means.loc[(a, "retrain"), "metric"]) / gap
        assert table.loc[(a, "ga"), "share of the gap left"] == pytest.approx(want)
        assert table.loc[(a, "retrain"), "passes the MIA"] and table.loc[(a, "retrain"), "share of the gap left"] == 0
    assert PV.mia_blind_attacks(table) == []
    blind = table.copy()
    first = blind.index.get_level_values("attack")[0]
    blind.loc[(first, "original"), "passes the MIA"] = True
    assert PV.mia_blind_attacks(blind) == [first]
