"""The landing dashboard: every claim the chapters test, with its computed verdict.

Each chapter publishes its verdicts while it executes
(:func:`unlearnlib.studies.verdicts.publish`, into ``$UNLEARNLIB_VERDICTS_DIR``, which
:func:`unlearnlib.book.build.build_book` points at ``book/generated/verdicts/``) and,
optionally, a headline figure (:func:`publish_figure`). After the notebooks ran, the
build turns those files into ``book/generated/dashboard.md`` (:func:`write_dashboard`),
which the landing page includes. Nothing in it is typed: change a result row and the
verdict, its interval, the sentences, the forest plot and the table change with it.

The page answers at a glance (issue 34), in this order:

1. **three sentences** (:func:`answer_sentences`): what holds, what does not, and what
   this budget cannot tell, naming each claim and its chapter;
2. **a forest plot** (:func:`forest_figure`): one thin row per claim, each on its own
   x-axis (the statistics are ranks, margins, ratios and counts), the 95% interval as a
   bar, the estimate as a dot coloured by the verdict, the threshold as a vertical line
   and the side where the claim holds shaded, so the effect and its distance from
   flipping are visible per claim;
3. **a compact table** (:func:`verdict_table_html`): claim, verdict, estimate [interval]
   against the threshold, seeds, chapter; the criterion, statistic, budget and reason of
   each row open on demand (``<details>``);
4. the headline figure a chapter published (the scorecard's heatmap), under a caption.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import textwrap
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from ..store import atomic_write_bytes
from ..studies.verdicts import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MIN_SEEDS,
    PUBLISH_ENV,
    UNTESTED,
    Verdict,
    load_published,
)

#: Colours of the four verdict states (Okabe-Ito, safe for colour-blind readers); the page
#: always says the state in words as well.
STATE_COLORS = {HOLDS: "#009E73", FAILS: "#D55E00", INCONCLUSIVE: "#E69F00", UNTESTED: "#999999"}
#: The order the page lists the states in, and their short names in the forest plot.
STATE_ORDER = (HOLDS, FAILS, INCONCLUSIVE, UNTESTED)
SHORT_STATE = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "inconclusive", UNTESTED: "not tested"}
HEADLINE = "headline"
#: The chapter that publishes the headline figure (the scorecard's heatmap); the caption
#: links to it when the build has that chapter.
HEADLINE_CHAPTER = "scorecard"
#: HTML ids of the generated parts (the browser tests look for them).
ANSWER_ID, FOREST_ID, TABLE_ID, HEADLINE_ID = (
    "unlearnlib-answer", "unlearnlib-forest", "unlearnlib-verdicts", "unlearnlib-headline")
#: Forest plot geometry (px): the pitch of one claim's row, the bar's band within it, and
#: the share of the width for the claims' names (left) and their verdicts (right).
ROW_PX, BAND_PX, LABEL_SHARE, STATE_SHARE = 36, 14, 0.41, 0.15
LABEL_CHARS = 50


def publish_figure(fig, name: str = HEADLINE, folder: str | None = None) -> str | None:
    """Write a plotly figure as ``<folder>/<name>.plotly.json`` for the dashboard (folder:
    ``$UNLEARNLIB_VERDICTS_DIR``; nothing without one)."""
    folder = folder or os.environ.get(PUBLISH_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{name}.plotly.json"
    atomic_write_bytes(path, fig.to_json().encode())
    return str(path)


# --------------------------------------------------------------------------- reading a verdict


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def state_of(v: Verdict) -> str:
    """The verdict's state; a verdict published before ``inconclusive`` existed says "not
    tested" for an interval that contains its threshold, which is inconclusive: a test ran."""
    if v.state == UNTESTED and v.n_seeds >= MIN_SEEDS and "interval contains the threshold" in (v.reason or ""):
        return INCONCLUSIVE
    return v.state


def holds_side(v: Verdict) -> bool | None:
    """Whether the claim holds above its threshold: as recorded, else read from a conclusive
    verdict and its interval (an interval above the threshold that holds, or below it that
    does not, holds above); None when neither tells."""
    if v.holds_above is not None:
        return bool(v.holds_above)
    if not _finite(v.threshold) or state_of(v) not in (HOLDS, FAILS):
        return None
    above = _finite(v.low) and v.low > v.threshold
    below = _finite(v.high) and v.high < v.threshold
    if above == below:
        return None
    return above == (state_of(v) == HOLDS)


def seeds_to_decide(v: Verdict) -> int | None:
    """The seeds that would decide the claim (from ``needed``: "about N seeds ..."), if said."""
    m = re.search(r"about ([\d,]+) seeds", v.needed or "")
    return int(m.group(1).replace(",", "")) if m else None


def _num(x: float) -> str:
    if not _finite(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else ("∞" if x > 0 else "−∞")
    return f"{x:.3g}"


def interval_text(v: Verdict) -> str:
    """``estimate [low, high]`` (n/a where the estimate is undefined)."""
    if not _finite(v.estimate):
        return "n/a"
    if v.low is None or v.high is None or (math.isnan(v.low) and math.isnan(v.high)):
        return _num(v.estimate)
    return f"{_num(v.estimate)} [{_num(v.low)}, {_num(v.high)}]"


def threshold_text(v: Verdict) -> str:
    """Where the claim holds: ``holds if > t`` / ``holds if < t``, or ``threshold t``."""
    if not _finite(v.threshold):
        return "threshold not recorded"
    side = holds_side(v)
    return f"threshold {v.threshold:g}" if side is None else f"holds if {'>' if side else '<'} {v.threshold:g}"


def needed_text(v: Verdict) -> str:
    """What would decide it, as a parenthesis: "about 24 seeds (for 80% power)" reads
    "about 24 seeds, for 80% power"."""
    return re.sub(r"\s*\((.*)\)\s*$", r", \1", (v.needed or "").strip())


def verdict_text(v: Verdict) -> str:
    """The verdict in words, with what would decide it when it is not decided."""
    state, need = state_of(v), needed_text(v)
    return f"{state} ({need})" if state in (INCONCLUSIVE, UNTESTED) and need else state


def ordered(verdicts: Sequence[Verdict], chapter_links: Mapping[str, str]) -> list[Verdict]:
    """By state (holds, does not hold, inconclusive, not tested), then in the book's chapter
    order (``chapter_links``' order), then as published."""
    chapters = list(chapter_links)
    rank = {s: i for i, s in enumerate(STATE_ORDER)}

    def key(iv: tuple[int, Verdict]) -> tuple:
        i, v = iv
        return (rank.get(state_of(v), len(rank)),
                chapters.index(v.chapter) if v.chapter in chapters else len(chapters), i)

    return [v for _, v in sorted(enumerate(verdicts), key=key)]


# --------------------------------------------------------------------------- the three sentences


def short_title(title: str) -> str:
    """A chapter's title up to its colon ("Unrolling SGD: verification error, ..." ->
    "Unrolling SGD"): the dashboard names chapters in running text and a narrow column."""
    head = str(title).split(": ", 1)[0].strip()
    return head if len(head) >= 3 else str(title)


def _md(text: str) -> str:
    """Plain text as Markdown: its punctuation escaped, on one line."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", str(text)).replace("\n", " ")


def _chapter_md(chapter: str, links: Mapping[str, str], titles: Mapping[str, str]) -> str:
    title = _md(short_title(titles.get(chapter, chapter)))
    return f"[{title}]({links[chapter]})" if chapter in links else f"*{title}*"


def _claims_md(vs: Sequence[Verdict], links: Mapping[str, str], titles: Mapping[str, str]) -> str:
    """The claims, each chapter named after its last claim with the scope its claims were
    tested on: "a; b (Chapter: 6 of 24 methods, mnist1d/cnn1d); c (Other)". Claims of one
    chapter with different scopes each carry their own in brackets."""
    parts, run = [], []
    for i, v in enumerate(vs):
        run.append(v)
        if i + 1 < len(vs) and vs[i + 1].chapter == v.chapter:
            continue
        scopes = {x.scope for x in run}
        shared = next(iter(scopes)) if len(scopes) == 1 else None
        for j, x in enumerate(run):
            own = f" \\[{_md(x.scope)}\\]" if x.scope and shared is None else ""
            tail = ""
            if j + 1 == len(run):
                tail = f" ({_chapter_md(x.chapter, links, titles)}" + (f": {_md(shared)}" if shared else "") + ")"
            parts.append(_md(x.claim) + own + tail)
        run = []
    return "; ".join(parts)


def answer_sentences(verdicts: Sequence[Verdict], chapter_links: Mapping[str, str],
                     chapter_titles: Mapping[str, str] | None = None) -> list[str]:
    """Three Markdown sentences from the verdicts: what holds, what does not, and what this
    budget cannot tell (inconclusive: tested, the interval contains the threshold; not
    tested), with the inconclusive claim closest to being decided (fewest seeds to decide it)."""
    titles = dict(chapter_titles or {})
    vs = ordered(verdicts, chapter_links)
    by = {s: [v for v in vs if state_of(v) == s] for s in STATE_ORDER}
    out = []
    for state, lead in ((HOLDS, "Holds"), (FAILS, "Does not hold")):
        out.append(f"**{lead} ({len(by[state])}):** {_claims_md(by[state], chapter_links, titles)}."
                   if by[state] else f"**{lead} (0):** no claim at this budget.")
    open_ = by[INCONCLUSIVE] + by[UNTESTED]
    if not open_:
        out.append("**This budget cannot tell (0):** every claim is decided.")
        return out
    parts = []
    if by[INCONCLUSIVE]:
        parts.append(f"inconclusive ({len(by[INCONCLUSIVE])}): {_claims_md(by[INCONCLUSIVE], chapter_links, titles)}")
    if by[UNTESTED]:
        needs = {v.needed for v in by[UNTESTED]}  # what they lack, when they all lack the same
        lack = (f"; {'it needs' if len(by[UNTESTED]) == 1 else 'each needs'} {_md(needed_text(by[UNTESTED][0]))}"
                if len(needs) == 1 and None not in needs else "")
        parts.append(f"not tested ({len(by[UNTESTED])}{lack}): {_claims_md(by[UNTESTED], chapter_links, titles)}")
    text = f"**This budget cannot tell ({len(open_)}):** " + "; ".join(parts)
    # the closest: the inconclusive claim that needs the fewest seeds (a claim not tested may
    # need seeds for something else first, e.g. to resolve the gap it is measured against)
    scored = [(n, i, v) for i, v in enumerate(by[INCONCLUSIVE]) if (n := seeds_to_decide(v)) is not None]
    if scored:
        n, _, v = min(scored)
        text += f" — the closest to being decided is “{_md(v.claim)}”, at about {n:,} seeds"
    out.append(text + ".")
    return out


# --------------------------------------------------------------------------- the forest plot


def _wrap(text: str, width: int, lines: int | None = None) -> str:
    """Plain text as plotly text: escaped, wrapped at ``width`` with <br>, at most ``lines``."""
    rows = textwrap.wrap(str(text), width) or [""]
    if lines and len(rows) > lines:
        rows = rows[:lines]
        rows[-1] = rows[-1][: max(width - 1, 1)].rstrip() + "…"
    return "<br>".join(html.escape(r, quote=False) for r in rows)


def _hover(v: Verdict, titles: Mapping[str, str]) -> str:
    state = state_of(v)
    lines = [f"<b>{_wrap(v.claim, 70)}</b>", *([f"tested on: {_wrap(v.scope, 70)}"] if v.scope else []),
             f"{html.escape(verdict_text(v))} · {v.n_seeds} seeds",
             f"{_wrap(v.statistic, 70)}: {html.escape(interval_text(v))}", html.escape(threshold_text(v)),
             "criterion: " + _wrap(v.criterion, 70), "budget: " + _wrap(v.budget, 70),
             "chapter: " + html.escape(titles.get(v.chapter, v.chapter))]
    if state in (INCONCLUSIVE, UNTESTED) and v.reason:
        lines.insert(2, "why: " + _wrap(v.reason, 70))
    return "<br>".join(lines)


def _x_range(v: Verdict) -> tuple[float, float]:
    vals = [x for x in (v.estimate, v.low, v.high, v.threshold) if _finite(x)]
    if not vals:
        return -1.0, 1.0
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.12 if hi > lo else max(abs(hi) * 0.1, 0.05)
    return lo - pad, hi + pad


def forest_figure(verdicts: Sequence[Verdict], chapter_titles: Mapping[str, str] | None = None):
    """One thin panel per claim (in the given order), each with its own x-axis: the 95%
    interval as a bar, the estimate as a dot in the verdict's colour, the threshold as a
    vertical line, the side where the claim holds shaded; the claim's name on the left,
    its verdict in words on the right, the criterion, statistic and budget on hover."""
    import plotly.graph_objects as go

    titles = dict(chapter_titles or {})
    n = max(len(verdicts), 1)
    height = n * ROW_PX + 8
    x_dom = [LABEL_SHARE, 1 - STATE_SHARE]
    layout: dict = dict(template="none", height=height, autosize=True, showlegend=False,
                        margin=dict(l=4, r=4, t=4, b=4), hovermode="closest", plot_bgcolor="white",
                        paper_bgcolor="white", font=dict(size=11, color="#222"),
                        hoverlabel=dict(align="left", bgcolor="white", font=dict(size=11)))
    shapes, annotations, traces = [], [], []
    plot_h = height - 8
    for i, v in enumerate(verdicts):
        k = "" if i == 0 else str(i + 1)
        top = 1 - (i * ROW_PX + 3) / plot_h
        y_dom = [top - BAND_PX / plot_h, top]
        x_lo, x_hi = _x_range(v)
        layout[f"xaxis{k}"] = dict(domain=x_dom, anchor=f"y{k}", range=[x_lo, x_hi], nticks=5, ticks="outside",
                                   ticklen=3, tickfont=dict(size=9, color="#555"), showgrid=False, zeroline=False,
                                   showline=True, linecolor="#bbb", fixedrange=True, automargin=False)
        layout[f"yaxis{k}"] = dict(domain=y_dom, anchor=f"x{k}", range=[-1, 1], visible=False, fixedrange=True)
        xr, yd = f"x{k}", f"y{k} domain"
        state, color = state_of(v), STATE_COLORS.get(state_of(v), "#000")
        side = holds_side(v)
        hover = _hover(v, titles)
        if _finite(v.threshold) and side is not None:  # the side where the claim holds
            shapes.append(dict(type="rect", xref=xr, yref=yd, x0=v.threshold, x1=x_hi if side else x_lo,
                               y0=0, y1=1, fillcolor=STATE_COLORS[HOLDS], opacity=0.13, line=dict(width=0),
                               layer="below"))
        lo = v.low if _finite(v.low) else (x_lo if _finite(v.estimate) and v.low == -math.inf else math.nan)
        hi = v.high if _finite(v.high) else (x_hi if _finite(v.estimate) and v.high == math.inf else math.nan)
        if _finite(lo) and _finite(hi):  # the interval (an unbounded side runs to the axis' end)
            shapes.append(dict(type="line", xref=xr, yref=yd, x0=lo, x1=hi, y0=0.5, y1=0.5,
                               line=dict(color=color, width=5), opacity=0.6, layer="below"))
        if _finite(v.threshold):
            shapes.append(dict(type="line", xref=xr, yref=yd, x0=v.threshold, x1=v.threshold, y0=-0.15, y1=1.15,
                               line=dict(color="#222", width=1.5), layer="below", name="threshold"))
        if _finite(v.estimate):
            traces.append(go.Scatter(x=[v.estimate], y=[0], xaxis=xr, yaxis=f"y{k}", mode="markers",
                                     marker=dict(color=color, size=10, line=dict(color="#222", width=1)),
                                     hoverinfo="text", hovertext=hover, name=SHORT_STATE.get(state, state)))
        mid = (y_dom[0] + y_dom[1]) / 2
        annotations.append(dict(xref="paper", yref="paper", x=0, y=mid, xanchor="left", yanchor="middle",
                                text=_wrap(v.claim, LABEL_CHARS, 2), showarrow=False, align="left",
                                hovertext=hover, font=dict(size=11)))
        annotations.append(dict(xref="paper", yref="paper", x=1, y=mid, xanchor="right", yanchor="middle",
                                text=f'<span style="color:{color}">●</span> {SHORT_STATE.get(state, state)}',
                                showarrow=False, align="right", font=dict(size=11)))
    layout.update(shapes=shapes, annotations=annotations)
    return go.Figure(data=traces, layout=layout)


def _figure_html(div_id: str, figure_json: str, height: int, config: str = "{responsive:true}") -> list[str]:
    return [f'<div id="{div_id}" class="plotly-graph-div" style="height:{height}px;width:100%"></div>',
            "<script>(function(){var f=" + figure_json.replace("</", "<\\/") + ";"
            f"Plotly.newPlot('{div_id}',f.data,f.layout,{config});}})();</script>"]


# --------------------------------------------------------------------------- the table


#: The table's own styles: it fills the text column and wraps, never wider than it.
TABLE_CSS = f"""<style>
#{ANSWER_ID} p {{margin: 0 0 0.45em 0;}}
.ul-table-wrap {{max-width: 100%; overflow-x: auto;}}
table.ul-verdicts {{width: 100%; max-width: 100%; table-layout: fixed; border-collapse: collapse; font-size: 0.86em;
  margin: 0.5em 0 1em 0;}}
table.ul-verdicts th, table.ul-verdicts td {{padding: 0.3em 0.4em; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; border-bottom: 1px solid var(--pst-color-border, #ddd);}}
table.ul-verdicts th {{border-bottom: 2px solid var(--pst-color-text-muted, #999);}}
table.ul-verdicts td.ul-n {{text-align: right;}}
table.ul-verdicts details {{font-size: 0.92em; margin-top: 0.2em;}}
table.ul-verdicts summary {{cursor: pointer; color: var(--pst-color-text-muted, #666);}}
table.ul-verdicts details p {{margin: 0.2em 0;}}
.ul-dot {{display: inline-block; width: 0.7em; height: 0.7em; border-radius: 50%; margin-right: 0.3em;
  border: 1px solid #222;}}
.ul-state {{font-weight: 600;}}
.ul-thr {{color: var(--pst-color-text-muted, #555);}}
.ul-scope {{font-size: 0.88em; color: var(--pst-color-text-muted, #555);}}
</style>"""


def _chapter_href(link: str) -> str:
    """A chapter's link as the HTML page beside the landing page (``generated/x.ipynb`` ->
    ``generated/x.html``): the table is raw HTML, which Sphinx does not resolve."""
    p = PurePosixPath(link)
    return str(p.with_suffix(".html")) if p.suffix in (".ipynb", ".md") else link


def verdict_table_html(verdicts: Sequence[Verdict], chapter_links: Mapping[str, str],
                       chapter_titles: Mapping[str, str] | None = None) -> str:
    """One row per claim: claim (its criterion, statistic, budget and reason in a
    ``<details>``), verdict, estimate [95% interval] against the threshold, seeds, chapter.
    One HTML block without blank lines (Markdown passes it through as it is)."""
    titles, e = dict(chapter_titles or {}), html.escape
    rows = []
    for v in verdicts:
        state = state_of(v)
        color = STATE_COLORS.get(state, "#000")
        link = chapter_links.get(v.chapter)
        title = e(short_title(titles.get(v.chapter, v.chapter)))
        chapter = f'<a href="{e(_chapter_href(link))}">{title}</a>' if link else title
        need = needed_text(v)
        thr = f'<br><span class="ul-thr">{e(threshold_text(v))}</span>' if _finite(v.threshold) else ""
        info = [f"<p><b>criterion:</b> {e(v.criterion)}</p>", f"<p><b>statistic:</b> {e(v.statistic)}</p>",
                f"<p><b>budget:</b> {e(v.budget)}; half budget: {e(v.half_state or 'n/a')}</p>",
                f"<p><b>why:</b> {e(v.reason)}" + (f"; would decide it: {e(need)}" if need else "") + "</p>",
                f"<p><b>source:</b> {e(v.source)}</p>"]
        verdict = (f'<span class="ul-dot" style="background:{color}"></span><span class="ul-state">{e(state)}</span>'
                   + (f" ({e(need)})" if state in (INCONCLUSIVE, UNTESTED) and need else ""))
        scope = f'<div class="ul-scope">on {e(v.scope)}</div>' if v.scope else ""
        rows.append(f'<tr class="ul-row" data-state="{e(state)}"><td>{e(v.claim)}{scope}<details><summary>criterion, '
                    f'budget</summary>{"".join(info)}</details></td><td>{verdict}</td><td>{e(interval_text(v))}'
                    f'{thr}</td><td class="ul-n">{v.n_seeds}</td>'
                    f"<td>{chapter}</td></tr>")
    head = ("<thead><tr><th>claim</th><th>verdict</th><th>estimate [95% CI]</th><th>seeds</th>"
            "<th>chapter</th></tr></thead>")
    cols = "".join(f'<col style="width:{w}%">' for w in (36, 22, 21, 8, 13))
    return (f'<div class="ul-table-wrap"><table id="{TABLE_ID}" class="ul-verdicts"><colgroup>{cols}</colgroup>'
            f"{head}<tbody>{''.join(rows)}</tbody></table></div>")


# --------------------------------------------------------------------------- the page


def dashboard_markdown(verdicts: Sequence[Verdict], chapter_links: Mapping[str, str],
                       chapter_titles: Mapping[str, str] | None = None, figure_json: str | None = None) -> str:
    """The dashboard page: three sentences (:func:`answer_sentences`), the forest plot of
    every claim (:func:`forest_figure`), the compact table (:func:`verdict_table_html`) and
    the headline figure when one was published."""
    titles = dict(chapter_titles or {})
    lines = [TABLE_CSS, "", "## What the book found", ""]
    if not verdicts:
        lines.append("*No chapter published a verdict in this build.*")
    else:
        vs = ordered(verdicts, chapter_links)
        lines += ["```{container} " + ANSWER_ID, f":name: {ANSWER_ID}", ""]
        for s in answer_sentences(vs, chapter_links, titles):
            lines += [s, ""]
        lines += ["```", ""]
        fig = forest_figure(vs, titles)
        lines += _figure_html(FOREST_ID, fig.to_json(), int(fig.layout.height),
                              "{responsive:true,displayModeBar:false}")
        lines += ["", f"*Each row is one claim on its own scale: the bar is the 95% interval over seeds, the dot the "
                  f"estimate (coloured by the verdict, which the right-hand column says in words), the vertical line "
                  f"the claim's threshold, and the shaded side is where the claim holds. A claim holds or does not "
                  f"when the whole interval, over at least {MIN_SEEDS} seeds, lies on one side, and half the tuning "
                  f"budget gives the same answer; hover a row for its criterion and budget.*", ""]
        lines.append(verdict_table_html(vs, chapter_links, titles))
    if figure_json:
        fig = json.loads(figure_json)
        title = ((fig.get("layout") or {}).get("title") or {})
        title = title.get("text") if isinstance(title, dict) else title
        where = (f" (published by {_chapter_md(HEADLINE_CHAPTER, chapter_links, titles)})"
                 if HEADLINE_CHAPTER in chapter_links else "")
        lines += ["", f"*The headline figure{where}: {_md(title) if title else 'the chapter’s summary'}.*", ""]
        lines += _figure_html(HEADLINE_ID, figure_json, 520)
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


__all__ = ["publish_figure", "dashboard_markdown", "write_dashboard", "answer_sentences", "forest_figure",
           "verdict_table_html", "short_title", "state_of", "holds_side", "seeds_to_decide", "verdict_text", "ordered",
           "STATE_COLORS", "HEADLINE", "ANSWER_ID", "FOREST_ID", "TABLE_ID", "HEADLINE_ID"]
