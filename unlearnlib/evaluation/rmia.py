"""RMIA, offline, on the U-LiRA shadows: the pairwise likelihood-ratio attack.

Zarifzadeh, Liu, Cheng, Shokri 2024, "Low-Cost High-Power Membership Inference
Attacks" (ICML 2024, arXiv 2312.03262); facts from the authors' Privacy Meter
(privacytrustlab/ml_privacy_meter, ``modules/mia/attacks/rmia.py``).

For a target model theta, a sample x and population samples z (never trained
on by any model):

- Pr(x | theta): the softmax probability of x's true label, sigmoid(phi) with
  phi = log p - log(1 - p) (:func:`unlearnlib.evaluation.lira.phi`), for the
  samples x (``ShadowOutputs.phi``) and the population z (``ShadowOutputs.test_phi``)
  alike;
- Pr(x) (offline): from the reference models that did NOT train on x, by the
  paper's linear approximation of the in-models: Pr(x) = ((1 + a) mean_OUT + (1 - a)) / 2;
  Pr(z) the same formula over all reference models (z is out for every one);
- LR(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)];
- score(x) = fraction of the population z with LR(x, z) > gamma (gamma = 1 as in
  Privacy Meter's ``run_rmia``; the paper's own CIFAR-10 configurations,
  ``research/2023_rmia/attack_configs``, use gamma = 2). Higher = more likely "in".
  The score has resolution 1 / |population| and saturates at 1 when x beats every
  z; with gamma = 1 and a strong signal many pairs tie there, which flattens the
  ROC at low FPR (a larger gamma spreads them).

Precision: everything is computed in float64 from phi, in log space. A point's
signal is the pair log p = -log(1 + e^-phi), log(1 - p) = -log(1 + e^phi); the means
over references are taken of p and of 1 - p (sums of non-negative terms, no
cancellation); log Pr(x) is log1p(-(1 + a) / 2 * mean(1 - p)) where Pr(x) > 1/2, so a
probability within 1e-16 of 1 keeps its distance from 1; and LR(x, z) > gamma is
tested as log(Pr(x | theta) / Pr(x)) - log(Pr(z | theta) / Pr(z)) > log gamma. So a
point at phi = 30 (1 - p = 1e-13) and one at phi = 20 (2e-9) stay ordered, and so on to
phi of about 700, where sigmoid(phi) itself is exactly 1 in float64 from about 37. phi
is the stored one of the pool and of D_t alike (float32, z_y - logsumexp_{j != y} z_j
of the models' float32 logits: a rounding of about 1e-7 of phi, never a saturation),
so both signals carry the same precision. Earlier the population's signal was
exp(-loss) of the stored float32 cross-entropy, while the samples' was sigmoid(phi)
in float64: from a logit margin of about 17 that loss is exactly 0 and the signal
exactly 1, so every confident population point tied with every other and the
confident samples were decided by rounding (issue 30, item 5). Outputs that carry
no ``test_phi`` (constructed ones) still take the population's signal from
``test_loss``, as log p = -loss, log(1 - p) = log(-expm1(-loss)), exact as far as
the loss given is.

The unlearning game is U-LiRA's (:func:`unlearnlib.evaluation.lira.ulira`):
positives are (row, x) with x in the row's forget set, target = that row's
unlearned model; negatives are (row, x) with x never in the row's training data,
one row per split. Scores are leave-one-split-out: row k's references are the
unlearned rows of the other splits (all of their partitions), the "OUT" ones for x
those whose original never trained on x, so a perfectly unlearned x looks like
any never-seen sample. The population is D_t (every shadow's test set).

``a``: a number, or ``"tune"`` (Privacy Meter's default when no ``offline_a`` is
given): a from the grid 0, 0.1, ..., 1 with the largest AUC of the game played on
a paired split, the first maximum as theirs. Splits are paired (0, 1), (2, 3), ...
(an odd last split joins the pair before it); split k's a is tuned on the rows of
the other split(s) of its pair with references outside the pair, so no label of
split k enters its own score. In the unlearning game the "in" models are
unlearned ones, so the paper's linear model of Pr(x | IN) has no fixed meaning
here; tuning picks the a that serves the game (a = 1, no correction, on the
constructed cases of the tests).

Departures from Privacy Meter, stated:
- Privacy Meter averages the OUT signals of a sample by keeping the largest
  ``num_reference_models`` (half the references) of the membership-masked signals,
  which is the mean of the OUT models when each sample is out of exactly half of
  them; and for the population it keeps the largest HALF of all reference
  signals. Here both are the plain mean over the OUT references, the paper's
  definition (in this design a target is out of about half the rows, but not
  exactly).
- Privacy Meter tunes a by attacking one paired model with ONE reference model
  (the IN-to-OUT inversion of the linear approximation); here the paired split's
  rows are attacked with all references outside the pair, as in the game itself.
- Privacy Meter reports the AUC; the accuracy here uses the threshold 1/2 on the
  score: for a never-seen x exchangeable with the population, the score is its
  rank among the z, uniform on [0, 1], and 1/2 is its median, as the offline LiRA
  threshold (:func:`unlearnlib.evaluation.lira.decision_threshold`). AUC, TPR at
  1% / 0.1% FPR (strictly below) and the best accuracy are LiRA's
  (:func:`unlearnlib.evaluation.lira.attack_metrics`).
- The population is every test sample, where the paper draws a subset of a
  population pool.
- Signal: the plain softmax probability (temperature 1) and plain means, as
  Privacy Meter; the paper's research configurations use temperature 2, a
  Taylor-softmax signal, augmented queries and means trimmed by 20% per side.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from .lira import ShadowOutputs, ShadowSet, ULiRAResult, attack_metrics

#: Privacy Meter's grid for tuning ``a`` (``np.arange(0, 1.1, 0.1)``).
A_GRID = tuple(round(0.1 * i, 1) for i in range(11))
#: Decision threshold on the score for the accuracy (the median of a uniform rank).
THRESHOLD = 0.5
GAMMA = 1.0


def pr_x(mean_out: np.ndarray, a: float) -> np.ndarray:
    """The offline estimate of Pr(x) from the OUT mean: ((1 + a) mean_out + (1 - a)) / 2."""
    return 0.5 * ((1.0 + a) * mean_out + (1.0 - a))


def log_signal(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log(1 - p)) with p = sigmoid(``phi``) = Pr(y | x, theta), in float64, exact for any phi."""
    phi = np.asarray(phi, dtype=np.float64)
    return -np.logaddexp(0.0, -phi), -np.logaddexp(0.0, phi)


def _log_signal_from_loss(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log(1 - p)) with p = exp(-``loss``), in float64 (outputs without ``test_phi``)."""
    loss = np.asarray(loss, dtype=np.float64)
    if (loss < 0).any():
        raise ValueError("A cross-entropy loss is >= 0; got negative test losses.")
    with np.errstate(divide="ignore"):
        return -loss, np.log(-np.expm1(-loss))


def log_pr_x(mean_p: np.ndarray, mean_q: np.ndarray, a: float) -> np.ndarray:
    """log of :func:`pr_x` from the OUT means of p and of q = 1 - p.

    1 - Pr(x) = (1 + a) / 2 * mean_q, so above 1/2 it is log1p(-(1 + a) / 2 * mean_q),
    which keeps a Pr(x) within 1e-16 of 1 apart from 1; below, log of :func:`pr_x`.
    """
    pr = pr_x(mean_p, a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pr > 0.5, np.log1p(-0.5 * (1.0 + a) * np.asarray(mean_q)), np.log(pr))


def scores_from_log_ratios(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """RMIA scores from log(Pr(x | theta) / Pr(x)) (R, N) and the same for the population (R, Z).

    Returns (R, N): the fraction of z with LR(x, z) > ``gamma``, i.e. with
    log_ratio_x - log_ratio_z > log gamma. NaN where ``log_ratio_x`` is NaN.
    """
    if gamma <= 0:
        raise ValueError(f"Need gamma > 0; got gamma={gamma}.")
    lz = np.sort(log_ratio_z, axis=1)
    bar = log_ratio_x - np.log(gamma)
    # LR(x, z) > gamma  <=>  log_ratio_z < log_ratio_x - log gamma
    scores = np.stack([np.searchsorted(rz, rx, side="left") for rz, rx in zip(lz, bar, strict=True)])
    return np.where(np.isnan(log_ratio_x), np.nan, scores / lz.shape[1])


def rmia_scores(
    p_target: np.ndarray, mean_out: np.ndarray, pz_target: np.ndarray, mean_z: np.ndarray,
    a: float, gamma: float = GAMMA,
) -> np.ndarray:
    """RMIA scores of R target models on N samples against Z population samples.

    ``p_target`` (R, N): Pr(x | theta_r); ``mean_out`` (R, N): the mean of Pr(x | theta')
    over the OUT references of row r; ``pz_target`` and ``mean_z`` (R, Z): the same for
    the population. Returns (R, N): the fraction of z with LR(x, z) > ``gamma``.
    NaN where ``mean_out`` is NaN (no OUT reference). Probabilities carry no more than
    their float64 distance from 1; :func:`rmia` works from phi instead (module docstring).
    """
    if not 0.0 <= a <= 1.0 or gamma <= 0:
        raise ValueError(f"Need a in [0, 1] and gamma > 0; got a={a}, gamma={gamma}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        lr_x = np.log(p_target) - log_pr_x(mean_out, 1.0 - np.asarray(mean_out), a)
        lr_z = np.log(pz_target) - log_pr_x(mean_z, 1.0 - np.asarray(mean_z), a)
    return scores_from_log_ratios(lr_x, lr_z, gamma)


Signal = tuple[np.ndarray, np.ndarray]  # (log p, log(1 - p)), float64


def _signals(shadows: ShadowSet, out: ShadowOutputs) -> tuple[Signal, Signal]:
    """(log p, log(1 - p)) of Pr(x | theta) on the pool and of Pr(z | theta) on D_t, both from phi."""
    test = out.test_phi if out.test_phi is not None else out.test_loss
    if out.phi.shape != tuple(shadows.forget_masks.shape) or test.shape[0] != out.phi.shape[0]:
        raise ValueError(f"{out.role} outputs ({out.phi.shape}, test {test.shape}) do not match the "
                         f"shadow set's {tuple(shadows.forget_masks.shape)} rows x samples.")
    z = log_signal(out.test_phi) if out.test_phi is not None else _log_signal_from_loss(out.test_loss)
    return log_signal(out.phi), z


def _scores(sx: Signal, mx: Signal, sz: Signal, mz: Signal, a: float, gamma: float) -> np.ndarray:
    """Scores from the target's log signals and the reference means of (p, 1 - p)."""
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"Need a in [0, 1]; got a={a}.")
    return scores_from_log_ratios(sx[0] - log_pr_x(mx[0], mx[1], a), sz[0] - log_pr_x(mz[0], mz[1], a), gamma)


def _pairs(split_of: np.ndarray) -> np.ndarray:
    """Pair group of each row's split: (0, 1), (2, 3), ...; an odd last split joins the pair before."""
    k = int(split_of.max()) + 1
    group = np.arange(k) // 2
    if k % 2 == 1 and k > 1:
        group[-1] = group[-2]
    return group[split_of]


def _game(shadows: ShadowSet, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U-LiRA's positive and negative (row, sample) masks where the score is finite."""
    P = shadows.config.partitions
    forget = shadows.forget_masks.numpy()
    never = ~shadows.row_in().numpy() & shadows.is_target.numpy()[None, :]
    part = (np.arange(scores.shape[1])[None, :] % P) == (np.arange(scores.shape[0]) % P)[:, None]
    ok = np.isfinite(scores)
    return forget & ok, never & part & ok


def _auc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    p, n = scores[pos], scores[neg]
    if len(p) == 0 or len(n) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n]))


def _loo_mean(x: np.ndarray, mask: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per (row, sample): mean of ``x`` (>= 0) over the rows where ``mask`` holds outside the
    row's group. Sums of the other groups' sums (non-negative terms), not the total minus the
    own group's, which would cancel: a mean of 1e-13 beside a 0.5 in the own group stays exact."""
    groups = np.asarray(groups)
    n_groups = int(groups.max()) + 1
    s, c = np.zeros((n_groups, x.shape[1])), np.zeros((n_groups, x.shape[1]))
    np.add.at(s, groups, np.where(mask, x, 0.0))
    np.add.at(c, groups, mask.astype(np.float64))
    others = 1.0 - np.eye(n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((others @ s) / (others @ c))[groups]


def _loo_means(shadows: ShadowSet, sx: Signal, sz: Signal, groups: np.ndarray) -> tuple[Signal, Signal]:
    """Means of p and 1 - p over the OUT references of x and over all references of z,
    leaving out each row's group."""
    never = ~shadows.row_in().numpy()
    every = np.ones(sz[0].shape, dtype=bool)
    mx = tuple(_loo_mean(np.exp(v), never, groups) for v in sx)
    mz = tuple(_loo_mean(np.exp(v), every, groups) for v in sz)
    return mx, mz


def tune_a(
    shadows: ShadowSet, out: ShadowOutputs, gamma: float = GAMMA, grid: tuple[float, ...] = A_GRID
) -> np.ndarray:
    """Per split, the ``a`` of ``grid`` with the best AUC on the paired split (module docstring)."""
    sx, sz = _signals(shadows, out)
    groups = _pairs(shadows.split_of)
    mx, mz = _loo_means(shadows, sx, sz, groups)
    split_of = shadows.split_of
    K = int(split_of.max()) + 1
    k_group = _pairs(np.arange(K))
    best, best_auc = np.zeros(K), np.zeros(K)
    for a in grid:
        scores = _scores(sx, mx, sz, mz, a, gamma)
        pos, neg = _game(shadows, scores)
        for k in range(K):
            rows = (groups == k_group[k]) & (split_of != k)
            auc = _auc(scores, pos & rows[:, None], neg & rows[:, None])
            if auc > best_auc[k]:  # strict: the first maximum, as Privacy Meter
                best_auc[k], best[k] = auc, a
    return best


def rmia(
    shadows: ShadowSet, out: ShadowOutputs, a: float | str = "tune", gamma: float = GAMMA,
    grid: tuple[float, ...] = A_GRID,
) -> ULiRAResult:
    """Offline RMIA on unlearned shadow outputs, U-LiRA's game, leave-one-split-out.

    ``a``: a number in [0, 1] for every split, or ``"tune"`` (:func:`tune_a`).
    ``metrics`` as :func:`~unlearnlib.evaluation.lira.ulira`'s, plus ``a`` (the mean
    over splits), ``a_min`` / ``a_max`` and ``gamma``; ``mode`` is ``"rmia-offline"``.
    """
    K = int(shadows.split_of.max()) + 1
    if gamma <= 0:
        raise ValueError(f"Need gamma > 0; got gamma={gamma}.")
    if isinstance(a, str):
        if a != "tune":
            raise ValueError(f"a must be a number in [0, 1] or 'tune'; got {a!r}.")
        a_split = tune_a(shadows, out, gamma, grid)
    else:
        if not 0.0 <= float(a) <= 1.0:
            raise ValueError(f"a must be a number in [0, 1] or 'tune'; got {a!r}.")
        a_split = np.full(K, float(a))
    sx, sz = _signals(shadows, out)
    mx, mz = _loo_means(shadows, sx, sz, shadows.split_of)
    scores = np.full(sx[0].shape, np.nan)
    for a_k in np.unique(a_split):
        rows = a_split[shadows.split_of] == a_k
        sx_k, mx_k, sz_k, mz_k = (tuple(v[rows] for v in sig) for sig in (sx, mx, sz, mz))
        scores[rows] = _scores(sx_k, mx_k, sz_k, mz_k, float(a_k), gamma)
    positive, negative = _game(shadows, scores)
    pos_hit = np.where(positive, scores > THRESHOLD, False).sum(0) / np.maximum(positive.sum(0), 1)
    neg_hit = np.where(negative, scores <= THRESHOLD, False).sum(0) / np.maximum(negative.sum(0), 1)
    targets = shadows.is_target.numpy() & (positive.sum(0) > 0) & (negative.sum(0) > 0)
    per_sample = np.where(targets, 0.5 * (pos_hit + neg_hit), np.nan)
    metrics = attack_metrics(scores[positive], scores[negative], THRESHOLD)
    metrics.update(threshold=THRESHOLD, n_positive=int(positive.sum()), n_negative=int(negative.sum()),
                   n_targets=int(targets.sum()), a=float(a_split.mean()), a_min=float(a_split.min()),
                   a_max=float(a_split.max()), gamma=float(gamma))
    return ULiRAResult(out.role, "rmia-offline", np.where(positive | negative, scores, np.nan),
                       positive, negative, per_sample, metrics)


__all__ = ["rmia", "rmia_scores", "scores_from_log_ratios", "log_signal", "log_pr_x", "tune_a", "pr_x",
           "A_GRID", "THRESHOLD", "GAMMA"]
