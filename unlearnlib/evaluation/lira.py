"""Per-sample membership inference: LiRA and U-LiRA on batched shadow models.

- LiRA (Carlini et al. 2022, "Membership inference attacks from first
  principles"): per sample, fit N(mu_in, s_in^2) to the logit-scaled confidence
  phi of shadow models that trained on it and N(mu_out, s_out^2) to those that
  did not; score a target model by the likelihood ratio (online), by the
  one-sided out-tail (offline), optionally with one variance shared by all
  samples (fixed variance, for few shadows).
- U-LiRA (Hayes et al. 2024, "Inexact unlearning needs more careful evaluations
  to avoid a false sense of privacy", arXiv 2403.01218): the "in" distribution
  is made of UNLEARNED shadows (trained on x, then x unlearned with the method
  under test); the "out" distribution of unlearned shadows that never saw x.
  The game is balanced; attack accuracy 0.5 means perfect unlearning.
  Departure from Deep Unlearn's U-LiRA: Gaussians are fitted to phi, not to 0/1
  correctness (../shared/reference/EVALUATION.md).

Reported: AUC, TPR at FPR 1% / 0.1% (largest TPR with FPR strictly below, as
the authors' ``plot.py``), balanced accuracy at each mode's own decision
threshold (:func:`decision_threshold`) and the best balanced accuracy over all
thresholds (the only accuracy the authors' code reports).

Departures from the authors' code (tensorflow/privacy ``research/mi_lira_2021``):
one phi per model and sample (no augmentations averaged); Gaussians centred on
the mean, not the median; offline is the paper's one-sided test (Alg. 1), where
``plot.py`` ranks by the two-sided -log N(phi; mu_out, s_out^2); fixed variance
is the mean of the per-sample variances of each distribution, where ``plot.py``
takes the standard deviation of all in-values (pooled over samples) for both;
a fit to fewer than two observations takes that pooled variance instead of a
(floored) zero variance.

Shadow protocol (:class:`ShadowConfig`). The population is a fixed random part
of D_r u D_f. A fraction of it are *targets*; the rest (the core) is in every
shadow's training set. Shadow k trains on the core plus a random half of the
targets; its in-targets are cut into ``partitions`` forget sets; for each
(k, p) the method unlearns forget set p, and a reference model is retrained
from the same initial weights on everything else. With ``targets=1.0`` and
``partitions=10`` this is Deep Unlearn's 64 x 10 design. Every target is
forgotten in one partition of each split that contains it, so it has about
K/2 unlearned and about K/2 (x partitions) out observations.

Attacks are scored leave-one-split-out: a model of split k is attacked with
Gaussians fitted on the other splits only. Every shadow comes from the
:class:`~unlearnlib.store.Store` (trained as one computation by
:mod:`unlearnlib.ensemble`); a second run trains nothing.

This module holds the statistics and the data they read: the design
(:class:`ShadowConfig`, :class:`ShadowSet`) and the outputs (:class:`ShadowOutputs`).
What trains, unlearns and caches the shadows, :class:`~unlearnlib.shadows.ShadowRunner`
(with ``OUTPUTS_VERSION``), was defined here until issue 35 moved it into its own layer,
:mod:`unlearnlib.shadows`, above the methods and the ensemble: evaluation imports nothing
above the engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from ..data import Split, Splits

MODES = ("online", "offline", "fixed_variance")
#: Variance floor: keeps a Gaussian fitted to (nearly) identical values finite.
VAR_FLOOR = 1e-6
#: Each mode's own decision threshold on its score ("in" above it). Online and
#: fixed variance: log likelihood ratio 0 (ratio 1, the Bayes rule of the balanced
#: game). Offline: log 1/2, i.e. Pr[Z <= phi] > 1/2 with Z ~ N(mu_out, s_out^2), phi
#: above the out-median: see :func:`decision_threshold`.
DECISION_THRESHOLDS = {"online": 0.0, "fixed_variance": 0.0, "offline": float(np.log(0.5))}


# --------------------------------------------------------------------------- the statistic


def phi(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logit-scaled confidence log p_y - log(1 - p_y), stable for any logits.

    Equals z_y - logsumexp_{j != y} z_j, so no probability is formed and
    nothing under- or overflows (Carlini et al. 2022, Sec. IV-B).
    """
    z = logits.double() if logits.dtype == torch.float64 else logits.float()
    zy = z.gather(-1, y.unsqueeze(-1).expand(*z.shape[:-1], 1)).squeeze(-1)
    others = z.scatter(-1, y.unsqueeze(-1).expand(*z.shape[:-1], 1), float("-inf"))
    return zy - torch.logsumexp(others, dim=-1)


# --------------------------------------------------------------------------- Gaussian fits


def _group_sums(x: np.ndarray, mask: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """Per group: count, sum and sum of squares of ``x`` where ``mask`` (rows = models)."""
    w = mask.astype(np.float64)
    xw = np.where(mask, x, 0.0)
    out = []
    for a in (w, xw, xw * xw):
        s = np.zeros((n_groups, x.shape[1]))
        np.add.at(s, groups, a)
        out.append(s)
    return tuple(out)


def loo_gaussians(
    x: np.ndarray, mask: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (model row, sample): mean, variance and count of ``x`` over the rows where
    ``mask`` holds, leaving out every row of the same group (leave-one-split-out).

    ``x`` and ``mask`` are (M, N); ``groups`` (M,) assigns rows to groups (default:
    each row its own group). Variances are the maximum-likelihood ones, floored at
    :data:`VAR_FLOOR`; a fit to fewer than two observations has no variance (NaN:
    missing, :func:`lira_scores` uses the pooled one) and one to none no mean.
    Without this a single observation got the floor variance, a Gaussian of
    width 1e-3 that saturated every score it entered.
    """
    x = np.asarray(x, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    n_groups = int(groups.max()) + 1
    c, s, ss = _group_sums(x, mask, groups, n_groups)
    c = c.sum(0) - c[groups]
    s = s.sum(0) - s[groups]
    ss = ss.sum(0) - ss[groups]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = s / c
        var = np.where(c >= 2, np.maximum(ss / c - mu * mu, VAR_FLOOR), np.nan)
    return mu, var, c


def _pooled_where_missing(var: np.ndarray) -> np.ndarray:
    """``var`` with NaN entries replaced by the mean of the others (the fixed variance)."""
    var = np.asarray(var, dtype=np.float64)
    missing = np.isnan(var)
    if not missing.any() or missing.all():
        return var
    return np.where(missing, var[~missing].mean(), var)


def lira_scores(
    target: np.ndarray,
    mu_in: np.ndarray, var_in: np.ndarray,
    mu_out: np.ndarray, var_out: np.ndarray,
    mode: str = "online",
) -> np.ndarray:
    """Membership score (higher = more likely "in") of observed ``target`` phi values.

    - ``online``: log N(t; mu_in, var_in) - log N(t; mu_out, var_out)
    - ``offline``: log Pr[Z < t], Z ~ N(mu_out, var_out) (one-sided; in-models unused)
    - ``fixed_variance``: online with one variance per distribution, the mean over
      all samples (Carlini et al. 2022: better with few shadows)

    A missing (NaN) variance, a fit to fewer than two observations, is replaced by
    that distribution's fixed (pooled) variance in every mode.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown LiRA mode {mode!r}; allowed: {', '.join(MODES)}.")
    t = np.asarray(target, dtype=np.float64)
    var_in, var_out = _pooled_where_missing(var_in), _pooled_where_missing(var_out)
    if mode == "offline":
        return norm.logcdf(t, loc=mu_out, scale=np.sqrt(var_out))
    if mode == "fixed_variance":
        var_in = np.full_like(var_in, np.nanmean(var_in))
        var_out = np.full_like(var_out, np.nanmean(var_out))
    return norm.logpdf(t, mu_in, np.sqrt(var_in)) - norm.logpdf(t, mu_out, np.sqrt(var_out))


# --------------------------------------------------------------------------- attack metrics


def decision_threshold(mode: str) -> float:
    """The score above which ``mode`` declares "in" (:data:`DECISION_THRESHOLDS`).

    Online / fixed variance: log likelihood ratio 0. Offline: log 1/2. Carlini et
    al. 2022 (Alg. 1) score offline by Lambda = 1 - Pr[Z > phi], Z ~ N(mu_out,
    s_out^2), a one-sided test of "out" that flags large Lambda; they set no
    operating point (tensorflow/privacy ``mi_lira_2021/plot.py`` reports only the
    best accuracy over all thresholds). Under a known "out" Lambda is uniform on [0, 1],
    and 1/2 is its median, phi = mu_out: the point the equal-variance likelihood-
    ratio threshold mu_out + (mu_in - mu_out) / 2 tends to as the in-shift
    vanishes, the regime of nearly-forgotten samples; it needs nothing but the out
    fit. (Thresholding log Lambda <= 0 at 0 flags nothing: accuracy 0.5 always.)
    """
    if mode not in MODES:
        raise ValueError(f"Unknown LiRA mode {mode!r}; allowed: {', '.join(MODES)}.")
    return DECISION_THRESHOLDS[mode]


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, at: float) -> float:
    """Largest TPR whose FPR is strictly below ``at`` (on an roc_curve), as the
    authors' ``plot.py`` (``tpr[np.where(fpr < .001)[0][-1]]``)."""
    ok = fpr < at
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(pos: np.ndarray, neg: np.ndarray, threshold: float = 0.0) -> dict[str, float]:
    """AUC, TPR at FPR 1% and 0.1%, balanced accuracy at ``threshold`` ("in" above it:
    pass :func:`decision_threshold` of the scores' mode; 0 is the likelihood ratio 1)
    and the best balanced accuracy over thresholds (the authors' ``acc``)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"Need finite scores on both sides; got {len(pos)} positives, {len(neg)} negatives.")
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    fpr, tpr, _ = roc_curve(y, s)
    return {
        "auc": float(roc_auc_score(y, s)),
        "tpr_at_1pct_fpr": tpr_at_fpr(fpr, tpr, 0.01),
        "tpr_at_0.1pct_fpr": tpr_at_fpr(fpr, tpr, 0.001),
        "accuracy": 0.5 * (float((pos > threshold).mean()) + float((neg <= threshold).mean())),
        "best_accuracy": float(0.5 * (tpr + 1 - fpr).max()),
    }


# --------------------------------------------------------------------------- shadows


@dataclass(frozen=True)
class ShadowConfig:
    """How the shadow models are drawn and trained.

    ``population``: fraction of D_r u D_f used at all (0.5 = "half data");
    ``targets``: fraction of the population that are in/out candidates (the
    rest is always in); ``partitions``: forget sets per split; ``epochs``:
    shadow training epochs (default: the dataset recipe's); ``seed``: draws.
    """

    k: int = 64
    partitions: int = 1
    population: float = 0.5
    targets: float = 0.2
    epochs: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 4:
            raise ValueError(f"U-LiRA needs at least 4 shadow splits (k); got {self.k}.")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1; got {self.partitions}.")
        for name in ("population", "targets"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1]; got {v}.")


@dataclass
class ShadowSet:
    """The masks of a shadow design over ``pool`` (rows of the population).

    Model rows are (split k, partition p) pairs, row = k * P + p.
    """

    config: ShadowConfig
    pool: Split
    is_target: torch.Tensor      # (N,) candidates for in/out
    in_masks: torch.Tensor       # (K, N) what split k trains on
    forget_masks: torch.Tensor   # (K*P, N)
    retain_masks: torch.Tensor   # (K*P, N)
    split_of: np.ndarray         # (K*P,) split index of each row
    init_seeds: list[int]        # (K,) init and data-order seed of split k
    unlearn_seeds: list[int]     # (K*P,) UnlearnData.seed of each row

    @property
    def rows(self) -> int:
        return len(self.split_of)

    def row_in(self) -> torch.Tensor:
        """(K*P, N): whether the row's original model trained on each sample."""
        return self.in_masks[torch.as_tensor(self.split_of)]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in (self.pool.index, self.in_masks, self.forget_masks):
            h.update(t.cpu().numpy().tobytes())
        return h.hexdigest()[:16]


def make_shadow_set(splits: Splits, config: ShadowConfig) -> ShadowSet:
    """Draw the population, targets, in-halves and forget partitions (deterministic)."""
    pool = splits.train
    g = torch.Generator().manual_seed(10_007 + config.seed)
    n_pool = max(2, int(round(config.population * len(pool))))
    pool = pool.subset(torch.randperm(len(pool), generator=g)[:n_pool].sort().values)
    n_t = int(round(config.targets * n_pool))
    if n_t < 2 * config.partitions:
        raise ValueError(f"{n_t} targets cannot fill {config.partitions} forget partitions of a half; "
                         "raise `targets` or `population`, or lower `partitions`.")
    is_target = torch.zeros(n_pool, dtype=torch.bool)
    is_target[torch.randperm(n_pool, generator=g)[:n_t]] = True
    t_idx = torch.nonzero(is_target).squeeze(1)
    K, P = config.k, config.partitions
    in_masks = (~is_target).expand(K, n_pool).clone()
    forget = torch.zeros(K * P, n_pool, dtype=torch.bool)
    for k in range(K):
        chosen = t_idx[torch.randperm(n_t, generator=g)[: n_t // 2]]  # exact half: equal sizes batch together
        in_masks[k, chosen] = True
        for p, part in enumerate(torch.tensor_split(chosen, P)):
            forget[k * P + p, part] = True
    split_of = np.repeat(np.arange(K), P)
    retain = in_masks[torch.as_tensor(split_of)] & ~forget
    base = 1_000_003 * (config.seed + 1)
    return ShadowSet(config, pool, is_target, in_masks, forget, retain, split_of,
                     [base + k for k in range(K)], [base + 500_000 + r for r in range(K * P)])


@dataclass
class ShadowOutputs:
    """What the attacks need from one set of models (rows as in :class:`ShadowSet`)."""

    role: str
    phi: np.ndarray            # (M, N) phi on the population
    loss: np.ndarray           # (M, N) cross-entropy on the population
    test_loss: np.ndarray      # (M, N_test)
    retain_acc: np.ndarray     # (M,) accuracy on each model's own retain set
    forget_acc: np.ndarray     # (M,)
    test_acc: np.ndarray       # (M,)
    seconds: float = 0.0       # training / unlearning wall time (when computed)
    meta: dict = field(default_factory=dict)
    #: (M, N_test) phi on D_t, the RMIA population's signal (float32, as ``phi``); None on
    #: outputs built without it, from which RMIA takes exp(-test_loss) instead
    test_phi: np.ndarray | None = None


# --------------------------------------------------------------------------- U-LiRA


@dataclass
class ULiRAResult:
    """Per-(model row, target sample) scores and the attack's summary.

    ``scores`` is (M, N) with NaN where the pair is not part of the game;
    ``positive`` / ``negative`` mark the game's pairs; ``per_sample_accuracy``
    is each target's balanced accuracy at the mode's decision threshold
    (:func:`decision_threshold`; ``metrics["threshold"]``).
    """

    method: str
    mode: str
    scores: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    per_sample_accuracy: np.ndarray
    metrics: dict[str, float]

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, tpr) of the pooled game."""
        pos, neg = self.scores[self.positive], self.scores[self.negative]
        fpr, tpr, _ = roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
        return fpr, tpr


def ulira(shadows: ShadowSet, out: ShadowOutputs, mode: str = "online") -> ULiRAResult:
    """U-LiRA (Hayes et al. 2024) on unlearned shadow outputs, leave-one-split-out.

    Positives: (row, x) with x in the row's forget set, target = that unlearned
    model. Negatives: (row, x) with x never in the row's training data, one row
    per split (partition ``x mod P``) so the game is balanced. Gaussians: "in"
    from the unlearned rows that forgot x, "out" from all rows that never saw x,
    both over the other splits. With ``out`` = the originals this is plain
    LiRA (Carlini et al. 2022) with the forget sets as members.

    ``metrics["accuracy"]`` and ``per_sample_accuracy`` use the mode's own
    decision threshold; ``metrics["best_accuracy"]`` the best one of the pooled game.
    """
    P = shadows.config.partitions
    x = out.phi.astype(np.float64)
    forget = shadows.forget_masks.numpy()
    never = ~shadows.row_in().numpy() & shadows.is_target.numpy()[None, :]
    mu_u, var_u, _ = loo_gaussians(x, forget, shadows.split_of)
    mu_o, var_o, _ = loo_gaussians(x, never, shadows.split_of)
    scores = lira_scores(x, mu_u, var_u, mu_o, var_o, mode)
    thr = decision_threshold(mode)
    part = (np.arange(x.shape[1])[None, :] % P) == (np.arange(len(x)) % P)[:, None]
    ok = np.isfinite(scores)
    positive, negative = forget & ok, never & part & ok
    pos_hit = np.where(positive, scores > thr, False).sum(0) / np.maximum(positive.sum(0), 1)
    neg_hit = np.where(negative, scores <= thr, False).sum(0) / np.maximum(negative.sum(0), 1)
    targets = shadows.is_target.numpy() & (positive.sum(0) > 0) & (negative.sum(0) > 0)
    per_sample = np.where(targets, 0.5 * (pos_hit + neg_hit), np.nan)
    metrics = attack_metrics(scores[positive], scores[negative], thr)
    metrics.update(threshold=thr, n_positive=int(positive.sum()), n_negative=int(negative.sum()),
                   n_targets=int(targets.sum()))
    return ULiRAResult(out.role, mode, np.where(positive | negative, scores, np.nan), positive, negative,
                       per_sample, metrics)


def population_mia_per_shadow(
    shadows: ShadowSet, out: ShadowOutputs, n_models: int = 8, seed: int = 0, attacker: str = "scaled"
) -> np.ndarray:
    """Deep Unlearn's loss-based population MIA (forget vs test, logistic regression) on each
    of the first ``n_models`` shadow rows (their spread gives the mean an interval).
    ``attacker``: see :func:`~unlearnlib.evaluation.mia.population_mia`."""
    from .mia import population_mia

    forget = shadows.forget_masks.numpy()
    return np.array([population_mia(out.loss[r][forget[r]], out.test_loss[r], seed=seed, attacker=attacker)
                     for r in range(min(n_models, len(out.loss)))], float)


def population_mia_on_shadows(
    shadows: ShadowSet, out: ShadowOutputs, n_models: int = 8, seed: int = 0, attacker: str = "scaled"
) -> float:
    """:func:`population_mia_per_shadow` averaged over the shadow rows: what a population
    attack concludes."""
    return float(np.mean(population_mia_per_shadow(shadows, out, n_models, seed, attacker)))


__all__ = [
    "phi", "loo_gaussians", "lira_scores", "attack_metrics", "tpr_at_fpr", "decision_threshold",
    "ShadowConfig", "ShadowSet", "make_shadow_set", "ShadowOutputs", "ULiRAResult", "ulira", "population_mia_on_shadows",
    "population_mia_per_shadow",
    "MODES", "DECISION_THRESHOLDS",
]
