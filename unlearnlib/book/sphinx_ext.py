"""A Sphinx extension of the book: every inline script once per page.

Sphinx 7.4 (the version Jupyter Book 1 pins) emits an inline script twice when an
extension adds it with ``app.add_js_file(None, body=...)`` after the HTML builder
started: once as registered (file name ``None``) and once more when the builder
re-reads the registry before writing (file name ``''``), and the two do not compare
equal. sphinx-thebe's ``const THEBE_JS_URL = ...`` then raises ``SyntaxError:
Identifier 'THEBE_JS_URL' has already been declared`` on every page, and
sphinx-togglebutton's selector is declared twice. Sphinx fixed this upstream
(sphinx-doc/sphinx pull request 13402, Sphinx 8.2); until Jupyter Book allows it,
:func:`dedupe_scripts` drops the second copy on each page.

It also pins the book to the light colour scheme (issue 34): its figures, heatmaps and
tables are drawn for a light background, and with the theme following the OS a dark scheme
put white text on white cells. ``_config.yml`` sets ``default_mode: light``; this extension
adds :data:`BOOK_CSS`, which hides the theme's light/dark switch.

Listed in ``_config.yml`` under ``sphinx: extra_extensions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The book's own style sheet (written into ``_static`` at the end of the build).
BOOK_CSS_NAME = "unlearnlib-book.css"
BOOK_CSS = """/* unlearnlib: the book is drawn for a light background; no light/dark switch */
.theme-switch-button { display: none !important; }
"""


def script_key(js: Any) -> tuple:
    """What makes two script tags the same: the file (``None`` and ``''`` both mean
    inline), the priority and the attributes, the body among them."""
    filename = getattr(js, "filename", js)
    attributes = getattr(js, "attributes", {}) or {}
    return (filename or "", getattr(js, "priority", None), tuple(sorted(attributes.items())))


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """``html-page-context`` handler: keep the first of equal scripts, in place (the
    builder restores its own list after each page, so this runs for every page)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    kept = []
    for js in scripts:
        key = script_key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def write_book_css(app: Any, exception: Exception | None) -> None:
    """``build-finished`` handler: write :data:`BOOK_CSS` into the HTML output's ``_static``."""
    if exception is None and getattr(app.builder, "format", None) == "html":
        path = Path(app.outdir) / "_static" / BOOK_CSS_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BOOK_CSS)


def setup(app: Any) -> dict[str, Any]:
    # late priority: after the extensions that add per-page scripts in this event
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_css_file(BOOK_CSS_NAME)
    app.connect("build-finished", write_book_css)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
