"""Sentences the chapters generate from their own rows, so that prose cannot drift from
the numbers beside it (a finding is never typed by hand).

Every function here is pure: it takes the table a chapter computed and returns a string
(Markdown) or the lists a sentence is made of.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

__all__ = ["names", "shown_path", "counted_share", "setting_label", "spread_sentence", "disagreements",
           "disagreement_sentence"]


def names(items: Iterable[str], empty: str = "none", bold: bool = False) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``empty`` for no item); ``bold`` wraps each in ``**``."""
    items = [f"**{i}**" if bold else str(i) for i in items]
    if not items:
        return empty
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _project_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def shown_path(path: str | Path, project: str | Path | None = None, home: str | Path | None = None,
               env: Sequence[str] = ("UNLEARNLIB_STORE",)) -> str:
    """``path`` as a reader can place it, without naming the machine: ``./x`` inside the
    project (``project``: the checkout this package runs from, when it is one), ``~/x`` inside
    the home folder, ``$VAR/x`` inside the folder an environment variable of ``env`` names
    (the store's ``$UNLEARNLIB_STORE``), else the path as given."""
    import os

    p = Path(path).expanduser().absolute()
    bases = [(project if project is not None else _project_root(), "."),
             (home if home is not None else Path.home(), "~"),
             *((os.environ.get(v), f"${v}") for v in env)]
    for base, prefix in bases:
        if not base:
            continue
        try:
            rel = p.relative_to(Path(base).expanduser().absolute())
        except ValueError:
            continue
        return prefix if rel == Path(".") else f"{prefix}/{rel.as_posix()}"
    return str(p)


def counted_share(raw: pd.Series, test_acc: pd.Series, retrain_test_acc: float, utility: float) -> pd.Series:
    """The share of the loss-MIA gap a setting is credited with by
    :func:`unlearnlib.studies.verdicts.hyperparameter_verdicts`: its raw share clipped at 0,
    and 0 where its test accuracy is more than ``utility`` below the retrained model's."""
    from ..studies.verdicts import credited_share

    return pd.Series(credited_share(raw.to_numpy(float), test_acc.to_numpy(float), retrain_test_acc, utility),
                     index=raw.index, name=raw.name)


def setting_label(names_: Sequence[str], values) -> str:
    """``lr 0.001, epochs 1`` for one row of a grid's index."""
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{n} {v:g}" if isinstance(v, (int, float)) else f"{n} {v}"
                     for n, v in zip(names_, values, strict=True))


def spread_sentence(table: pd.DataFrame, raw: str, counted: str, utility: float, retrain_acc: float,
                    estimate: float | None = None, acc: str = "test_acc") -> str:
    """What a hyperparameter grid's table says about the explorer's claim, in Markdown.

    ``table`` is indexed by (method, *grid hyperparameters), one row per setting (means over
    seeds), with the raw share of the loss-MIA gap closed (``raw``), the share the verdict
    counts (``counted``, :func:`counted_share`) and the test accuracy (``acc``). The sentence
    names each method's worst and best counted setting and their spread, the largest spread
    (the verdict's statistic: ``estimate``, when given, is checked against it), and the
    settings that count as 0 because they lose more than ``utility`` test accuracy."""
    params = list(table.index.names[1:])
    parts, spreads = [], {}
    for m, t in table.groupby(level=0, sort=False):
        t = t.droplevel(0)
        c = t[counted]
        if c.notna().sum() == 0:
            parts.append(f"{m}: no share (the gap is not defined)")
            continue
        lo, hi = c.idxmin(), c.idxmax()
        spreads[m] = float(c.max() - c.min())
        if spreads[m] == 0:
            parts.append(f"{m} {c.max():.3f} at every setting")
            continue
        parts.append(f"{m} from {c[lo]:.3f} ({setting_label(params, lo)}) to {c[hi]:.3f} "
                     f"({setting_label(params, hi)}), a spread of {spreads[m]:.3f}")
    text = "Per method, the share the verdict counts: " + "; ".join(parts) + "."
    if spreads:
        top = max(spreads, key=spreads.get)
        text += f" The largest spread is **{spreads[top]:.3f}** ({top})"
        if estimate is not None and math.isfinite(estimate):
            text += (", the estimate of the verdict below" if math.isclose(estimate, spreads[top], abs_tol=1e-9) else
                     f"; the verdict below estimates {estimate:.3f} from its per-seed rows")
        text += "."
    lost = table[table[acc] < retrain_acc - utility]
    limit = f"more than {100 * utility:g} points of test accuracy against the retrained model's {retrain_acc:.3f}"
    if lost.empty:
        text += f" No setting loses {limit}: each counts its raw share (0 where it is negative)."
    else:
        listed = [f"{m} at {setting_label(params, idx[1:])} (test accuracy {r[acc]:.3f}, raw share {r[raw]:.3f})"
                  for idx, r in lost.iterrows() for m in [idx[0]]]
        text += (f" {len(lost)} of {len(table)} settings lose {limit} and count as closing nothing, whatever "
                 f"their raw share: {names(listed)}.")
    return text


def disagreements(readings: pd.DataFrame, first: str, second: str, yes: str = "forgotten",
                  no: str = "not forgotten", skip: Sequence[str] = ("original", "retrain")) -> tuple[list, list]:
    """Rows (methods) of ``readings`` where column ``first`` says ``yes`` and ``second`` says
    ``no``, and the other way round; the references ``skip`` are left out."""
    rows = readings[~readings.index.isin(skip)]
    a = rows.index[(rows[first] == yes) & (rows[second] == no)].tolist()
    b = rows.index[(rows[second] == yes) & (rows[first] == no)].tolist()
    return a, b


def disagreement_sentence(first_only: Sequence[str], second_only: Sequence[str], first: str, second: str,
                          compared: Sequence[str], first_only_means: str = "") -> str:
    """Markdown naming, in each direction, the methods one attack calls forgotten and the
    other does not, or saying that the two agree on every one of ``compared``."""
    if not first_only and not second_only:
        return (f"{first[0].upper()}{first[1:]} and {second} agree on every method here "
                f"({names(compared)}): none passes one and fails the other.")
    out = []
    for only, yes, no, means in ((first_only, first, second, first_only_means), (second_only, second, first, "")):
        if only:
            out.append(f"{yes[0].upper()}{yes[1:]} calls {names(only, bold=True)} forgotten while {no} does not"
                       + (f" ({means})" if means else "") + ".")
        else:
            out.append(f"No method is called forgotten by {yes} and not by {no}.")
    return " ".join(out)
