"""What the browser tests rely on, checked without a browser: the shipped MathJax, the
post-build check of the HTML (``check_self_contained``) and the Sphinx extension that
drops the second copy of an inline script (``unlearnlib.book.sphinx_ext``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unlearnlib.book import build as book
from unlearnlib.book.sphinx_ext import dedupe_scripts


def test_copy_mathjax_ships_the_component_and_what_it_loads(tmp_path):
    src = book.mathjax_source()
    out = book.copy_mathjax(tmp_path)
    assert out == tmp_path / book.STATIC_DIR / "mathjax" / "tex-chtml.js"
    assert out.read_bytes() == (src / "tex-chtml.js").read_bytes()
    mj = out.parent
    assert (mj / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    assert (mj / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    assert not (mj / "latest.js").exists()  # it would load MathJax from a CDN
    assert not (mj / "tex-svg-full.js").exists()  # other combined components are not shipped
    stamp = {f: f.stat().st_mtime_ns for f in mj.rglob("*") if f.is_file()}
    book.copy_mathjax(tmp_path)  # up to date: nothing rewritten
    assert {f: f.stat().st_mtime_ns for f in mj.rglob("*") if f.is_file()} == stamp


def test_check_self_contained_names_each_outside_load_and_repeated_script(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "ok.html").write_text(
        '<html><head><script src="_static/a.js"></script><link rel="stylesheet" href="_static/a.css">'
        '<link rel="canonical" href="https://example.org/ok.html"><link rel="icon" href="_static/f.ico">'
        '<script>const A = 1;</script><script>const B = 1;</script></head>'
        '<body><a href="https://arxiv.org/abs/1">paper</a><img src="data:image/png;base64,AAAA"></body></html>')
    (tmp_path / "sub" / "bad.html").write_text(
        '<html><head><script defer src="https://cdn.example.org/mathjax.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/f.css">'
        '<script>const T = "x";</script><script>const T = "x";</script></head>'
        '<body><img src="http://example.org/p.png"></body></html>')
    assert book.check_self_contained(tmp_path) == [
        "sub/bad.html: <script> loads https://cdn.example.org/mathjax.js from outside the book",
        "sub/bad.html: <link> loads //fonts.example.org/f.css from outside the book",
        "sub/bad.html: <img> loads http://example.org/p.png from outside the book",
        "sub/bad.html: an inline script appears 2 times: 'const T = \"x\";'",
    ]


def test_dedupe_scripts_keeps_the_first_of_equal_scripts():
    from sphinx.builders.html._assets import _JavaScript

    a_none = _JavaScript(None, priority=500, body="const A = 1")
    a_empty = _JavaScript("", priority=500, body="const A = 1")  # the same script, as Sphinx 7.4 re-adds it
    b = _JavaScript("_static/b.js", priority=500)
    c = _JavaScript(None, priority=500, body="const C = 1")
    context = {"script_files": [a_none, b, a_empty, c, b]}
    files = context["script_files"]
    dedupe_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is files and files == [a_none, b, c]


@pytest.mark.parametrize("with_fix", [False, True])
def test_sphinx_emits_the_thebe_script_once_with_the_extension(tmp_path, with_fix):
    """A minimal Sphinx project with Jupyter Book's thebe and togglebutton extensions: this
    Sphinx writes their inline scripts twice, the extension leaves one."""
    pytest.importorskip("sphinx_thebe")
    pytest.importorskip("sphinx_togglebutton")
    src = tmp_path / "src"
    src.mkdir()
    extensions = ["sphinx_togglebutton", "sphinx_thebe"] + (["unlearnlib.book.sphinx_ext"] if with_fix else [])
    (src / "conf.py").write_text(f"extensions = {extensions!r}\nproject = 't'\n")
    (src / "index.rst").write_text("Title\n=====\n\nText.\n")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count("const THEBE_JS_URL") == (1 if with_fix else 2)
    assert html.count("var togglebuttonSelector") == (1 if with_fix else 2)
    assert bool(book.check_self_contained(tmp_path / "out")) is not with_fix
