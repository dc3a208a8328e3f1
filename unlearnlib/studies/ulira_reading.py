"""The per-sample chapter's numbers and readings (chapter *U-LiRA*), and the shadow-attack
table that the text and nabla-tau chapters show.

- :func:`attack_run`: one row per method of a shadow set: the population loss-MIA, U-LiRA
  (Hayes et al. 2024), the NeurIPS 2023 score, the accuracies and whether the method keeps
  its utility, with the 95% Student-t half-widths behind the chapter's interval plot;
- :func:`undertrained`: the methods whose shadows beat the original shadows' test accuracy
  (a sign the shadows trained too briefly);
- :func:`readings`: what each attack concludes per method, read by the scorecard's rule
  (:func:`~unlearnlib.studies.scorecard.classify`: the score normalised between the original
  and the retrained shadows within :data:`~unlearnlib.studies.scorecard.TOL` of 1, and no
  pass without utility); the methods that pass the population MIA but fail U-LiRA are the
  scorecard's *false sense of success* (:func:`~unlearnlib.studies.scorecard.false_sense`);
- :func:`shadow_attack_table`: U-LiRA and the population MIA per method of a shadow set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluation.lira import (
    ShadowOutputs,
    ShadowSet,
    ULiRAResult,
    population_mia_on_shadows,
    population_mia_per_shadow,
    ulira,
)
from ..evaluation.neurips import neurips_score
from . import scorecard
from .verdicts import UTILITY, t_half_width

if TYPE_CHECKING:
    from ..shadows import ShadowRunner

#: The two attacks the chapter reads: table column -> the scorecard's test key.
ATTACKS = {"population MIA (forget vs test)": "mia_test", "U-LiRA accuracy": "ulira_accuracy"}
#: The readings' columns, one per attack (:func:`readings`).
SAYS = ("population MIA says", "U-LiRA says")
REFERENCES = ("original", "retrain")
#: What the readings say (:func:`readings`).
FORGOTTEN, NOT_FORGOTTEN = "forgotten", "not forgotten"
UTILITY_LOST = "not unlearning (utility lost)"
UNRESOLVED = "no reading (gap not resolved)"
#: A non-reference method this much above the original shadows' test accuracy flags the
#: shadows as undertrained (:func:`undertrained`).
ABOVE_ORIGINAL = 0.02




@dataclass
class AttackRun:
    """The chapter's numbers: ``table`` (one row per method label), ``spread`` (label ->
    attack column -> (95% half-width, number of units it is over)), ``results`` (method key
    -> U-LiRA result) and ``names`` (method key -> label)."""

    table: pd.DataFrame
    spread: dict[str, dict[str, tuple[float, int]]]
    results: dict[str, ULiRAResult]
    names: dict[str, str]
    retrained_test_acc: float


def retrained_test_acc(outputs: Mapping[str, ShadowOutputs], reference: ShadowOutputs) -> float:
    """Mean test accuracy of the ``retrain`` shadows, else of the retrained reference."""
    return float((outputs["retrain"] if "retrain" in outputs else reference).test_acc.mean())


def attack_run(shadows: ShadowSet, outputs: Mapping[str, ShadowOutputs], reference: ShadowOutputs,
               names: Mapping[str, str], sources: Mapping[str, str] | None = None, mode: str = "online",
               utility: float = UTILITY) -> AttackRun:
    """Every attack on every method's unlearned shadows ``outputs`` (key -> outputs, in order).

    ``reference``: the shadows retrained without their forget sets (the NeurIPS score's
    oracle); ``names``: key -> label (the table's index); ``sources``: key -> where its
    hyperparameters came from. *keeps utility*: mean test accuracy at most ``utility`` below
    the retrained shadows' (:func:`retrained_test_acc`). The intervals are over the shadow
    models (population MIA, :func:`population_mia_per_shadow`) and over the targets (U-LiRA's
    per-sample accuracy).
    """
    sources = sources or {}
    ta_ret = retrained_test_acc(outputs, reference)
    rows, results, spread = [], {}, {}
    for m, out in outputs.items():
        res = ulira(shadows, out, mode=mode)
        ns = neurips_score(shadows, out, reference)
        results[m] = res
        pop = population_mia_per_shadow(shadows, out)
        spread[names[m]] = {"population MIA (forget vs test)": (t_half_width(pop), len(pop)),
                            "U-LiRA accuracy": (t_half_width(res.per_sample_accuracy),
                                                int(np.isfinite(res.per_sample_accuracy).sum()))}
        rows.append({
            "method": names[m], "hyperparameters": sources.get(m, "-" if m in REFERENCES else "defaults"),
            "population MIA (forget vs test)": float(pop.mean()),
            "U-LiRA accuracy": res.metrics["accuracy"], "U-LiRA best accuracy": res.metrics["best_accuracy"],
            "U-LiRA AUC": res.metrics["auc"], "TPR @ 1% FPR": res.metrics["tpr_at_1pct_fpr"],
            "TPR @ 0.1% FPR": res.metrics["tpr_at_0.1pct_fpr"],
            "NeurIPS F": ns.forgetting_quality, "NeurIPS score": ns.score,
            "RA": out.retain_acc.mean(), "FA": out.forget_acc.mean(), "TA": out.test_acc.mean(),
            "keeps utility": bool(out.test_acc.mean() >= ta_ret - utility),
        })
    return AttackRun(pd.DataFrame(rows).set_index("method"), spread, results, dict(names), ta_ret)


def undertrained(table: pd.DataFrame, names: Mapping[str, str], margin: float = ABOVE_ORIGINAL) -> pd.Series:
    """Test accuracy ``TA`` of the non-reference methods of ``table`` that beat the original
    shadows' by more than ``margin`` (fine-tuning on the retain set then keeps training:
    the shadows are undertrained); empty without an ``original`` row."""
    if "original" not in names:
        return pd.Series(dtype=float, name="TA")
    refs = [names[m] for m in REFERENCES if m in names]
    ta = table["TA"]
    return ta[(ta > ta[names["original"]] + margin) & ~ta.index.isin(refs)]


@dataclass
class Readings:
    """What each attack says per method (``frame``: test accuracy and one column per attack),
    the methods the population MIA alone calls forgotten (the scorecard's false sense of
    success), those U-LiRA alone calls forgotten, and the methods compared (no reference)."""

    frame: pd.DataFrame
    population_only: list[str]
    ulira_only: list[str]
    compared: list[str]
    tol: float
    utility: float


def _says(passed: np.ndarray, known: np.ndarray, keeps: np.ndarray) -> list[str]:
    return [UTILITY_LOST if not k else (UNRESOLVED if not kn else (FORGOTTEN if p else NOT_FORGOTTEN))
            for p, kn, k in zip(passed, known, keeps, strict=True)]


def resolved(table: pd.DataFrame, spread: Mapping[str, Mapping[str, tuple[float, int]]], original: str,
             retrained: str) -> dict[str, bool]:
    """Per attack column of :data:`ATTACKS`: whether the gap between the ``original`` and the
    ``retrained`` rows of ``table`` is resolved, i.e. larger than the half-width of its 95%
    interval, sqrt(h_o^2 + h_r^2) from the two rows' half-widths in ``spread`` (as
    :func:`attack_run` gives them; a NaN half-width, one unit, resolves nothing). The
    scorecard's counterpart (:func:`~.scorecard.resolved_gaps`) reads a bootstrap of the gap;
    this chapter has no bootstrap, so it reads the intervals it shows."""
    out = {}
    for col in ATTACKS:
        gap = abs(table.at[retrained, col] - table.at[original, col])
        half = float(np.hypot(spread[original][col][0], spread[retrained][col][0]))
        out[col] = bool(np.isfinite(half) and gap > half)
    return out


def readings(table: pd.DataFrame, names: Mapping[str, str],
             spread: Mapping[str, Mapping[str, tuple[float, int]]] | None = None, tol: float = scorecard.TOL,
             utility: float = UTILITY) -> Readings | None:
    """The population MIA's and U-LiRA's reading of every method of :func:`attack_run`'s
    ``table``, by the scorecard's rule: each attack's accuracy is normalised between the
    original (0) and the retrained (1) shadows (:func:`~.scorecard.normalise`) and passes
    within ``tol`` of 1 (:func:`~.scorecard.classify`); a method more than ``utility`` below
    the retrained shadows' test accuracy passes nothing. With ``spread`` (:func:`attack_run`'s),
    an attack whose original-retrained gap is not resolved (:func:`resolved`) reads nothing,
    as an unresolved test of the scorecard. None without both references."""
    if not all(m in names for m in REFERENCES):
        return None
    keys = list(names)
    labels = [names[m] for m in keys]
    t = table.loc[labels]
    o, r = keys.index("original"), keys.index("retrain")
    score = {test: scorecard.normalise(t[col].to_numpy(float)[None, :], o, r) for col, test in ATTACKS.items()}
    if spread is not None:
        ok = resolved(t, spread, names["original"], names["retrain"])
        score = {test: v if ok[col] else np.full_like(v, np.nan) for (col, test), v in zip(ATTACKS.items(),
                                                                                         score.values(), strict=True)}
    keeps = scorecard.utility_mask(t["TA"].to_numpy(float)[None, :], r, utility)
    reading = scorecard.classify(score, keeps, keys, tests=list(ATTACKS.values()), tol=tol)
    passed, known = reading.passed[0], reading.known[0]
    frame = pd.DataFrame({"test accuracy": t["TA"].round(3).to_numpy(),
                          **{say: _says(passed[:, j], known[:, j], keeps[0]) for j, say in enumerate(SAYS)}},
                         index=pd.Index(labels, name="method"))
    other = np.array([m not in REFERENCES for m in keys])
    pop_only = scorecard.false_sense(reading, population="mia_test")[0] & other
    ulira_only = keeps[0] & passed[:, 1] & known[:, 0] & ~passed[:, 0] & other
    return Readings(frame, [labels[i] for i in np.nonzero(pop_only)[0]], [labels[i] for i in np.nonzero(ulira_only)[0]],
                    [labels[i] for i in np.nonzero(other)[0]], tol, utility)


def shadow_attack_table(shadows: ShadowSet, outputs: Mapping[str, ShadowOutputs], mode: str = "online"
                        ) -> pd.DataFrame:
    """U-LiRA (``mode``: accuracy, AUC, TPR at 1% FPR), the population MIA on the shadows and
    the mean forget and test accuracy, one row per method of ``outputs`` (key -> outputs)."""
    rows = []
    for m, out in outputs.items():
        res = ulira(shadows, out, mode=mode)
        rows.append({"method": m, "U-LiRA accuracy": res.metrics["accuracy"], "U-LiRA AUC": res.metrics["auc"],
                     "TPR @ 1% FPR": res.metrics["tpr_at_1pct_fpr"],
                     "population MIA": population_mia_on_shadows(shadows, out),
                     "FA": out.forget_acc.mean(), "TA": out.test_acc.mean()})
    return pd.DataFrame(rows).set_index("method")


def names_of(keys: Sequence[str], model: str) -> dict[str, str]:
    """Method key -> its label on ``model`` (CT on a 1-D CNN: "ct (1-D extension)")."""
    from .. import methods

    return {m: methods.get(m).label(model) for m in keys}


def shadow_attacks(splits, model: str, config, store, hparams: Mapping[str, Mapping | None], methods: Sequence[str],
                   show_progress: bool = True) -> tuple[pd.DataFrame, "ShadowRunner"]:
    """Train (or read from the store) the shadows of ``config`` on ``splits`` and every method
    of ``methods`` unlearning on them, on the book's workers when it has some
    (:func:`~.executors.using`), with ``hparams`` (method -> its hyperparameters; absent or
    None: the defaults): (:func:`shadow_attack_table`, the runner)."""
    from ..shadows import ShadowRunner
    from . import executors

    runner = ShadowRunner(splits, model, config, store, show_progress=show_progress)
    with executors.using() as ex:
        outputs = runner.outputs_many({m: hparams.get(m) for m in methods}, ex)
    return shadow_attack_table(runner.shadows, outputs), runner


def shadow_caption(shadows: ShadowSet) -> str:
    """How many shadow splits, training rows per shadow and forgotten rows per unlearned shadow."""
    return (f"{shadows.config.k} shadow splits of {int(shadows.in_masks[0].sum())} training rows; "
            f"{int(shadows.forget_masks[0].sum())} forgotten per unlearned shadow")


def forgotten_caption(shadows: ShadowSet, seconds: float) -> str:
    """How many shadow splits, rows forgotten of the rows trained on per shadow, and the time."""
    return (f"{shadows.config.k} shadows, {int(shadows.forget_masks[0].sum())} forgotten of "
            f"{int(shadows.in_masks[0].sum())} per shadow: {seconds:.0f} s")
