"""What a tuned grid says about its own tuning: where each method's hyperparameters came
from, how far the search had converged, whether the choice transfers to held-out seeds,
and which trials failed (one line each).

Used by the methods chapter next to the verdicts (:mod:`.verdicts`), whose budget check
relies on the same studies.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import optuna
import pandas as pd
from optuna.trial import TrialState

from .. import methods as registry
from . import trials, tuned
from .hpo import Setup, TuneResult, add_objectives, bound_flags, shipped_entry
from .tables import method_labels

#: How each source of a chosen trial reads in the chapter.
SOURCE_TEXT = {
    "shipped": "shipped table", "shipped+half": "shipped table", "shipped-half": "shipped table (half budget)",
    "defaults": "defaults", "search": "search here",
}


def shipped_budget(entry: Mapping | None) -> str:
    """``"100 trials x seeds 0,1,2"`` for a shipped entry, ``"-"`` without one."""
    if not entry:
        return "-"
    seeds = ",".join(str(s) for s in entry["tuning_seeds"])
    return f"{entry['trials_per_seed']} trials x seeds {seeds}"


def held_out_text(entry: Mapping | None) -> str:
    """``"0.0212 [0.0104, 0.0321]"``: an entry's held-out objective (mean and 95% interval over
    the rerun seeds that were not tuning seeds, :func:`.tuned.held_out`); ``"-"`` without one."""
    if not entry:
        return "-"
    h = tuned.held_out(entry)
    if math.isnan(h["mean"]):
        return "-"
    if math.isnan(h["low"]):
        return f"{h['mean']:.4f}"
    return f"{h['mean']:.4f} [{h['low']:.4f}, {h['high']:.4f}]"


def bound_text(flags: Mapping[str, str]) -> str:
    """``"lr (high), epochs (high)"`` from :func:`.hpo.bound_flags`; ``"-"`` when none is flagged."""
    return ", ".join(f"{k} ({v})" for k, v in flags.items()) or "-"


def _name(setup: Setup, key: str) -> str:
    """How the tables name ``key`` on the setup's model (CT on a 1-D CNN: ``ct (1-D extension)``)."""
    return registry.get(key).label(setup.model)


def provenance_table(results: Mapping[str, TuneResult], setup: Setup) -> pd.DataFrame:
    """Per tuned method: where the chosen hyperparameters come from, the shipped entry's budget
    and date, the trials run here, the objective on the tuning seeds (full and half budget),
    the shipped entry's held-out objective (mean [95% interval] over its rerun seeds that were
    not tuning seeds: the method's figure, the tuned one being optimistic) and the chosen
    hyperparameters that lie at a bound of their search space (:func:`.hpo.bound_flags`)."""
    rows = []
    for key, r in results.items():
        if not r.tuned:
            continue
        entry = shipped_entry(setup, key)
        rows.append({
            "method": _name(setup, key), "hyperparameters from": SOURCE_TEXT.get(r.source, r.source),
            "shipped budget": shipped_budget(entry), "shipped on": entry["date"][:10] if entry else "-",
            "trials here": f"{r.n_trials} x seeds {','.join(str(s.seed) for s in r.seeds)}",
            "objective (tuning seeds)": r.selection.objective,
            "objective at half budget": r.half.objective if r.half else math.nan,
            "same at half budget": bool(r.half and r.half.hparams == r.hparams),
            "held-out objective": held_out_text(entry),
            "at a bound": bound_text(bound_flags(registry.get(key).space(setup.recipe.epochs), r.hparams)),
        })
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def shipped_table(dataset: str, model: str, forget: str, path: str | None = None) -> pd.DataFrame:
    """Every shipped tuned entry of a setting (:mod:`.tuned`), one row per method, sorted by
    the held-out objective: the budget (trials x tuning seeds), the tuned objective (mean norm
    over the tuning seeds, where the hyperparameters were chosen, so optimistic), the held-out
    objective (mean, 95% Student's t interval and number of the rerun seeds that were not
    tuning seeds: the method's figure), the optimism (held-out minus tuned) and the
    hyperparameters within 2% of a bound of their search space. Needs no training; an
    entry is listed whether or not it still applies to the code (:func:`.hpo.shipped_entry`)."""
    rows = []
    for e in tuned.load(path).values():
        if (e["dataset"], e["model"], e["forget"]) != (dataset, model, forget):
            continue
        h = tuned.held_out(e)
        space = registry.get(e["method"]).space(int(e["recipe"]["epochs"]))
        rows.append({
            "method": registry.get(e["method"]).label(model), "budget": shipped_budget(e),
            "tuned objective": float(e["objective"]), "held-out objective": h["mean"],
            "95% low": h["low"], "95% high": h["high"], "held-out seeds": len(h["seeds"]),
            "optimism": h["mean"] - float(e["objective"]),
            "at a bound": bound_text(bound_flags(space, e["hparams"])),
        })
    columns = ["method", "budget", "tuned objective", "held-out objective", "95% low", "95% high",
               "held-out seeds", "optimism", "at a bound"]
    return (pd.DataFrame(rows, columns=columns).sort_values(["held-out objective", "method"])
            .set_index("method"))


def transfer_table(df: pd.DataFrame, results: Mapping[str, TuneResult]) -> pd.DataFrame:
    """Per tuned method: the chosen hyperparameters' mean objective norm on the seeds they
    were chosen on (the selection's, :class:`~.hpo.Selection`) and on the evaluation seeds of
    ``df``, which are held out (:func:`~.hpo.check_held_out`), and their difference (how much
    of the tuned objective was the tuning seeds' luck)."""
    d = add_objectives(df)
    d = d[~d["method"].isin(["original", "retrain"])]
    tuning = pd.Series({m: r.selection.objective for m, r in results.items() if r.tuned and r.selection},
                       dtype=float)
    out = pd.DataFrame({"tuning seeds": tuning, "held-out seeds": d.groupby("method")["objective_norm"].mean()})
    out = out.dropna(subset=["tuning seeds"])
    out["held-out minus tuning"] = out["held-out seeds"] - out["tuning seeds"]
    return out.sort_values("held-out seeds").rename(index=method_labels(df))


def convergence_frame(results: Mapping[str, TuneResult], setup: Setup) -> pd.DataFrame:
    """Best objective norm against the number of trials (running minimum per study and seed),
    from the shipped entries' recorded curves (``where="shipped"``) and from this run's
    studies (``where="here"``)."""
    rows = []
    for key, r in results.items():
        if not r.tuned:
            continue
        entry = shipped_entry(setup, key)
        for seed, curve in (entry or {}).get("convergence", {}).items():
            rows += [{"method": _name(setup, key), "seed": int(seed), "trials": i + 1, "best": v, "where": "shipped"}
                     for i, v in enumerate(curve)]
        for s in r.seeds:
            rows += [{"method": _name(setup, key), "seed": s.seed, "trials": i + 1, "best": v, "where": "here"}
                     for i, v in enumerate(s.running_best())]
    return pd.DataFrame(rows, columns=["method", "seed", "trials", "best", "where"])


def converged(frame: pd.DataFrame, tail: float = 0.5, tol: float = 0.005) -> pd.Series:
    """Per method: whether its curves improved by less than ``tol`` over their last ``tail``
    share of trials (a search that still improves late has not converged)."""
    out = {}
    for m, g in frame.groupby("method"):
        gains = []
        for _, c in g.groupby(["where", "seed"]):
            v = c.sort_values("trials")["best"].to_numpy()
            if len(v) >= 4:
                gains.append(v[int(len(v) * (1 - tail)) - 1] - v[-1])
        out[m] = bool(gains) and max(gains) < tol
    return pd.Series(out, name="converged")


def failed_trials(results: Mapping[str, TuneResult], setup: Setup) -> pd.DataFrame:
    """One line per failed trial of this run's studies: method, seed, trial, reason."""
    rows = []
    for key, r in results.items():
        for s in r.seeds:
            storage = trials.open_storage(setup.store, s.study_name)
            study = optuna.load_study(study_name=s.study_name, storage=storage)
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
                reason = "interrupted" if t.user_attrs.get(trials.INTERRUPTED) else t.user_attrs.get("error", "")
                rows.append({"method": _name(setup, key), "seed": s.seed, "trial": t.number,
                             "reason": str(reason).split(": ", 1)[-1][:120]})
    return pd.DataFrame(rows, columns=["method", "seed", "trial", "reason"])


def budget_text(results: Mapping[str, TuneResult], setup: Setup, n_trials: int, tune_seeds: Sequence[int],
                seeds: Sequence[int]) -> str:
    """One sentence: what produced the hyperparameters behind the verdicts."""
    entries = [shipped_entry(setup, k) for k, r in results.items() if r.tuned]
    shipped = [e for e in entries if e]
    parts = []
    if shipped:
        budgets = sorted({shipped_budget(e) for e in shipped})
        parts.append(f"shipped tuned table for {len(shipped)}/{len(entries)} methods ({'; '.join(budgets)})")
    parts.append(f"{n_trials} NSGA-III trials here on seed(s) {','.join(map(str, tune_seeds))}")
    return f"{' + '.join(parts)}; evaluated on seeds {min(seeds)}-{max(seeds)}" if seeds else " + ".join(parts)


def failed_summary(failed: pd.DataFrame) -> pd.DataFrame:
    """Failed trials counted per method, with the most common reason."""
    if failed.empty:
        return pd.DataFrame(columns=["failed trials", "most common reason"])
    g = failed.groupby("method")
    return pd.DataFrame({"failed trials": g.size(),
                         "most common reason": g["reason"].agg(lambda x: x.value_counts().index[0])})


__all__ = ["provenance_table", "shipped_table", "held_out_text", "bound_text", "transfer_table", "convergence_frame", "converged", "failed_trials",
           "failed_summary", "budget_text", "shipped_budget", "SOURCE_TEXT"]
