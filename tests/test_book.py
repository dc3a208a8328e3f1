"""The book: profiles, parameter validation, the benchmark notebook and the HTML build.

The two ``slow`` tests execute the benchmark notebook with the ``test`` profile
(one seed, 2 epochs, three methods) in a temporary copy of the book sources and
a temporary store shared between them, so the second trains nothing.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")  # the notebook stack may be absent on a bare GPU machine
pytest.importorskip("papermill")
import pytest

from unlearnlib.book import build as book
from unlearnlib.book import plots
from unlearnlib.studies import verdicts as book_verdicts

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "notebooks" / "benchmark.ipynb"


MINI_TOC = ("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/generated/benchmark\n"
            "  - file: book/generated/methods\n")


def copy_book_sources(dst: Path) -> Path:
    """_config.yml, book/*.md, book/profiles.yml and notebooks/ into ``dst``.

    The table of contents is cut down to the intro, the benchmark chapter and the methods
    chapter (which publishes verdicts for the landing dashboard), so the test runs only
    those (the profiles of the others are still checked).
    """
    (dst / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", dst / "_config.yml")
    (dst / "_toc.yml").write_text(MINI_TOC)
    for f in [*(ROOT / "book").glob("*.md"), ROOT / "book" / "profiles.yml", *(ROOT / "book").glob("favicon.*")]:
        shutil.copy(f, dst / "book" / f.name)
    shutil.copytree(ROOT / "notebooks", dst / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dst


@pytest.fixture
def book_root(tmp_path: Path) -> Path:
    return copy_book_sources(tmp_path / "src")


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("book_store")


@pytest.fixture
def store_env(shared_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Kernels inherit the environment: they use this store, not the user's cache."""
    monkeypatch.setenv("UNLEARNLIB_STORE", str(shared_store))
    return shared_store


@pytest.fixture
def no_execution(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record (instead of run) any papermill execution or jupyter-book call."""
    import papermill

    calls: list = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(("papermill", a)))
    monkeypatch.setattr(book.book, "_jupyter_book", lambda *a, **k: calls.append(("jupyter-book", a)))
    return calls


# --------------------------------------------------------------------------- fast


def test_benchmark_notebook_is_commit_clean():
    nb = nbformat.read(BENCHMARK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    params = book.notebook_parameters(BENCHMARK)
    assert set(params) == {"dataset", "model", "methods", "seeds", "forget", "epochs", "data_root", "device"}
    assert params["seeds"]["default"] == '"0,1,2"'


def test_profiles_match_the_notebooks():
    profiles = book.load_profiles(ROOT)
    assert {"quick", "full", "test"} <= set(profiles)
    assert profiles == book.PROFILES
    assert profiles["test"]["benchmark.ipynb"] == {"seeds": "0", "epochs": 2, "methods": "original,retrain,ga"}
    published = book.published_notebooks(ROOT)
    assert published[0] == "benchmark.ipynb"
    for name in profiles:  # every profile's notebooks are published and their parameters exist
        assert [nb.name for nb, _ in book.plan(name, ROOT)] == published


def test_unknown_profile_lists_the_allowed_ones(book_root, no_execution):
    with pytest.raises(ValueError, match=r"Unknown book profile 'nope'.*allowed: quick, full, test"):
        book.build_book("nope", root=book_root)
    assert no_execution == []
    assert not (book_root / "book" / "generated").exists()


def test_unknown_notebook_parameter_fails_before_any_execution(book_root, no_execution):
    profiles = book_root / "book" / "profiles.yml"
    profiles.write_text(profiles.read_text() + "\nbad:\n  benchmark.ipynb:\n    sedes: '0,1'\n")
    with pytest.raises(ValueError, match=r"Unknown parameter 'sedes' for notebook benchmark\.ipynb; "
                                         r"allowed: dataset, model, methods, seeds, forget, epochs"):
        book.build_book("bad", root=book_root)
    assert no_execution == []
    assert not (book_root / "book" / "generated").exists()
    with pytest.raises(ValueError, match="sedes"):
        book.execute_notebook(BENCHMARK, book_root / "out.ipynb", {"sedes": "0"})
    assert no_execution == [] and not (book_root / "out.ipynb").exists()


def test_profile_naming_a_missing_notebook_fails(book_root, no_execution):
    profiles = book_root / "book" / "profiles.yml"
    profiles.write_text(profiles.read_text() + "\nghost:\n  nope.ipynb: {}\n")
    with pytest.raises(ValueError, match=r"nope\.ipynb, which is not in .*published notebooks: benchmark\.ipynb"):
        book.build_book("ghost", root=book_root)
    (book_root / "_toc.yml").write_text(MINI_TOC + "  - file: book/generated/missing\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.ipynb"):
        book.build_book("quick", root=book_root)
    assert no_execution == []


def test_failing_notebook_raises_and_writes_nothing(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError(f'boom {n}')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    src = tmp_path / "fails.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "out" / "fails.ipynb"
    with pytest.raises(book.NotebookExecutionError, match=r"fails\.ipynb failed in cell In\[3\].*ValueError: boom 7"):
        book.execute_notebook(src, out, {"n": 7}, progress=False)
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_kernel_runs_this_interpreter():
    import sys

    from jupyter_client.kernelspec import KernelSpecManager

    name = book.kernel_name()
    assert book._runs_this_python(KernelSpecManager().get_kernel_spec(name).argv)
    assert book._runs_this_python(["python"]) and book._runs_this_python([sys.executable])
    assert not book._runs_this_python(["/usr/bin/some-other-python3.9"])


def test_figures_and_show_bundle():
    import pandas as pd

    rows = [
        dict(method=m, seed=s, retain_acc=1.0, forget_acc=fa, test_acc=0.9, val_acc=0.9, mia_test=mia,
             mia_val=mia, indisc=0.9, retdev=rd, rte=rte, unlearn_seconds=0.1, l2_to_retrained=1.0,
             dataset="mnist1d", model="cnn1d", forget="random:0.1")
        for s in (0, 1)
        for m, fa, mia, rd, rte in [("original", 1.0, 0.6, 0.1, 1e4), ("retrain", 0.9, 0.5, 0.0, 1.0),
                                    ("ga", 0.92, 0.52 + 0.01 * s, 0.03, 20.0 + s)]
    ]
    df = pd.DataFrame(rows)
    fig = plots.retdev_vs_rte(df)
    assert "original" not in {t.name for t in fig.data}
    assert fig.layout.xaxis.type == "log"
    fig = plots.mia_comparison(df)
    assert any(getattr(s, "y0", None) == 0.5 for s in fig.layout.shapes)
    plots.accuracy_bars(df)
    bundle = plots.pio.renderers[plots.RENDERER].to_mimebundle(fig.to_dict())
    assert "application/vnd.plotly.v1+json" in bundle
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and len(html) < 100_000  # plotly.js is not inlined
    text = plots.forgetting_summary(df)
    assert "100.0%" in text and "90.0%" in text and "`ga`" in text
    assert plots.summary_table(df).loc["original", "rte"] == "–"


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_benchmark_notebook_runs_with_test_profile(tmp_path, store_env):
    src = copy_book_sources(tmp_path / "src") / "notebooks" / "benchmark.ipynb"
    params = book.load_profiles(ROOT)["test"]["benchmark.ipynb"]
    out = book.execute_notebook(src, tmp_path / "out" / "benchmark.ipynb", params, progress=False)
    nb = nbformat.read(out, as_version=4)
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if "text/html" in o.get("data", {})]
    table = next(h for h in html if "forget_acc" in h and "<table" in h)
    for method in ("original", "retrain", "ga"):
        assert method in table
    assert sum("Plotly.newPlot" in h for h in html) >= 2
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "re-run: 0 misses" in text
    assert "store $UNLEARNLIB_STORE:" in text and str(store_env) not in text  # the temporary store, no machine path
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "epochs = 2" in injected[0].source
    assert "widgets" not in nb.metadata


@pytest.mark.slow
def test_build_book_test_profile(tmp_path, store_env):
    root = copy_book_sources(tmp_path / "src")
    index = book.build_book("test", root=root, progress=False)
    assert index == root / "_build" / "html" / "index.html" and index.is_file()
    assert (root / "book" / "generated" / "benchmark.ipynb").is_file()
    assert not list((root / "book" / "generated").glob(".*"))  # no temporary files left
    html_dir = index.parent
    page = html_dir / "book" / "generated" / "benchmark.html"
    text = page.read_text()
    assert "Plotly.newPlot" in text
    plotly_js = plots.plotly_js_path()
    assert page.stat().st_size < plotly_js.stat().st_size / 10  # plotly.js is not inlined
    # plotly.js is shipped once as a static file and loaded by the page before anything else
    copies = [p for p in html_dir.rglob("*.js") if p.stat().st_size == plotly_js.stat().st_size]
    assert [p.relative_to(html_dir).as_posix() for p in copies] == ["_static/plotly.min.js"]
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', text)
    plotly_tags = [s for s in scripts if "plotly" in s]
    assert len(plotly_tags) == 1 and plotly_tags[0].startswith("../../_static/plotly.min.js")
    assert scripts.index(plotly_tags[0]) < min(
        [i for i, s in enumerate(scripts) if "require" in s] or [len(scripts)])
    assert "intro" in (html_dir / "index.html").read_text()  # root page
    intro = (html_dir / "book" / "intro.html").read_text()
    assert "does unlearning really forget" in intro
    # the landing dashboard: generated from the verdicts the executed chapters published
    published = sorted(p.stem for p in (root / book.VERDICTS_DIR).glob("*.json") if ".plotly" not in p.name)
    assert "methods" in published, published
    claims = [v.claim for v in book_verdicts.load_published(str(root / book.VERDICTS_DIR))]
    assert "What the book found" in intro and claims and all(html.escape(c) in intro for c in claims)
    assert 'href="generated/methods.html"' in intro
    # the published notebook keeps the plotly JSON for JupyterLab users who download it
    nb = json.loads((root / "book" / "generated" / "benchmark.ipynb").read_text())
    assert any("application/vnd.plotly.v1+json" in o.get("data", {})
               for c in nb["cells"] for o in c.get("outputs", []))
