"""The scorecard chapter's rendering (:mod:`unlearnlib.studies.scorecard` computes): the
heatmap and the Kendall figure, the sortable HTML table with its inline script, the Markdown
table, and every sentence of the chapter that states what the numbers say, each generated
from the scorecard's frames, readings and counts."""

from __future__ import annotations

import html
import re
import resource
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..store import canonical_json
from ..studies import scorecard as sc
from ..studies.scorecard import KENDALL_MIN_METHODS, REFERENCES, TOL, UTILITY, test_of

#: The display scale of a normalised score (0 = original, 1 = retrained). Colour says the
#: distance from the retrained model, not a direction: overshooting to 2 is as far from
#: retraining as staying at the original's 0, so both get the same colour (the cell's text
#: and hover say which). Blue at 1, orange at distance 1, dark brown at distance 2 and
#: beyond: a colour-blind-safe diverging pair (ColorBrewer PuOr/RdBu ends), never red-green.
SCALE_RANGE = (-1.0, 3.0)
COLORSCALE = [[0.0, "#7f3b08"], [0.25, "#f1a340"], [0.5, "#2166ac"], [0.75, "#f1a340"], [1.0, "#7f3b08"]]
GREY = "#d9d9d9"
#: What the heatmap's row mark means.
UTILITY_MARK = "✗TA"


def cell_color(score: float) -> str:
    """The heatmap's colour of a normalised score (grey when NaN), for the HTML table."""
    from plotly.colors import sample_colorscale

    if not np.isfinite(score):
        return GREY
    lo, hi = SCALE_RANGE
    return sample_colorscale(COLORSCALE, [float(np.clip((score - lo) / (hi - lo), 0.0, 1.0))])[0]


def text_color(score: float) -> str:
    """Dark text on the light cells, white on the dark ones (near 1 and at distance 2 or more)."""
    if not np.isfinite(score):
        return "#222"
    d = abs(float(score) - 1.0)
    return "#fff" if d < 0.45 or d > 1.6 else "#222"


def _fmt(x: float, digits: int = 3) -> str:
    if not np.isfinite(x):
        return "–"
    s = f"{x:.{digits}g}"
    return s[1:] if re.fullmatch(r"-0(\.0*)?", s) else s  # no "-0"


def score_text(score: float, digits: int = 2) -> str:
    """A score as the heatmap prints it: clipped to the display scale (">3", "<-1"), the raw
    value being on hover."""
    lo, hi = SCALE_RANGE
    if np.isfinite(score) and score > hi:
        return f">{hi:g}"
    if np.isfinite(score) and score < lo:
        return f"<{lo:g}"
    return _fmt(score, digits)


def _hover(r: Mapping[str, Any]) -> str:
    return (f"{r['method']} · {r['label']}<br>raw {_fmt(r['value'])} [{_fmt(r['value_low'])}, {_fmt(r['value_high'])}]"
            f"<br>score {_fmt(r['score'], 2)} [{_fmt(r['score_low'], 2)}, {_fmt(r['score_high'], 2)}]"
            f" (0 = original, 1 = retrained)<br>{r['reading']}" + ("" if r["keeps_utility"] else " (utility lost)"))


def dead_tests(frame: pd.DataFrame) -> list[str]:
    """Tests whose raw value is the same for every model, the original and the retrained one
    included (to 3 significant digits): they tell no model from another (e.g. KLOM at its
    small-sample floor), so the heatmap leaves them out and says so."""
    out = []
    for t, g in frame.groupby("test", sort=False):
        v = g["value"].to_numpy(float)
        if np.isfinite(v).all() and len({f"{x:.3g}" for x in v}) == 1:
            out.append(t)
    return out


def heatmap_figure(frame: pd.DataFrame, title: str = "The scorecard", left_out: Mapping[str, str] | None = None):
    """Methods as rows, tests as columns, each cell the normalised score (0 = original,
    1 = retrained) clipped to :data:`SCALE_RANGE` in colour and text (the raw value, the score
    and their intervals on hover); a tick marks a pass. Tests that read the same for every
    model (:func:`dead_tests`) are left out and named in the note under the figure, and so are
    ``left_out``'s (test key -> why), tests the scorecard was computed without (e.g. KLOM where
    :func:`klom_resolution` says it cannot read): the figure says what it does not show."""
    import plotly.graph_objects as go

    dead = dead_tests(frame)
    methods = list(dict.fromkeys(frame["method"]))
    tests = [x for x in dict.fromkeys(frame["test"]) if x not in dead]
    labels = [test_of(x).label for x in tests]
    f = frame.set_index(["method", "test"])
    z = [[f.loc[(m, x), "score"] for x in tests] for m in methods]
    text = [[("✓ " if f.loc[(m, x), "reading"] == "pass" else "") + score_text(f.loc[(m, x), "score"])
             if f.loc[(m, x), "reading"] != "unresolved" else "n/r" for x in tests] for m in methods]
    hover = [[_hover(f.loc[(m, x)].to_dict() | {"method": m}) for x in tests] for m in methods]
    first = frame.drop_duplicates("method").set_index("method")
    util, name = first["keeps_utility"], first.get("method_label", pd.Series(methods, index=methods))
    ylabels = [name[m] if util[m] or m in REFERENCES else f"{name[m]} {UTILITY_MARK}" for m in methods]
    lo, hi = SCALE_RANGE
    note = [f"Colour: distance of the score from 1 (the retrained model), clipped to [{lo:g}, {hi:g}]; "
            "✓ = pass; n/r = the test cannot tell the original from the retrained model here"]
    if any(not util[m] and m not in REFERENCES for m in methods):
        note.append(f"{UTILITY_MARK}: the method loses more than {UTILITY:.0%} test accuracy against retraining "
                    "and passes no test")
    if dead:
        note.append("left out, the same value for every model: " + ", ".join(test_of(x).label for x in dead))
    for key, why in (left_out or {}).items():
        note.append(f"left out, {test_of(key).label}: {why}")
    top, bottom, row = 40, 110 + 16 * len(note), 28
    fig = go.Figure(go.Heatmap(
        z=np.clip(np.array(z, float), lo, hi), x=labels, y=ylabels, text=text, texttemplate="%{text}",
        hovertext=hover, hoverinfo="text", colorscale=COLORSCALE, zmin=lo, zmax=hi, xgap=1, ygap=1,
        colorbar=dict(title="score", tickvals=[-1, 0, 1, 2, 3], len=1.0,
                      ticktext=["≤-1", "0 original", "1 retrained", "2", "≥3"])))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=8), font=dict(size=14)),
                      template="plotly_white", plot_bgcolor=GREY, height=top + bottom + row * len(methods),
                      yaxis=dict(autorange="reversed"), xaxis=dict(side="bottom", tickangle=-35),
                      margin=dict(t=top, b=bottom, l=10, r=10),
                      annotations=[dict(xref="paper", yref="paper", x=0, y=0, yshift=-(bottom - 8), xanchor="left",
                                        yanchor="bottom", align="left", showarrow=False, font=dict(size=11, color="#444"),
                                        text="<br>".join(html.escape(n, quote=False) for n in note))])
    return fig


def kendall_figure(tau: pd.DataFrame):
    """Kendall's tau between the tests' rankings of the methods."""
    import plotly.graph_objects as go

    labels = [test_of(t).label for t in tau.columns]
    z = tau.to_numpy(float)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                               text=[[_fmt(v, 2) for v in row] for row in z], texttemplate="%{text}",
                               colorbar=dict(title="tau")))
    fig.update_layout(title="How the tests agree: Kendall's tau between their rankings of the methods",
                      template="plotly_white", height=560, yaxis=dict(autorange="reversed"),
                      xaxis=dict(tickangle=-35))
    return fig


_SORT_JS = """(function(){var t=document.getElementById('%s');if(!t)return;
var hs=t.tHead.rows[0].cells;for(var i=0;i<hs.length;i++){(function(i){hs[i].style.cursor='pointer';
hs[i].onclick=function(){var b=t.tBodies[0],rs=Array.prototype.slice.call(b.rows),d=hs[i].dataset.dir==='a'?'d':'a';
hs[i].dataset.dir=d;rs.sort(function(x,y){var p=x.cells[i].dataset.v,q=y.cells[i].dataset.v;
var u=parseFloat(p),v=parseFloat(q),c=(isNaN(u)||isNaN(v))?String(p).localeCompare(String(q)):u-v;
return d==='a'?c:-c;});rs.forEach(function(r){b.appendChild(r);});};})(i);}})();"""


def html_table(frame: pd.DataFrame, table_id: str = "unlearnlib-scorecard") -> str:
    """The scorecard as a sortable HTML table (click a header) whose cells are coloured by
    the normalised score, the raw value shown and its interval and score in the tooltip;
    static HTML plus one inline script, so it works in the built book without a kernel."""
    methods = list(dict.fromkeys(frame["method"]))
    tests = list(dict.fromkeys(frame["test"]))
    f = frame.set_index(["method", "test"])
    first = frame.drop_duplicates("method").set_index("method")
    head = ["<th data-dir=''>method</th>", "<th>hyperparameters</th>", "<th>test accuracy</th>"] + [
        f"<th title='{html.escape(test_of(t).reads)}'>{html.escape(test_of(t).label)}</th>" for t in tests]
    body = []
    for m in methods:
        ta = first.loc[m, "test_acc"]
        name = str(first.loc[m, "method_label"]) if "method_label" in first.columns else m
        cells = [f"<td data-v='{html.escape(name)}'><b>{html.escape(name)}</b></td>",
                 f"<td data-v='{html.escape(str(first.loc[m, 'hparams']))}'>{html.escape(str(first.loc[m, 'hparams']))}</td>",
                 f"<td data-v='{ta:.6g}' style='color:#222;background:{'#ffffff' if first.loc[m, 'keeps_utility'] or m in REFERENCES else '#f4a582'}'>"
                 f"{ta:.3f}</td>"]
        for t in tests:
            r = f.loc[(m, t)].to_dict() | {"method": m}
            tip = html.escape(_hover(r).replace("<br>", "\n"), quote=True)
            sort = r["score"] if np.isfinite(r["score"]) else -1e9
            mark = "✓ " if r["reading"] == "pass" else ""
            cells.append(f"<td data-v='{sort:.6g}' title='{tip}' style='background:{cell_color(r['score'])};"
                         f"color:{text_color(r['score'])};text-align:right'>{mark}{_fmt(r['value'])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div style='overflow-x:auto'><table id='{table_id}' class='dataframe' style='font-size:0.85em;"
            f"border-collapse:collapse'><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody>"
            f"</table></div><script>{_SORT_JS % table_id}</script>")


def markdown_table(frame: pd.DataFrame, column: str = "score", digits: int = 2) -> str:
    """Methods x tests as a Markdown table of ``column`` (score or value), a tick on passes."""
    methods = list(dict.fromkeys(frame["method"]))
    tests = list(dict.fromkeys(frame["test"]))
    f = frame.set_index(["method", "test"])
    lines = ["| method | TA | " + " | ".join(test_of(t).label for t in tests) + " |",
             "|---" * (len(tests) + 2) + "|"]
    for m in methods:
        cells = []
        for t in tests:
            r = f.loc[(m, t)]
            cells.append("n/r" if r["reading"] == "unresolved" else
                         ("✓" if r["reading"] == "pass" else "") + _fmt(r[column], digits))
        lines.append(f"| {m} | {f.loc[(m, tests[0]), 'test_acc']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hparams_text(hp: Mapping[str, tuple[dict, str]]) -> pd.DataFrame:
    """Where each method's hyperparameters came from, and the values given (empty: defaults)."""
    return pd.DataFrame([{"method": m, "from": src, "hyperparameters": canonical_json(h) if h else "defaults"}
                         for m, (h, src) in hp.items()]).set_index("method")


# --------------------------------------------------------------------------- the chapter's text


def plan_text(keys: Sequence[str], hparams: Mapping[str, tuple[dict, str]], seeds: str,
              registered: Sequence[str] | None = None) -> str:
    """What the chapter runs: its methods and where their hyperparameters come from, and the
    ``registered`` methods (default: the registry's) it leaves out."""
    from .. import methods as registry

    n, shipped = sum(k not in REFERENCES for k in keys), sc.n_shipped(hparams)
    lines = [f"{n} methods and the two references on seeds {seeds}: {shipped} with shipped tuned "
             f"hyperparameters, {n - shipped} at their defaults"]
    left_out = [k for k in (registry.available() if registered is None else registered) if k not in keys]
    if left_out:
        lines.append(f"{len(left_out)} registered methods not run by this profile (for time): {', '.join(left_out)}")
    return "\n".join(lines)


def rules_markdown(poison_budget: float) -> str:
    """The reading's rules in numbers (:data:`~unlearnlib.studies.scorecard.TOL`, the utility
    rule, the verdicts' fewest seeds, the poisoning test's compute budget)."""
    from ..studies.verdicts import MIN_SEEDS

    return (f"The rules in numbers: a method passes a test when $|s - 1| \\le {TOL:g}$; a method losing more "
            f"than {100 * UTILITY:g} points of test accuracy against the retrained model passes no test; a "
            f"claim needs at least {MIN_SEEDS} seeds; the poisoning test unlearns within "
            f"{poison_budget:.0%} of the training compute.")


def show_plan(keys: Sequence[str], hparams: Mapping[str, tuple[dict, str]], seeds: str, poison_budget: float) -> None:
    """Display :func:`plan_text`, :func:`hparams_text` (whole cells) and :func:`rules_markdown`."""
    from IPython.display import Markdown, display

    print(plan_text(keys, hparams, seeds))
    with pd.option_context("display.max_colwidth", None):
        display(hparams_text(hparams))
    display(Markdown(rules_markdown(poison_budget)))


def deeper_text(rows: pd.DataFrame, keys: Sequence[str], keepers: Sequence[str], deep: Sequence[str]) -> str:
    """The full-data rows, the methods keeping their utility and those not given the deeper tests."""
    run = set(REFERENCES) | set(deep)
    return (f"{len(rows)} rows; {len(keepers)} methods keep their utility: {', '.join(keepers) or 'none'}\n"
            f"lost it (deeper tests not run): {', '.join(k for k in keys if k not in run) or 'none'}")


def shadows_text(runner, seconds: float) -> str:
    """The shadow set's design (:class:`~unlearnlib.shadows.ShadowRunner`) and its time."""
    sh = runner.shadows
    return (f"shadows: {sh.config.k} splits, {len(sh.pool)} population samples, {int(sh.is_target.sum())} targets, "
            f"{int(sh.in_masks[0].sum())} training and {int(sh.forget_masks[0].sum())} forgotten samples per shadow, "
            f"{runner.recipe.epochs} epochs: {seconds:.0f} s")


def poison_text(setting: sc.PoisonSetting, poison_keys: Sequence[str], n_seeds: int, seconds: float) -> str:
    """The poisoning test's setting, methods and time."""
    n = sum(m not in REFERENCES for m in poison_keys)
    return (f"poisoning: {setting.attack} ({100 * setting.fraction:g}% poisons, eps {dict(setting.params)['eps']}) on "
            f"{setting.dataset} with an {setting.model}, {n_seeds} seed(s), {n} methods at "
            f"{100 * setting.budget:g}% of the training compute: {seconds:.0f} s")


def resolution_text(reading: sc.Reading, left_out: Sequence[str] = ()) -> str:
    """The tests whose original-retrained gap is not resolved, and those left out (``left_out``)."""
    unresolved = [test_of(t).label for t, ok in zip(reading.tests, reading.resolved, strict=True) if not ok]
    lines = ["tests whose original-retrained gap is not resolved at this budget: " + (", ".join(unresolved) or "none")]
    if left_out:
        lines.append("left out of the scorecard: " + ", ".join(test_of(t).label for t in left_out) + " (reason above)")
    return "\n".join(lines)


def headline_figure(frame: pd.DataFrame, reading: sc.Reading, setting: str, klom: sc.KlomResolution):
    """The chapter's headline :func:`heatmap_figure`: its title counts the methods (references
    aside) and the tests shown (``setting``: what they ran on, e.g. "mnist1d, cnn1d,
    random:0.1"); KLOM left out (``klom``) is named under it with its numbers."""
    n_methods = sum(m not in REFERENCES for m in dict.fromkeys(frame["method"]))
    shown = len(reading.tests) - len(dead_tests(frame[frame["test"].isin(reading.tests)]))
    left_out = None if klom.keep else {
        "klom": f"N = {klom.n_median:g} models per side; its small-sample floor {klom.floor:.2f} is at its "
                f"ceiling {klom.ceiling:.2f}"}
    return heatmap_figure(frame, title=f"The scorecard: {n_methods} methods x {shown} tests "
                                       f"({setting}; 0 = original, 1 = retrained)", left_out=left_out)


def findings_markdown(summary: pd.DataFrame, frame: pd.DataFrame) -> str:
    """Which methods pass every test, which pass the population loss-MIA and which of those
    have a false sense of success (with the tests they fail), from
    :func:`~unlearnlib.studies.scorecard.summaries` and the scorecard frame."""
    nonref = [m for m in summary.index if m not in REFERENCES]
    every = [m for m in nonref if summary.at[m, "passes every test"]]
    fooled = [f"**{m}** ({summary.at[m, 'fails']})" for m in nonref if summary.at[m, "false sense of success"]]
    mia = frame[(frame.test == sc.POPULATION_TEST) & (frame.reading == "pass") & frame.method.isin(nonref)].method
    return (f"- Pass every test: {', '.join(f'**{m}**' for m in every) or '**none**'}.\n"
            f"- Pass the population loss-MIA: {', '.join(mia) or 'none'}; of them, with a false sense of "
            f"success (they fail a deeper test): {', '.join(fooled) or '**none**'}.")


def kendall_shown(distance: pd.DataFrame, tau: pd.DataFrame) -> bool:
    """Whether the tests' rankings are compared: at least
    :data:`~unlearnlib.studies.scorecard.KENDALL_MIN_METHODS` methods and a resolved test."""
    return len(distance) >= KENDALL_MIN_METHODS and len(tau) > 0


def kendall_markdown(distance: pd.DataFrame, tau: pd.DataFrame) -> str:
    """What the Kendall matrix says of the loss-MIA against the deeper tests (empty when it
    has neither), or why there is no matrix (too few methods)."""
    n = len(distance)
    if not kendall_shown(distance, tau):
        step = f"; Kendall's tau between two rankings of {n} moves in steps of {4 / (n * (n - 1)):.2g}" if n > 1 else ""
        return (f"{n} utility-keeping method(s){step}: too few to compare the tests' rankings (this chapter "
                f"draws the matrix from {KENDALL_MIN_METHODS} methods on).")
    deeper = [t for t in tau.columns if test_of(t).group in sc.DEEPER_GROUPS]
    if sc.POPULATION_TEST not in tau.columns or not deeper:
        return ""
    with_mia = tau.loc[sc.POPULATION_TEST, deeper]
    return (f"Over {n} methods: Kendall's tau between the loss-MIA's ranking and the deeper "
            f"tests' ranges from {with_mia.min():.2f} to {with_mia.max():.2f} (mean {with_mia.mean():.2f}).")


def show_rankings(distance: pd.DataFrame, tau: pd.DataFrame) -> None:
    """The Kendall figure where the rankings are compared (:func:`kendall_shown`), and :func:`kendall_markdown`."""
    from IPython.display import Markdown, display

    from . import plots

    if kendall_shown(distance, tau):
        plots.show(kendall_figure(tau))
    text = kendall_markdown(distance, tau)
    if text:
        display(Markdown(text))


def cost_markdown(budget: str, wall: float, rows_seconds: float, hits: int, misses: int,
                  peak_gb: float | None = None) -> str:
    """The run's budget, wall time, peak memory (default: this process's, from ``getrusage``)
    and the store's hits and misses."""
    if peak_gb is None:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return (f"Budget: {budget}. Wall time {wall:.0f} s (full-data rows and relearning {rows_seconds:.0f} s), "
            f"peak memory of this kernel {peak_gb:.2f} GiB; store: {hits} hits, {misses} misses.")


def caveats_markdown(shadow_epochs: int, full_epochs: int, shadow_population: float) -> str:
    """The chapter's caveats, with the shadows' and the full-data models' epochs and the
    shadows' share of the population, and KLOM's floor at the authors' models per side."""
    from ..evaluation.klom import small_sample_floor

    return (
        f"Caveats: the shadows train for {shadow_epochs} epochs (the full-data models for {full_epochs}) on "
        f"{shadow_population:.0%} of $D_r$ ∪ $D_f$, so the per-sample attacks see what these weaker models memorised. "
        f"KLOM compares about $k/2$ unlearned shadows of each forget point with as many oracles; its binned estimate "
        f"has a small-sample floor (what retraining itself reads at that number of models, "
        f"{small_sample_floor(sc.AUTHORS_N):.2f} at the authors' {sc.AUTHORS_N}), so it is kept only where that floor "
        f"leaves {sc.KLOM_MIN_ROOM:.0%} of its range below its ceiling (the reason is printed with the shadows). "
        f"NeurIPS' $F$ is capped by what so few models can show. Both are compared with the retrained shadows' own "
        f"values, not with their ideals. A method's shipped hyperparameters were tuned for Deep Unlearn's objective "
        f"on the full-data models, not for any of these tests.")


__all__ = [
    "SCALE_RANGE", "COLORSCALE", "GREY", "UTILITY_MARK", "cell_color", "text_color", "score_text", "dead_tests",
    "heatmap_figure", "kendall_figure", "html_table", "markdown_table", "hparams_text", "plan_text",
    "rules_markdown", "show_plan", "deeper_text", "shadows_text", "poison_text", "resolution_text",
    "headline_figure", "findings_markdown", "kendall_shown", "kendall_markdown", "show_rankings", "cost_markdown",
    "caveats_markdown",
]
