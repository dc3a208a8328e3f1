"""Generated prose of the chapters *Text*, *nabla-tau*, *Unrolling SGD* and *Poisoning*: the
criteria, caveats and findings they print, written from the numbers and the library's
thresholds (nothing in them is typed by hand once and left to go stale)."""

from __future__ import annotations

from typing import Sequence

from ..studies import verdicts


def verdict_rule() -> str:
    """The book's verdict rule in one sentence, with its seed minimum."""
    return (f"The rule: the 95% interval of the statistic on one side of its threshold, at least "
            f"{verdicts.MIN_SEEDS} seeds; half the tuning budget must agree where there is tuning.")


def text_caveat(splits, rows) -> str:
    """The text chapter's caveat: a small bag-of-embeddings model trained on the snippets of
    ``splits`` (D_r u D_f), whose retrained model reaches the mean test accuracy of ``rows``'
    ``retrain`` rows."""
    n_train = len(splits.retain) + len(splits.forget)
    retrain_test_acc = rows.loc[rows["method"] == "retrain", "test_acc"].mean()
    return (f"Caveats: a bag-of-embeddings model trained from scratch on {n_train:,} snippets is not GPT-2 or "
            f"RoBERTa; its test accuracy ({retrain_test_acc:.3f} for the retrained model, mean over seeds) is that of "
            f"a small model, and what it memorises is word co-occurrence in short reviews. Verdicts on text are "
            f"verdicts about this model and corpus.")


def nabla_tau_criteria() -> str:
    """The nabla-tau chapter's two criteria with the thresholds the verdicts use."""
    return (
        f"A 95% interval from a paired bootstrap over at least {verdicts.MIN_SEEDS} seeds must clear the criterion's "
        "threshold, and for the claim that involves tuned baselines the same analysis with the baselines' half-budget "
        "hyperparameters must agree, except where more tuning could only confirm the verdict. *Forgets*: at every random "
        "forget fraction nabla-tau's loss-MIA (forget vs test) lands within half of the original-retrained gap of the "
        "retrained model's, on either side (closeness $1 - |nt - R| / |O - R| \\ge 0.5$: overshooting is no better than "
        f"stopping short), while staying within {100 * verdicts.NT_UTILITY:g} points of the retrained model's test "
        "accuracy; the gap itself must be resolved at every fraction, else the claim is not tested. *No tuning needed*: "
        "no tuned baseline within that accuracy window gets closer to the retrained model's MIA than nabla-tau by more "
        f"than {verdicts.EQUIVALENCE:g}.")


#: Where more tuning would take the nabla-tau chapter's baselines.
NABLA_MORE_TRIALS = "the full profile (baselines tuned on every forget set, 100 trials)"


def nabla_text_intro(fraction: float, baselines: Sequence[str], tuned_on: str) -> str:
    """The text chapter's sentence before its nabla-tau table."""
    from .prose import names

    return (f"nabla-tau at its defaults on a {100 * fraction:g}% random forget set (fraction:{fraction:g}) against "
            f"{names(baselines)}, tuned on {tuned_on} and carried over to it, and retraining:")


def outside_utility_sentence(broken: Sequence[tuple[str, str, float, float]], utility: float) -> str:
    """Markdown naming the (forget set, method, test accuracy, retrained's) ``broken`` outside
    the utility window; "" when there are none."""
    if not broken:
        return ""
    return (f"**Outside the utility window** ({100 * utility:g} points), so excluded from the comparisons: "
            + "; ".join(f"{m} at {f} (test accuracy {a:.3f} against {r:.3f} retrained)" for f, m, a, r in broken) + ".")


def ulira_at_fraction(table, fraction: float, k: int, method: str = "nabla_tau") -> str:
    """One sentence: U-LiRA's accuracy on ``method``'s shadows against the retrained and the
    original shadows (``table``: :func:`~unlearnlib.studies.ulira_reading.shadow_attack_table`);
    "" when a row is missing."""
    if table is None or not {method, "retrain", "original"} <= set(table.index):
        return ""
    u = table["U-LiRA accuracy"]
    return (f"U-LiRA at {100 * fraction:g}%: attack accuracy {u[method]:.3f} on {method}'s shadows against "
            f"{u['retrain']:.3f} on retrained and {u['original']:.3f} on original shadows ({k} shadow splits).")


def nabla_tau_caveat(dataset: str, model: str, fractions: Sequence[float], budget: str,
                     data_root: str | None = None, device: str = "cpu") -> str:
    """The nabla-tau chapter's caveats: its data and model, the size of the smallest forget set
    of ``fractions`` and the baselines' tuning ``budget``."""
    from ..data import load_splits

    smallest = min(fractions)
    n_small = len(load_splits(dataset, f"fraction:{smallest:g}", data_root, device).forget)
    return (f"Caveats: the paper's models are ResNets on CIFAR, this run's {dataset} / {model}; a population MIA on the "
            f"{100 * smallest:g}% forget set ({n_small:,} samples) is noisy, so read that column with its error bars; "
            f"and the baselines' hyperparameters come from the budget of the verdicts above ({budget}).")


def text_data_line(dataset: str, splits) -> str:
    """The text chapter's data in one line: split sizes, vocabulary and input length."""
    from ..datasets.text import VOCAB_SIZE

    return (f"{dataset}: |D_r| = {len(splits.retain)}, |D_f| = {len(splits.forget)}, |D_v| = {len(splits.val)}, "
            f"|D_t| = {len(splits.test)}; vocabulary {VOCAB_SIZE} ids, inputs of {splits.input_shape[0]} tokens")


def unrolling_caveats(pretrained, traj, n_runs: int, budget: str, n_points: int, unlearn_batch: int,
                      batch_size: int, dataset: str, model: str, power_iters: int) -> str:
    """The Unrolling SGD chapter's caveats: the models' test accuracy ranges (pretrained per
    loss; fine-tuned per loss and learning rate, at the last step), the runs behind the
    verdicts (``n_points`` per seed and learning rate) and what one forgotten batch, one
    dataset and a capped power iteration leave out."""
    acc = pretrained.groupby("loss", sort=False)["test_acc"].agg(["min", "max"])
    final = traj[traj["step"] == traj["step"].max()]
    ft_acc = final.groupby(["loss", "lr"], sort=False)["test_acc"].agg(["min", "max"])
    return "\n\n".join([
        "**Caveats.** Models' test accuracy: pretrained " + "; ".join(
            f"{k} {r['min']:.3f}-{r['max']:.3f}" for k, r in acc.iterrows()) + "; after fine-tuning " + "; ".join(
            f"{k} at lr {lr:g} {r['min']:.3f}-{r['max']:.3f}" for (k, lr), r in ft_acc.iterrows()) + ".",
        f"Runs: {n_runs} trajectories ({budget}); Spearman rho at a fixed learning rate is computed over "
        f"{n_points} points per seed and learning rate, where the step count still moves both axes "
        "(the proxy grows with t and with the distance travelled, and so does verification error).",
        f"One forgotten batch (x* = batch {unlearn_batch} of the training order, {batch_size} rows), one "
        f"dataset and architecture ({dataset}, {model}); power iteration capped at {power_iters} products "
        f"({traj['power_converged'].mean():.0%} of sigma estimates converged).",
    ])


def sgu_caveat(rows, travelled: float) -> str:
    """The caveat under the whole-forget-set comparison: point estimates of untuned methods,
    and how far from the trained weights ``sgu`` takes its gradient (``travelled``), with its
    test accuracy and verification error against the original's (``rows``: the method rows)."""
    m = rows.groupby("method")[["l2_to_retrained", "test_acc"]].mean()
    return (f"**Caveat.** Point estimates over {rows['seed'].nunique()} seeds, methods untuned (defaults scaled to the "
            f"data). Here `sgu` takes its gradient at the random initialisation, {travelled:.1f} (L2) from the trained "
            f"weights it is applied to, where a first-order step is not expected to be accurate (the reference applies "
            f"it a few hundred fine-tuning steps from its checkpoint, sections 2-5): test accuracy "
            f"{m.at['sgu', 'test_acc']:.3f} against the original's {m.at['original', 'test_acc']:.3f}, verification "
            f"error {m.at['sgu', 'l2_to_retrained']:.3f} against doing nothing's {m.at['original', 'l2_to_retrained']:.3f}.")


def poisoning_mia_blind(table, blind: Sequence[str], mia_tol: float) -> str:
    """Markdown: the attacks ``blind`` of the poisoning method ``table`` where the untouched
    poisoned model already passes the population MIA; "" when there are none."""
    if not blind:
        return ""
    return ("**The population MIA cannot tell the poisoned model from the retrained one** on " + ", ".join(
        f"{a} (original {table.loc[(a, 'original'), 'population MIA']:.3f} against retrained "
        f"{table.loc[(a, 'retrain'), 'population MIA']:.3f}, within {mia_tol:g})" for a in blind)
        + ": there, every method passes it whatever it does, so passing says nothing about forgetting.")


def poisoning_removed(table, removing, top: float, removed: float, acc_tol: float, mia_tol: float) -> str:
    """Markdown naming the methods ``removing`` (rows of the method ``table``) that remove a
    poison at the largest budget ``top``, and the chapter's tolerances."""
    text = "; ".join(
        f"{m} on {a} ({r['share of the gap left']:.0%} of the gap left, test accuracy {r['test accuracy']:.3f} against "
        f"{table.loc[(a, 'retrain'), 'test accuracy']:.3f} retrained)" for (a, m), r in removing.iterrows())
    return (f"Methods that remove a poison at {top:.0%} (at most {removed:.0%} of the gap left), whatever "
            f"their accuracy: {text or 'none'}. *Keeps accuracy*: test accuracy at most {100 * acc_tol:g} "
            f"points below the retrained model's; *passes the MIA*: population MIA within {mia_tol:g} of the "
            f"retrained model's.")


def poisoning_criteria(min_seeds: int, removed: float, mia_tol: float) -> str:
    """The poisoning chapter's two findings' criteria with the thresholds the verdicts use."""
    return (
        f"At least {min_seeds} seeds. *No method removes the poisons*: for every working attack even the best method "
        f"leaves more than {removed:.0%} of the gap (statistic: the smallest such share over the attacks). *The "
        f"population MIA gives a false sense of success*: some method passes the population MIA (its MIA within "
        f"{mia_tol:g} of the retrained model's) while leaving more than {removed:.0%} of the gap. Both conditions are "
        "thresholds, so the statistic is the margin by which a method meets both, in MIA units, "
        f"$\\min({mia_tol:g} - |\\mathrm{{MIA}} - \\mathrm{{MIA}}_{{retrain}}|,\\ {mia_tol / removed:g}\\,"
        f"(\\text{{share left}} - {removed:g}))$, maximised over methods and attacks: positive when some method passes "
        "the MIA while the poison stays.")


def poisoning_attack_lines(table) -> str:
    """One line per attack of the poisoning attack table: the poisoned and retrained models'
    metric, the gap with its interval and the share the best method leaves."""
    return "\n".join(
        f"{a}: poisoned {r['original']:.3f}, retrained {r['retrain']:.3f} (gap {r['gap']:.3f} "
        f"[{r['gap low']:.3f}, {r['gap high']:.3f}]); best method {r['best method']} leaves "
        f"{r['share left (best)']:.0%} of the gap" for a, r in table.iterrows())


def poisoning_caveats(model_name: str, dataset: str, epochs: int, attacks: Sequence[str], fractions, table,
                      methods: Sequence[str], mia_tol: float) -> str:
    """The poisoning chapter's caveats: its model and data against the paper's, the untuned
    methods, the noise of the population MIA on few Gaussian poisons (the retrained model's
    reading in the method ``table``) and SSD when it did not run."""
    caveats = [f"Caveats: {model_name} on {dataset} is not the paper's ResNet-18 on CIFAR-10, and the budgets here are "
               f"shares of a short training ({epochs} epochs). The methods run at their defaults, not tuned for poisons; "
               "the paper gives them a hyperparameter search."]
    if "gaussian" in attacks:
        mia_r = table.loc[("gaussian", "retrain"), "population MIA"]
        caveats.append(f"The population MIA on the few Gaussian poisons ({fractions['gaussian']:.0%} of the pool) is "
                       f"noisy: the retrained model, which never saw them, reads {mia_r:.3f} where chance is 0.5, so "
                       f"whether a method passes it (within {mia_tol:g} of the retrained model's) is decided by a few "
                       "hundredths.")
    if "ssd" not in methods:
        caveats.append("SSD, one of the paper's eight methods, runs when `methods_wanted` lists it (the full profile "
                       "does): its importance pass costs more than the seven others together on a CPU.")
    return " ".join(caveats)
