"""One dict of metrics per model, and its comparison to the retrained model."""

from __future__ import annotations

from torch import nn

from ..data import Splits
from ..predict import accuracy_of, logits
from . import registry
from .entropy_mia import entropy_mia, features_of
from .metrics import indiscernibility, indiscernibility_to, mean_loss, ratios, retdev
from .mia import population_mia


def evaluate_model(model: nn.Module, splits: Splits, seed: int = 0) -> dict[str, float]:
    """RA, FA, VA, TA and the loss-based population MIA (forget vs val and vs test).

    ``indisc`` is the indiscernibility of the validation MIA, the quantity Deep
    Unlearn's tuning objective uses. nabla-tau's entropy feature adds
    ``mia_entropy_val/test`` and the joint loss+entropy ``mia_joint_val/test``.
    ``forget_loss`` and ``val_loss`` are the mean cross-entropies on D_f and D_v:
    nabla-tau's stopping point is forget_loss reaching val_loss (its tau).

    One forward pass per split: every metric of a split reads the same logits (a tuning
    trial evaluated each split up to four times; issue 32). The keys are the registry's
    ``report`` metrics, in its order (:func:`~.registry.select`).
    """
    names = ("retain", "forget", "val", "test")
    z = {k: logits(model, getattr(splits, k)) for k in names if len(getattr(splits, k))}
    feats = {k: features_of(z[k], getattr(splits, k).y) for k in ("forget", "val", "test")}
    # contiguous: a strided column sums in another order (the last bit of forget_loss moved)
    loss_f, loss_v, loss_t = (feats[k][:, 0].contiguous() for k in ("forget", "val", "test"))
    mia_val = population_mia(loss_f, loss_v, seed=seed)
    mia_test = population_mia(loss_f, loss_t, seed=seed)
    return registry.select("report", {
        **{f"{k}_acc": accuracy_of(z[k], getattr(splits, k).y) if k in z else float("nan") for k in names},
        "mia_val": mia_val,
        "mia_test": mia_test,
        "indisc": indiscernibility(mia_val),
        "forget_loss": mean_loss(loss_f),
        "val_loss": mean_loss(loss_v),
        **entropy_mia(model, splits, seed=seed, feats=feats),
    })


def compare_to_reference(m: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    """RR, FR, TR and RetDev of metrics ``m`` against the retrained model's ``ref`` (a
    RetDev term whose reference accuracy is 0 is a difference, :func:`~.metrics.retdev`),
    and ``indisc_retrained``: the val MIA's indiscernibility measured against the
    retrained model's own val MIA (:func:`~.metrics.indiscernibility_to`)."""
    args = (m["retain_acc"], m["forget_acc"], m["test_acc"],
            ref["retain_acc"], ref["forget_acc"], ref["test_acc"])
    return registry.select("comparison", {**ratios(*args), "retdev": retdev(*args),
                                          "indisc_retrained": indiscernibility_to(m["mia_val"], ref["mia_val"])})
