"""Presenting verdicts (a table, a Markdown list, plain records) and publishing them: each
chapter writes its verdicts into ``$UNLEARNLIB_VERDICTS_DIR``, which the book build turns
into the landing dashboard."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from .core import Verdict

# --------------------------------------------------------------------------- presenting


def verdict_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """One row per claim: its scope, verdict, statistic with its interval, seeds, budget,
    half-budget verdict, the reason and what would test it."""
    rows = [{"claim": v.claim, "scope": v.scope or "", "verdict": v.state, "statistic": v.statistic,
             "estimate [95% CI]": v.interval(),
             "seeds": v.n_seeds, "budget": v.budget, "half budget": v.half_state or "n/a", "why": v.reason,
             "would test it": v.needed or "", "criterion": v.criterion, "source": v.source} for v in verdicts]
    return pd.DataFrame(rows)


def verdicts_markdown(verdicts: Sequence[Verdict]) -> str:
    """A Markdown list: claim, bold verdict, interval, budget, and the criterion."""
    lines = []
    for v in verdicts:
        tail = f" Would test it: {v.needed}." if v.needed else ""
        scope = f" [{v.scope}]" if v.scope else ""
        lines.append(f"- **{v.claim}**{scope} ({v.source}): **{v.state}**. {v.statistic}: {v.interval()} "
                     f"({v.n_seeds} seeds; {v.budget}; half budget: {v.half_state or 'n/a'}); {v.reason}.{tail}"
                     f"\n  Criterion: {v.criterion}.")
    return "\n".join(lines)


def as_records(verdicts: Sequence[Verdict]) -> list[Mapping]:
    return [v.row() for v in verdicts]


#: Environment variable naming the folder where chapters publish their verdicts; the book
#: build sets it and turns the files into the landing dashboard (:mod:`unlearnlib.book.dashboard`).
PUBLISH_ENV = "UNLEARNLIB_VERDICTS_DIR"


def publish(verdicts: Sequence[Verdict], chapter: str, folder: str | None = None) -> str | None:
    """Write ``verdicts`` as ``<folder>/<chapter>.json`` (folder: ``$UNLEARNLIB_VERDICTS_DIR``);
    nothing without a folder. Returns the path written."""
    import json
    import os
    from pathlib import Path

    from ...store import atomic_write_bytes

    folder = folder or os.environ.get(PUBLISH_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{chapter}.json"
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in v_.row().items()}
            for v_ in verdicts]
    atomic_write_bytes(path, json.dumps({"chapter": chapter, "verdicts": rows}, indent=1).encode())
    return str(path)


def load_published(folder: str) -> list[Verdict]:
    """Every verdict published into ``folder`` (chapter files in name order)."""
    import json
    from pathlib import Path

    out = []
    for f in sorted(p for p in Path(folder).glob("*.json") if not p.name.endswith(".plotly.json")):
        for row in json.loads(f.read_text())["verdicts"]:
            out.append(Verdict(**{k: (math.nan if v is None and k in ("estimate", "low", "high") else v)
                                  for k, v in row.items()}))
    return out


__all__ = [
    "verdict_table", "verdicts_markdown", "as_records", "PUBLISH_ENV", "publish", "load_published",
]
