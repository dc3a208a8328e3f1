"""Tuned hyperparameters as data: a versioned table shipped inside the package.

Tuning a method by Deep Unlearn's protocol costs hours on a CPU (100 NSGA-III trials
on each of three seeds), and users of peer benchmarks ask for exactly these numbers.
``unlearnlib tune --ship`` writes, per (dataset, model, forget spec, method), the
chosen hyperparameters with their provenance into ``unlearnlib/tuned/hparams.json``:
the objective (mean over the tuning seeds and per seed), the half-budget choice
(the verdicts' budget check), the trials and seeds, the sampler, the convergence
curve of every study, the rerun over the evaluation seeds, the training recipe, the
numerics (device, threads; CPU kernels in entries made since they joined the store keys), the package version, the commit and the date.

Each entry also carries two fields derived from the recorded ones (issue 32; written by
:func:`unlearnlib.studies.hpo.with_derived`, which backfilled the entries made before):
``held_out``, the rerun objective over the rerun seeds that were not tuning seeds (mean
and Student's t 95% interval, :func:`held_out`), which is the method's figure (the tuned
``objective`` is optimistic: the hyperparameters were chosen on those seeds,
:func:`optimism`), and ``at_bound``, the hyperparameters within 2% of an end of their
search range (:func:`unlearnlib.studies.hpo.bound_flags`).

An entry applies only where it was made: :func:`lookup` returns it when the
recipe, the search-space fingerprint (:func:`unlearnlib.studies.hpo.space_fingerprint`:
space, scaled defaults, objectives, protocol and the method's version) and the splits
(:meth:`unlearnlib.data.Splits.fingerprint`: the exact forget, retain, validation and test
rows) match, else nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
from pathlib import Path
from typing import Any, Mapping

from ..store import atomic_write_bytes

#: Version of the table's layout.
TABLE_FORMAT = 1
#: The table shipped with the package.
TABLE_PATH = Path(__file__).resolve().parents[1] / "tuned" / "hparams.json"


def entry_key(dataset: str, model: str, forget: str, method: str) -> str:
    return f"{dataset}/{model}/{forget}/{method}"


def load(path: Path | str | None = None) -> dict[str, dict]:
    """The entries of the table at ``path`` (default: the shipped one); {} if it does not exist."""
    path = Path(path or TABLE_PATH)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"The tuned-hyperparameter table {path} is not valid JSON ({e}); restore it "
                         "from git or rebuild it with `unlearnlib tune --ship`.") from e
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or not isinstance(data.get("entries"), dict):
        raise ValueError(f"{path} is not a tuned-hyperparameter table of format {TABLE_FORMAT}.")
    return data["entries"]


def lookup(dataset: str, model: str, forget: str, method: str, recipe: Mapping[str, Any],
           fingerprint: str, splits: str, path: Path | str | None = None) -> dict | None:
    """The shipped entry for this setting, or None when there is none or it was made with
    another training recipe, search space, method version or split of the data (it would
    not be the tuned optimum here)."""
    entry = load(path).get(entry_key(dataset, model, forget, method))
    if entry is None or entry.get("recipe") != dict(recipe) or entry.get("fingerprint") != fingerprint \
            or entry.get("splits") != splits:
        return None
    return entry


def held_out(entry: Mapping[str, Any], level: float = 0.95) -> dict[str, Any]:
    """The entry's objective norm on the rerun seeds that were not tuning seeds:
    ``{"seeds": [...], "mean", "low", "high"}``, the mean with its Student's t interval at
    ``level`` (``scipy.stats.t.interval`` with n - 1 degrees of freedom and the standard
    error of the mean). Bounds are NaN below 2 held-out seeds (the mean too without any);
    values are rounded like the recorded norms (5 decimals).

    Why held out: the tuned objective was minimised over the tuning seeds, so it is biased
    low; a rerun on other seeds is an honest estimate of what the chosen hyperparameters give."""
    from scipy import stats

    tuning = {int(s) for s in entry["tuning_seeds"]}
    pairs = sorted((int(s), float(v)) for s, v in entry["rerun"].items() if int(s) not in tuning)
    seeds, values = [s for s, _ in pairs], [v for _, v in pairs]
    n = len(values)
    mean = math.fsum(values) / n if n else math.nan
    low = high = math.nan
    if n >= 2:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        low, high = (mean, mean) if sd == 0 else stats.t.interval(level, n - 1, loc=mean, scale=sd / math.sqrt(n))

    def r5(x: float) -> float:
        return round(float(x), 5) if math.isfinite(x) else math.nan

    return {"seeds": seeds, "mean": r5(mean), "low": r5(low), "high": r5(high)}


def optimism(entry: Mapping[str, Any]) -> float:
    """Held-out mean minus tuned objective: how much of the tuned figure was the tuning seeds' luck
    (positive when the choice does worse on seeds it was not chosen on)."""
    return held_out(entry)["mean"] - float(entry["objective"])


def provenance() -> dict[str, Any]:
    """Package version, git commit (with ``+dirty`` for uncommitted changes) and UTC date."""
    from .. import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "unlearnlib"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit = (commit + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"unlearnlib": __version__, "commit": commit,
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()}


def write_entries(entries: Mapping[str, dict], path: Path | str | None = None) -> Path:
    """Add or replace ``entries`` (key -> entry) in the table at ``path``, atomically."""
    path = Path(path or TABLE_PATH)
    table = load(path)
    table.update(entries)
    text = json.dumps({"format": TABLE_FORMAT, "entries": dict(sorted(table.items()))}, indent=1, sort_keys=True)
    atomic_write_bytes(path, (text + "\n").encode())
    return path


__all__ = ["TABLE_FORMAT", "TABLE_PATH", "entry_key", "load", "lookup", "provenance", "write_entries",
           "held_out", "optimism"]
