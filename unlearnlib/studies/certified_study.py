"""Certified unlearning against the book's attacks, and the price of a guarantee (issue 37).

A certified (epsilon, delta) removal promises that *no* test tells the unlearned model from
the certified retrained one (the same mechanism run without the forget set) with
``TPR > e^epsilon FPR + delta``. That turns "does this attack measure forgetting?" into a
measurement: run each attack as a test on many certified-unlearned and certified-retrained
models and check the promise (:func:`unlearnlib.certified.bound_check.bound_excess`). An
excess beyond sampling error is a bug in the mechanism or in the attack; a check that never
fires could be a check without power, so the same attacks must also catch a deliberately
under-noised variant of each mechanism at the same budget.

**The setting.** The embedded MNIST-1D, Deep Unlearn's split (``random:0.1`` by default:
408 forget rows), features from a ``cnn1d`` trained on a separate public MNIST-1D draw
(:mod:`unlearnlib.certified.features`), and a one-vs-rest logistic head on them, certified by

- ``newton``: Guo et al. 2020's one Newton step (the forget set removed in one step; the
  perturbation ``sigma`` for each epsilon from a pilot run's residual bound times
  :attr:`CertifiedPlan.slack`, so that the removal fits the budget; a head whose bound
  exceeds it retrains, which the rows count);
- ``d2d``: Neel et al. 2021's perturbed gradient descent, the forget set deleted in one
  update of :attr:`CertifiedPlan.d2d_steps` steps.

**The attacks**, each a test on a released model, fitted on *shadow* models (other seeds of
the same mechanisms) so that the test is fixed before the target models are scored:

- ``loss``: the mean cross-entropy on the forget set (the population loss MIA's signal);
- ``ulira``: U-LiRA (Hayes et al. 2024), the summed per-example log likelihood ratio of phi
  under Gaussians fitted on shadow unlearned ("in") and shadow retrained ("out") models;
- ``rmia``: RMIA (Zarifzadeh et al. 2024), the mean over forget rows of the share of population
  rows (test rows) that x dominates, with the shadow retrained models as references (``a = 1``:
  they are exactly the model the null hypothesis names);
- the NeurIPS 2023 challenge's per-example epsilon estimate (:mod:`unlearnlib.evaluation.neurips`)
  on the target models, against the certified epsilon and against its own null: the same
  estimate between two independent sets of certified retrained models.

Every check of the table runs at ``alpha / (number of checks)`` (Bonferroni over the table),
so "no violation" is a family-wise statement.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..certified import descent_to_delete as d2d
from ..certified import newton_removal as nr
from ..certified.bound_check import bound_excess
from ..certified.features import PUBLIC_SEED, public_extractor
from ..data import load_splits
from ..datasets.embedded import dataset_cache
from ..evaluation import neurips
from ..evaluation.forget_quality import forget_quality
from ..evaluation.klom import klom_percentile, klom_values, small_sample_floor
from ..evaluation.lira import lira_scores, loo_gaussians, phi
from ..evaluation.rmia import log_pr_x, log_signal, scores_from_log_ratios
from ..store import Store

MECHANISMS = ("newton", "d2d")
ATTACKS = ("loss", "ulira", "rmia")
#: What the variants are: the certified mechanism, and the one whose noise is cut.
CERTIFIED, UNDER_NOISED = "certified", "under-noised"
#: Seed offsets of the four model sets (independent noise draws on every side).
ROLE_SEEDS = {"unlearned": 0, "retrained": 100_000, "shadow_unlearned": 200_000, "shadow_retrained": 300_000}
#: The price claim's threshold: a guarantee at epsilon = 1 "costs at most this much" test
#: accuracy against the same head without noise (fixed before any run).
PRICE_THRESHOLD = 0.05
PRICE_EPSILON = 1.0


@dataclass(frozen=True)
class CertifiedPlan:
    """What the chapter runs (module docstring); checked before anything trains."""

    epsilons: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    delta: float = 1e-5
    n_models: int = 30            # target models per side
    n_shadows: int = 30           # shadow models per side (fit the attacks)
    mechanisms: tuple[str, ...] = MECHANISMS
    dataset: str = "mnist1d"
    forget: str = "random:0.1"
    newton_lam: float = 0.1
    d2d_lam: float = 0.05
    reference_lam: float = 0.01   # the non-private head a guarantee is priced against
    d2d_steps: int = 40
    slack: float = 1.5            # Newton's budget over the pilot's residual bound
    population: int = 500         # test rows that serve as RMIA's population z
    broken_factor: float = 1e-9   # the under-noised variant's noise, as a share of the certified one (none in effect)
    broken_epsilon: float = 0.5
    alpha: float = 0.05
    extractor_epochs: int = 15

    def __post_init__(self) -> None:
        if not self.epsilons or not all(isinstance(e, (int, float)) and 0 < e < math.inf for e in self.epsilons):
            raise ValueError(f"epsilons must be positive numbers; got {self.epsilons!r}.")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must lie in (0, 1); got {self.delta!r}.")
        if not set(self.mechanisms) <= set(MECHANISMS) or not self.mechanisms:
            raise ValueError(f"mechanisms must be among {', '.join(MECHANISMS)}; got {self.mechanisms!r}.")
        if self.n_models < 5 or self.n_shadows < 3:
            raise ValueError(f"need n_models >= 5 and n_shadows >= 3; got {self.n_models}, {self.n_shadows}.")
        if not (0 < self.broken_factor < 1 and self.slack >= 1 and 0 < self.alpha < 1):
            raise ValueError("broken_factor must lie in (0, 1), slack be >= 1 and alpha in (0, 1).")
        if self.dataset != "mnist1d":
            raise ValueError("the certified heads sit on public MNIST-1D features: dataset must be 'mnist1d'.")


@dataclass
class Features:
    """The head's inputs: training rows (retain then forget), the forget rows' positions, test rows."""

    x: torch.Tensor
    y: torch.Tensor
    forget: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    population: torch.Tensor  # positions of RMIA's population rows among the test rows

    @property
    def retain(self) -> torch.Tensor:
        keep = torch.ones(len(self.y), dtype=torch.bool)
        keep[self.forget] = False
        return keep


def features(plan: CertifiedPlan, store: Store) -> Features:
    """The public extractor's features of the private splits (cached in ``store``)."""
    with dataset_cache(store.root):
        splits = load_splits(plan.dataset, plan.forget)
    spec = {"what": "certified-features", "public_seed": PUBLIC_SEED, "epochs": plan.extractor_epochs,
            "splits": splits.fingerprint(), "version": 1}

    def build() -> dict[str, np.ndarray]:
        ext = public_extractor(epochs=plan.extractor_epochs)
        return {"retain": ext(splits.retain.x).numpy(), "forget": ext(splits.forget.x).numpy(),
                "test": ext(splits.test.x).numpy()}

    a = store.arrays("certified", spec, build)
    x = torch.as_tensor(np.concatenate([a["retain"], a["forget"]]), dtype=torch.float64)
    y = torch.cat([splits.retain.y, splits.forget.y]).cpu()
    n_r, n_f = len(a["retain"]), len(a["forget"])
    pop = torch.as_tensor(np.random.default_rng(0).permutation(len(splits.test.y))[:plan.population])
    return Features(x, y, torch.arange(n_r, n_r + n_f), torch.as_tensor(a["test"], dtype=torch.float64),
                    splits.test.y.cpu(), pop)


# --------------------------------------------------------------------------- the mechanisms


def newton_sigma(f: Features, plan: CertifiedPlan, epsilon: float) -> float:
    """The perturbation for ``epsilon``: the pilot's residual bound for removing the forget set
    in one Newton step, times ``slack``, through the paper's formula. The bound grows with the
    head's weights, which grow with the noise, so the pilot repeats until ``sigma`` moves by
    under 1% (at most 8 times; where it keeps growing no noise lets the Newton step fit the
    budget, and the heads retrain, which the price table counts)."""
    sigma = 1.0
    for _ in range(8):
        pilot = nr.train(f.x, f.y, 10, epsilon, plan.delta, sigma=sigma, lam=plan.newton_lam, seed=999_999)
        pilot.remove_batch(f.forget, enforce_budget=False)
        new = nr.perturbation_scale(epsilon, plan.delta, plan.slack * pilot.spent)
        done, sigma = abs(new - sigma) <= 0.01 * sigma, new
        if done:
            break
    return sigma


def d2d_sigma(f: Features, plan: CertifiedPlan, epsilon: float) -> float:
    """The published noise for ``epsilon`` (K models, the forget set in one update)."""
    radius = 1.0 / plan.d2d_lam
    return math.sqrt(10) * d2d.noise_scale(epsilon, plan.delta, len(f.y), plan.d2d_steps, plan.d2d_lam, radius,
                                           deletions=len(f.forget))


def sigma_of(f: Features, plan: CertifiedPlan, mechanism: str, epsilon: float, variant: str) -> float:
    """The noise of ``mechanism`` at ``epsilon``; the under-noised variant's is cut by ``broken_factor``."""
    s = newton_sigma(f, plan, epsilon) if mechanism == "newton" else d2d_sigma(f, plan, epsilon)
    return s * (plan.broken_factor if variant == UNDER_NOISED else 1.0)


def newton_release(f: Features, plan: CertifiedPlan, epsilon: float, sigma: float, role: str, seed: int,
                   variant: str) -> tuple[torch.Tensor, float, int]:
    """One released Newton head: its weights (d, K), the wall time of what its role measures
    (the removal for an unlearned model, the training for a retrained one), its retrainings."""
    unlearn = role.endswith("unlearned")
    x, y = (f.x, f.y) if unlearn else (f.x[f.retain], f.y[f.retain])
    t = time.perf_counter()
    head = nr.train(x, y, 10, epsilon, plan.delta, sigma=sigma, lam=plan.newton_lam, seed=seed)
    if unlearn:
        t = time.perf_counter()
        head.remove_batch(f.forget, enforce_budget=variant == CERTIFIED)
    return head.w, time.perf_counter() - t, head.retrainings


def d2d_secret(f: Features, plan: CertifiedPlan, epsilon: float, sigma: float, role: str
               ) -> tuple[torch.Tensor, float]:
    """The D2D secret iterate of a role (deterministic: the same for every seed) and the wall
    time of what the role measures; each released head adds its seed's noise
    (:func:`~unlearnlib.certified.descent_to_delete.publish`)."""
    unlearn = role.endswith("unlearned")
    x, y = (f.x, f.y) if unlearn else (f.x[f.retain], f.y[f.retain])
    t = time.perf_counter()
    head = d2d.train(x, y, 10, epsilon, plan.delta, steps=plan.d2d_steps, lam=plan.d2d_lam, seed=0,
                     sigma=sigma, deletions_per_update=len(f.forget))
    if unlearn:
        t = time.perf_counter()
        head.remove_batch(f.forget)
    return head.secret, time.perf_counter() - t


def model_set(f: Features, plan: CertifiedPlan, mechanism: str, epsilon: float, variant: str, role: str,
              n: int, sigma: float, store: Store) -> dict[str, np.ndarray]:
    """``n`` released heads of one role with noise ``sigma`` (:func:`sigma_of`), as what the
    attacks read: phi on the forget rows and on the population, accuracies, wall times and
    retrainings (cached in ``store``)."""
    lam = plan.newton_lam if mechanism == "newton" else plan.d2d_lam
    spec = {"what": "certified-models", "mechanism": mechanism, "epsilon": float(epsilon), "variant": variant,
            "role": role, "n": int(n), "sigma": float(sigma), "lam": lam, "delta": plan.delta,
            "d2d_steps": plan.d2d_steps, "population": plan.population, "features": _features_key(f), "version": 1}

    def build() -> dict[str, np.ndarray]:
        out: dict[str, list] = {k: [] for k in ("phi_forget", "phi_population", "test_acc", "retain_acc",
                                               "forget_acc", "seconds", "retrainings")}
        xf, yf = nr.normalise(f.x[f.forget]), f.y[f.forget]
        xt = nr.normalise(f.x_test)
        xr, yr = nr.normalise(f.x[f.retain]), f.y[f.retain]
        secret = d2d_secret(f, plan, epsilon, sigma, role) if mechanism == "d2d" else None
        for i in range(int(n)):
            seed = ROLE_SEEDS[role] + i
            if secret is None:
                w, secs, retrains = newton_release(f, plan, epsilon, sigma, role, seed, variant)
            else:
                w = d2d.publish(secret[0], sigma, torch.Generator().manual_seed(seed))
                secs, retrains = secret[1], 0
            zt = xt @ w
            out["phi_forget"].append(phi(xf @ w, yf).numpy())
            out["phi_population"].append(phi(zt[f.population], f.y_test[f.population]).numpy())
            out["test_acc"].append(float((zt.argmax(1) == f.y_test).double().mean()))
            out["retain_acc"].append(float(((xr @ w).argmax(1) == yr).double().mean()))
            out["forget_acc"].append(float(((xf @ w).argmax(1) == yf).double().mean()))
            out["seconds"].append(secs)
            out["retrainings"].append(retrains)
        return {k: np.asarray(v) for k, v in out.items()} | {"sigma": np.asarray(sigma)}

    return store.arrays("certified", spec, build)


def _features_key(f: Features) -> str:
    import hashlib

    h = hashlib.sha256()
    for t in (f.x, f.forget, f.x_test, f.population):
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def non_private(f: Features, plan: CertifiedPlan, mechanism: str) -> dict[str, float]:
    """A head on the retain rows with no noise (the exact minimiser): ``reference`` at
    :attr:`CertifiedPlan.reference_lam` (what a guarantee is priced against: its regulariser
    is part of the price), else at the mechanism's own."""
    lam = {"newton": plan.newton_lam, "d2d": plan.d2d_lam, "reference": plan.reference_lam}[mechanism]
    x, y = nr.normalise(f.x[f.retain]), nr.signed_labels(f.y[f.retain], 10)
    w = nr.fit(x, y, lam, torch.zeros(x.shape[1], 10, dtype=torch.float64))
    xf, xt = nr.normalise(f.x[f.forget]), nr.normalise(f.x_test)
    return {"test_acc": float(((xt @ w).argmax(1) == f.y_test).double().mean()),
            "forget_acc": float(((xf @ w).argmax(1) == f.y[f.forget]).double().mean()),
            "retain_acc": float(((x @ w).argmax(1) == f.y[f.retain]).double().mean())}


# --------------------------------------------------------------------------- the attacks


def attack_statistics(target: dict[str, np.ndarray], shadow_u: dict[str, np.ndarray],
                      shadow_r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each attack's statistic per target model (module docstring), fitted on the shadows."""
    pf = target["phi_forget"]
    loss = np.logaddexp(0.0, -pf).mean(1)  # cross-entropy -log sigmoid(phi) = softplus(-phi)
    mi, vi = _gaussians(shadow_u["phi_forget"])
    mo, vo = _gaussians(shadow_r["phi_forget"])
    ulira = lira_scores(pf, mi, vi, mo, vo, mode="online").sum(1)
    lp_x, lq_x = log_signal(pf)
    lp_z, _ = log_signal(target["phi_population"])
    ref_p, ref_q = log_signal(shadow_r["phi_forget"])
    zp, zq = log_signal(shadow_r["phi_population"])
    pr_x = log_pr_x(np.exp(ref_p).mean(0), np.exp(ref_q).mean(0), 1.0)
    pr_z = log_pr_x(np.exp(zp).mean(0), np.exp(zq).mean(0), 1.0)
    rmia = scores_from_log_ratios(lp_x - pr_x, lp_z - pr_z).mean(1)
    return {"loss": loss, "ulira": ulira, "rmia": rmia}


def _gaussians(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the mean and (floored, maximum-likelihood) variance over every row, by
    :func:`~unlearnlib.evaluation.lira.loo_gaussians` on the rows plus one left-out row."""
    x = np.vstack([rows, np.zeros((1, rows.shape[1]))])
    mask = np.vstack([np.ones_like(rows, dtype=bool), np.zeros((1, rows.shape[1]), dtype=bool)])
    mu, var, _ = loo_gaussians(x, mask)
    return mu[-1], var[-1]


def model_set_tests(unlearned: np.ndarray, retrained: np.ndarray, eps: np.ndarray) -> dict[str, float]:
    """The scorecard's tests that read two sets of models (rows) on the forget rows (columns of
    phi): KLOM (Georgiev et al. 2024; the 95th percentile over forget rows of KL(retrained ||
    unlearned) of the binned margins) beside its small-sample floor at this many models (what
    two draws of one distribution read: a perfect unlearning's value here), TOFU's forget
    quality (the KS test's p-value on the per-row means) and the NeurIPS 2023 forgetting
    quality F (the mean per-example score of the estimates ``eps``)."""
    n = min(len(unlearned), len(retrained))
    return {"KLOM": float(klom_percentile(klom_values(unlearned, retrained))[0]),
            "KLOM floor": float(small_sample_floor(n)),
            "forget quality": forget_quality(unlearned, retrained).pvalue,
            "NeurIPS F": float(neurips.example_score(eps, n).mean())}


def neurips_epsilons(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """The NeurIPS 2023 per-example epsilon estimate of every forget row from the phi of two
    model sets (rows = models)."""
    return np.array([neurips.example_epsilon(retrained[:, s], unlearned[:, s]) for s in range(unlearned.shape[1])])


# --------------------------------------------------------------------------- the study


@dataclass
class CertifiedResult:
    """What the chapter reads: the bound checks, the NeurIPS estimates and the price table."""

    plan: CertifiedPlan
    checks: pd.DataFrame     # mechanism, variant, epsilon, attack, excess, lower, tpr, fpr, n, violated
    estimates: pd.DataFrame  # mechanism, variant, epsilon, NeurIPS max eps (targets) and its null
    price: pd.DataFrame      # mechanism, epsilon, sigma, accuracies with intervals, seconds, retrainings
    reference: pd.DataFrame  # the non-private heads
    seconds: float
    scorecard: pd.DataFrame | None = None  # per certified configuration: each test's distance from retraining

    @property
    def n_checks(self) -> int:
        return len(self.checks)


def configurations(plan: CertifiedPlan) -> list[tuple[str, float, str]]:
    """(mechanism, epsilon, variant): every certified epsilon, and one under-noised variant."""
    out = [(m, float(e), CERTIFIED) for m in plan.mechanisms for e in plan.epsilons]
    return out + [(m, float(plan.broken_epsilon), UNDER_NOISED) for m in plan.mechanisms]


def _auc(unlearned: np.ndarray, retrained: np.ndarray) -> float:
    """How well a statistic tells the certified-unlearned from the certified-retrained models:
    the ROC AUC, 0.5 at chance (the scorecard's reading of a test)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(unlearned)), np.zeros(len(retrained))], np.r_[unlearned, retrained]))


def _t_interval(x: np.ndarray) -> tuple[float, float, float]:
    """The mean of ``x`` and its 95% Student-t interval (:func:`.verdicts.t_half_width`)."""
    from .verdicts import t_half_width

    m, h = float(np.mean(x)), t_half_width(x)
    return m, m - h, m + h


def run(plan: CertifiedPlan, store: Store | None = None, show_progress: bool = True,
        feats: Features | None = None) -> CertifiedResult:
    """Every configuration's four model sets, the bound checks, the NeurIPS estimates and the
    price table; every model set cached, so an interrupted run loses nothing it finished.
    ``feats`` replaces the public extractor's features (tests use a constructed problem)."""
    from tqdm.auto import tqdm

    store = store or Store()
    store.check_writable(["certified"])
    t0 = time.perf_counter()
    f = features(plan, store) if feats is None else feats
    configs = configurations(plan)
    m_checks = len(configs) * len(ATTACKS)
    checks, estimates, price, cards = [], [], [], []
    own = {m: non_private(f, plan, m) for m in plan.mechanisms}
    bar = tqdm(total=len(configs) * 4, desc="certified model sets", disable=not show_progress)
    for mech, eps, variant in configs:
        sigma, sets = sigma_of(f, plan, mech, eps, variant), {}
        for role, n in (("unlearned", plan.n_models), ("retrained", plan.n_models),
                        ("shadow_unlearned", plan.n_shadows), ("shadow_retrained", plan.n_shadows)):
            sets[role] = model_set(f, plan, mech, eps, variant, role, n, sigma, store)
            bar.update()
        su = attack_statistics(sets["unlearned"], sets["shadow_unlearned"], sets["shadow_retrained"])
        sr = attack_statistics(sets["retrained"], sets["shadow_unlearned"], sets["shadow_retrained"])
        for attack in ATTACKS:
            ex = bound_excess(su[attack], sr[attack], eps, plan.delta, alpha=plan.alpha / m_checks)
            checks.append({"mechanism": mech, "variant": variant, "epsilon": eps, "attack": attack,
                           "excess": ex.estimate, "lower": ex.lower, "tpr": ex.tpr, "fpr": ex.fpr,
                           "direction": ex.direction, "n_unlearned": ex.n_unlearned,
                           "n_retrained": ex.n_retrained, "violated": ex.violated})
        e_t = neurips_epsilons(sets["unlearned"]["phi_forget"], sets["retrained"]["phi_forget"])
        e_null = neurips_epsilons(sets["shadow_retrained"]["phi_forget"][:plan.n_models],
                                  sets["retrained"]["phi_forget"][:len(sets["shadow_retrained"]["phi_forget"])])
        estimates.append({"mechanism": mech, "variant": variant, "epsilon": eps,
                          "neurips_max": float(e_t.max()), "neurips_median": float(np.median(e_t)),
                          "null_max": float(e_null.max()), "null_median": float(np.median(e_null)),
                          "share_above": float((e_t > eps).mean()), "null_share_above": float((e_null > eps).mean())})
        if variant == CERTIFIED:
            cards.append({"mechanism": mech, "epsilon": eps, **{f"{a} AUC": _auc(su[a], sr[a]) for a in ATTACKS},
                          **model_set_tests(sets["unlearned"]["phi_forget"], sets["retrained"]["phi_forget"], e_t),
                          **{f"{k} - retrained head": float(sets["unlearned"][k].mean()) - own[mech][k]
                             for k in ("test_acc", "forget_acc", "retain_acc")}})
            u = sets["unlearned"]
            ta, lo, hi = _t_interval(u["test_acc"])
            price.append({"mechanism": mech, "epsilon": eps, "sigma": float(u["sigma"]), "test_acc": ta,
                          "test_acc_low": lo, "test_acc_high": hi, "forget_acc": float(u["forget_acc"].mean()),
                          "retain_acc": float(u["retain_acc"].mean()),
                          "unlearn_seconds": float(u["seconds"].mean()),
                          "retrain_seconds": float(sets["retrained"]["seconds"].mean()),
                          "retrained_share": float((u["retrainings"] > 0).mean()), "n_models": len(u["test_acc"]),
                          "test_acc_values": u["test_acc"].tolist()})
    bar.close()
    reference = pd.DataFrame([{"mechanism": m, "lam": {"newton": plan.newton_lam, "d2d": plan.d2d_lam,
                                                       "reference": plan.reference_lam}[m], **non_private(f, plan, m)}
                              for m in ("reference", *plan.mechanisms)])
    return CertifiedResult(plan, pd.DataFrame(checks), pd.DataFrame(estimates), pd.DataFrame(price), reference,
                           time.perf_counter() - t0, pd.DataFrame(cards))


def empirical_rows(methods: list[str], seeds: list[int], forget: str, store: Store,
                   epochs: int | None = None) -> pd.DataFrame:
    """The tuned empirical methods on the same data and forget set (``cnn1d`` trained on the
    private data, so no guarantee): grid rows with the package's shipped tuned
    hyperparameters where an entry exists (a ``hparams_from`` column says which), with the
    original and retrained references; empty without methods or seeds. ``epochs`` overrides
    the recipe's (then no shipped entry matches, and the methods run at their defaults)."""
    from . import hpo
    from .experiment import Setup, run_grid

    if not methods or not seeds:
        return pd.DataFrame()
    setup = Setup.create("mnist1d", "cnn1d", forget, epochs=epochs, store=store, show_progress=False)
    entries = {m: hpo.shipped_entry(setup, m) for m in methods}
    hp = {m: e["hparams"] for m, e in entries.items() if e}
    df = run_grid("mnist1d", "cnn1d", ["original", "retrain", *methods], seeds, forget, epochs=epochs, hparams=hp,
                  store=store, show_progress=False)
    df["hparams_from"] = df["method"].map(lambda m: "shipped tuned entry" if m in hp else "defaults")
    return df


# --------------------------------------------------------------------------- verdicts


def bound_verdict(result: CertifiedResult, scope: str, budget: str):
    """"The attacks respect the certified bound": holds when no certified check's lower bound
    exceeds 0 *and* every under-noised variant is caught by some attack at the same budget
    (else the checks had no power here: inconclusive); does not hold on a violation."""
    from .verdicts import FAILS, HOLDS, INCONCLUSIVE, Verdict

    c = result.checks
    cert, broken = c[c["variant"] == CERTIFIED], c[c["variant"] == UNDER_NOISED]
    caught = broken.groupby("mechanism")["violated"].any()
    worst = cert.loc[cert["lower"].idxmax()]
    if bool(cert["violated"].any()):
        state, reason = FAILS, (f"{int(cert['violated'].sum())} certified check(s) exceed the bound beyond "
                                "sampling error: a bug in a mechanism or an attack")
    elif bool(caught.all()):
        state, reason = HOLDS, ("no certified check exceeds the bound beyond sampling error, and the same attacks "
                                "catch every under-noised variant at this budget")
    else:
        missed = ", ".join(m for m, v in caught.items() if not v)
        state, reason = INCONCLUSIVE, f"the attacks did not catch the under-noised {missed} at this budget"
    n = int(cert["n_unlearned"].min())
    return Verdict(
        claim="The attacks respect the certified bound", source="Guo et al. 2020; Neel et al. 2021",
        chapter="certified", criterion=(f"every attack x epsilon x mechanism: lower {1 - result.plan.alpha:.0%} "
                                        f"bound (Clopper-Pearson, Bonferroni over {result.n_checks} checks) of the "
                                        "largest TPR - (e^eps FPR + delta) at most 0; under-noised variants caught"),
        # the decision statistic is the lower bound itself (a one-sided, family-wise bound): shown as a
        # point, so the forest plot puts it on the side of 0 that decides (the chapter's table has the
        # estimates behind it)
        statistic=f"largest lower bound of the excess over the {len(cert)} certified checks", state=state,
        estimate=float(worst["lower"]), low=float(worst["lower"]), high=float(worst["lower"]), n_seeds=n,
        budget=budget, half_state=None,
        reason=reason, threshold=0.0, holds_above=False, scope=scope)


def price_verdict(result: CertifiedResult, mechanism: str, scope: str, budget: str):
    """"A guarantee at epsilon = 1 costs at most PRICE_THRESHOLD of test accuracy" for one
    mechanism: the non-private head's test accuracy minus the certified heads' mean, with the
    t-interval over the certified models (the non-private head is deterministic)."""
    from .verdicts import Verdict, side

    p = result.price
    row = p[(p["mechanism"] == mechanism) & (p["epsilon"] == PRICE_EPSILON)]
    if row.empty:
        raise ValueError(f"the price claim needs epsilon = {PRICE_EPSILON:g} among the plan's epsilons.")
    row = row.iloc[0]
    ref = float(result.reference.set_index("mechanism").loc["reference", "test_acc"])
    drop, lo, hi = _t_interval(ref - np.asarray(row["test_acc_values"]))
    state = side(lo, hi, PRICE_THRESHOLD, holds_above=False)
    name = {"newton": "Newton removal", "d2d": "Descent-to-Delete"}[mechanism]
    return Verdict(
        claim=f"A guarantee at epsilon = {PRICE_EPSILON:g} costs at most {PRICE_THRESHOLD * 100:.0f} points of "
              f"test accuracy ({name})",
        source="Guo et al. 2020" if mechanism == "newton" else "Neel et al. 2021", chapter="certified",
        criterion=f"test accuracy of the head without noise (lambda {result.plan.reference_lam:g}) minus the "
                  f"certified heads' mean, 95% t-interval over {int(row['n_models'])} models, below {PRICE_THRESHOLD:g}",
        statistic="test-accuracy drop", state=state, estimate=drop, low=lo, high=hi, n_seeds=int(row["n_models"]),
        budget=budget, half_state=None, reason="the interval clears the threshold" if state != "inconclusive"
        else "the interval contains the threshold", threshold=PRICE_THRESHOLD, holds_above=False, scope=scope)


def verdicts(result: CertifiedResult, budget: str) -> list:
    """The chapter's verdicts, each naming its scope."""
    p = result.plan
    scope = (f"{len(p.mechanisms)} certified mechanism(s) on public-feature heads, {p.dataset} {p.forget}, "
             f"{p.n_models} models per side")
    out = [bound_verdict(result, scope, budget)]
    if PRICE_EPSILON in [float(e) for e in p.epsilons]:
        out += [price_verdict(result, m, scope, budget) for m in p.mechanisms]
    return out


__all__ = ["MECHANISMS", "ATTACKS", "CERTIFIED", "UNDER_NOISED", "PRICE_THRESHOLD", "PRICE_EPSILON", "CertifiedPlan",
           "Features", "features", "newton_sigma", "d2d_sigma", "sigma_of", "newton_release", "d2d_secret", "model_set", "non_private",
           "attack_statistics", "model_set_tests", "neurips_epsilons", "CertifiedResult", "configurations", "run", "bound_verdict",
           "price_verdict", "verdicts", "empirical_rows"]
