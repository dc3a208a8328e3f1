"""What a reader sees at 1400 x 900 with the OS asking for a dark colour scheme (issue 34):
nothing wider than the text column, no truncated table cell, no machine path, the book in
its light scheme with readable text in every table, and the first visit's transfer size.

Every page of the test-profile book is visited once at that size. The measurements go to
``reader-view.json`` beside the screenshots (the widest element of any page, the contrast
of the worst table cell, the first visit's bytes).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT, chapter_pages, visit

#: The landing page first (``index.html`` only redirects to it), then every chapter.
PAGES = ["book/intro.html", *[p for p in chapter_pages(ROOT) if p not in ("index.html", "book/intro.html")]]
WIDTH, HEIGHT = 1400, 900
MB = 1024 * 1024
#: A first visit's budget (issue 34): what a compressing web server (gzip, as GitHub Pages
#: and most hosts serve) transfers for the landing page and everything it loads.
FIRST_VISIT_BYTES = 3 * MB
#: WCAG 2.1's minimum contrast for normal text (AA).
MIN_CONTRAST = 4.5
#: Absolute paths of a machine (a store, a temporary or home folder) in the text a reader sees.
MACHINE_PATH = re.compile(r"(?<![\w.~])(/tmp/|/var/folders/|/home/\w|/root/|/Users/\w|/work/|[A-Z]:\\Users\\)")

#: Per page: the document's and the text column's widths, every element of the column that
#: sticks out of it (unless inside its own horizontally scrolling box), cells whose text is
#: cut, the theme's scheme, and the text/background contrast of every table cell and
#: paragraph of the column (the background is the first opaque one up the tree).
READER_JS = r"""
const column = document.querySelector('article.bd-article') || document.querySelector('main');
const cr = column.getBoundingClientRect();
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
  + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\s+/).slice(0, 3).join('.') : '');
const scrolls = e => { for (let a = e.parentElement; a && a !== column; a = a.parentElement) {
  const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
  return false; };
const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const out = [...column.querySelectorAll('*')].filter(e => visible(e) && !scrolls(e))
  .map(e => ({element: name(e), right: e.getBoundingClientRect().right - cr.right}))
  .filter(x => x.right > 1).sort((a, b) => b.right - a.right).slice(0, 5);
const widest = [...column.querySelectorAll('*')].filter(visible)
  .map(e => ({element: name(e), width: Math.round(e.getBoundingClientRect().width), scroll_width: e.scrollWidth}))
  .sort((a, b) => b.scroll_width - a.scroll_width).slice(0, 3);
const cut = [...column.querySelectorAll('td, th')].filter(e => {
  const s = getComputedStyle(e);
  return visible(e) && e.scrollWidth > e.clientWidth + 1 && (s.overflowX === 'hidden' || s.textOverflow === 'ellipsis');
}).map(e => e.innerText.slice(0, 60)).slice(0, 5);
const rgba = s => { const m = s.match(/[\d.]+/g) || []; return m.map(Number).concat([1]).slice(0, 4); };
const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const background = e => { for (let a = e; a; a = a.parentElement) { const c = rgba(getComputedStyle(a).backgroundColor);
  if (c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
const ownText = e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
const contrast = [...column.querySelectorAll('td, th, td *, th *, p, li')].filter(e => visible(e) && ownText(e))
  .map(e => { const a = lum(rgba(getComputedStyle(e).color)), b = lum(background(e));
    return {element: name(e), text: e.innerText.trim().slice(0, 40),
            ratio: Math.round(100 * (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) / 100}; })
  .sort((x, y) => x.ratio - y.ratio);
return {
  inner_width: window.innerWidth, doc_scroll_width: document.documentElement.scrollWidth,
  column_width: Math.round(cr.width), sticking_out: out, widest: widest, truncated: cut,
  theme: document.documentElement.dataset.theme || document.documentElement.dataset.mode || null,
  switch_shown: [...document.querySelectorAll('.theme-switch-button')].some(visible),
  worst_contrast: contrast.slice(0, 5), text: (document.querySelector('main') || document.body).innerText,
};
"""


@pytest.fixture(scope="module")
def reader(driver: Any, book_server: Any, book_html: Path, artifacts: Path) -> dict[str, Any]:
    """Every page at 1400 x 900 under a dark OS scheme; the landing page first, in a fresh
    browser cache, with the bytes of everything it loaded."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme",
                                                                          "value": "dark"}]})
    pages, served = {}, {}
    try:
        for page in PAGES:
            v = visit(driver, book_server, page)
            served[page] = [path.split("?")[0] for path, code in v.served if code == 200]
            pages[page] = driver.execute_script(READER_JS)
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    files = sorted({book_html / p.lstrip("/") for p in served[PAGES[0]]} | {book_html / "index.html"})
    files = [f for f in files if f.is_file()]
    raw = sum(f.stat().st_size for f in files)
    packed = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files)
    largest = sorted(((f.stat().st_size, f.relative_to(book_html).as_posix()) for f in files), reverse=True)[:5]
    widest = max(((w["scroll_width"], p, w["element"]) for p, m in pages.items() for w in m["widest"]), default=None)
    report = {"width": WIDTH, "height": HEIGHT, "os_scheme": "dark",
              "first_visit": {"page": PAGES[0], "files": len(files), "bytes": raw, "gzip_bytes": packed,
                              "largest": [{"file": n, "bytes": s} for s, n in largest]},
              "widest_element": widest and {"page": widest[1], "element": widest[2], "scroll_width": widest[0]},
              "pages": {p: {k: v for k, v in m.items() if k != "text"} for p, m in pages.items()}}
    (artifacts / "reader-view.json").write_text(json.dumps(report, indent=1))
    return {"pages": pages, "report": report}


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_wider_than_the_text_column(reader, page):
    m = reader["pages"][page]
    assert m["doc_scroll_width"] <= m["inner_width"], f"{page} scrolls sideways: {m['widest']}"
    assert not m["sticking_out"], f"{page}: wider than the {m['column_width']} px column: {m['sticking_out']}"


@pytest.mark.parametrize("page", PAGES)
def test_no_table_cell_is_cut(reader, page):
    assert not reader["pages"][page]["truncated"], reader["pages"][page]["truncated"]


@pytest.mark.parametrize("page", PAGES)
def test_no_machine_path_in_the_page(reader, page):
    hits = sorted({m.string[max(m.start() - 30, 0):m.end() + 40].replace("\n", " ")
                   for m in MACHINE_PATH.finditer(reader["pages"][page]["text"])})
    assert not hits, f"{page} shows machine paths: {hits[:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_light_and_readable_under_a_dark_os_scheme(reader, page):
    m = reader["pages"][page]
    assert m["theme"] == "light" and not m["switch_shown"], (m["theme"], m["switch_shown"])
    worst = [c for c in m["worst_contrast"] if c["ratio"] < MIN_CONTRAST]
    assert not worst, f"{page}: text below {MIN_CONTRAST}:1 contrast: {worst}"


def test_the_checks_are_not_vacuous(reader):
    """The column was found and measured, tables and paragraphs were read for contrast."""
    pages = reader["pages"]
    assert all(m["column_width"] > 500 for m in pages.values()), {p: m["column_width"] for p, m in pages.items()}
    assert sum(len(m["worst_contrast"]) for m in pages.values()) >= len(pages)
    assert MACHINE_PATH.search("the store at /tmp/pytest-of-root/store") and not MACHINE_PATH.search("a/tmp/x")


def test_first_visit_transfer_size(reader):
    """The landing page and everything it loads, as a compressing web server sends them,
    under 3 MB (the raw bytes are reported beside it)."""
    first = reader["report"]["first_visit"]
    assert first["files"] >= 5, first
    assert first["gzip_bytes"] < FIRST_VISIT_BYTES, first
