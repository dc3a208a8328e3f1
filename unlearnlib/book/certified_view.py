"""The certified chapter's tables, figure and generated sentences (issue 37), from a
:class:`~unlearnlib.studies.certified_study.CertifiedResult`: every sentence that states a
finding is computed from the result's rows."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..studies import certified_study as cs
from . import plots

#: Display names of the mechanisms, and their line styles in the price figure.
NAMES = {"newton": "Newton removal", "d2d": "Descent-to-Delete"}
DASHES = {"newton": "solid", "d2d": "dash"}


def checks_table(result: cs.CertifiedResult) -> pd.DataFrame:
    """Mechanism x attack rows, one column per epsilon (the broken variant last): the largest
    excess and, in brackets, its lower confidence bound; "VIOLATED" where it is above 0."""
    c = result.checks
    cells = c.assign(
        cell=[f"{e:+.2f} [{lo:+.2f}]" + (" VIOLATED" if v else "")
              for e, lo, v in zip(c["excess"], c["lower"], c["violated"], strict=True)],
        column=[f"eps {eps:g}" + (" (broken)" if var == cs.UNDER_NOISED else "")
                for eps, var in zip(c["epsilon"], c["variant"], strict=True)])
    order = list(dict.fromkeys(cells["column"]))
    return cells.pivot(index=["mechanism", "attack"], columns="column", values="cell")[order]


def checks_sentence(result: cs.CertifiedResult) -> str:
    """How many certified checks fail, the closest call, and which attacks catch each broken variant."""
    c = result.checks
    cert, broken = c[c["variant"] == cs.CERTIFIED], c[c["variant"] == cs.UNDER_NOISED]
    worst = cert.loc[cert["lower"].idxmax()]
    caught = broken[broken["violated"]].groupby("mechanism")["attack"].apply(", ".join)
    return (f"Of {len(cert)} certified checks, **{int(cert['violated'].sum())}** exceed the bound beyond sampling "
            f"error (family-wise level {result.plan.alpha:g} over {result.n_checks} checks). The closest call: "
            f"{worst['attack']} on {worst['mechanism']} at epsilon {worst['epsilon']:g}, excess "
            f"{worst['excess']:+.3f}, lower bound {worst['lower']:+.3f}. The broken variants are caught by: "
            + "; ".join(f"{m}: {caught.get(m, 'no attack')}" for m in result.plan.mechanisms) + ".")


def estimates_table(result: cs.CertifiedResult) -> pd.DataFrame:
    """The NeurIPS 2023 per-example epsilon estimates and their null, per configuration."""
    return (result.estimates.rename(columns={
        "neurips_max": "largest estimate", "neurips_median": "median estimate",
        "null_max": "largest, retrained vs retrained", "null_median": "median, retrained vs retrained",
        "share_above": "share above eps", "null_share_above": "share above eps (null)"})
        .round(3).set_index(["mechanism", "variant", "epsilon"]))


def estimates_sentence(result: cs.CertifiedResult) -> str:
    """Whether the largest estimate exceeds the certificate, and whether its null does too."""
    e = result.estimates
    ec = e[e["variant"] == cs.CERTIFIED]
    over, null_over = ec[ec["neurips_max"] > ec["epsilon"]], ec[ec["null_max"] > ec["epsilon"]]
    reading = ("not a bound: it reads sampling noise as privacy loss" if len(null_over)
               else "below the certificate here")
    return (f"The largest per-example estimate exceeds the certified epsilon in {len(over)} of {len(ec)} certified "
            f"configurations, and the estimator's null (retrained against retrained, true epsilon 0) exceeds it in "
            f"{len(null_over)}: with {result.plan.n_models} models per side the per-example estimate is {reading}. "
            f"The median estimate on the certified heads ranges from {ec['neurips_median'].min():.2f} to "
            f"{ec['neurips_median'].max():.2f}.")


def price_figure(result: cs.CertifiedResult, empirical: pd.DataFrame) -> go.Figure:
    """Test accuracy against epsilon for each mechanism (95% t-intervals), the head without
    noise as a grey dotted line, and each empirical method's mean as a thin line."""
    p, ref = result.price, result.reference.set_index("mechanism")
    fig = go.Figure()
    for mech in result.plan.mechanisms:
        q = p[p["mechanism"] == mech]
        fig.add_trace(go.Scatter(
            x=q["epsilon"], y=q["test_acc"], name=NAMES[mech], mode="lines+markers", line=dict(dash=DASHES[mech]),
            error_y=dict(type="data", symmetric=False, array=q["test_acc_high"] - q["test_acc"],
                         arrayminus=q["test_acc"] - q["test_acc_low"])))
    fig.add_hline(y=float(ref.loc["reference", "test_acc"]), line=dict(color="#7f7f7f", dash="dot"),
                  annotation_text=f"head without noise (lambda {result.plan.reference_lam:g})")
    if len(empirical):
        styles = plots.method_styles([m for m in empirical["method"].unique() if m not in ("original", "retrain")])
        for m, g in empirical.groupby("method", sort=False):
            colour = {"retrain": "#222222", "original": "#7f7f7f"}.get(m) or styles[m][0]
            fig.add_hline(y=float(g["test_acc"].mean()), line=dict(color=colour, width=1),
                          annotation_text=f"{m} (cnn1d, {g['seed'].nunique()} seeds)",
                          annotation_position="bottom right")
    fig.update_layout(title="Test accuracy of the certified heads against epsilon", yaxis_title="test accuracy",
                      xaxis_title=f"epsilon (delta {result.plan.delta:g})", xaxis=plots.LOG_AXIS, height=480)
    return fig


def price_table(result: cs.CertifiedResult):
    """The price table: noise, test accuracy with its interval, forget accuracy, wall times
    of a removal and of a retraining, and the share of heads that had to retrain."""
    t = result.price.copy()
    t["test accuracy [95% CI]"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
                                   zip(t["test_acc"], t["test_acc_low"], t["test_acc_high"], strict=True)]
    t = t[["mechanism", "epsilon", "sigma", "test accuracy [95% CI]", "forget_acc", "unlearn_seconds",
           "retrain_seconds", "retrained_share"]].set_index(["mechanism", "epsilon"])
    return t.style.format({"sigma": "{:.3g}", "forget_acc": "{:.3f}", "unlearn_seconds": "{:.3f}",
                           "retrain_seconds": "{:.3f}", "retrained_share": "{:.0%}"})


def empirical_table(empirical: pd.DataFrame):
    """The empirical methods' mean accuracies, seeds and where their hyperparameters came from."""
    return (empirical.groupby("method", sort=False)
            .agg(test_acc=("test_acc", "mean"), forget_acc=("forget_acc", "mean"), seeds=("seed", "nunique"),
                 hyperparameters=("hparams_from", "first"))
            .style.format({"test_acc": "{:.3f}", "forget_acc": "{:.3f}"}))


def scorecard_table(result: cs.CertifiedResult):
    """Per certified configuration: each attack's AUC and the accuracy gaps to the head retrained without noise."""
    card = result.scorecard.set_index(["mechanism", "epsilon"])
    return (card.style.format("{:+.3f}", subset=_gaps(card))
            .format("{:.2f}", subset=[c for c in card.columns if c not in _gaps(card)]))


def _span(x: pd.Series) -> str:
    """"a to b", or "a" when both read the same at two decimals."""
    lo, hi = f"{x.min():.2f}", f"{x.max():.2f}"
    return lo if lo == hi else f"{lo} to {hi}"


def _gaps(card: pd.DataFrame) -> list[str]:
    return [c for c in card.columns if "retrained head" in c]


def scorecard_sentence(result: cs.CertifiedResult) -> str:
    """How far from chance the attacks' AUCs stray over the certified configurations, and
    where KLOM sits against its small-sample floor."""
    card = result.scorecard.set_index(["mechanism", "epsilon"])
    far = card[[c for c in card.columns if c.endswith("AUC")]].sub(0.5).abs()
    (mech, eps, attack) = far.stack().idxmax()
    out = (f"The attack AUCs stay within {float(far.max().max()):.2f} of chance over every certified configuration "
           f"(largest: {attack} on {mech} at epsilon {eps:g}), with {result.plan.n_models} models per side.")
    if "KLOM" in card:
        above = card[card["KLOM"] > card["KLOM floor"]]
        out += (f" KLOM reads {_span(card['KLOM'])} against a small-sample floor of "
                f"{card['KLOM floor'].iloc[0]:.2f} (what two draws of one distribution read at this many models); "
                f"{len(above)} of {len(card)} configurations sit above it. TOFU's forget quality is at least "
                f"{card['forget quality'].min():.2f} in every configuration (1 = indistinguishable). The NeurIPS 2023 "
                f"forgetting quality F, on heads that are all certified, ranges from {card['NeurIPS F'].min():.2f} "
                f"({card['NeurIPS F'].idxmin()[0]} at epsilon {card['NeurIPS F'].idxmin()[1]:g}) to "
                f"{card['NeurIPS F'].max():.2f}.")
    return out


__all__ = ["NAMES", "checks_table", "checks_sentence", "estimates_table", "estimates_sentence", "price_figure",
           "price_table", "empirical_table", "scorecard_table", "scorecard_sentence"]
