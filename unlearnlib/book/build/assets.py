"""What makes the built book self-contained: plotly.js and MathJax copied into its static
folder (:func:`copy_plotly_js`, :func:`copy_mathjax`), and the post-build check that no page
loads anything from outside the book (:func:`check_self_contained`)."""

from __future__ import annotations

from pathlib import Path

from .execute import _write_shared

#: Extra static folder of the book (``html_static_path`` in ``_config.yml``),
#: under the git-ignored ``_build`` because its content is copied at build time.
STATIC_DIR = Path("_build") / "static"
PLOTLY_JS = "plotly.min.js"
#: MathJax in the static folder: ``mathjax_path`` in ``_config.yml`` is
#: ``<MATHJAX_DIR>/<MATHJAX_COMPONENT>`` (relative to the book's ``_static``).
MATHJAX_DIR = "mathjax"
MATHJAX_COMPONENT = "tex-chtml.js"


def copy_plotly_js(root: Path | str = ".") -> Path:
    """Copy the installed plotly's ``plotly.min.js`` into the book's static folder (once)."""
    from ..plots import plotly_js_path

    src = plotly_js_path()
    dst = Path(root) / STATIC_DIR / PLOTLY_JS
    if not (dst.is_file() and dst.stat().st_size == src.stat().st_size
            and dst.read_bytes() == src.read_bytes()):
        _write_shared(dst, src.read_bytes())
    dst.chmod(0o644)
    return dst


def mathjax_source() -> Path:
    """The MathJax 3 tree that the ``sphinx-mathjax-offline`` package ships (a dependency).

    Only its files are used, not the package as a Sphinx extension: :func:`copy_mathjax`
    copies what the book loads, and ``mathjax_path`` in ``_config.yml`` points at it.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("The book ships MathJax from the sphinx-mathjax-offline package, which is "
                                "not installed; install the project (pip install -e .).") from None
    src = Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))
    if not (src / MATHJAX_COMPONENT).is_file():
        raise FileNotFoundError(f"No {MATHJAX_COMPONENT} in {src}; reinstall sphinx-mathjax-offline.")
    return src


def copy_mathjax(root: Path | str = ".") -> Path:
    """Copy MathJax into the book's static folder (``<STATIC_DIR>/mathjax/``); returns the path
    of the component the pages load (:data:`MATHJAX_COMPONENT`).

    Copied: that component and every folder of the tree, which MathJax loads from on demand
    (fonts, TeX extensions, the menu's accessibility and output choices); not the other
    combined components, nor ``latest.js``, which loads MathJax from a CDN. Files already
    up to date are not rewritten.
    """
    src = mathjax_source()
    dst = Path(root) / STATIC_DIR / MATHJAX_DIR
    files = [src / MATHJAX_COMPONENT, *sorted(f for d in src.iterdir() if d.is_dir()
                                              for f in d.rglob("*") if f.is_file())]
    for f in files:
        target = dst / f.relative_to(src)
        data = f.read_bytes()
        if not (target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data):
            _write_shared(target, data)
    return dst / MATHJAX_COMPONENT


#: ``<link rel=...>`` values that make a browser fetch the link (the others only point).
_FETCHED_LINKS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload",
                  "prefetch", "manifest"}
_LOCAL_SCHEMES = {"", "data", "blob", "javascript", "about"}


def _page_resources(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(tag, url)`` of what an HTML page makes the browser fetch, and its inline scripts."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.fetched: list[tuple[str, str]] = []
            self.inline: list[str] = []
            self._body: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "link":
                if set(a.get("rel", "").lower().split()) & _FETCHED_LINKS and a.get("href"):
                    self.fetched.append((tag, a["href"]))
            elif tag in {"script", "img", "iframe", "source", "video", "audio", "embed", "track"}:
                if a.get("src"):
                    self.fetched.append((tag, a["src"]))
                elif tag == "script":
                    self._body = []

        def handle_data(self, data: str) -> None:
            if self._body is not None:
                self._body.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "script" and self._body is not None:
                self.inline.append("".join(self._body))
                self._body = None

    parser = Parser()
    parser.feed(text)
    return parser.fetched, parser.inline


def check_self_contained(html_dir: Path | str) -> list[str]:
    """Problems of the built HTML book, one line each (empty when there are none).

    A post-build check of every page under ``html_dir``: nothing it loads (scripts,
    stylesheets, icons, images, frames) comes from outside the book (an address with a
    scheme such as ``https:`` or a protocol-relative ``//host``), and no inline script
    appears twice on a page (a second ``const`` declaration is a ``SyntaxError``).
    Links a reader follows (``<a href>``) are not loads and are not checked.
    """
    from urllib.parse import urlsplit

    html_dir = Path(html_dir)
    problems: list[str] = []
    for page in sorted(html_dir.rglob("*.html")):
        name = page.relative_to(html_dir).as_posix()
        fetched, inline = _page_resources(page.read_text(errors="replace"))
        for tag, url in fetched:
            if url.startswith("//") or urlsplit(url).scheme.lower() not in _LOCAL_SCHEMES:
                problems.append(f"{name}: <{tag}> loads {url} from outside the book")
        counts: dict[str, int] = {}
        for body in (b.strip() for b in inline):
            if body:
                counts[body] = counts.get(body, 0) + 1
        for body, n in counts.items():
            if n > 1:
                problems.append(f"{name}: an inline script appears {n} times: {body[:80]!r}")
    return problems


#: The landing page's generated part (``book/intro.md`` includes it) and the folder the
