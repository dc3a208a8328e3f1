"""The landing dashboard: every claim the chapters test, with its computed verdict.

Each chapter publishes its verdicts while it executes
(:func:`unlearnlib.studies.verdicts.publish`, into ``$UNLEARNLIB_VERDICTS_DIR``, which
:func:`unlearnlib.book.build.build_book` points at ``book/generated/verdicts/``) and,
optionally, a headline figure (:func:`publish_figure`). After the notebooks ran, the
build turns those files into ``book/generated/dashboard.md`` (:func:`write_dashboard`),
which the landing page includes. Nothing in it is typed: change a result row and the
verdict, its interval and the table change with it.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..store import atomic_write_bytes
from ..studies.verdicts import FAILS, HOLDS, INCONCLUSIVE, PUBLISH_ENV, UNTESTED, Verdict, load_published

#: Colours of the three verdict states on the landing page.
STATE_COLORS = {HOLDS: "#1a7f37", FAILS: "#cf222e", INCONCLUSIVE: "#9a6700", UNTESTED: "#6e7781"}
HEADLINE = "headline"


def publish_figure(fig, name: str = HEADLINE, folder: str | None = None) -> str | None:
    """Write a plotly figure as ``<folder>/<name>.plotly.json`` for the dashboard (folder:
    ``$UNLEARNLIB_VERDICTS_DIR``; nothing without one)."""
    folder = folder or os.environ.get(PUBLISH_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{name}.plotly.json"
    atomic_write_bytes(path, fig.to_json().encode())
    return str(path)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _interval(v: Verdict) -> str:
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (v.estimate, v.low, v.high)):
        return "n/a"
    return f"{v.estimate:.3g} [{v.low:.3g}, {v.high:.3g}]"


def dashboard_markdown(verdicts: Sequence[Verdict], chapter_links: Mapping[str, str],
                       chapter_titles: Mapping[str, str] | None = None, figure_json: str | None = None) -> str:
    """The dashboard page: a count of the verdicts, one table row per claim (verdict,
    statistic with its 95% interval, seeds, budget, the chapter that computes it) and the
    headline figure when one was published."""
    titles = dict(chapter_titles or {})
    counts = {s: sum(v.state == s for v in verdicts) for s in (HOLDS, FAILS, INCONCLUSIVE, UNTESTED)}
    lines = ["## What the book found", "",
             f"{len(verdicts)} claims of the source papers, each tested by a chapter of this build: "
             f"**{counts[HOLDS]} hold**, **{counts[FAILS]} do not hold**, **{counts[INCONCLUSIVE]} are inconclusive "
             f"at this budget** (tested: the interval contains the threshold) and **{counts[UNTESTED]} are not tested "
             "at this budget** (too few seeds, a failed budget check, or nothing to measure). A verdict needs a 95% "
             "interval over at least 5 seeds on one side of its criterion, and the same answer at half the tuning "
             "budget. Each row links to the chapter that computes it, where the criterion, the rows and the "
             "figures are.", ""]
    if not verdicts:
        lines.append("*No chapter published a verdict in this build.*")
    else:
        lines += ["| claim | source | verdict | statistic: estimate [95% CI] | seeds | budget | chapter |",
                  "|---|---|---|---|---|---|---|"]
        for v in verdicts:
            color = STATE_COLORS.get(v.state, "#000")
            state = f'<span style="color:{color};font-weight:bold">{html.escape(v.state)}</span>'
            link = chapter_links.get(v.chapter)
            chapter = f"[{_cell(titles.get(v.chapter, v.chapter))}]({link})" if link else _cell(v.chapter)
            why = f" ({_cell(v.needed)})" if v.state in (INCONCLUSIVE, UNTESTED) and v.needed else ""
            lines.append(f"| {_cell(v.claim)} | {_cell(v.source)} | {state}{why} | {_cell(v.statistic)}: "
                         f"{_interval(v)} | {v.n_seeds} | {_cell(v.budget)} | {chapter} |")
    if figure_json:
        lines += ["", '<div id="unlearnlib-headline" class="plotly-graph-div" style="height:520px;width:100%"></div>',
                  "<script>(function(){var f=" + figure_json.replace("</", "<\\/") + ";"
                  "Plotly.newPlot('unlearnlib-headline',f.data,f.layout,{responsive:true});})();</script>"]
    return "\n".join(lines) + "\n"


def write_dashboard(folder: Path | str, out: Path | str, chapter_links: Mapping[str, str],
                    chapter_titles: Mapping[str, str] | None = None) -> Path:
    """Read every published verdict (and the headline figure) in ``folder`` and write the
    dashboard Markdown to ``out``."""
    folder, out = Path(folder), Path(out)
    verdicts = load_published(str(folder)) if folder.is_dir() else []
    fig = folder / f"{HEADLINE}.plotly.json"
    text = dashboard_markdown(verdicts, chapter_links, chapter_titles,
                              json.dumps(json.loads(fig.read_text())) if fig.is_file() else None)
    atomic_write_bytes(out, text.encode())
    return out


__all__ = ["publish_figure", "dashboard_markdown", "write_dashboard", "STATE_COLORS", "HEADLINE"]
