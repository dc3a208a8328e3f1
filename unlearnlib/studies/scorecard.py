"""The scorecard: every registered method against every test of unlearning, on one scale.

Each test gives a raw number per method (an accuracy, an attack's accuracy, a p-value's
KS distance, a weight distance, ...). Every cell is normalised against the two reference
models of the same test,

    s = (v - v_original) / (v_retrained - v_original),

so 0 is the untouched original model, 1 is the retrained model and the sign and units
of the raw test no longer matter (:func:`normalise`). A test whose original-retrained
gap is not resolved at this budget (its 95% bootstrap interval contains 0) cannot
normalise anything and is left out of every pass/fail reading (:func:`resolved_gaps`).

Tests (:data:`TESTS`), by where their numbers come from:

- *seeds* (full-data models of every seed; :func:`seed_rows`): forget accuracy, RetDev,
  the population loss- and entropy-MIA (Deep Unlearn; nabla-tau), the relearning attack
  (Siddiqui et al. 2025: forget accuracy after fine-tuning on D_r alone,
  :func:`relearning_row`) and the verification error (Thudi et al. 2022: L2 distance of
  the weights to the retrained model);
- *shadows* (one shadow set, :class:`~unlearnlib.evaluation.lira.ShadowRunner`, shared by
  every test; :func:`shadow_arrays`): U-LiRA accuracy and TPR at 1% FPR (Hayes et al.
  2024), RMIA's AUC (Zarifzadeh et al. 2024), the NeurIPS 2023 forgetting quality F
  (Triantafillou et al. 2024), KLOM (Georgiev et al. 2024: KL(oracle || unlearned), left
  out where the shadows give it too few models per point for its small-sample floor to
  leave room below its ceiling, :func:`klom_resolution`) and TOFU's forget quality
  (Maini et al. 2024), read through its KS distance (at a fixed number of forget samples
  the p-value is a decreasing function of it, so both rank alike; the distance is linear
  and resamples well, the p-value is shown beside it);
- *poison* (Pawelczyk et al. 2024's setting; :func:`poison_rows`): the Gaussian
  Unlearning Score after unlearning the poisons within a compute budget, where 0 = the
  poisoned model and 1 = the model retrained without the poisons, so 1 - s is the share
  of the poison gap a method leaves.

Uncertainty (:func:`bootstrap_values`): one joint bootstrap. Each draw resamples the
seeds of the full-data rows (paired: every method of a drawn seed comes along), the
seeds of the poisoning rows, and the shadow set's target samples (paired likewise; the
per-pair scores are kept, as the Gaussians of LiRA are per sample). Draw 0 is the point
estimate. Everything downstream (normalised scores, passes) is computed per draw, and every
interval the scorecard publishes (values, scores, the resolved gaps; :func:`_interval`) is
the library's t-scaled bootstrap interval of those draws
(:func:`~unlearnlib.studies.verdicts.interval_from_draws`): each side of the percentile
interval stretched around the estimate by :func:`~unlearnlib.studies.verdicts.t_scale` at
the number of units the statistic resamples (:meth:`Draws.sample_size`: a test's seeds or
shadow targets). The plain percentile interval is too narrow in small samples (Hesterberg
2015): a "95%" interval of a mean over 5 seeds covers about 83%; the stretch makes it
Student's t interval there. One seed gives no interval (NaN), so no test is resolved.

The verdicts count methods, and a count is a sum of 0/1 readings: wherever 97.5% of its
draws agree, its interval has a zero-length side that no stretch widens, and a method on a
pass boundary would be decided by the plain percentile bootstrap
(:mod:`.calibration_scorecard` measured up to 10% wrong verdicts a side). So the counts are
decided from the per-(method, test) scores instead (:func:`certain_readings`): a method
*certainly passes* a test when the score's one-sided bounds (:func:`score_bounds`: the same
t-scaled stretch, at a chosen tail, through :meth:`~unlearnlib.studies.verdicts.Resampled.bound`)
lie inside [1 - TOL, 1 + TOL], and *certainly fails* it when they lie wholly outside; a
count's interval runs from the methods certainly counting to the methods not certainly
excluded. Each side keeps its 2.5% error over the M methods and T tests it combines by
Bonferroni, as :func:`~unlearnlib.studies.verdicts.extreme_evidence` does for minima and
maxima: a side that one wrong reading of m can break reads each at 2.5% / m, a side that
needs all of them wrong is not corrected. "None passes" reads its low end at 2.5% / M and
its high end at 2.5% / T; "false sense" its low end at 2.5% / M (the loss-MIA) and 2.5% /
(M D) (each of D deeper tests), its high end at 2.5% / 2 (the reasoning is in
:func:`scorecard_verdicts`). The price is power: a method must clear the pass band by a
corrected bound. Utility is read at the point estimate, as the reading's row 0 does (not
resampled: a method on the utility boundary is decided by its estimate, uncalibrated).

Reading (:func:`classify`): a method *passes* a test when its score lies within
:data:`TOL` of 1 (it closes at least 80% of the gap without overshooting it by more than
20%). The book's utility constraint: a method whose test accuracy is more than
:data:`UTILITY` below the retrained model's passes no test (a broken model is at chance
for every attack). *False sense of success* (Pawelczyk et al. 2024; Hayes et al. 2024):
a utility-keeping method that passes the population loss-MIA and fails at least one
per-sample, relearning or poisoning test (:data:`DEEPER_GROUPS`). Rankings by different
tests are compared by Kendall's tau (:func:`kendall_matrix`).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from torch import nn

from .. import methods as registry
from ..data import Splits
from ..evaluation.forget_quality import forget_quality_on_shadows
from ..evaluation.klom import ORACLE_FIRST, klom_on_shadows, max_klom, small_sample_floor
from ..evaluation.lira import OUTPUTS_VERSION, ShadowOutputs, ShadowRunner, ShadowSet, ulira
from ..evaluation.neurips import neurips_score
from ..evaluation.relearning import relearning_attack
from ..evaluation.rmia import rmia
from ..store import Store, canonical_json
from ..training import ReferenceModels, model_spec
from . import verdicts as vd
from .worker_cache import load, splits_key, stored

if TYPE_CHECKING:
    from .poisoning_study import SeedKeys, SeedRun

#: Bump when what a cached scorecard entry holds changes.
SCORECARD_VERSION = 1
REFERENCES = ("original", "retrain")
#: A method may lose at most this much test accuracy against retraining (the book's rule).
UTILITY = vd.UTILITY
#: A method passes a test when its normalised score is within TOL of 1.
TOL = 0.2
#: Bootstrap draws behind every interval of the scorecard.
N_BOOT = 400
#: FPR at which U-LiRA's TPR is read (strictly below, as :func:`~unlearnlib.evaluation.lira.tpr_at_fpr`).
LOW_FPR = 0.01
#: Methods whose cost no compute budget bounds: FF's Fisher pass and IU's Hessian estimate
#: are not capped by ``max_sample_grads`` (their docstrings), so they cannot take part in
#: Pawelczyk et al.'s budgeted protocol.
UNBUDGETED = ("ff", "iu")


@dataclass(frozen=True)
class Test:
    """One column of the scorecard."""

    key: str
    label: str
    group: str    # accuracy, population, per-sample, relearning, weights, poisoning
    source: str   # seeds, shadows or poison: which rows (and which bootstrap) give its numbers
    reads: str    # what the raw value is


TESTS: tuple[Test, ...] = (
    Test("forget_acc", "forget accuracy", "accuracy", "seeds", "accuracy on D_f"),
    Test("retdev", "RetDev", "accuracy", "seeds", "|RR-1| + |FR-1| + |TR-1| against the retrained model"),
    Test("mia_test", "loss-MIA", "population", "seeds", "logistic-regression attack on the loss, D_f vs D_t"),
    Test("mia_entropy_test", "entropy-MIA", "population", "seeds",
         "logistic-regression attack on the prediction entropy, D_f vs D_t"),
    Test("ulira_accuracy", "U-LiRA accuracy", "per-sample", "shadows",
         "balanced accuracy of the per-sample likelihood-ratio attack on unlearned shadows"),
    Test("ulira_tpr", "U-LiRA TPR@1%FPR", "per-sample", "shadows", "U-LiRA's true-positive rate below 1% FPR"),
    Test("rmia_auc", "RMIA AUC", "per-sample", "shadows", "AUC of offline RMIA on the same shadows"),
    Test("neurips_f", "NeurIPS F", "per-sample", "shadows",
         "NeurIPS 2023 forgetting quality (mean 2^-bin of the per-example epsilon)"),
    Test("klom", "KLOM", "per-sample", "shadows",
         "95th percentile over forget points of the binned KL(oracle || unlearned) of margins"),
    Test("ks_distance", "forget quality (KS D)", "per-sample", "shadows",
         "KS distance of per-sample mean phi on D_f, unlearned vs oracle (TOFU's forget quality is its p-value)"),
    Test("relearn_acc", "relearning", "relearning", "seeds",
         "forget accuracy after fine-tuning on the retain set alone (held-out part of D_f)"),
    Test("l2_to_retrained", "verification error", "weights", "seeds", "L2 distance of the weights to the retrained model"),
    Test("gus", "poison GUS", "poisoning", "poison",
         "Gaussian Unlearning Score of the poisons after unlearning them within the budget"),
)
TEST_KEYS = tuple(t.key for t in TESTS)
#: Tests whose failure, next to a passed population MIA, is a false sense of success.
DEEPER_GROUPS = ("per-sample", "relearning", "poisoning")
#: The population MIA whose pass the false sense of success is about (Pawelczyk et al.'s).
POPULATION_TEST = "mia_test"


ULIRA_MODES = ("online", "offline", "fixed_variance")


def check_options(hparams_from: str = "shipped", deeper: str = "utility", ulira_mode: str = "fixed_variance",
                  poison_budget: float = 0.1, n_boot: int = N_BOOT) -> None:
    """One clear ``ValueError`` for a scorecard option outside what is allowed."""
    if hparams_from not in ("shipped", "defaults"):
        raise ValueError(f"hparams_from must be 'shipped' or 'defaults'; got {hparams_from!r}.")
    if deeper not in ("utility", "all"):
        raise ValueError(f"deeper must be 'utility' (the methods keeping their test accuracy) or 'all'; got {deeper!r}.")
    if ulira_mode not in ULIRA_MODES:
        raise ValueError(f"ulira_mode must be one of {', '.join(ULIRA_MODES)}; got {ulira_mode!r}.")
    if not 0.0 < float(poison_budget) <= 1.0:
        raise ValueError(f"poison_budget is a fraction of the training compute in (0, 1]; got {poison_budget!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer >= 10; got {n_boot!r}.")


def test_of(key: str) -> Test:
    for t in TESTS:
        if t.key == key:
            return t
    raise ValueError(f"Unknown scorecard test {key!r}; allowed: {', '.join(TEST_KEYS)}.")


# --------------------------------------------------------------------------- hyperparameters


def hparams_for(setup, keys: Sequence[str], source: str = "shipped") -> dict[str, tuple[dict, str]]:
    """``{method: (hparams, where they came from)}``: the package's shipped tuned entry for
    ``setup`` where it has one (``source="shipped"``), else the defaults (``{}``)."""
    from .hpo import shipped_entry

    if source not in ("shipped", "defaults"):
        raise ValueError(f"source must be 'shipped' or 'defaults'; got {source!r}.")
    out: dict[str, tuple[dict, str]] = {}
    for m in keys:
        entry = shipped_entry(setup, m) if source == "shipped" and not registry.get(m).reference else None
        if entry:
            out[m] = (dict(entry["hparams"]),
                      f"shipped ({entry['trials_per_seed']} trials x {len(entry['tuning_seeds'])} seed(s))")
        else:
            out[m] = ({}, "reference" if registry.get(m).reference else "defaults")
    return out


# --------------------------------------------------------------------------- full-data rows


def unlearned_model(key: str, refs: ReferenceModels, splits: Splits, hparams: Mapping[str, Any]) -> nn.Module:
    """The model :func:`~unlearnlib.studies.experiment.run_method` evaluates for ``key``: the
    same data, seed and hyperparameters (deterministic on the CPU), so the relearning attack
    sees the model whose row the scorecard reads."""
    if key == "original":
        return refs.original
    if key == "retrain":
        return refs.retrained
    data = registry.UnlearnData.from_splits(splits, seed=refs.seed, model_name=refs.model_name,
                                            init_state=refs.init_state, train_recipe=refs.recipe)
    return registry.get(key)(refs.original, data, **dict(hparams))


def relearning_spec(setup, key: str, seed: int, hparams: Mapping[str, Any] | None = None,
                    attack: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The store spec of :func:`relearning_row`'s entry."""
    method = registry.get(key)
    hp = method.resolve_hparams(dict(hparams or {}), setup.scale)
    return {**model_spec(setup.splits, setup.model, setup.recipe, seed), **method.identity, "hparams": hp,
            "attack": dict(sorted(dict(attack or {}).items())), "scorecard": SCORECARD_VERSION}


def relearning_row(setup, key: str, seed: int, hparams: Mapping[str, Any] | None = None,
                   **attack: Any) -> dict[str, Any]:
    """The relearning attack (:func:`~unlearnlib.evaluation.relearning.relearning_attack`,
    its defaults unless ``attack`` says otherwise) on ``key``'s unlearned model of ``seed``;
    cached. ``relearn_acc`` is the retain case's forget accuracy after the last step."""
    spec = relearning_spec(setup, key, seed, hparams, attack)

    def compute() -> list[dict]:
        refs = setup.refs(seed)
        model = unlearned_model(key, refs, setup.splits, spec["hparams"])
        res = relearning_attack(model, refs.retrained, refs.original, setup.splits, **attack)
        return [{**res.as_row(), "relearn_acc": res.retain.unlearned.after}]

    return setup.store.rows("scorecard_relearn", spec, compute)[0]


def relearning_unit(store: Store, key, method: str, seed: int, hparams: dict, attack: dict) -> None:
    """A task (:mod:`.executors`): one :func:`relearning_row` in a worker (``key``: the
    setup's :class:`~.executors.SetupKey`)."""
    from .experiment import worker_setup

    relearning_row(worker_setup(store, key), method, int(seed), hparams, **attack)


def utility_keepers(rows: pd.DataFrame, utility: float = UTILITY) -> list[str]:
    """Non-reference methods whose mean test accuracy is at most ``utility`` below the
    retrained model's (means over the seeds of ``rows``), in row order."""
    ta = rows.groupby("method", sort=False)["test_acc"].mean()
    if "retrain" not in ta.index:
        raise ValueError("utility_keepers needs the retrain rows.")
    return [m for m in ta.index if m not in REFERENCES and ta[m] >= ta["retrain"] - utility]


def seed_rows(setup, keys: Sequence[str], seeds: Sequence[int], hparams: Mapping[str, tuple[dict, str]],
              executor: Any = None) -> pd.DataFrame:
    """One row per (method, seed): :meth:`~unlearnlib.studies.hpo.Setup.run` (accuracies,
    RetDev, MIAs, verification error: cached rows, shared with every chapter that runs the
    same method, seed and hyperparameters) and where the hyperparameters came from.
    ``hparams`` as :func:`hparams_for` returns it. The missing rows run first on
    ``executor`` (:func:`~unlearnlib.studies.experiment.compute_rows`: None is the
    scheduler of ``$UNLEARNLIB_SCHEDULER`` when set, else nothing ahead)."""
    from .experiment import compute_rows

    compute_rows(setup, [(key, seed, hparams.get(key, ({}, ""))[0]) for seed in seeds for key in keys],
                 executor, "scorecard rows")
    out = []
    for seed in seeds:
        for key in keys:
            hp, source = hparams.get(key, ({}, "defaults"))
            out.append({**setup.run(key, seed, hp), "hparams_source": source})
    return pd.DataFrame(out)


def with_relearning(rows: pd.DataFrame, setup, keys: Sequence[str], hparams: Mapping[str, tuple[dict, str]],
                    executor: Any = None, **attack: Any) -> pd.DataFrame:
    """``rows`` with ``relearn_acc`` (:func:`relearning_row`) for the methods in ``keys`` and
    every seed of ``rows``; NaN for the other methods. The missing attacks run first on
    ``executor``'s workers (as :func:`seed_rows`), each after its seed's reference models."""
    from . import executors
    from .experiment import UnitPlan

    wanted = [(m, int(s)) for m, s in zip(rows["method"], rows["seed"], strict=True) if m in keys]
    with executors.using(executor) as ex:
        if ex.parallel:
            plan = UnitPlan.for_setup(ex, setup)
            tasks = []
            for m, s in wanted:
                hp = dict(hparams.get(m, ({}, ""))[0])
                spec = relearning_spec(setup, m, s, hp, attack)
                tasks.append(ex.task(f"relearning attack on {m}, seed {s}", relearning_unit,
                                     (setup.task_key(), m, s, hp, dict(attack)), setup.store,
                                     needs=(plan.refs(s),), done=stored(setup.store, [("scorecard_relearn", spec)])))
            ex.run(tasks, setup.store, "relearning attacks", setup.show_progress)
    acc = [relearning_row(setup, m, int(s), hparams.get(m, ({}, ""))[0], **attack)["relearn_acc"]
           if m in keys else math.nan for m, s in zip(rows["method"], rows["seed"], strict=True)]
    return rows.assign(relearn_acc=acc)


# --------------------------------------------------------------------------- shadow tests


def _pairs(res) -> dict[str, np.ndarray]:
    """Scores and target columns of the game's positive and negative pairs."""
    pr, pc = np.nonzero(res.positive)
    nr, nc = np.nonzero(res.negative)
    return {"pos": res.scores[pr, pc], "pos_col": pc, "neg": res.scores[nr, nc], "neg_col": nc}


def per_target_means(shadows: ShadowSet, out: ShadowOutputs) -> tuple[np.ndarray, np.ndarray]:
    """(columns, mean phi over the rows that forgot each column): the statistic of
    :func:`~unlearnlib.evaluation.forget_quality.forget_quality_on_shadows`."""
    forget = shadows.forget_masks.numpy()
    cols = np.nonzero(forget.any(0))[0]
    f = forget[:, cols]
    return cols, np.where(f, out.phi[:, cols], 0.0).sum(0) / f.sum(0)


def evaluate_shadows(shadows: ShadowSet, out: ShadowOutputs, reference: ShadowOutputs,
                     mode: str = "fixed_variance") -> dict[str, np.ndarray]:
    """Everything the shadow tests need for one method's unlearned shadows ``out``, per pair,
    example or target column, so that any resampling of the targets can be scored later
    (:func:`shadow_values`).

    U-LiRA (``mode``) and RMIA: the scores of the game's positive and negative pairs with
    their target columns and the decision thresholds; NeurIPS: each forgotten example's H
    and column; KLOM: the per-point values over the pool (NaN: not a forget point); forget
    quality: the per-target mean phi of the unlearned and of the oracle rows (``reference``,
    the models retrained without each row's forget set). The ``*_point`` scalars are the
    library's own summaries, for the record.
    """
    u, r = ulira(shadows, out, mode=mode), rmia(shadows, out)
    ns, kl = neurips_score(shadows, out, reference), klom_on_shadows(shadows, out, reference)
    fq = forget_quality_on_shadows(shadows, out, reference)
    cols, mu = per_target_means(shadows, out)
    _, mr = per_target_means(shadows, reference)
    arrays = {f"ulira_{k}": v for k, v in _pairs(u).items()}
    arrays.update({f"rmia_{k}": v for k, v in _pairs(r).items()})
    point = {"ulira_accuracy": u.metrics["accuracy"], "ulira_tpr": u.metrics["tpr_at_1pct_fpr"],
             "rmia_auc": r.metrics["auc"], "neurips_f": ns.forgetting_quality, "klom": kl.summary["forget"]}
    arrays.update({f"{k}_point": np.float64(v) for k, v in point.items()})
    arrays.update({
        "ulira_threshold": np.float64(u.metrics["threshold"]), "rmia_threshold": np.float64(r.metrics["threshold"]),
        "neurips_h": ns.h, "neurips_col": np.nonzero(shadows.forget_masks.numpy().any(0))[0],
        "klom": kl.values["forget"], "fq_col": cols, "fq_u": mu, "fq_r": mr,
        "fq_pvalue": np.float64(fq.pvalue), "fq_statistic": np.float64(fq.statistic),
        "test_acc": np.float64(out.test_acc.mean()), "forget_acc": np.float64(out.forget_acc.mean()),
    })
    return arrays


def shadow_arrays(runner: ShadowRunner, key: str, hparams: Mapping[str, Any] | None = None,
                  mode: str = "fixed_variance") -> dict[str, np.ndarray]:
    """:func:`evaluate_shadows` of ``key``'s unlearned shadows (trained or read from the
    store by ``runner``, with the oracles shared by every method), cached in the store."""
    hp = _shadow_hparams(runner, key, hparams)
    return runner.store.arrays("scorecard_shadow", _shadow_spec(runner, key, hp, mode), lambda: evaluate_shadows(
        runner.shadows, runner.outputs(key, hp), runner.outputs("retrained-reference"), mode))


def shadow_arrays_many(runner: ShadowRunner, hparams: Mapping[str, Mapping[str, Any] | None],
                       mode: str = "fixed_variance", executor: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """:func:`shadow_arrays` of every key of ``hparams`` (key -> its hyperparameters), in
    that order. The shadow groups that the missing arrays need run first on ``executor``
    (:func:`.executors.resolve`: None is the scheduler of ``$UNLEARNLIB_SCHEDULER`` when
    set, as in the book's kernels, else serial), one task per method
    (:meth:`ShadowRunner.outputs_many`); the arrays are then computed here from the stored
    outputs, so they are the same on every executor."""
    from . import executors

    hp = {k: _shadow_hparams(runner, k, v) for k, v in hparams.items()}
    missing = {k: v for k, v in hp.items() if not runner.store.has("scorecard_shadow", _shadow_spec(runner, k, v, mode))}
    if missing:
        with executors.using(executor) as ex:
            if ex.parallel:
                runner.outputs_many({"retrained-reference": None, **missing}, ex)
    return {k: shadow_arrays(runner, k, v, mode) for k, v in hp.items()}


def _shadow_hparams(runner: ShadowRunner, key: str, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if key in REFERENCES else registry.get(key).resolve_hparams(dict(hparams or {}), runner.scale)


def _shadow_spec(runner: ShadowRunner, key: str, hp: Mapping[str, Any], mode: str) -> dict[str, Any]:
    ident = {"method": key} if key in REFERENCES else registry.get(key).identity
    # the shadow outputs' version (RMIA's float64 test phi) and KLOM's direction change these values
    return {**runner.spec, **ident, "hparams": hp, "mode": mode, "scorecard": SCORECARD_VERSION,
            "outputs": OUTPUTS_VERSION, "klom_direction": ORACLE_FIRST}


def weighted_roc(pos: np.ndarray, pos_w: np.ndarray, neg: np.ndarray, neg_w: np.ndarray,
                 low_fpr: float = LOW_FPR) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, TPR at FPR strictly below ``low_fpr``) of scores with weights, for B weightings at once.

    ``pos_w`` (B, n_pos) and ``neg_w`` (B, n_neg) weigh each pair (a bootstrap's
    multiplicities). The curve has one point per distinct score (ties form one step, no
    point is dropped) from (0, 0); the AUC is its trapezoidal area, which counts a tied
    positive-negative pair as 1/2 (as ``roc_auc_score``).
    """
    pos_w, neg_w = np.atleast_2d(pos_w).astype(float), np.atleast_2d(neg_w).astype(float)
    s = np.r_[pos, neg]
    order = np.argsort(-s, kind="stable")
    s = s[order]
    w = np.concatenate([pos_w, np.zeros_like(neg_w)], axis=1)[:, order]
    v = np.concatenate([np.zeros_like(pos_w), neg_w], axis=1)[:, order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
    tp, fp = np.cumsum(w, axis=1)[:, ends], np.cumsum(v, axis=1)[:, ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.c_[np.zeros(len(tp)), tp / tp[:, -1:]]
        fpr = np.c_[np.zeros(len(fp)), fp / fp[:, -1:]]
    auc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    low = np.where(fpr < low_fpr, tpr, -np.inf).max(axis=1)
    return auc, low


def ks_distance(u: np.ndarray, r: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Two-sample KS distance sup |F_u - F_r| where sample i of both sides has weight
    ``weights[b, i]`` (B weightings; None: one, all ones). At unit weights this is
    ``scipy.stats.ks_2samp(u, r).statistic``."""
    u, r = np.asarray(u, float), np.asarray(r, float)
    w = np.ones((1, len(u))) if weights is None else np.atleast_2d(weights).astype(float)
    x = np.r_[u, r]
    order = np.argsort(x, kind="stable")
    x = x[order]
    wu = np.concatenate([w, np.zeros_like(w)], axis=1)[:, order]
    wr = np.concatenate([np.zeros_like(w), w], axis=1)[:, order]
    ends = np.r_[np.nonzero(np.diff(x))[0], len(x) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        fu = np.cumsum(wu, axis=1)[:, ends] / wu.sum(1, keepdims=True)
        fr = np.cumsum(wr, axis=1)[:, ends] / wr.sum(1, keepdims=True)
    return np.abs(fu - fr).max(axis=1)


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile`` of ``values`` repeated ``weights[b]`` times, for each row b
    (integer multiplicities, as a bootstrap draws them); NaN values are left out."""
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    out = np.full(len(weights), np.nan)
    for b, wb in enumerate(np.atleast_2d(weights)):
        rep = np.repeat(values[ok], wb[ok].astype(int))
        if len(rep):
            out[b] = np.percentile(rep, q)
    return out


def shadow_values(arrays: Mapping[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """The shadow tests' values under B target weightings ``weights`` (B, pool columns).

    Each pair, example or point carries the weight of its target column, so a row of
    bootstrap counts gives the tests of that resample and a row of ones the point values.
    """
    W = np.atleast_2d(np.asarray(weights, float))
    out: dict[str, np.ndarray] = {}
    pw, nw = W[:, arrays["ulira_pos_col"]], W[:, arrays["ulira_neg_col"]]
    thr = float(arrays["ulira_threshold"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ulira_accuracy"] = 0.5 * ((pw * (arrays["ulira_pos"] > thr)).sum(1) / pw.sum(1)
                                       + (nw * (arrays["ulira_neg"] <= thr)).sum(1) / nw.sum(1))
    _, out["ulira_tpr"] = weighted_roc(arrays["ulira_pos"], pw, arrays["ulira_neg"], nw)
    out["rmia_auc"], _ = weighted_roc(arrays["rmia_pos"], W[:, arrays["rmia_pos_col"]],
                                      arrays["rmia_neg"], W[:, arrays["rmia_neg_col"]])
    hw = W[:, arrays["neurips_col"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["neurips_f"] = (hw * arrays["neurips_h"]).sum(1) / hw.sum(1)
    out["klom"] = weighted_percentile(arrays["klom"], W, 95.0)
    out["ks_distance"] = ks_distance(arrays["fq_u"], arrays["fq_r"], W[:, arrays["fq_col"]])
    return out


#: KLOM stays in the scorecard only when its small-sample floor (what the retrained model
#: itself reads at the shadows' N) leaves at least this share of its ceiling (what a model
#: that kept everything reads at most) below the ceiling: the room in which the original
#: and the retrained model can differ. A choice of this book, not the authors'.
KLOM_MIN_ROOM = 0.25
#: Models per side in the authors' KLOM (Georgiev et al. 2024; data-unlearning-bench's N).
AUTHORS_N = 100


@dataclass(frozen=True)
class KlomResolution:
    """Whether KLOM can read anything on a shadow design (:func:`klom_resolution`)."""

    keep: bool
    n_median: float   # models per side of a forget point: median, min, max over the points
    n_min: int
    n_max: int
    floor: float      # 95th percentile of KLOM for two draws of one distribution at those N
    ceiling: float    # log(1 + 1/eps)
    n_needed: int     # models per side (every point) whose floor leaves KLOM_MIN_ROOM
    reason: str


def klom_resolution(shadows: ShadowSet, min_room: float = KLOM_MIN_ROOM, seed: int = 0) -> KlomResolution:
    """Whether KLOM resolves anything with ``shadows``' numbers of models per forget point.

    A forget point's KLOM compares the rows that forgot it, unlearned against their oracles
    (:func:`~unlearnlib.evaluation.klom.klom_on_shadows`), so its N is that number of rows
    (about k/2 of k shadow splits). :func:`~unlearnlib.evaluation.klom.small_sample_floor`
    measures, at exactly those N, what a perfect unlearning reads (two independent draws
    of one distribution); KLOM is kept when that floor is at most ``1 - min_room`` of the
    ceiling ``log(1 + 1/eps)``. ``reason`` says why, from the computed numbers.
    """
    if not 0.0 < min_room < 1.0:
        raise ValueError(f"min_room is a share of KLOM's ceiling in (0, 1); got {min_room!r}.")
    forget = shadows.forget_masks.numpy()
    n = forget.sum(0)[forget.any(0)]
    if not len(n):
        raise ValueError("The shadow set forgets no point; KLOM has nothing to read.")
    ceiling = max_klom()
    limit = (1.0 - min_room) * ceiling
    floor = small_sample_floor(n, seed=seed)
    lo, hi = 2, 2
    while small_sample_floor(hi, seed=seed) > limit:  # smallest N (every point) within the limit
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if small_sample_floor(mid, seed=seed) > limit else (lo, mid)
    keep = bool(floor <= limit)
    med = float(np.median(n))
    at = (f"with {shadows.config.k} shadow splits a forget point has N = {med:g} models per side "
          f"(median; {int(n.min())} to {int(n.max())}), and at those N two independent draws of one "
          f"distribution read {floor:.2f} (95th percentile), {floor / ceiling:.0%} of KLOM's ceiling "
          f"{ceiling:.2f}")
    if keep:
        reason = f"KLOM kept: {at}, leaving at least {min_room:.0%} of the ceiling below it."
    else:
        reason = (f"KLOM left out: {at}, so the retrained model reads about what an untouched one does and "
                  f"the column cannot resolve the gap between them. Its floor leaves {min_room:.0%} of the "
                  f"ceiling from N = {hi} models per side at every point; at the authors' N = {AUTHORS_N} it "
                  f"is {small_sample_floor(AUTHORS_N, seed=seed):.2f}.")
    return KlomResolution(keep, med, int(n.min()), int(n.max()), float(floor), float(ceiling), hi, reason)


# --------------------------------------------------------------------------- poisoning


@dataclass(frozen=True)
class PoisonSetting:
    """Pawelczyk et al. 2024's setting as the poisoning chapter runs it (mnist5k with
    standardised pixels, an MLP: the embedded setting where the Gaussian test has power)."""

    dataset: str = "mnist5k"
    model: str = "mlp"
    attack: str = "gaussian"
    fraction: float = 0.02
    params: tuple[tuple[str, Any], ...] = (("eps", 1.0),)
    epochs: int = 20
    budget: float = 0.10


def poison_clean_splits(setting: PoisonSetting, data_root: str | None = None, device: str = "cpu") -> Splits:
    """The clean splits of the poisoning chapter: pixels standardised by the training mean and std."""
    return load(setting.dataset, "fraction:0.02", data_root, device, standardize=True)


def poison_rows(store: Store, clean: Splits, setting: PoisonSetting, keys: Sequence[str],
                seeds: Sequence[int], executor: Any = None, data_root: str | None = None) -> pd.DataFrame:
    """Per (method, seed): the attack's metric (``gus`` for the Gaussian attack) and test
    accuracy after unlearning the poisons at ``setting.budget`` of the training compute,
    methods at their defaults (cached). ``original`` is the poisoned model, ``retrain`` the
    model retrained without the poisons; poison draw and model seed are both ``seed``. The
    poisons and reference models of a seed are the poisoning study's
    (:func:`~.poisoning_study.seed_run`: the same store entries).

    The missing entries run first on ``executor``'s workers (None: the scheduler of
    ``$UNLEARNLIB_SCHEDULER`` when set, else nothing ahead): one task per seed for its
    poisons and reference models, then one per (method, seed). A worker re-creates
    ``clean`` with :func:`poison_clean_splits` (``data_root`` as the caller gave it, on
    ``clean``'s device), so ``clean`` must be what that function returns (the worker checks)."""
    from . import executors
    from .poisoning_study import needs_clean, seed_run

    bad = [k for k in keys if k in UNBUDGETED]
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot be held to a compute budget; leave them out (UNBUDGETED).")
    if needs_clean(setting.attack, False):
        raise ValueError(f"The scorecard runs attacks without a clean or surrogate model; got {setting.attack!r}.")
    with executors.using(executor) as ex:
        if ex.parallel:
            ex.run(_poison_tasks(ex, store, clean, setting, keys, seeds, data_root), store, "poisoning units",
                   False)
    rows = []
    for seed in map(int, seeds):
        run = seed_run(clean, setting.attack, setting.model, seed, setting.fraction, dict(setting.params),
                       _poison_recipe(setting), store, False)
        rows += [_poison_row(run, setting, key) for key in keys]
    return pd.DataFrame(rows)


def _poison_recipe(setting: PoisonSetting):
    from ..training import default_recipe

    return default_recipe(setting.dataset).with_(epochs=setting.epochs)


def _poison_spec(base: dict, setting: PoisonSetting, key: str) -> dict:
    """The store spec of ``key``'s row (``base``: ``model_spec`` of the seed's poisoned splits)."""
    method = registry.get(key)
    return {**base, "budget": setting.budget, "scorecard": SCORECARD_VERSION, **method.identity,
            "hparams": method.defaults}


def _poison_row(run: SeedRun, setting: PoisonSetting, key: str) -> dict:
    """``key``'s cached row on ``run``, one seed's :class:`~.poisoning_study.SeedRun`."""
    from ..evaluation import accuracy
    from ..poisoning import METRICS, attack_metric
    from .experiment import timed_unlearn
    from .poisoning_study import budget_data

    def compute() -> list[dict]:
        if key in REFERENCES:
            model = run.refs.original if key == "original" else run.refs.retrained
        else:
            data = budget_data(run.splits, run.seed, setting.model, run.recipe, setting.budget, run.refs.init_state)
            model, _ = timed_unlearn(registry.get(key), run.refs.original, data)
        return [{"metric": attack_metric(model, run.info, run.splits)[METRICS[setting.attack]],
                 "test_acc": accuracy(model, run.splits.test)}]

    r = run.store.rows("scorecard_poison", _poison_spec(run.base, setting, key), compute)[0]
    return {"method": key, "seed": run.seed, "gus": r["metric"], "poison_test_acc": r["test_acc"]}


def _poison_tasks(ex, store: Store, clean: Splits, setting: PoisonSetting, keys: Sequence[str],
                  seeds: Sequence[int], data_root: str | None) -> list:
    """The tasks of :func:`poison_rows`: per seed the poisoning study's poisons and reference
    models (:class:`~.poisoning_study.SeedKeys`), then one row per method after them; each
    done when its store entries exist (a seed whose poisons are not stored is not done)."""
    from .poisoning_study import SeedKeys

    source, recipe = splits_key(clean, data_root, standardize=True), _poison_recipe(setting)

    def row_entries(keyed: SeedKeys, key: str) -> list[tuple[str, dict]] | None:
        known = keyed.known()
        return None if known is None else [("scorecard_poison", _poison_spec(known.base, setting, key))]

    tasks = []
    for seed in map(int, seeds):
        keyed = SeedKeys(source, clean, setting.attack, setting.model, seed, setting.fraction, dict(setting.params),
                         recipe, store, False)
        refs = ex.task(f"poisons and reference models of seed {seed}", poison_unit, (setting, None, *keyed.args),
                       store, done=stored(store, lambda k=keyed: k.reference_entries(rows=False)))
        tasks += [refs, *(ex.task(f"{key} on the poisons of seed {seed}", poison_unit, (setting, key, *keyed.args),
                                  store, needs=(refs,), done=stored(store, lambda k=keyed, m=key: row_entries(k, m)))
                          for key in keys)]
    return tasks


def poison_unit(store: Store, setting: PoisonSetting, key: str | None, *args: Any) -> None:
    """A task (:func:`poison_rows`): the poisons and reference models of one seed (``key``
    None), or ``key``'s row on them. ``args``: :func:`~.poisoning_study.worker_run`'s; the
    worker keeps the seed's run, so the rows of one seed load its poisons and models once."""
    from .poisoning_study import worker_run

    run = worker_run(store, *args)
    if key is not None:
        _poison_row(run, setting, key)


# --------------------------------------------------------------------------- the bootstrap


@dataclass
class Draws:
    """Raw values of every test under B + 1 draws (row 0: the point estimate).

    ``values[test]`` and ``test_acc`` / ``poison_acc`` are (B + 1, methods); a method
    without a test has NaN there.
    """

    methods: list[str]
    values: dict[str, np.ndarray]
    test_acc: np.ndarray
    poison_acc: np.ndarray
    n_seeds: int
    n_poison_seeds: int
    n_targets: int

    @property
    def n_boot(self) -> int:
        return len(self.test_acc) - 1

    @property
    def interval_seeds(self) -> int:
        """The fewest seeds of any seed resampling (full-data or poisoning): the coarsest level
        of the joint bootstrap (the shadow targets number in the hundreds), so the widest
        stretch of any level, for a statistic that combines them all. Each test's own
        interval is read at :meth:`sample_size`, and the verdicts from those (module docstring)."""
        return min((n for n in (self.n_seeds, self.n_poison_seeds) if n > 0), default=0)

    def sample_size(self, test: str) -> int:
        """The number of units test ``test``'s values resample (:attr:`Test.source`): seeds of
        the full-data or poisoning rows, or the shadow set's targets. A test's own interval is
        read at it (a shadow test's hundreds of targets need no small-sample stretch)."""
        source = test_of(test).source
        return {"seeds": self.n_seeds, "poison": self.n_poison_seeds, "shadows": self.n_targets}.get(
            source, self.interval_seeds)

    def col(self, method: str) -> int:
        return self.methods.index(method)


def _seed_means(df: pd.DataFrame, columns: Sequence[str], methods: list[str], picks: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Per column: (B + 1, methods) means over the seeds of each draw (row 0: all seeds)."""
    out = {}
    for c in columns:
        table = df.pivot_table(index="seed", columns="method", values=c, aggfunc="mean", dropna=False)
        a = table.reindex(columns=methods).to_numpy(float)
        with np.errstate(invalid="ignore"), _quiet():
            out[c] = np.r_[np.nanmean(a, axis=0)[None, :], np.nanmean(a[picks], axis=1)]
    return out


class _quiet:
    """Silence numpy's "mean of empty slice" for methods without a test."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


#: The target columns of the shadow tests' pairs, examples and samples.
_COLUMNS = ("ulira_pos_col", "ulira_neg_col", "rmia_pos_col", "rmia_neg_col", "neurips_col", "fq_col")


def bootstrap_values(rows: pd.DataFrame, shadow: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                     poison: pd.DataFrame | None = None, n_targets: int | None = None,
                     n_boot: int = N_BOOT, seed: int = 0, leave_out: Sequence[str] = ()) -> Draws:
    """Every test's raw values under the joint bootstrap (module docstring).

    ``rows``: full-data rows (:func:`seed_rows`); ``shadow``: ``{method: shadow_arrays}``
    (methods without shadows get NaN there), ``n_targets`` the shadow pool's size (default:
    read from the arrays); the targets resampled are every column any shadow test uses;
    ``poison``: :func:`poison_rows`. Methods are those of ``rows``, in order. ``leave_out``:
    test keys left out of the draws, so of every reading, table and verdict downstream (e.g.
    ``"klom"`` where :func:`klom_resolution` says it cannot read); the resampling is the same.
    """
    for k in leave_out:
        test_of(k)  # an unknown key fails here
    methods = list(dict.fromkeys(rows["method"]))
    if not set(REFERENCES) <= set(methods):
        raise ValueError(f"The scorecard needs the reference rows {REFERENCES}; got methods {methods}.")
    rng = np.random.default_rng(seed)
    seeds = sorted(rows["seed"].unique())
    picks = rng.integers(0, len(seeds), (n_boot, len(seeds)))
    seed_tests = [t.key for t in TESTS if t.source == "seeds"]
    d = rows.assign(seed=rows["seed"].map({s: i for i, s in enumerate(seeds)}))
    means = _seed_means(d, [*seed_tests, "test_acc"], methods, picks)
    values = {k: means[k] for k in seed_tests}
    B1 = n_boot + 1
    for t in (t.key for t in TESTS if t.source == "shadows"):
        values[t] = np.full((B1, len(methods)), np.nan)
    if shadow:
        if n_targets is None:
            n_targets = max(len(a["klom"]) for a in shadow.values())
        targets = np.unique(np.concatenate([a[c] for a in shadow.values() for c in _COLUMNS]
                                           + [np.nonzero(np.isfinite(a["klom"]))[0] for a in shadow.values()]))
        W = np.zeros((B1, n_targets))
        W[0, targets] = 1.0
        for b in range(1, B1):
            W[b, targets] = np.bincount(rng.integers(0, len(targets), len(targets)), minlength=len(targets))
        for m, arrays in shadow.items():
            if m in methods:
                for k, v in shadow_values(arrays, W).items():
                    values[k][:, methods.index(m)] = v
    poison_acc = np.full((B1, len(methods)), np.nan)
    values["gus"] = np.full((B1, len(methods)), np.nan)
    n_poison = 0
    if poison is not None and len(poison):
        ps = sorted(poison["seed"].unique())
        n_poison = len(ps)
        pp = rng.integers(0, len(ps), (n_boot, len(ps)))
        pd_ = poison.assign(seed=poison["seed"].map({s: i for i, s in enumerate(ps)}))
        pm = _seed_means(pd_, ["gus", "poison_test_acc"], methods, pp)
        values["gus"], poison_acc = pm["gus"], pm["poison_test_acc"]
    for k in leave_out:
        values.pop(k, None)
    return Draws(methods, values, means["test_acc"], poison_acc, len(seeds), n_poison,
                 0 if not shadow else len(targets))


# --------------------------------------------------------------------------- normalise and read


def normalise(values: np.ndarray, original: int, retrained: int) -> np.ndarray:
    """(v - v_original) / (v_retrained - v_original) per row: 0 = original, 1 = retrained.

    ``values`` is (draws, methods); ``original`` and ``retrained`` are column indices. A
    row whose two references coincide (no gap) gives NaN.
    """
    v = np.asarray(values, float)
    o, r = v[:, [original]], v[:, [retrained]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r != o, (v - o) / (r - o), np.nan)


def resolved_gaps(draws: Draws, level: float = 0.95) -> dict[str, bool]:
    """Per test: whether the retrained-minus-original gap has a ``level`` interval that
    excludes 0: the scorecard's t-scaled interval (:func:`_interval`; a percentile interval
    would call gaps resolved that 5 seeds cannot resolve; one seed resolves nothing). One
    draw only: whether the gap is non-zero."""
    o, r = draws.col("original"), draws.col("retrain")
    out = {}
    for k, v in draws.values.items():
        gap = v[:, r] - v[:, o]
        if not np.isfinite(gap[0]) or gap[0] == 0:
            out[k] = False
        elif not np.isfinite(gap[1:]).any():
            out[k] = True
        else:
            lo, hi = _interval(gap, draws.sample_size(k), level)
            out[k] = bool(lo > 0 or hi < 0)
    return out


def scores(draws: Draws, resolved: Mapping[str, bool] | None = None) -> dict[str, np.ndarray]:
    """Normalised scores per test, (draws, methods); NaN for an unresolved test."""
    resolved = resolved_gaps(draws) if resolved is None else resolved
    o, r = draws.col("original"), draws.col("retrain")
    return {k: normalise(v, o, r) if resolved.get(k, False) else np.full(v.shape, np.nan)
            for k, v in draws.values.items()}


def utility_mask(test_acc: np.ndarray, retrained: int, utility: float = UTILITY) -> np.ndarray:
    """(draws, methods): whether each method's test accuracy is at most ``utility`` below
    the retrained model's (column ``retrained``). NaN accuracies count as lost."""
    ta = np.asarray(test_acc, float)
    with np.errstate(invalid="ignore"):
        return ta >= ta[:, [retrained]] - utility


@dataclass
class Reading:
    """Pass/fail of every (draw, method, test): ``passed`` is True/False where ``known``.

    ``resolved`` (tests,) marks the tests that can read anything (a resolved gap); an
    unresolved test is known for no method and counts nowhere.
    """

    methods: list[str]
    tests: list[str]
    passed: np.ndarray    # (draws, methods, tests) bool
    known: np.ndarray     # (draws, methods, tests) bool
    utility: np.ndarray   # (draws, methods) bool
    resolved: np.ndarray  # (tests,) bool


def classify(score: Mapping[str, np.ndarray], utility: np.ndarray, methods: Sequence[str],
             tests: Sequence[str] | None = None, tol: float = TOL,
             poison_utility: np.ndarray | None = None) -> Reading:
    """Pass (|s - 1| <= ``tol``) or fail per draw, method and test.

    A test is resolved when any of its scores is finite (:func:`scores` gives an unresolved
    test NaN everywhere). On a resolved test, a method without its utility (``utility``
    False) fails, whether the test ran for it or not (the book's rule); a method that keeps
    it passes or fails by its score, and is unknown where the test did not run for it.
    ``poison_utility`` (optional, (draws, methods)) applies the same rule to the poisoning
    test with the poisoning setting's own test accuracy, where that test ran.
    """
    tests = list(tests or [k for k in TEST_KEYS if k in score])
    s = np.stack([np.asarray(score[k], float) for k in tests], axis=-1)
    finite = np.isfinite(s)
    resolved = finite.any(axis=(0, 1))
    with np.errstate(invalid="ignore"):
        close = np.abs(s - 1.0) <= tol
    keeps = np.repeat(np.asarray(utility, bool)[..., None], len(tests), axis=-1)
    if poison_utility is not None and "gus" in tests:
        j = tests.index("gus")
        keeps[..., j] &= np.asarray(poison_utility, bool) | ~finite[..., j]
    passed = keeps & finite & close & resolved
    known = (finite | ~keeps) & resolved
    return Reading(list(methods), tests, passed, known, np.asarray(utility, bool), resolved)


def _deeper(tests: Sequence[str]) -> list[int]:
    return [i for i, k in enumerate(tests) if test_of(k).group in DEEPER_GROUPS]


def passes_every_test(reading: Reading) -> np.ndarray:
    """(draws, methods): keeps its utility and passes every resolved test; a resolved test
    that did not run for the method counts as not passed (nothing shows it passes)."""
    r = reading.resolved
    if not r.any():  # no resolved test: nothing shows any method passes (not "all of none")
        return np.zeros(reading.utility.shape, bool)
    return reading.utility & reading.passed[..., r].all(-1)


def false_sense(reading: Reading, population: str = POPULATION_TEST) -> np.ndarray:
    """(draws, methods): keeps its utility, passes ``population`` and fails a known
    per-sample, relearning or poisoning test (:data:`DEEPER_GROUPS`)."""
    p = reading.tests.index(population)
    deep = _deeper(reading.tests)
    failed = (reading.known & ~reading.passed)[..., deep].any(-1)
    return reading.utility & reading.passed[..., p] & failed


def _non_reference(methods: Sequence[str]) -> np.ndarray:
    return np.array([m not in REFERENCES for m in methods])


# --------------------------------------------------------------------------- rankings


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b of two score lists over the same items (NaN pairs dropped; NaN when
    fewer than 3 items remain or one list is constant)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(kendalltau(a[ok], b[ok]).statistic)


def distance_to_retrained(score: Mapping[str, np.ndarray], methods: Sequence[str] | None = None,
                          row: int = 0) -> pd.DataFrame:
    """|s - 1| of every method (rows, named by ``methods``) and test (columns) in draw
    ``row``: 0 = like retraining. A test ranks the methods by it."""
    return pd.DataFrame({k: np.abs(np.asarray(v, float)[row] - 1.0) for k, v in score.items()},
                        index=None if methods is None else list(methods))


def ranking_distances(score: Mapping[str, np.ndarray], reading: Reading) -> pd.DataFrame:
    """:func:`distance_to_retrained` of the methods that keep their utility (point estimate,
    references left out: they sit at 0 and 1 by construction) on the resolved tests."""
    d = distance_to_retrained(score, reading.methods)
    keep = [m for j, m in enumerate(reading.methods) if reading.utility[0, j] and m not in REFERENCES]
    return d.loc[keep, [t for t, ok in zip(reading.tests, reading.resolved, strict=True) if ok]]


def kendall_matrix(distance: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau between the rankings of methods (rows of ``distance``) by each pair of
    tests (columns); 1 = the same order, -1 = reversed."""
    cols = list(distance.columns)
    out = pd.DataFrame(np.nan, index=cols, columns=cols)
    for i, a in enumerate(cols):
        for b in cols[i:]:
            out.loc[a, b] = out.loc[b, a] = kendall_tau(distance[a], distance[b])
    return out


# --------------------------------------------------------------------------- tidy results


#: The range of a test's raw value where it has one (accuracies, AUCs, rates, F and the KS
#: distance lie in [0, 1]; RetDev, KLOM and the weights' distance are >= 0): the t-scaled
#: stretch may reach past it, which covers nothing more. Others (and the scores) are unbounded.
VALUE_RANGE: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("forget_acc", "mia_test", "mia_entropy_test", "ulira_accuracy", "ulira_tpr", "rmia_auc",
                     "neurips_f", "ks_distance", "relearn_acc"), (0.0, 1.0)),
    **dict.fromkeys(("retdev", "klom", "l2_to_retrained"), (0.0, math.inf)),
}


def _interval(x: np.ndarray, n_seeds: int, level: float = 0.95,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """The ``level`` interval of a statistic from its draws (row 0 the estimate, rows 1..
    the resamples): the library's t-scaled bootstrap interval at ``n_seeds``
    (:func:`~unlearnlib.studies.verdicts.interval_from_draws`; the percentile interval
    under-covers at few seeds, Hesterberg 2015), clipped to the statistic's range ``bounds``."""
    x = np.asarray(x, float)
    lo, hi = vd.interval_from_draws(float(x[0]), x[1:], n_seeds, level)
    if math.isfinite(lo) and math.isfinite(hi):
        lo, hi = float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))
    return lo, hi


def scorecard_frame(draws: Draws, score: Mapping[str, np.ndarray], reading: Reading,
                    sources: Mapping[str, str] | None = None, model: str | None = None) -> pd.DataFrame:
    """One tidy row per (method, test): raw value and score with their 95% intervals
    (:func:`_interval`; the value's clipped to :data:`VALUE_RANGE`), and the reading (pass /
    fail / unknown / unresolved). ``method_label`` is how the figure and the table name the method on the registered ``model`` (:meth:`~unlearnlib.methods.Method.label`:
    CT on ``cnn1d`` is ``ct (1-D extension)``)."""
    resolved = dict(zip(reading.tests, reading.resolved.tolist(), strict=True))
    rows = []
    for j, m in enumerate(draws.methods):
        name = registry.get(m).label(model) if m in registry.available() else m
        for t_i, k in enumerate(reading.tests):
            v, s = draws.values[k][:, j], score[k][:, j]
            n = draws.sample_size(k)
            v_lo, v_hi = _interval(v, n, bounds=VALUE_RANGE.get(k, (-math.inf, math.inf)))
            s_lo, s_hi = _interval(s, n)
            known, ok = reading.known[0, j, t_i], reading.passed[0, j, t_i]
            state = ("unresolved" if not resolved[k] else "pass" if ok else "fail" if known else "not run")
            rows.append({"method": m, "method_label": name, "test": k, "label": test_of(k).label, "group": test_of(k).group,
                         "value": float(v[0]), "value_low": v_lo, "value_high": v_hi,
                         "score": float(s[0]), "score_low": s_lo, "score_high": s_hi,
                         "reading": state, "keeps_utility": bool(reading.utility[0, j]),
                         "test_acc": float(draws.test_acc[0, j]),
                         "hparams": (sources or {}).get(m, "")})
    return pd.DataFrame(rows)


def summaries(draws: Draws, reading: Reading) -> pd.DataFrame:
    """Per method (point estimate and share of draws): keeps utility, passes every test, false
    sense of success, and which tests it fails."""
    every, false = passes_every_test(reading), false_sense(reading)
    out = []
    for j, m in enumerate(draws.methods):
        fails = [test_of(k).label for i, k in enumerate(reading.tests)
                 if reading.known[0, j, i] and not reading.passed[0, j, i]]
        out.append({"method": m, "keeps utility": bool(reading.utility[0, j]),
                    "passes every test": bool(every[0, j]), "share of draws (every test)": float(every[1:, j].mean()),
                    "false sense of success": bool(false[0, j]), "share of draws (false sense)": float(false[1:, j].mean()),
                    "fails": ", ".join(fails) if reading.utility[0, j] else "every test (utility lost)"})
    return pd.DataFrame(out).set_index("method")


# --------------------------------------------------------------------------- verdicts

PAWELCZYK = "Pawelczyk et al. 2024; Hayes et al. 2024"
BOOK = "this book (the scorecard)"


#: The error each side of a verdict's 95% interval keeps (one-sided).
ALPHA = (1 - vd.LEVEL) / 2


def score_bounds(x: np.ndarray, n: int, tail: float) -> tuple[float, float]:
    """Lower and upper bound of a statistic from its draws ``x`` (row 0 the estimate, rows
    1.. the resamples of ``n`` units), each with ``tail`` probability beyond it.

    :meth:`~unlearnlib.studies.verdicts.Resampled.bound`: the draws' quantile at ``tail``
    (``1 - tail``) stretched around the estimate by sqrt(n/(n-1)) t_{n-1,1-tail} / z_{1-tail},
    the one-sided form of :func:`_interval`'s stretch; each bound is then widened to the
    estimate where the draws lie all on one side of it, as
    :func:`~unlearnlib.studies.verdicts.interval_from_draws` does, so the estimate always lies
    within its bounds. *Resolution*: a tail below 1 / draws cannot be read from the draws (the
    quantile would be the extreme draw, which sits near tail 1 / draws whatever was asked);
    such a bound is read at 1 / draws and its distance to the estimate stretched by
    t_{n-1,1-tail} / t_{n-1,1-1/draws} (exact for a mean of normal units, whose bounds are the
    estimate -/+ t times its standard error). NaN bounds when nothing can be read (no finite
    draw, a NaN estimate, fewer than 2 units)."""
    from scipy.stats import t

    x = np.asarray(x, float)
    est, d = float(x[0]), x[1:][~np.isnan(x[1:])]
    if not (len(d) and math.isfinite(est) and n >= 2):
        return math.nan, math.nan
    read = max(float(tail), 1.0 / len(d))
    r = vd.Resampled(est, d, int(n))
    lo, hi = min(r.bound(read, False), est), max(r.bound(read, True), est)
    if read > tail:
        c = float(t.ppf(1 - tail, n - 1) / t.ppf(1 - read, n - 1))
        lo, hi = est - c * (est - lo), est + c * (hi - est)
    return float(lo), float(hi)


def _reading_scores(draws: Draws, reading: Reading) -> dict[str, np.ndarray]:
    """:func:`scores` of ``draws`` on the tests ``reading`` resolved."""
    return scores(draws, dict(zip(reading.tests, reading.resolved.tolist(), strict=True)))


def certain_readings(draws: Draws, reading: Reading, tail: float,
                     score: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(certainly passes, certainly fails), each (methods, tests) in ``reading``'s order, with
    at most ``tail`` error each: a reading is wrong only when the truth lies beyond one of the
    bounds of :func:`score_bounds` at ``tail``.

    A method *certainly passes* a resolved test that ran for it when the score's bounds lie
    inside [1 - TOL, 1 + TOL] (a truth outside the band lies beyond one of them: error at most
    ``tail``), and *certainly fails* it when they lie wholly outside the band (a truth inside
    is beyond the near bound: error at most ``tail``; the far side adds the chance that the
    interval misses the truth by the band's whole width 2 TOL, which is neglected), or when a
    utility rule fails it. Utility is read at the point estimate, as the reading's row 0 does
    (not resampled: a method on the utility boundary is decided by its estimate): a method
    without its utility certainly fails every resolved test, and a test that row 0 fails
    though its score lies within TOL (or did not run) was failed by a utility rule (the
    poisoning setting's own, :func:`classify`) and certainly fails too. A test that did not
    run for a method keeping its utility is neither. ``score``: the normalised scores the
    reading was made from (default :func:`scores` of ``draws`` on the reading's resolved tests).
    """
    score = _reading_scores(draws, reading) if score is None else score
    s0 = np.stack([np.asarray(score[k], float)[0] for k in reading.tests], axis=-1)
    known, passed, resolved = reading.known[0], reading.passed[0], reading.resolved[None, :]
    finite = np.isfinite(s0)
    with np.errstate(invalid="ignore"):
        close = np.abs(s0 - 1.0) <= TOL
    lost = (~reading.utility[0][:, None] | (known & ~passed & (~finite | close))) & resolved
    ran = finite & resolved & ~lost
    lo, hi = np.full(s0.shape, np.nan), np.full(s0.shape, np.nan)
    for j, i in zip(*np.nonzero(ran), strict=True):
        k = reading.tests[i]
        lo[j, i], hi[j, i] = score_bounds(np.asarray(score[k], float)[:, j], draws.sample_size(k), tail)
    with np.errstate(invalid="ignore"):
        inside = ran & (lo >= 1.0 - TOL) & (hi <= 1.0 + TOL)
        outside = lost | (ran & ((hi < 1.0 - TOL) | (lo > 1.0 + TOL)))
    return inside, outside


def every_test_bounds(draws: Draws, reading: Reading, level: float = vd.LEVEL) -> tuple[float, float]:
    """The ``level`` interval of the number of methods (references aside) passing every
    resolved test: [methods certainly passing all of them, methods certainly failing none
    of them] (:func:`certain_readings`; tails in :func:`scorecard_verdicts`). A test that did
    not run for a method keeps it from passing every test, as in :func:`passes_every_test`."""
    a = (1 - level) / 2
    nonref = _non_reference(reading.methods)
    r = reading.resolved
    n_tests, n_methods = int(r.sum()), int(nonref.sum())
    if not n_tests or not n_methods:
        return 0.0, 0.0
    score = _reading_scores(draws, reading)
    inside, _ = certain_readings(draws, reading, a / n_methods, score)
    _, outside = certain_readings(draws, reading, a / n_tests, score)
    not_run = ~reading.known[0] & r
    util = reading.utility[0]
    low = util & inside[:, r].all(-1)
    high = util & ~(outside | not_run)[:, r].any(-1)
    return float(low[nonref].sum()), float(high[nonref].sum())


def false_sense_bounds(draws: Draws, reading: Reading, level: float = vd.LEVEL,
                       population: str = POPULATION_TEST) -> tuple[float, float]:
    """The ``level`` interval of the number of methods (references aside) with a false sense
    of success: [methods certainly passing ``population`` and certainly failing a deeper
    test, methods not certainly failing ``population`` and not certainly passing every deeper
    test] (:func:`certain_readings`; tails in :func:`scorecard_verdicts`). A deeper test that
    did not run is no failure, as in :func:`false_sense`."""
    a = (1 - level) / 2
    nonref = _non_reference(reading.methods)
    p = reading.tests.index(population)
    deep = [i for i in _deeper(reading.tests) if reading.resolved[i]]
    n_methods = int(nonref.sum())
    if not (reading.resolved[p] and deep and n_methods):
        return 0.0, 0.0
    util = reading.utility[0]
    score = _reading_scores(draws, reading)
    mia_in, _ = certain_readings(draws, reading, a / n_methods, score)
    _, deep_out = certain_readings(draws, reading, a / (n_methods * len(deep)), score)
    sure_in, sure_out = certain_readings(draws, reading, a / 2, score)
    known = reading.known[0]  # ran, or failed by a utility rule: a test that can fail
    low = util & mia_in[:, p] & deep_out[:, deep].any(-1)
    high = util & known[:, p] & ~sure_out[:, p] & (known & ~sure_in)[:, deep].any(-1)
    return float(low[nonref].sum()), float(high[nonref].sum())


def _count_evidence(estimate: float, bounds: tuple[float, float], draws: Draws, holds_above: bool) -> vd.Evidence:
    """A count of methods against 1/2 (:func:`~unlearnlib.studies.verdicts.side`); the
    verdict's seeds are the full-data seeds."""
    lo, hi = bounds
    return vd.Evidence(vd.side(lo, hi, 0.5, holds_above), float(estimate), lo, hi, draws.n_seeds,
                       holds_above=holds_above)


def scorecard_verdicts(draws: Draws, reading: Reading, budget: str, chapter: str = "scorecard") -> list[vd.Verdict]:
    """The scorecard's claims as verdicts (:func:`unlearnlib.studies.verdicts.decide`): the
    number of methods (references aside) with a false sense of success (the claim holds when
    its interval lies above 1/2) and the number passing every resolved test (the claim "none
    does" holds when the interval lies below 1/2). The estimate is the count at the point
    estimate (draw 0).

    The counts' intervals are not read from the draws of the counts: a count is a sum of 0/1
    readings, and wherever 97.5% of its draws agree its interval has a zero-length side,
    which the t-scale stretches by nothing, so a method on a pass boundary would be decided by
    the plain percentile bootstrap (:mod:`.calibration_scorecard` measured 5-10% wrong
    verdicts a side). They are built from the per-(method, test) score bounds instead
    (:func:`certain_readings`, :func:`score_bounds`), each one-sided bound at a tail chosen so
    that each side of the count's interval keeps its a = 2.5% error whatever the number of
    methods M (references aside) and resolved tests T: a side that is wrong when *one* of m
    readings is wrong gets each of them at a / m (Bonferroni), a side that needs *all* of them
    wrong goes uncorrected (the rule of :func:`~unlearnlib.studies.verdicts.extreme_evidence`).

    - "No method passes every test" (:func:`every_test_bounds`). Low end: the methods
      certainly passing every test. It is too high, and "does not hold" wrongly reachable,
      when a method that truly fails (one test truly outside the band or on its edge) is
      declared passing all; that needs its failing test declared inside, and any of the M
      methods may be the one: each bound at a / M (no correction over the tests: declaring a
      method passing needs all of them). High end: the methods not certainly failing any
      test. It is too low, and "holds" wrongly reachable, when a method that truly passes
      is declared failing; one such method suffices, but one of its T tests declared outside
      is enough: each bound at a / T.
    - "False sense of success" (:func:`false_sense_bounds`; D resolved deeper tests). Low
      end: the methods certainly passing the loss-MIA and certainly failing a deeper test.
      It is too high, and "holds" wrongly reachable, when one of M methods truly without it
      is counted; that method truly fails the MIA (declared inside: error at the MIA's
      tail) or truly passes every deeper test (one of D declared outside: D times the
      deeper tail): the MIA's bound at a / M, each deeper test's at a / (M D). High end: the
      methods neither certainly failing the MIA nor certainly passing every deeper test. It
      is too low, and "does not hold" wrongly reachable, when the one method truly with it
      is excluded: its MIA declared outside or its truly failing deeper test declared inside
      (either of two): every bound at a / 2.

    The price is power: a method must clear the band by its corrected one-sided bound, so
    at 5 seeds a method like retraining is rarely certain to pass six tests
    (:mod:`.calibration_scorecard` has the table). The text of each claim's criterion says
    so.
    """
    nonref = _non_reference(draws.methods)
    fs = float(false_sense(reading)[0, nonref].sum())
    ev = float(passes_every_test(reading)[0, nonref].sum())
    deep = ", ".join(test_of(k).label for k in reading.tests if test_of(k).group in DEEPER_GROUPS)
    util = (f"methods losing more than {UTILITY:.0%} test accuracy against retraining (point estimate) "
            "pass no test")
    how = ("the count's 95% interval runs from the methods that certainly count to those not certainly "
           "excluded, by each method's per-test score intervals, corrected for the number of "
           "tests and methods (Bonferroni)")
    out = [
        vd.decide(
            "Population MIAs give a false sense of success", PAWELCZYK, chapter,
            f"at least one method passes the population loss-MIA (normalised score within {TOL} of the retrained "
            f"model's 1) and fails a per-sample, relearning or poisoning test ({deep}); {util}; {how}",
            "number of methods passing the loss-MIA and failing a deeper test", 0.5,
            _count_evidence(fs, false_sense_bounds(draws, reading), draws, True), None, budget),
        vd.decide(
            "No unlearning method passes every test", BOOK, chapter,
            f"no method (references aside) has every resolved test within {TOL} of the retrained model's score; "
            f"{util}; {how}",
            "number of methods passing every test", 0.5,
            _count_evidence(ev, every_test_bounds(draws, reading), draws, False), None, budget),
    ]
    scope = vd.scope_of(pd.DataFrame({"method": draws.methods}))
    return vd.scoped(out, f"{scope}, {int(np.sum(reading.resolved))} of {len(reading.tests)} tests resolved")


# --------------------------------------------------------------------------- counts


def training_counts(n_seeds: int, n_methods: int, n_relearn: int, k: int, n_shadow_methods: int,
                    n_poison_seeds: int, n_poison_methods: int, shadow_tests: int = 5, oracle_tests: int = 3,
                    seed_tests: int = 5) -> pd.DataFrame:
    """Models trained (from scratch) and unlearning runs, with the store's sharing and without it.

    With sharing: per seed an original and a retrained model, one unlearning per method, and
    for the relearning attack one more unlearning per relearned method (rows do not keep
    models); one shadow set of ``k`` originals, ``k`` oracles and ``k`` retrained shadows,
    ``k`` unlearnings per shadowed method (``n_shadow_methods`` excludes the references);
    per poisoning seed a poisoned and a retrained model and one unlearning per method.
    Without sharing, each of the ``seed_tests`` full-data tests and the relearning attack
    trains its own models, and each of the ``shadow_tests`` shadow attacks (U-LiRA, RMIA,
    NeurIPS, KLOM, forget quality) its own shadows, ``oracle_tests`` of them (NeurIPS, KLOM,
    forget quality) with their own oracles.
    Counts exclude the relearning attack's own short fine-tunings (4 per method and seed).
    """
    shadow_base = 3 * k  # originals, retrained shadows and oracles
    with_sharing = {
        "full-data models (seeds)": (2 * n_seeds, n_seeds * (n_methods + n_relearn)),
        "shadow models": (shadow_base, k * n_shadow_methods),
        "poisoning models": (2 * n_poison_seeds, n_poison_seeds * n_poison_methods),
    }
    without = {
        "full-data models (seeds)": ((seed_tests + 1) * 2 * n_seeds, n_seeds * (seed_tests * n_methods + n_relearn)),
        "shadow models": ((2 * shadow_tests + oracle_tests) * k, shadow_tests * k * n_shadow_methods),
        "poisoning models": (2 * n_poison_seeds, n_poison_seeds * n_poison_methods),
    }
    rows = [{"models": what, "trained, shared": a, "unlearning runs, shared": b,
             "trained, without sharing": without[what][0], "unlearning runs, without sharing": without[what][1]}
            for what, (a, b) in with_sharing.items()]
    df = pd.DataFrame(rows).set_index("models")
    df.loc["total"] = df.sum()
    return df


# --------------------------------------------------------------------------- presenting

#: The display scale of a normalised score (0 = original, 1 = retrained). Colour says the
#: distance from the retrained model, not a direction: overshooting to 2 is as far from
#: retraining as staying at the original's 0, so both get the same colour (the cell's text
#: and hover say which). Blue at 1, orange at distance 1, dark brown at distance 2 and
#: beyond: a colour-blind-safe diverging pair (ColorBrewer PuOr/RdBu ends), never red-green.
SCALE_RANGE = (-1.0, 3.0)
COLORSCALE = [[0.0, "#7f3b08"], [0.25, "#f1a340"], [0.5, "#2166ac"], [0.75, "#f1a340"], [1.0, "#7f3b08"]]
GREY = "#d9d9d9"
#: What the heatmap's row mark means.
UTILITY_MARK = "✗TA"


def cell_color(score: float) -> str:
    """The heatmap's colour of a normalised score (grey when NaN), for the HTML table."""
    from plotly.colors import sample_colorscale

    if not np.isfinite(score):
        return GREY
    lo, hi = SCALE_RANGE
    return sample_colorscale(COLORSCALE, [float(np.clip((score - lo) / (hi - lo), 0.0, 1.0))])[0]


def text_color(score: float) -> str:
    """Dark text on the light cells, white on the dark ones (near 1 and at distance 2 or more)."""
    if not np.isfinite(score):
        return "#222"
    d = abs(float(score) - 1.0)
    return "#fff" if d < 0.45 or d > 1.6 else "#222"


def _fmt(x: float, digits: int = 3) -> str:
    if not np.isfinite(x):
        return "–"
    s = f"{x:.{digits}g}"
    return s[1:] if re.fullmatch(r"-0(\.0*)?", s) else s  # no "-0"


def score_text(score: float, digits: int = 2) -> str:
    """A score as the heatmap prints it: clipped to the display scale (">3", "<-1"), the raw
    value being on hover."""
    lo, hi = SCALE_RANGE
    if np.isfinite(score) and score > hi:
        return f">{hi:g}"
    if np.isfinite(score) and score < lo:
        return f"<{lo:g}"
    return _fmt(score, digits)


def _hover(r: Mapping[str, Any]) -> str:
    return (f"{r['method']} · {r['label']}<br>raw {_fmt(r['value'])} [{_fmt(r['value_low'])}, {_fmt(r['value_high'])}]"
            f"<br>score {_fmt(r['score'], 2)} [{_fmt(r['score_low'], 2)}, {_fmt(r['score_high'], 2)}]"
            f" (0 = original, 1 = retrained)<br>{r['reading']}" + ("" if r["keeps_utility"] else " (utility lost)"))


def dead_tests(frame: pd.DataFrame) -> list[str]:
    """Tests whose raw value is the same for every model, the original and the retrained one
    included (to 3 significant digits): they tell no model from another (e.g. KLOM at its
    small-sample floor), so the heatmap leaves them out and says so."""
    out = []
    for t, g in frame.groupby("test", sort=False):
        v = g["value"].to_numpy(float)
        if np.isfinite(v).all() and len({f"{x:.3g}" for x in v}) == 1:
            out.append(t)
    return out


def heatmap_figure(frame: pd.DataFrame, title: str = "The scorecard"):
    """Methods as rows, tests as columns, each cell the normalised score (0 = original,
    1 = retrained) clipped to :data:`SCALE_RANGE` in colour and text (the raw value, the score
    and their intervals on hover); a tick marks a pass. Tests that read the same for every
    model (:func:`dead_tests`) are left out and named in the note under the figure."""
    import plotly.graph_objects as go

    dead = dead_tests(frame)
    methods = list(dict.fromkeys(frame["method"]))
    tests = [x for x in dict.fromkeys(frame["test"]) if x not in dead]
    labels = [test_of(x).label for x in tests]
    f = frame.set_index(["method", "test"])
    z = [[f.loc[(m, x), "score"] for x in tests] for m in methods]
    text = [[("✓ " if f.loc[(m, x), "reading"] == "pass" else "") + score_text(f.loc[(m, x), "score"])
             if f.loc[(m, x), "reading"] != "unresolved" else "n/r" for x in tests] for m in methods]
    hover = [[_hover(f.loc[(m, x)].to_dict() | {"method": m}) for x in tests] for m in methods]
    first = frame.drop_duplicates("method").set_index("method")
    util, name = first["keeps_utility"], first.get("method_label", pd.Series(methods, index=methods))
    ylabels = [name[m] if util[m] or m in REFERENCES else f"{name[m]} {UTILITY_MARK}" for m in methods]
    lo, hi = SCALE_RANGE
    note = [f"Colour: distance of the score from 1 (the retrained model), clipped to [{lo:g}, {hi:g}]; "
            "✓ = pass; n/r = the test cannot tell the original from the retrained model here"]
    if any(not util[m] and m not in REFERENCES for m in methods):
        note.append(f"{UTILITY_MARK}: the method loses more than {UTILITY:.0%} test accuracy against retraining "
                    "and passes no test")
    if dead:
        note.append("left out, the same value for every model: " + ", ".join(test_of(x).label for x in dead))
    top, bottom, row = 40, 110 + 16 * len(note), 28
    fig = go.Figure(go.Heatmap(
        z=np.clip(np.array(z, float), lo, hi), x=labels, y=ylabels, text=text, texttemplate="%{text}",
        hovertext=hover, hoverinfo="text", colorscale=COLORSCALE, zmin=lo, zmax=hi, xgap=1, ygap=1,
        colorbar=dict(title="score", tickvals=[-1, 0, 1, 2, 3], len=1.0,
                      ticktext=["≤-1", "0 original", "1 retrained", "2", "≥3"])))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=8), font=dict(size=14)),
                      template="plotly_white", plot_bgcolor=GREY, height=top + bottom + row * len(methods),
                      yaxis=dict(autorange="reversed"), xaxis=dict(side="bottom", tickangle=-35),
                      margin=dict(t=top, b=bottom, l=10, r=10),
                      annotations=[dict(xref="paper", yref="paper", x=0, y=0, yshift=-(bottom - 8), xanchor="left",
                                        yanchor="bottom", align="left", showarrow=False, font=dict(size=11, color="#444"),
                                        text="<br>".join(html.escape(n, quote=False) for n in note))])
    return fig


#: Fewest methods whose rankings the tests' Kendall matrix compares: tau between rankings of n
#: items moves in steps of 4 / (n (n - 1)), so with 3 methods every value is +-1/3 or +-1.
KENDALL_MIN_METHODS = 5


def kendall_figure(tau: pd.DataFrame):
    """Kendall's tau between the tests' rankings of the methods."""
    import plotly.graph_objects as go

    labels = [test_of(t).label for t in tau.columns]
    z = tau.to_numpy(float)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                               text=[[_fmt(v, 2) for v in row] for row in z], texttemplate="%{text}",
                               colorbar=dict(title="tau")))
    fig.update_layout(title="How the tests agree: Kendall's tau between their rankings of the methods",
                      template="plotly_white", height=560, yaxis=dict(autorange="reversed"),
                      xaxis=dict(tickangle=-35))
    return fig


_SORT_JS = """(function(){var t=document.getElementById('%s');if(!t)return;
var hs=t.tHead.rows[0].cells;for(var i=0;i<hs.length;i++){(function(i){hs[i].style.cursor='pointer';
hs[i].onclick=function(){var b=t.tBodies[0],rs=Array.prototype.slice.call(b.rows),d=hs[i].dataset.dir==='a'?'d':'a';
hs[i].dataset.dir=d;rs.sort(function(x,y){var p=x.cells[i].dataset.v,q=y.cells[i].dataset.v;
var u=parseFloat(p),v=parseFloat(q),c=(isNaN(u)||isNaN(v))?String(p).localeCompare(String(q)):u-v;
return d==='a'?c:-c;});rs.forEach(function(r){b.appendChild(r);});};})(i);}})();"""


def html_table(frame: pd.DataFrame, table_id: str = "unlearnlib-scorecard") -> str:
    """The scorecard as a sortable HTML table (click a header) whose cells are coloured by
    the normalised score, the raw value shown and its interval and score in the tooltip;
    static HTML plus one inline script, so it works in the built book without a kernel."""
    methods = list(dict.fromkeys(frame["method"]))
    tests = list(dict.fromkeys(frame["test"]))
    f = frame.set_index(["method", "test"])
    first = frame.drop_duplicates("method").set_index("method")
    head = ["<th data-dir=''>method</th>", "<th>hyperparameters</th>", "<th>test accuracy</th>"] + [
        f"<th title='{html.escape(test_of(t).reads)}'>{html.escape(test_of(t).label)}</th>" for t in tests]
    body = []
    for m in methods:
        ta = first.loc[m, "test_acc"]
        name = str(first.loc[m, "method_label"]) if "method_label" in first.columns else m
        cells = [f"<td data-v='{html.escape(name)}'><b>{html.escape(name)}</b></td>",
                 f"<td data-v='{html.escape(str(first.loc[m, 'hparams']))}'>{html.escape(str(first.loc[m, 'hparams']))}</td>",
                 f"<td data-v='{ta:.6g}' style='color:#222;background:{'#ffffff' if first.loc[m, 'keeps_utility'] or m in REFERENCES else '#f4a582'}'>"
                 f"{ta:.3f}</td>"]
        for t in tests:
            r = f.loc[(m, t)].to_dict() | {"method": m}
            tip = html.escape(_hover(r).replace("<br>", "\n"), quote=True)
            sort = r["score"] if np.isfinite(r["score"]) else -1e9
            mark = "✓ " if r["reading"] == "pass" else ""
            cells.append(f"<td data-v='{sort:.6g}' title='{tip}' style='background:{cell_color(r['score'])};"
                         f"color:{text_color(r['score'])};text-align:right'>{mark}{_fmt(r['value'])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div style='overflow-x:auto'><table id='{table_id}' class='dataframe' style='font-size:0.85em;"
            f"border-collapse:collapse'><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody>"
            f"</table></div><script>{_SORT_JS % table_id}</script>")


def markdown_table(frame: pd.DataFrame, column: str = "score", digits: int = 2) -> str:
    """Methods x tests as a Markdown table of ``column`` (score or value), a tick on passes."""
    methods = list(dict.fromkeys(frame["method"]))
    tests = list(dict.fromkeys(frame["test"]))
    f = frame.set_index(["method", "test"])
    lines = ["| method | TA | " + " | ".join(test_of(t).label for t in tests) + " |",
             "|---" * (len(tests) + 2) + "|"]
    for m in methods:
        cells = []
        for t in tests:
            r = f.loc[(m, t)]
            cells.append("n/r" if r["reading"] == "unresolved" else
                         ("✓" if r["reading"] == "pass" else "") + _fmt(r[column], digits))
        lines.append(f"| {m} | {f.loc[(m, tests[0]), 'test_acc']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hparams_text(hp: Mapping[str, tuple[dict, str]]) -> pd.DataFrame:
    """Where each method's hyperparameters came from, and the values given (empty: defaults)."""
    return pd.DataFrame([{"method": m, "from": src, "hyperparameters": canonical_json(h) if h else "defaults"}
                         for m, (h, src) in hp.items()]).set_index("method")


__all__ = [
    "SCORECARD_VERSION", "REFERENCES", "UTILITY", "TOL", "N_BOOT", "UNBUDGETED", "Test", "TESTS", "TEST_KEYS",
    "DEEPER_GROUPS", "POPULATION_TEST", "ULIRA_MODES", "check_options", "test_of", "hparams_for", "unlearned_model", "relearning_row",
    "utility_keepers", "seed_rows", "with_relearning", "per_target_means", "evaluate_shadows", "shadow_arrays", "weighted_roc", "ks_distance",
    "weighted_percentile", "shadow_values", "KLOM_MIN_ROOM", "KlomResolution", "klom_resolution",
    "PoisonSetting", "poison_clean_splits", "poison_rows", "Draws",
    "bootstrap_values", "normalise", "resolved_gaps", "VALUE_RANGE", "scores", "utility_mask", "Reading", "classify",
    "passes_every_test", "false_sense", "kendall_tau", "distance_to_retrained", "ranking_distances", "kendall_matrix",
    "scorecard_frame", "summaries", "ALPHA", "score_bounds", "certain_readings", "every_test_bounds",
    "false_sense_bounds", "scorecard_verdicts", "training_counts", "cell_color", "heatmap_figure", "KENDALL_MIN_METHODS",
    "kendall_figure", "html_table", "markdown_table", "hparams_text",
]
