"""The built book in a real browser (issue 17, items 0 and 4).

The test profile's book (``unlearnlib book --profile test``, built once per session into a
temporary copy of the sources) is served by Python's http.server on 127.0.0.1 and opened
in Debian's headless Chromium. Every chapter page must load, draw each plotly figure,
typeset its formulas with the MathJax shipped in the book, ask nothing of any other host,
answer every request it makes (no favicon 404) and log no console error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import (
    ROOT,
    Server,
    chapter_pages,
    drawn_data,
    leaves_loopback,
    move_plotly_slider,
    visit,
)

PAGES = chapter_pages(ROOT)
MB = 1024 * 1024


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_over_loopback(visits, book_html, page):
    v = visits[page]
    assert (book_html / page).is_file()
    document = [code for path, code in v.served if path.split("?")[0] == f"/{page}"]
    assert document == [200], f"{page} was served as {document}"
    assert v.title.strip() and v.text_length > 200, f"{page} shows no content (title {v.title!r})"
    failed = [(path, code) for path, code in v.served if code >= 400]
    assert not failed, f"{page} asked for what the book does not have: {failed}"


@pytest.mark.parametrize("page", PAGES)
def test_no_request_leaves_loopback(visits, page):
    v = visits[page]
    assert v.requested, "the DevTools network log recorded nothing"
    outside = sorted({u for u in v.requested if leaves_loopback(u)})
    assert not outside, f"{page} asked other hosts for: {outside}"


@pytest.mark.parametrize("page", PAGES)
def test_no_console_error(visits, page):
    errors = [e["message"] for e in visits[page].console if e["level"] == "SEVERE"]
    assert not errors, f"{page} logged: " + "\n".join(errors)


@pytest.mark.parametrize("page", PAGES)
def test_every_plotly_figure_is_drawn(visits, page):
    for fig in visits[page].figures:
        assert fig["traces"] > 0 and fig["drawn_traces"] > 0 and fig["marks"] > 0, \
            f"{page}: figure {fig['id']} is empty or not drawn: {fig}"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_by_the_shipped_mathjax(visits, page):
    m = visits[page].math
    assert not m["raw"], f"{page} shows raw TeX: {m['raw']}"
    if m["marked"]:
        assert m["mathjax"] and m["mathjax"].startswith("3."), f"{page}: MathJax did not start ({m})"
        assert m["typeset"] == m["marked"], f"{page}: {m['marked'] - m['typeset']} formula(s) not typeset"


def test_the_book_has_figures_and_math(visits):
    """The per-page checks are not vacuous: the chapters do draw figures and typeset math."""
    assert sum(len(visits[p].figures) for p in PAGES) >= 3
    assert sum(visits[p].math["typeset"] for p in PAGES) >= 1


def test_no_page_over_1_mb(book_html, artifacts):
    """Every HTML page under 1 MB; the sizes go to ``sizes.json`` beside the screenshots."""
    pages = {p.relative_to(book_html).as_posix(): p.stat().st_size for p in book_html.rglob("*.html")}
    total = sum(f.stat().st_size for f in book_html.rglob("*") if f.is_file())
    largest = max(pages, key=pages.get)
    report = {"html_dir_bytes": total, "largest_page": largest, "largest_page_bytes": pages[largest],
              "pages": dict(sorted(pages.items(), key=lambda kv: -kv[1]))}
    (artifacts / "sizes.json").write_text(json.dumps(report, indent=1))
    big = {p: s for p, s in pages.items() if s > MB}
    assert not big, f"pages over 1 MB: {big}"


def _screenshot(driver, path: Path) -> Path:
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    return path


def test_screenshots(driver, book_server, artifacts):
    """The landing page and a chapter with formulas, as a reader sees them."""
    visit(driver, book_server, "index.html")
    _screenshot(driver, artifacts / "landing.png")
    page = next((p for p in PAGES if p.endswith("/methods.html")), PAGES[-1])
    visit(driver, book_server, page)
    driver.execute_script("const m = document.querySelector('mjx-container, .plotly-graph-div');"
                          "if (m) m.scrollIntoView({block: 'center'});")
    _screenshot(driver, artifacts / f"chapter-{Path(page).stem}.png")


# --------------------------------------------------------------------------- static explorer


@pytest.mark.parametrize("page", PAGES)
def test_static_explorer_slider_changes_the_drawn_data(driver, visits, book_server, page):
    """A slider of a static explorer (a plotly figure with sliders) redraws the data."""
    if not any(f["sliders"] for f in visits[page].figures):
        pytest.skip("no static explorer on this page")
    v = visit(driver, book_server, page)  # the browser may be on another page by now
    for fig in (f for f in v.figures if f["sliders"]):
        steps = driver.execute_script("return document.getElementById(arguments[0]).layout.sliders[0].steps.length",
                                      fig["id"])
        active = driver.execute_script("return document.getElementById(arguments[0]).layout.sliders[0].active || 0",
                                       fig["id"])
        before = drawn_data(driver, fig["id"])
        move_plotly_slider(driver, fig["id"], step=steps - 1 if active != steps - 1 else 0)
        assert drawn_data(driver, fig["id"]) != before, f"{page}: moving the slider of {fig['id']} changed nothing"


def _slider_page(directory: Path) -> str:
    """A page with one plotly figure whose slider restyles its line: y = k*x for k = 0, 1, 2."""
    import plotly.graph_objects as go

    from unlearnlib.book.plots import plotly_js_path

    x = [0, 1, 2, 3]
    fig = go.Figure(go.Scatter(x=x, y=[0 * v for v in x], mode="lines+markers"))
    fig.update_layout(sliders=[{"active": 0, "steps": [
        {"label": f"k={k}", "method": "restyle", "args": [{"y": [[k * v for v in x]]}]} for k in range(3)]}],
        yaxis={"range": [-1, 7]}, width=600, height=400)
    (directory / "plotly.min.js").write_bytes(plotly_js_path().read_bytes())
    body = fig.to_html(include_plotlyjs=False, full_html=False, div_id="fig")
    (directory / "slider.html").write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>slider</title>'
        f'<link rel="icon" href="data:,"><script src="plotly.min.js"></script></head><body>{body}</body></html>')
    return "slider.html"


def test_slider_helper_moves_a_constructed_plotly_slider(driver, tmp_path):
    """The helper above, on a figure with a known answer: each step draws its own line, and
    going back to the first step draws exactly the first line again."""
    server = Server(tmp_path)
    try:
        v = visit(driver, server, _slider_page(tmp_path))
        assert v.figures and v.figures[0]["sliders"] == 1
        start = drawn_data(driver, "fig")
        move_plotly_slider(driver, "fig", step=2)
        y = driver.execute_script("return Array.from(document.getElementById('fig').data[0].y)")
        assert [float(t) for t in y] == [0.0, 2.0, 4.0, 6.0]
        at_two = drawn_data(driver, "fig")
        assert at_two != start
        move_plotly_slider(driver, "fig", step=1)
        assert drawn_data(driver, "fig") not in (start, at_two)
        move_plotly_slider(driver, "fig", step=0)
        assert drawn_data(driver, "fig") == start
        with pytest.raises(ValueError, match="steps 0..2"):
            move_plotly_slider(driver, "fig", step=3)
    finally:
        server.close()


# --------------------------------------------------------------------------- the landing page's first screen (issue 34)

#: Where the landing page's parts are and how wide they are: the generated answer, the
#: text column, the forest plot and the verdict table; the widest elements of the column.
LANDING_JS = """
const answer = document.getElementById('unlearnlib-answer');
const table = document.getElementById('unlearnlib-verdicts');
const forest = document.getElementById('unlearnlib-forest');
const column = document.querySelector('article.bd-article') || document.querySelector('main');
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
  + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
const widest = [...column.querySelectorAll('*')].map(e => ({element: name(e), width: e.getBoundingClientRect().width,
  scroll_width: e.scrollWidth})).sort((a, b) => b.width - a.width || b.scroll_width - a.scroll_width).slice(0, 5);
return {
  inner_width: window.innerWidth, inner_height: window.innerHeight,
  doc_scroll_width: document.documentElement.scrollWidth,
  column_width: column.clientWidth,
  answer: answer && {top: answer.getBoundingClientRect().top, bottom: answer.getBoundingClientRect().bottom,
                     text: answer.innerText},
  table: table && {scroll_width: table.scrollWidth, width: table.getBoundingClientRect().width,
                   container_width: table.parentElement.clientWidth,
                   rows: table.querySelectorAll('tbody tr').length,
                   details: table.querySelectorAll('tbody tr details').length},
  forest: forest && {is_plotly: forest.classList.contains('plotly-graph-div'), traces: (forest.data || []).length,
                     panels: forest.querySelectorAll('g.cartesianlayer > g.subplot').length,
                     width: forest.getBoundingClientRect().width,
                     markers: forest.querySelectorAll('g.trace path.point').length},
  widest: widest,
};
"""


def test_landing_first_screen_answers_at_1400_px(driver, book_server, artifacts):
    """At 1400x900 the generated answer (three sentences) starts on the first screen, the
    forest plot is drawn with one panel per claim, and nothing (the verdict table above all)
    is wider than the text column; the first screen is saved as ``landing-first-screen.png``
    and the measurements as ``landing-first-screen.json``."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        visit(driver, book_server, "book/intro.html")
        driver.execute_script("window.scrollTo(0, 0);")
        m = driver.execute_script(LANDING_JS)
        (artifacts / "landing-first-screen.json").write_text(json.dumps(m, indent=1))
        _screenshot(driver, artifacts / "landing-first-screen.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert (m["inner_width"], m["inner_height"]) == (1400, 900), m
    answer, table, forest = m["answer"], m["table"], m["forest"]
    assert answer, "the landing page has no generated answer (#unlearnlib-answer)"
    assert 0 <= answer["top"] < m["inner_height"], f"the answer starts below the first screen: {answer['top']}"
    assert all(lead in answer["text"] for lead in ("Holds (", "Does not hold (", "This budget cannot tell (")), answer
    assert m["doc_scroll_width"] <= m["inner_width"], f"the page scrolls sideways: {m['widest']}"
    assert table and table["rows"] >= 1 and table["details"] == table["rows"], table
    assert table["scroll_width"] <= table["container_width"] <= m["column_width"], (table, m["column_width"])
    assert forest and forest["is_plotly"] and forest["traces"] >= 1 and forest["markers"] >= 1, forest
    assert forest["panels"] == table["rows"], (forest, table)  # one panel per claim
    assert forest["width"] <= m["column_width"] + 1, (forest, m["column_width"])
