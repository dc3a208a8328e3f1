"""The landing dashboard is generated from the chapters' published verdicts, never typed."""

from __future__ import annotations

import json
import math
import re

import plotly.graph_objects as go
from test_verdicts import GOOD, grid

from unlearnlib.book import dashboard
from unlearnlib.studies import verdicts as V

LINKS = {"methods": "generated/methods.ipynb", "poisoning": "generated/poisoning.ipynb",
         "unrolling_sgd": "generated/unrolling_sgd.ipynb"}
TITLES = {"methods": "Deep Unlearn, reproduced", "poisoning": "Poisoning as the hard test",
          "unrolling_sgd": "Unrolling SGD"}


def build(tmp_path, df) -> str:
    folder = tmp_path / "verdicts"
    V.publish(V.deep_unlearn_verdicts(df, df, "b"), "methods", str(folder))
    dashboard.publish_figure(go.Figure(go.Bar(x=["a"], y=[1])), folder=str(folder))
    out = dashboard.write_dashboard(folder, tmp_path / "dashboard.md", {"methods": "generated/methods.ipynb"},
                                    {"methods": "Deep Unlearn, reproduced"})
    return out.read_text()


def verdict(claim: str, state: str, chapter: str = "methods", estimate: float = 0.2, low: float = 0.1,
            high: float = 0.3, threshold: float | None = 0.0, holds_above: bool | None = True,
            n_seeds: int = 10, needed: str | None = None, reason: str = "computed") -> V.Verdict:
    return V.Verdict(claim=claim, source="a paper", chapter=chapter, criterion=f"criterion of {claim}",
                     statistic=f"statistic of {claim}", state=state, estimate=estimate, low=low, high=high,
                     n_seeds=n_seeds, budget=f"budget of {claim}", half_state=None, reason=reason, needed=needed,
                     threshold=threshold, holds_above=holds_above)


def every_state() -> list[V.Verdict]:
    """Two claims of each state, over three chapters, with thresholds on different scales."""
    return [
        verdict("Ranks are low", V.HOLDS, "methods", 2.0, 1.0, 3.0, 4.5, False),
        verdict("Margins are positive", V.HOLDS, "unrolling_sgd", 0.05, 0.02, 0.08, 0.0, True),
        verdict("Ratios are below one", V.FAILS, "unrolling_sgd", 1.05, 1.01, 1.09, 1.0, False),
        verdict("Counts are high", V.FAILS, "poisoning", 1.0, 0.0, 2.0, 3.5, True),
        verdict("Maybe far", V.INCONCLUSIVE, "methods", 0.01, -0.02, 0.04, 0.0, True,
                needed="about 134 seeds (for 80% power)", reason="the interval contains the threshold"),
        verdict("Maybe close", V.INCONCLUSIVE, "poisoning", 0.03, -0.01, 0.07, 0.0, True,
                needed="about 24 seeds (for 80% power)", reason="the interval contains the threshold"),
        verdict("Too few seeds", V.UNTESTED, "poisoning", 0.5, 0.5, 0.5, 0.0, True, n_seeds=1,
                needed="at least 5 seeds", reason="1 seed(s); a claim needs at least 5"),
        verdict("Not converged", V.UNTESTED, "methods", 0.5, 0.4, 0.6, 0.0, True,
                needed="more trials per tuning seed", reason="the half-budget analysis says 'holds'"),
    ]


def sentences(vs=None) -> list[str]:
    return dashboard.answer_sentences(every_state() if vs is None else vs, LINKS, TITLES)


# --------------------------------------------------------------------------- the three sentences


def test_three_sentences_name_every_claim_by_state_with_counts_and_chapters():
    holds, fails, open_ = sentences()
    assert holds.startswith("**Holds (2):**") and fails.startswith("**Does not hold (2):**")
    assert open_.startswith("**This budget cannot tell (4):**")
    assert "Ranks are low ([Deep Unlearn, reproduced](generated/methods.ipynb))" in holds
    assert "Margins are positive ([Unrolling SGD](generated/unrolling_sgd.ipynb))" in holds
    # claims of one chapter in a row name the chapter once, after the last of them
    assert "Ratios are below one ([Unrolling SGD]" in fails and "Counts are high ([Poisoning as the hard test]" in fails
    assert "inconclusive (2): Maybe far ([Deep Unlearn, reproduced]" in open_
    assert "not tested (2): Not converged ([Deep Unlearn, reproduced]" in open_  # two needs: none said
    # the closest to being decided is the undecided claim that needs the fewest seeds
    assert open_.endswith("the closest to being decided is “Maybe close”, at about 24 seeds.")
    for v in every_state():
        assert sum(v.claim in s for s in (holds, fails, open_)) == 1, v.claim


def test_sentences_follow_the_verdicts_not_a_text():
    vs = every_state()
    vs[0].state = V.FAILS  # a changed verdict moves its claim to the other sentence
    holds, fails, _ = sentences(vs)
    assert holds.startswith("**Holds (1):**") and "Ranks are low" not in holds
    assert fails.startswith("**Does not hold (3):**") and "Ranks are low" in fails
    holds, fails, open_ = sentences([verdict("Alone", V.UNTESTED, n_seeds=1, needed="at least 5 seeds")])
    assert holds == "**Holds (0):** no claim at this budget." and fails.startswith("**Does not hold (0):**")
    assert open_ == ("**This budget cannot tell (1):** not tested (1; it needs at least 5 seeds): Alone "
                     "([Deep Unlearn, reproduced](generated/methods.ipynb)).")
    assert sentences([verdict("Done", V.HOLDS)])[2] == "**This budget cannot tell (0):** every claim is decided."
    gap = verdict("Gap", V.UNTESTED, needed="about 7 seeds to resolve the gap", reason="the gap is not resolved")
    far = verdict("Far", V.INCONCLUSIVE, needed="about 90 seeds (for 80% power)")
    assert sentences([gap, far])[2].endswith("the closest to being decided is “Far”, at about 90 seeds.")


def test_chapters_are_named_by_their_short_title():
    titles = {**TITLES, "methods": "Deep Unlearn, reproduced: tuned methods and their verdicts"}
    (holds, *_) = dashboard.answer_sentences([verdict("A", V.HOLDS)], LINKS, titles)
    assert holds == "**Holds (1):** A ([Deep Unlearn, reproduced](generated/methods.ipynb))."
    assert ">Deep Unlearn, reproduced</a>" in dashboard.verdict_table_html([verdict("A", V.HOLDS)], LINKS, titles)
    assert dashboard.short_title("Why: a question") == "Why" and dashboard.short_title("a: b") == "a: b"


def test_markdown_in_a_claim_is_escaped():
    (holds, *_) = sentences([verdict("a *star* and [link] with rt_sentiment", V.HOLDS, chapter="other")])
    assert r"a \*star\* and \[link\] with rt\_sentiment (*other*)" in holds


def test_a_legacy_not_tested_verdict_whose_interval_contains_the_threshold_is_inconclusive():
    old = verdict("Old", V.UNTESTED, needed="about 31 seeds (for 80% power)",
                  reason="the interval contains the threshold", threshold=None, holds_above=None)
    assert dashboard.state_of(old) == V.INCONCLUSIVE
    assert dashboard.verdict_text(old) == "inconclusive at this budget (about 31 seeds, for 80% power)"
    few = verdict("Few", V.UNTESTED, n_seeds=1, needed="at least 5 seeds", reason="the interval contains the threshold")
    assert dashboard.state_of(few) == V.UNTESTED


# --------------------------------------------------------------------------- the table


def rows(table: str) -> list[str]:
    return re.findall(r"<tr class=\"ul-row\".*?</tr>", table)


def test_compact_table_one_row_per_claim_with_details_on_demand():
    vs = dashboard.ordered(every_state(), LINKS)
    table = dashboard.verdict_table_html(vs, LINKS, TITLES)
    assert "\n\n" not in table and len(rows(table)) == len(vs)  # one raw HTML block
    assert [re.search(r'data-state="([^"]+)"', r).group(1) for r in rows(table)] == [
        V.HOLDS, V.HOLDS, V.FAILS, V.FAILS, V.INCONCLUSIVE, V.INCONCLUSIVE, V.UNTESTED, V.UNTESTED]
    by = {v.claim: r for v, r in zip(vs, rows(table), strict=True)}
    assert "inconclusive at this budget</span> (about 134 seeds, for 80% power)" in by["Maybe far"]
    assert "not tested at this budget</span> (at least 5 seeds)" in by["Too few seeds"]
    assert "2 [1, 3]<br><span class=\"ul-thr\">holds if &lt; 4.5</span>" in by["Ranks are low"]
    assert "holds if &gt; 0" in by["Margins are positive"]
    assert '<a href="generated/methods.html">Deep Unlearn, reproduced</a>' in by["Ranks are low"]
    for v in vs:  # criterion, statistic, budget and reason open on demand, never repeated in the row
        r = by[v.claim]
        assert r.count(f"budget of {v.claim}") == 1 and "<details><summary>" in r
        assert f"criterion of {v.claim}" in r.split("<details>")[1]
    # nothing fixes a width beyond the column: percentages that add up to it
    assert sum(map(int, re.findall(r'<col style="width:(\d+)%">', table))) == 100 and "px" not in table


def test_a_verdict_without_threshold_or_interval_still_renders():
    old = verdict("Old file", V.HOLDS, estimate=0.886, low=0.727, high=1.09, threshold=None, holds_above=None)
    nan = verdict("Undefined", V.UNTESTED, estimate=math.nan, low=math.nan, high=math.nan, threshold=None,
                  needed="at least 5 seeds")
    table = dashboard.verdict_table_html([old, nan], LINKS, TITLES)
    assert "<td>0.886 [0.727, 1.09]</td>" in table and "<td>n/a</td>" in table  # no threshold line
    fig = dashboard.forest_figure([old, nan])
    assert not [s for s in fig.layout.shapes if s.name == "threshold"]
    assert len(fig.data) == 1 and fig.data[0].x == (0.886,)
    text = dashboard.dashboard_markdown([old, nan], LINKS, TITLES)
    assert "Old file" in text and "Undefined" in text


# --------------------------------------------------------------------------- the forest plot


def test_forest_plot_one_panel_per_claim_against_its_own_threshold():
    vs = every_state()
    fig = dashboard.forest_figure(vs, TITLES)
    lay = fig.layout.to_plotly_json()
    axes = [k for k in lay if re.fullmatch(r"xaxis\d*", k)]
    assert len(axes) == len(vs) and len([k for k in lay if re.fullmatch(r"yaxis\d*", k)]) == len(vs)
    tops = []
    for i, v in enumerate(vs):
        k = "" if i == 0 else str(i + 1)
        xa = lay[f"xaxis{k}"]
        lo, hi = xa["range"]
        assert lo < min(v.low, v.threshold) and hi > max(v.high, v.threshold)  # its own scale
        (line,) = [s for s in fig.layout.shapes if s.name == "threshold" and s.xref == f"x{k}"]
        assert line.x0 == line.x1 == v.threshold
        (bar,) = [s for s in fig.layout.shapes if s.type == "line" and s.xref == f"x{k}" and s.name != "threshold"]
        assert (bar.x0, bar.x1) == (v.low, v.high) and bar.line.color == dashboard.STATE_COLORS[v.state]
        (shade,) = [s for s in fig.layout.shapes if s.type == "rect" and s.xref == f"x{k}"]
        assert shade.x0 == v.threshold and shade.x1 == (hi if v.holds_above else lo)
        tops.append(lay[f"yaxis{k}"]["domain"][1])
    assert tops == sorted(tops, reverse=True) and len(set(tops)) == len(vs)  # one thin row each, no overlap
    dot = {d.xaxis: d for d in fig.data}
    assert dot["x"].x == (vs[0].estimate,) and dot["x"].marker.color == dashboard.STATE_COLORS[V.HOLDS]
    assert "criterion of Ranks are low" in dot["x"].hovertext and "budget of Ranks are low" in dot["x"].hovertext
    assert "statistic of Ranks are low" in dot["x"].hovertext
    words = [a.text for a in fig.layout.annotations if a.x == 1]  # the state in words beside each row
    assert [w.split("</span> ")[1] for w in words] == [dashboard.SHORT_STATE[v.state] for v in vs]


def test_the_side_where_a_claim_holds_is_inferred_when_not_recorded():
    above = verdict("a", V.HOLDS, estimate=2.0, low=1.0, high=3.0, threshold=0.5, holds_above=None)
    below_fails = verdict("b", V.FAILS, estimate=2.0, low=1.0, high=3.0, threshold=5.0, holds_above=None)
    unsure = verdict("c", V.INCONCLUSIVE, threshold=0.15, holds_above=None)
    assert dashboard.holds_side(above) is True and dashboard.holds_side(below_fails) is True
    assert dashboard.holds_side(unsure) is None
    fig = dashboard.forest_figure([unsure])
    assert not [s for s in fig.layout.shapes if s.type == "rect"]  # no "holds" side drawn
    assert [s.x0 for s in fig.layout.shapes if s.name == "threshold"] == [0.15]


# --------------------------------------------------------------------------- the page


def test_a_changed_result_row_changes_the_published_verdict(tmp_path):
    text = build(tmp_path, grid(GOOD))
    assert "**Holds (5):**" in text and "(generated/methods.html)" not in text
    scope = f"9 of {len(V.registered_methods())} methods, random:0.1"
    # issue 34: the chapter's claims name what they were tested on, in the sentence and the table
    assert f"([Deep Unlearn, reproduced](generated/methods.ipynb): {scope})" in text
    assert all(f'<div class="ul-scope">on {scope}</div>' in r for r in rows(text))
    assert "NG+ is the baseline to beat" in text and "Plotly.newPlot('unlearnlib-headline'" in text
    assert "Plotly.newPlot('unlearnlib-forest'" in text and f":name: {dashboard.ANSWER_ID}" in text
    worse = grid(GOOD)
    worse.loc[worse["method"] == "ngplus", ["retain_acc", "val_acc"]] -= 0.5
    text = build(tmp_path, worse)
    row = next(r for r in rows(text) if "NG+ is the baseline to beat" in r)
    assert f'data-state="{V.FAILS}"' in row and "**Holds (4):**" in text and "**Does not hold (1):**" in text


def test_claims_of_one_chapter_with_different_scopes_each_name_theirs():
    a = V.Verdict(**{**verdict("Rankings carry over", V.HOLDS, chapter="text").row(), "scope": "9 methods"})
    b = V.Verdict(**{**verdict("NG+ is the baseline to beat", V.HOLDS, chapter="text").row(),
                     "scope": "9 of 24 methods, rt_sentiment/text_bag, random:0.1"})
    text = dashboard.answer_sentences([a, b], {"text": "generated/text.ipynb"}, {"text": "Text"})[0]
    assert text == ("**Holds (2):** Rankings carry over \\[9 methods\\]; NG+ is the baseline to beat \\[9 of 24 "
                    "methods, rt\\_sentiment/text\\_bag, random:0.1\\] ([Text](generated/text.ipynb)).")


def test_page_order_and_headline_caption(tmp_path):
    text = dashboard.dashboard_markdown(every_state(), {**LINKS, "scorecard": "generated/scorecard.ipynb"},
                                        {**TITLES, "scorecard": "The scorecard"},
                                        json.dumps({"data": [], "layout": {"title": {"text": "Methods x tests"}}}))
    at = {k: text.index(s) for k, s in (("answer", dashboard.ANSWER_ID), ("forest", dashboard.FOREST_ID),
                                          ("table", dashboard.TABLE_ID), ("headline", dashboard.HEADLINE_ID))}
    assert at["answer"] < at["forest"] < at["table"] < at["headline"]
    assert ("*The headline figure (published by [The scorecard](generated/scorecard.ipynb)): Methods x tests.*"
            in text)
    # once in the table (its details), twice in the forest (hover on the dot and on the name): never per row
    assert text.count("budget of Ranks are low") == 3
    # the raw HTML blocks have no blank line inside (Markdown would end them there)
    for block in ("<table", "<style>"):
        start = text.index(block)
        end = text.index("</table>" if block == "<table" else "</style>", start)
        assert "\n\n" not in text[start:end]


def test_publishing_needs_a_folder(monkeypatch):
    monkeypatch.delenv(V.PUBLISH_ENV, raising=False)
    assert V.publish([], "x") is None and dashboard.publish_figure(go.Figure()) is None
    assert "No chapter published a verdict" in dashboard.dashboard_markdown([], {})


def test_nothing_typed_in_the_module():
    """Every claim, chapter and number on the page comes from the verdicts: the module names
    no claim of the book."""
    import inspect

    src = inspect.getsource(dashboard)
    for typed in ("NG+", "GA and SRL", "nabla-tau", "MSG", "Deep Unlearn,", "proxy", "poison"):
        assert typed not in src, typed
