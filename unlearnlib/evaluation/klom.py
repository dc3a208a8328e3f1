"""KLOM: KL divergence of margins between oracle (retrained) and unlearned models.

Georgiev, Rinberg, Park, Garg, Ilyas, Madry, Neel 2024, "Attribute-to-Delete:
Machine Unlearning via Datamodel Matching" (arXiv 2410.23232, App. E.1); the
binning rules below are those of the authors' benchmark code
(RoyRin/data-unlearning-bench, ``unlearning_bench/eval.py``), read for facts.

Direction. The paper defines KLOM in App. E.1 as a KL divergence between the
distribution of a point's margins over oracle models and that over unlearned
models, the oracles' first: KLOM(x) = KL(oracle || unlearned) = sum over bins b
of o_b log(o_b / u_b). The authors' benchmark README and dataset card, which refer
to App. E.1 for the definition, state it in that order ("the distribution of
margins of oracle models and [the] distribution of margins of the unlearned
models"), and the benchmark's pipeline computes exactly that: ``unlearning_bench/run.py`` (``load_klom``) passes the oracle margins
as the FIRST argument of ``kl_from_margins``, whose ``compute_binned_KL_div(p, q)``
returns KL(p || q) and raises q's empty bins to eps, so p is the oracles' histogram
and the eps floor falls on the unlearned side. That is the default here
(``direction="oracle||unlearned"``). The same authors' later EasyDUB code
(``easydub/eval.py``, ``klom_from_margins``) passes the unlearned margins as p,
i.e. computes KL(unlearned || oracle) with the floor on the oracle side: that is
kept as the option ``direction="unlearned||oracle"`` (this module's default before
the paper's definition was settled). KL is not symmetric and the two differ (the
tests build a point where they read 8.07 and log 4).

Per point x, over N unlearned and N oracle models:

- margin of a model on (x, y): z_y - logsumexp_{j != y} z_j. This is exactly
  LiRA's phi (:func:`unlearnlib.evaluation.lira.phi`), so ``ShadowOutputs.phi`` is
  the margin and no new output is needed;
- both samples are clipped to [-100, 100];
- 20 equal-width bins span [min, max] of the two clipped samples together
  (``np.linspace``; when min == max the range is [min, min + 1]);
- each sample is binned with ``np.digitize`` and only indices 1..20 are counted,
  so a value equal to the pooled maximum lands in index 21 and is NOT counted (the
  authors' rule, kept by default; ``include_max=True`` counts it in the last bin,
  as ``np.histogram`` would). Counts are divided by the number counted. A side
  with nothing counted (all its values at the pooled maximum, e.g. one model per
  side, or one side constant above the other) gets NaN here. In the authors' code
  that holds when it is p's side; when it is q's, scipy renormalises q's eps floor
  over p's m bins and the point scores log m - H(p), little or 0 (0 for a p in one
  bin): a near-perfect score for a side nothing was counted on. A stated departure;
- with p the first histogram of the direction (the oracles' by default) and q the
  second, q's zero bins where p > 0 are raised to eps = 1e-5;
- KLOM(x) = ``scipy.stats.entropy(p, q_safe)``, which renormalises both to sum 1.

The largest value a point can get is log(1 + 1/eps) = 11.513: all of p in one bin
where q has nothing (p concentrated puts the most mass on the single eps bin).
The smallest is 0, but two independent draws of N margins from ONE distribution
do not score 0: the binned estimate is biased upwards at small N (measured with
:func:`small_sample_floor` on normal margins, 95th percentile over 20,000 points,
default direction: 10.9 at N = 4, 6.1 at N = 16, 3.0 at N = 32, 0.66 at N = 100,
the authors' N, and 0.21 at N = 256; the other direction is within 0.1 of these),
so a KLOM is read against the same N, which :func:`small_sample_floor` measures
for any per-point N.

Summary: the authors print the 95th percentile of the per-point values over the
forget points, the retain points and the validation points (``np.percentile(.., 95)``).
Here NaN points (none counted on one side) are left out of the percentile
(``np.nanpercentile``) and counted in ``n_nan``: a stated departure.

On shadow models (:func:`klom_on_shadows`), departures from the authors' setting,
where all N models share one forget set and differ only in their training seed:
a shadow row k trained on the core plus a random half of the targets, so a
point's N margins vary with the training data as well as the seed. Per point,
"forget" takes the rows that forgot it, "retain" the rows that kept it in their
retain set and "val" the rows that never trained on it (the targets outside the
row's half: held out from that row's original and its oracle alike), each time
the unlearned row against the oracle row retrained without the same forget set
(``ShadowRunner.outputs("retrained-reference")``). The authors' validation set is
a held-out split no model trains on; D_t would be that, but ``ShadowOutputs``
holds only its losses, from which the margin (logit(exp(-loss))) cannot be
recovered for confident predictions in float32 (the loss rounds to 0 for
margins above ~16.6). A point's N is the number of rows of its kind: with k
shadow splits about k/2 rows forget each target, so N is far below the authors' 100.

Departures, in short: NaN where either side has nothing counted, and NaN points
left out of the percentile; per-point N and
training data varying over shadow rows (above); ``include_max`` and ``direction``
offered as options (defaults: the authors' binning and the paper's direction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import entropy

from .lira import ShadowOutputs, ShadowSet

#: The authors' binning constants (``compute_binned_KL_div`` / ``kl_from_margins``).
BINS = 20
EPS = 1e-5
CLIP = 100.0
PERCENTILE = 95.0
#: KL(oracle || unlearned), eps floor on the unlearned side: the paper's definition (default).
ORACLE_FIRST = "oracle||unlearned"
#: KL(unlearned || oracle), eps floor on the oracle side: the option.
UNLEARNED_FIRST = "unlearned||oracle"
DIRECTIONS = (ORACLE_FIRST, UNLEARNED_FIRST)
#: Points binned at once (bounds the (models, points, bins + 1) comparison array).
_CHUNK = 2048


def max_klom(eps: float = EPS) -> float:
    """The largest per-point value the rules allow: log(1 + 1/eps)."""
    return float(np.log1p(1.0 / eps))


def _check(values: np.ndarray, mask: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    m = np.ones(v.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if v.ndim != 2 or m.shape != v.shape or np.isnan(v[m]).any():
        raise ValueError(f"{name} must be (models, points) margins without NaN, with a mask of the same shape; "
                         f"got {v.shape} and mask {m.shape}.")
    return v, m


def _bin_probs(v: np.ndarray, m: np.ndarray, edges: np.ndarray, bins: int, include_max: bool) -> np.ndarray:
    """(points, bins) probabilities of the masked values of each column of ``v``."""
    # np.digitize (right=False): index = number of edges <= value, in 0..bins+1
    idx = (edges[None, :, :] <= v[:, :, None]).sum(-1)
    if include_max:
        idx = np.where(idx == bins + 1, bins, idx)
    keep = m & (idx >= 1) & (idx <= bins)
    counts = np.zeros((v.shape[1], bins))
    cols = np.broadcast_to(np.arange(v.shape[1]), v.shape)
    np.add.at(counts, (cols[keep], idx[keep] - 1), 1.0)
    total = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / np.where(total > 0, total, 1.0), 0.0)


def klom_values(
    unlearned: np.ndarray, oracle: np.ndarray,
    mask_unlearned: np.ndarray | None = None, mask_oracle: np.ndarray | None = None,
    bins: int = BINS, eps: float = EPS, clip: float = CLIP, include_max: bool = False,
    direction: str = ORACLE_FIRST,
) -> np.ndarray:
    """Per-point binned KL of margins, the authors' rules (module docstring).

    ``unlearned`` (M, N) and ``oracle`` (M', N): margins of M and M' models on N
    points; the optional masks say which (model, point) entries take part (a point
    with no entry on a side gets NaN). A 1-D array is one point. ``direction``:
    ``"oracle||unlearned"`` (default, the paper's KL(oracle || unlearned), eps on the
    unlearned side's empty bins) or ``"unlearned||oracle"`` (the reverse).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(map(repr, DIRECTIONS))}; got {direction!r}.")
    u, mu = _check(unlearned, mask_unlearned, "unlearned")
    o, mo = _check(oracle, mask_oracle, "oracle")
    if u.shape[1] != o.shape[1]:
        raise ValueError(f"unlearned and oracle must cover the same points; got {u.shape[1]} and {o.shape[1]}.")
    if bins < 1 or eps <= 0 or clip <= 0:
        raise ValueError(f"Need bins >= 1, eps > 0 and clip > 0; got {bins}, {eps}, {clip}.")
    u, o = np.clip(u, -clip, clip), np.clip(o, -clip, clip)
    out = np.full(u.shape[1], np.nan)
    for lo in range(0, u.shape[1], _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        uc, oc, muc, moc = u[:, sl], o[:, sl], mu[:, sl], mo[:, sl]
        both = muc.any(0) & moc.any(0)
        start = np.minimum(np.where(muc, uc, np.inf).min(0), np.where(moc, oc, np.inf).min(0))
        end = np.maximum(np.where(muc, uc, -np.inf).max(0), np.where(moc, oc, -np.inf).max(0))
        start, end = np.where(both, start, 0.0), np.where(both, end, 1.0)
        end = np.where(start >= end, start + 1.0, end)
        edges = np.linspace(start, end, bins + 1, axis=-1)  # (points, bins + 1), as np.linspace per point
        hu = _bin_probs(uc, muc, edges, bins, include_max)
        ho = _bin_probs(oc, moc, edges, bins, include_max)
        p, q = (ho, hu) if direction == ORACLE_FIRST else (hu, ho)
        q_safe = np.where(p > 0, np.maximum(q, eps), q)
        with np.errstate(invalid="ignore", divide="ignore"):
            kl = entropy(p, q_safe, axis=1)
        counted = (hu.sum(1) > 0) & (ho.sum(1) > 0)  # nothing counted on either side: NaN
        out[sl] = np.where(both & counted, kl, np.nan)
    return out


def small_sample_floor(n: int | np.ndarray, percentile: float = PERCENTILE, points: int = 4000,
                       seed: int = 0, **binning) -> float:
    """The ``percentile``-th percentile of KLOM over points whose unlearned and oracle margins
    are two independent draws of ``n`` from ONE distribution (standard normal): what a
    perfect unlearning reads at this N (module docstring), by simulation.

    ``n``: models per side, one int for every point or one per point (a design whose N
    varies; it is cycled over ``points``). Points with ``n < 1`` are dropped. ``binning``:
    ``bins``, ``eps``, ``clip``, ``include_max``, ``direction`` of :func:`klom_values`.
    Deterministic for a given ``seed``.
    """
    ns = np.resize(np.atleast_1d(np.asarray(n, dtype=int)), points)
    ns = ns[ns >= 1]
    if not len(ns):
        raise ValueError(f"Need at least one point with n >= 1 model per side; got {n!r}.")
    rng = np.random.default_rng(seed)
    top = int(ns.max())
    mask = np.arange(top)[:, None] < ns[None, :]
    draw = lambda: np.where(mask, rng.normal(size=mask.shape), 0.0)  # noqa: E731
    u, o = draw(), draw()
    return summarise(klom_values(u, o, mask, mask, **binning), percentile)[0]


@dataclass
class KLOMResult:
    """Per-point KLOM values by kind of point and their summaries.

    ``values[kind]`` is (N,) over the shadow pool, NaN where the point is not of
    that kind in any row; ``summary[kind]`` the ``percentile``-th percentile over
    the points of that kind; ``n[kind]`` / ``n_nan[kind]`` how many points entered
    and how many of them were NaN (nothing counted on one side).
    """

    values: dict[str, np.ndarray]
    summary: dict[str, float]
    n: dict[str, int]
    n_nan: dict[str, int]
    percentile: float
    meta: dict = field(default_factory=dict)


def klom_percentile(values: np.ndarray, sample_weight: np.ndarray | None = None,
                    percentile: float = PERCENTILE) -> np.ndarray:
    """The ``percentile``-th percentile of per-point KLOM ``values`` (NaN points left out),
    under B weightings ``sample_weight`` (B, points) of integer multiplicities: the
    percentile of the values repeated that many times (a bootstrap's resample). None: one
    weighting of ones, the plain percentile. A (B,) array; NaN where no point is left."""
    values = np.asarray(values, np.float64)
    ok = ~np.isnan(values)
    if sample_weight is None:
        return np.array([np.percentile(values[ok], percentile) if ok.any() else np.nan])
    weights = np.atleast_2d(sample_weight)
    out = np.full(len(weights), np.nan)
    for b, wb in enumerate(weights):
        rep = np.repeat(values[ok], wb[ok].astype(int))
        if len(rep):
            out[b] = np.percentile(rep, percentile)
    return out


def summarise(values: np.ndarray, percentile: float = PERCENTILE) -> tuple[float, int, int]:
    """(percentile over the non-NaN values, points, NaN points): :func:`klom_percentile`."""
    v = np.asarray(values, dtype=np.float64)
    nan = int(np.isnan(v).sum())
    return float(klom_percentile(v, None, percentile)[0]), int(len(v)), nan


def klom_on_shadows(
    shadows: ShadowSet, unlearned: ShadowOutputs, oracle: ShadowOutputs,
    percentile: float = PERCENTILE, **binning,
) -> KLOMResult:
    """KLOM per forget / retain / val point of the shadow pool (module docstring).

    ``unlearned``: a method's unlearned shadows; ``oracle``: the reference models
    retrained without each row's forget set. ``binning``: ``bins``, ``eps``,
    ``clip``, ``include_max``, ``direction`` of :func:`klom_values` (default: the
    paper's KL(oracle || unlearned)).
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100]; got {percentile}.")
    shape = tuple(shadows.forget_masks.shape)
    for out in (unlearned, oracle):
        if out.phi.shape != shape:
            raise ValueError(f"{out.role} phi has shape {out.phi.shape}; the shadow set has {shape}.")
    kinds = {
        "forget": shadows.forget_masks.numpy(),
        "retain": shadows.retain_masks.numpy(),
        "val": ~shadows.row_in().numpy() & shadows.is_target.numpy()[None, :],
    }
    values, summary, n, n_nan = {}, {}, {}, {}
    for kind, mask in kinds.items():
        vals = klom_values(unlearned.phi, oracle.phi, mask, mask, **binning)
        values[kind] = vals
        used = mask.any(0)
        summary[kind], n[kind], n_nan[kind] = summarise(vals[used], percentile)
    return KLOMResult(values, summary, n, n_nan, percentile,
                      {"unlearned": unlearned.role, "oracle": oracle.role,
                       "direction": binning.get("direction", ORACLE_FIRST), **binning})


__all__ = ["klom_values", "klom_on_shadows", "small_sample_floor", "KLOMResult", "summarise", "klom_percentile", "max_klom",
           "BINS", "EPS", "CLIP", "PERCENTILE", "ORACLE_FIRST", "UNLEARNED_FIRST", "DIRECTIONS"]
