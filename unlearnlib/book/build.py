"""Execute the notebooks with papermill and build the Jupyter Book.

A *profile* (``book/profiles.yml``) maps each notebook file name to the
papermill parameters it runs with: ``quick`` is the defaults (3 seeds),
``full`` uses more seeds, ``test`` is tiny and only for the test suite.

:func:`build_book` checks the profile name and every notebook's parameters
against that notebook's ``parameters`` cell *before* executing anything, then
runs every notebook ``notebooks/<name>.ipynb`` that ``_toc.yml`` publishes as the
chapter ``book/generated/<name>`` (the executed copy is written to memory first,
then atomically, so a failed run leaves no half-written notebook), then runs
``jupyter-book build`` (Jupyter Book 1, offline) and returns the path of the
HTML index.

A notebook run by papermill directly (``papermill notebooks/benchmark.ipynb out.ipynb -p
seeds abc``) gets the same checks inside its kernel: the first thing its setup cell does
is :func:`check_notebook_parameters`, which compares papermill's injected cell with the
``parameters`` cell and fails the cell with one line (:class:`NotebookParameterError`)
for an unknown name or a bad value, before anything runs (papermill alone only warns
about an unknown name and runs the whole chapter).

The book loads plotly.js once per page from its static folder
(:data:`STATIC_DIR`, see ``html_js_files`` in ``_config.yml``) instead of
inlining it in every figure; :func:`build_book` copies it there from the
installed plotly package, and MathJax from the sphinx-mathjax-offline package
(:func:`copy_mathjax`), so no page loads anything from outside the book. After the
build, :func:`check_self_contained` fails the build if a page does.

>>> from unlearnlib.book import build_book              # doctest: +SKIP
>>> build_book("quick")                                 # doctest: +SKIP
PosixPath('.../_build/html/index.html')
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping
from unittest import mock

import yaml

from ..store import atomic_write_bytes
from ..studies.verdicts import PUBLISH_ENV

#: Paths relative to the book root (the folder holding ``_config.yml``).
PROFILES_FILE = Path("book") / "profiles.yml"
NOTEBOOKS_DIR = Path("notebooks")
GENERATED_DIR = Path("book") / "generated"
#: Extra static folder of the book (``html_static_path`` in ``_config.yml``),
#: under the git-ignored ``_build`` because its content is copied at build time.
STATIC_DIR = Path("_build") / "static"
PLOTLY_JS = "plotly.min.js"
#: MathJax in the static folder: ``mathjax_path`` in ``_config.yml`` is
#: ``<MATHJAX_DIR>/<MATHJAX_COMPONENT>`` (relative to the book's ``_static``).
MATHJAX_DIR = "mathjax"
MATHJAX_COMPONENT = "tex-chtml.js"

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookExecutionError(RuntimeError):
    """A notebook raised while papermill executed it."""


class NotebookParameterError(ValueError):
    """A notebook parameter (a book profile's, or papermill's ``-p``) that the notebook does
    not declare or whose value it would reject. Inside a notebook (:func:`check_notebook_parameters`)
    IPython shows it as its one line, without a traceback (``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed."""


# --------------------------------------------------------------------------- profiles


def load_profiles(root: Path | str = ".") -> dict[str, dict[str, dict[str, Any]]]:
    """Read ``<root>/book/profiles.yml``: profile -> notebook file name -> parameters."""
    path = Path(root) / PROFILES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No book profiles at {path}; expected a YAML mapping "
                                "profile -> notebook file name -> papermill parameters.")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map profile names to notebooks; got {type(data).__name__}.")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for profile, notebooks in data.items():
        notebooks = notebooks or {}
        if not isinstance(notebooks, dict):
            raise ValueError(f"Profile {profile!r} in {path} must map notebook file names to parameters.")
        out[str(profile)] = {}
        for name, params in notebooks.items():
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"Parameters of {name!r} in profile {profile!r} ({path}) must be a mapping; "
                                 f"got {params!r}.")
            out[str(profile)][str(name)] = dict(params or {})
    return out


def _repo_profiles() -> dict[str, dict[str, dict[str, Any]]]:
    try:
        return load_profiles(Path(__file__).resolve().parents[2])
    except FileNotFoundError:  # installed without the book sources
        return {}


#: The profiles of this checkout's ``book/profiles.yml`` (empty when installed without it).
PROFILES: dict[str, dict[str, dict[str, Any]]] = _repo_profiles()


def check_profile(profile: str, profiles: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the allowed profiles when ``profile`` is not one of them."""
    if profile not in profiles:
        raise ValueError(f"Unknown book profile {profile!r}; allowed: {', '.join(profiles) or '(none)'} "
                         f"(defined in {PROFILES_FILE}).")


# --------------------------------------------------------------------------- notebooks


def notebook_parameters(path: Path | str) -> dict[str, dict[str, Any]]:
    """The parameters declared in a notebook's ``parameters``-tagged cell (papermill)."""
    import papermill

    return papermill.inspect_notebook(str(path))


def validate_parameters(path: Path | str, parameters: Mapping[str, Any] | None) -> None:
    """Raise :class:`NotebookParameterError` (a ``ValueError``) when ``parameters`` names
    anything the notebook does not declare, gives a value of another type than the
    notebook's default (:func:`check_parameter_type`) or a value the library would reject
    (:data:`PARAMETER_CHECKS`: seeds, methods, forget specs, devices, epoch counts, ...), all
    before any kernel starts. Inside the kernel, :func:`check_notebook_parameters` does the
    same for a plain ``papermill -p`` run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Notebook {path} does not exist.")
    if not parameters:
        return
    declared = {name: p.get("default") for name, p in notebook_parameters(path).items()}
    check_parameters(path.name, declared, parameters)


def check_parameters(notebook: str, declared: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    """Raise :class:`NotebookParameterError` for a name of ``parameters`` that is not in
    ``declared`` (name -> the source text of its default) or a value that
    :func:`check_parameter_type` or :data:`PARAMETER_CHECKS` rejects."""
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise NotebookParameterError(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} {names} for notebook {notebook}; "
            f"allowed: {', '.join(declared) or '(none: the notebook has no cell tagged parameters)'}."
        )
    for name, value in parameters.items():
        check_parameter_type(notebook, name, value, declared[name])
        check = PARAMETER_CHECKS.get(name)
        if check is not None:
            try:
                check(value)
            except ValueError as e:
                raise NotebookParameterError(f"Parameter {name}={value!r} of notebook {notebook}: {e}") from None


#: The first line of the cell papermill injects after a notebook's ``parameters`` cell
#: (its Python translator's comment; the cell is tagged ``injected-parameters``).
INJECTED_HEADER = "# Parameters"


def _assignments(source: str) -> dict[str, str] | None:
    """``name -> source text of its value`` of a cell's top-level assignments (what papermill
    takes for parameters); ``None`` when the cell is not plain Python."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.get_source_segment(source, node.value) or ""
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.get_source_segment(source, node.value) or ""
    return out


def _injected_cell() -> tuple[str, str] | None:
    """``(parameters cell, injected cell)`` when the cell that ran just before the current one
    is papermill's injected cell, else ``None`` (not in IPython, nothing injected, a notebook
    run by hand). The cells come from IPython's input history: papermill's kernel runs the
    parameters cell, then the injected one, then the cell calling this."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        return None
    shell = get_ipython()
    if shell is None:
        return None
    history = list(shell.history_manager.input_hist_raw)  # history[0] is ""
    if history and "check_notebook_parameters" in history[-1]:  # the current cell (IPython stored it)
        history.pop()
    if len(history) < 3:
        return None
    injected, parameters = history[-1], history[-2]
    first = (injected.strip().splitlines() or [""])[0].strip()
    if first != INJECTED_HEADER or not _assignments(parameters):
        return None
    return parameters, injected


def check_notebook_parameters(namespace: Mapping[str, Any], notebook: str) -> None:
    """Check, inside a running notebook, the parameters that papermill injected, as
    :func:`validate_parameters` checks a book profile's: an unknown name, a value of another
    type than the default or one the library rejects raises :class:`NotebookParameterError`,
    shown as the cell's one line, before anything runs. A bad ``$UNLEARNLIB_THREADS`` is
    refused the same way. Call it first in the cell after the ``parameters`` cell::

        from unlearnlib.book.build import check_notebook_parameters

        check_notebook_parameters(globals(), "benchmark.ipynb")

    ``namespace``: the notebook's globals (the injected values); ``notebook``: its file name,
    for the message. Papermill only warns about a parameter the notebook does not declare
    and runs the whole chapter anyway; the kernel cannot see papermill's arguments, so the
    injected cell (the input just before this cell, right after the parameters cell) is
    compared with the parameters cell. Run by hand (nothing injected), it checks nothing."""
    from ..numerics import check_threads

    try:
        check_threads()
    except ValueError as e:
        raise NotebookParameterError(str(e)) from None
    found = _injected_cell()
    if found is None:
        return
    declared, injected = (_assignments(cell) or {} for cell in found)
    values = {name: namespace.get(name) for name in injected}
    for name, value in values.items():  # papermill's -p reads "3" as a number: say how to pass text
        if (name in declared and isinstance(_default_value(declared[name]), str)
                and isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise NotebookParameterError(
                f"Parameter {name} of notebook {notebook} must be a string (its default is {declared[name]}); got "
                f"{value!r}, which papermill's -p reads as a number: pass text with -r {name} {value}.")
    check_parameters(notebook, declared, values)


def _default_value(text: Any) -> Any:
    """The Python value of a ``parameters`` cell default (papermill gives its source text);
    ``...`` when it is not a literal (an expression the type check cannot judge)."""
    import ast

    try:
        return ast.literal_eval(str(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ...


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", tuple: "a list"}.get(type(value), type(value).__name__)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default``: ints for ints, numbers for floats,
    strings, lists (element by element, one level), mappings; ``None`` always does
    (notebooks use it for "off" or "the default")."""
    if value is None or default is None or default is ...:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        kinds = {type(d) for d in default}
        return len(kinds) != 1 or all(_same_kind(v, default[0]) for v in value)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def check_parameter_type(notebook: str, name: str, value: Any, default_text: Any) -> None:
    """Raise :class:`NotebookParameterError` when ``value`` is not of the type of the
    notebook's default for ``name`` (before any kernel starts)."""
    default = _default_value(default_text)
    if not _same_kind(value, default):
        raise NotebookParameterError(f"Parameter {name} of notebook {notebook} must be {_type_name(default)}"
                         f"{' of ' + _type_name(default[0]) + 's' if isinstance(default, list) and default else ''} "
                         f"(its default is {default_text}); got {value!r}.")


def _positive_int(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"must be a positive integer; got {value!r}.")


def _methods(value: Any) -> None:
    from .. import methods

    if isinstance(value, (str, list, tuple)):
        methods.parse_methods(value if isinstance(value, str) else list(value))  # known keys, each once


def _seeds(value: Any) -> None:
    from ..studies.experiment import parse_seeds

    parse_seeds(value)


def _forget(value: Any, each: bool = False) -> None:
    from ..studies.experiment import check_forget

    if not (each and value == "each"):
        check_forget(value)


def _dataset(value: Any) -> None:
    from ..datasets import check_dataset

    check_dataset(value)


def _model(value: Any) -> None:
    from ..models import available_models

    if value not in available_models():
        raise ValueError(f"Unknown model {value!r}; allowed: {', '.join(available_models())}.")


def _device(value: Any) -> None:
    from ..studies.experiment import check_device

    check_device(value)


def _method_hparams(value: Any) -> None:
    from ..studies.experiment import check_hparams

    check_hparams(value, list(value) if isinstance(value, dict) else [])


#: Value checks of the parameters the notebooks share, by name: the library's own
#: validators, so a profile value the notebook would reject fails before a kernel starts.
PARAMETER_CHECKS: dict[str, Any] = {
    "dataset": _dataset, "model": _model, "model_name": _model, "device": _device,
    "methods": _methods, "method": _methods, "baselines": _methods, "methods_to_run": _methods,
    "compare_methods": _methods, "ulira_methods": _methods, "methods_wanted": _methods,
    "seeds": _seeds, "tune_seeds": _seeds, "seed": _seeds, "poison_seeds": _seeds,
    "forget": _forget, "tune_forget": lambda v: _forget(v, each=True),
    "epochs": _positive_int, "shadow_epochs": _positive_int, "compare_epochs": _positive_int,
    "n_trials": _positive_int, "k": _positive_int, "ulira_k": _positive_int,
    "method_hparams": _method_hparams,
}


def _runs_this_python(argv: list[str]) -> bool:
    if not argv:
        return False
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" with sys.executable.
    major, minor = sys.version_info[:2]
    if argv[0] in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True
    try:
        return Path(argv[0]).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def kernel_name() -> str:
    """A kernel spec that runs *this* interpreter (and hence this environment).

    ``python3`` when the spec Jupyter finds under that name runs this Python
    (for instance this venv's own spec, or one whose ``argv[0]`` is a bare
    ``python``, which jupyter_client replaces with ``sys.executable``);
    otherwise a spec named ``unlearnlib`` installed into ``sys.prefix``.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in ("python3", "unlearnlib"):
        try:
            if _runs_this_python(ksm.get_kernel_spec(name).argv):
                return name
        except NoSuchKernel:
            pass
    from ipykernel.kernelspec import install

    install(kernel_name="unlearnlib", display_name=f"Python {sys.version_info[0]} (unlearnlib)",
            prefix=sys.prefix)
    spec = KernelSpecManager().get_kernel_spec("unlearnlib")
    if not _runs_this_python(spec.argv):
        raise RuntimeError(f"The kernel spec 'unlearnlib' at {spec.resource_dir} runs {spec.argv[0]}, "
                           f"not {sys.executable}; remove it (jupyter kernelspec remove unlearnlib).")
    return "unlearnlib"


def _strip_widgets(nb: Any) -> int:
    """Drop ipywidgets outputs (tqdm bars) and their saved state; returns how many went.

    A static page cannot run them, and their state would make myst-nb load
    require.js and the widget manager from a CDN on the page.
    """
    removed = 0
    for cell in nb.cells:
        outputs = cell.get("outputs")
        if not outputs:
            continue
        keep = [o for o in outputs if _WIDGET_VIEW not in o.get("data", {})]
        removed += len(outputs) - len(keep)
        cell["outputs"] = keep
    nb.metadata.pop("widgets", None)
    return removed


def execute_notebook(
    path: Path | str,
    out_path: Path | str,
    parameters: Mapping[str, Any] | None = None,
    cwd: Path | str | None = None,
    progress: bool = True,
    kernel: str | None = None,
) -> Path:
    """Run ``path`` with papermill and ``parameters``; write the executed notebook to ``out_path``.

    The parameters are checked against the notebook's ``parameters`` cell first
    (``ValueError`` naming the unknown parameter and the allowed ones, before
    any kernel starts). The kernel runs this interpreter (:func:`kernel_name`)
    in ``cwd`` (default: the notebook's folder). Widget outputs (progress bars)
    are dropped. ``out_path`` is written atomically, only on success; a cell
    that raises gives :class:`NotebookExecutionError`.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path, out_path = Path(path), Path(out_path)
    validate_parameters(path, parameters)
    try:
        nb = papermill.execute_notebook(
            str(path), None, parameters=dict(parameters or {}), kernel_name=kernel or kernel_name(),
            cwd=str(cwd if cwd is not None else path.parent), progress_bar=progress,
        )
    except PapermillExecutionError as e:
        trace = _ANSI.sub("", "\n".join(e.traceback[-3:])) if e.traceback else ""
        again = " ".join(f"-p {k} {shlex.quote(str(v))}" for k, v in (parameters or {}).items())
        raise NotebookExecutionError(
            f"Notebook {path} failed in cell In[{e.exec_count}] with parameters {dict(parameters or {})}: "
            f"{e.ename}: {e.evalue}\n{trace}\n"
            f"Nothing was written to {out_path}. Reproduce with: "
            f"papermill {shlex.quote(str(path))} /tmp/out.ipynb {again}".rstrip()
        ) from e
    _strip_widgets(nb)
    _write_shared(out_path, nbformat.writes(nb).encode())
    return out_path


def _write_shared(path: Path, data: bytes) -> None:
    """Atomic write, then the usual ``rw-r--r--`` (the temporary file is private)."""
    atomic_write_bytes(path, data)
    path.chmod(0o644)


# --------------------------------------------------------------------------- book


def copy_plotly_js(root: Path | str = ".") -> Path:
    """Copy the installed plotly's ``plotly.min.js`` into the book's static folder (once)."""
    from .plots import plotly_js_path

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
#: chapters publish their verdicts into while the build runs them.
DASHBOARD_MD = GENERATED_DIR / "dashboard.md"
VERDICTS_DIR = GENERATED_DIR / "verdicts"


def clear_verdicts(root: Path | str = ".") -> Path:
    """Empty ``book/generated/verdicts/`` so the dashboard shows only this build's verdicts."""
    folder = Path(root) / VERDICTS_DIR
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def notebook_title(path: Path | str) -> str:
    """The first ``# `` heading of a notebook's markdown cells (its chapter title), else its name."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(path).stem


def write_landing_dashboard(root: Path | str, notebooks: list[Path]) -> Path:
    """``book/generated/dashboard.md`` from the verdicts the executed chapters published
    (:func:`unlearnlib.book.dashboard.write_dashboard`), each row linking to its chapter."""
    from .dashboard import write_dashboard

    root = Path(root)
    links = {Path(nb).stem: f"generated/{Path(nb).name}" for nb in notebooks}
    titles = {Path(nb).stem: notebook_title(nb) for nb in notebooks}
    return write_dashboard(root / VERDICTS_DIR, root / DASHBOARD_MD, links, titles)


def published_notebooks(root: Path | str = ".") -> list[str]:
    """File names (``name.ipynb``) of the notebooks ``_toc.yml`` publishes, in book order.

    A chapter ``book/generated/<name>`` is the executed copy of ``notebooks/<name>.ipynb``;
    notebooks that are not in the table of contents (explorers, scratch) are not run.
    """
    path = Path(root) / "_toc.yml"
    if not path.is_file():
        raise FileNotFoundError(f"No table of contents at {path}.")
    prefix = GENERATED_DIR.as_posix().rstrip("/") + "/"
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            f = node.get("file") or node.get("root")
            if isinstance(f, str) and f.startswith(prefix):
                name = Path(f[len(prefix):]).with_suffix(".ipynb").name
                if name not in out:
                    out.append(name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(path.read_text()) or {})
    return out


def plan(profile: str = "quick", root: Path | str = ".") -> list[tuple[Path, dict[str, Any]]]:
    """Validate ``profile`` and return ``(notebook, parameters)`` per published notebook, running nothing.

    The notebooks are those ``_toc.yml`` publishes (:func:`published_notebooks`);
    the profile gives their parameters (a notebook it does not list runs with its
    defaults; one it lists that the toc leaves out is checked but not run). Every
    parameter is checked against its notebook's ``parameters`` cell.
    """
    root = Path(root)
    profiles = load_profiles(root)
    check_profile(profile, profiles)
    nb_dir = root / NOTEBOOKS_DIR
    names = published_notebooks(root)
    if not names:
        raise ValueError(f"{root / '_toc.yml'} publishes no notebook (no entry under {GENERATED_DIR}/).")
    absent = [n for n in names if not (nb_dir / n).is_file()]
    if absent:
        raise FileNotFoundError(f"_toc.yml publishes {', '.join(absent)} but {nb_dir} has no such notebook.")
    missing = [n for n in profiles[profile] if not (nb_dir / n).is_file()]
    if missing:
        raise ValueError(f"Profile {profile!r} gives parameters for {', '.join(missing)}, which is not in "
                         f"{nb_dir}; published notebooks: {', '.join(names)}.")
    for n, params in profiles[profile].items():  # every notebook is checked before any runs,
        validate_parameters(nb_dir / n, params)  # also those the toc leaves out (they do not run)
    return [(nb_dir / n, dict(profiles[profile].get(n, {}))) for n in names]


def _jupyter_book(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def build_book(
    profile: str = "quick",
    root: Path | str = Path("."),
    out_dir: Path | str | None = None,
    progress: bool = True,
) -> Path:
    """Execute every published notebook with ``profile``'s parameters and build the HTML book.

    Parameters
    ----------
    profile : a profile of ``<root>/book/profiles.yml`` (``quick``, ``full``, ``test``).
    root : the book root, holding ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``.
    out_dir : where ``_build/html`` goes (``jupyter-book build --path-output``); default ``root``.
    progress : show progress bars (notebooks, cells).

    Returns
    -------
    The path of the built ``index.html``.

    Raises
    ------
    ValueError : unknown profile, or a profile parameter a notebook does not declare
        (raised before anything executes).
    NotebookExecutionError : a notebook failed (earlier notebooks stay written).
    BookBuildError : ``jupyter-book build`` failed.
    """
    root = Path(root).resolve()
    if not (root / "_config.yml").is_file():
        raise FileNotFoundError(f"{root} has no _config.yml; pass the book root (the project folder).")
    jobs = plan(profile, root)
    kernel = kernel_name()
    copy_plotly_js(root)
    copy_mathjax(root)
    (root / GENERATED_DIR).mkdir(parents=True, exist_ok=True)
    verdict_dir = clear_verdicts(root)

    from tqdm.auto import tqdm

    start = time.perf_counter()
    bar = tqdm(jobs, desc=f"notebooks ({profile})", unit="nb", disable=not progress)
    with mock.patch.dict(os.environ, {PUBLISH_ENV: str(verdict_dir)}):  # kernels inherit it: chapters publish
        for nb, params in bar:
            bar.set_postfix_str(nb.name)
            t0 = time.perf_counter()
            execute_notebook(nb, root / GENERATED_DIR / nb.name, params, cwd=nb.parent,
                             progress=progress, kernel=kernel)
            if progress:
                bar.write(f"executed {nb.name} in {time.perf_counter() - t0:.1f} s")
    bar.close()
    write_landing_dashboard(root, [nb for nb, _ in jobs])

    args = ["build", str(root), "--builder", "html"]
    if out_dir is not None:
        out_dir = Path(out_dir).resolve()
        args += ["--path-output", str(out_dir)]
    proc = _jupyter_book(args, cwd=root)
    log = proc.stdout + proc.stderr
    index = (out_dir or root) / "_build" / "html" / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = "\n".join(log.strip().splitlines()[-40:])
        raise BookBuildError(f"jupyter-book build {root} failed (exit {proc.returncode}):\n{tail}")
    problems = check_self_contained(index.parent)
    if problems:
        raise BookBuildError(f"The book built in {index.parent} is not self-contained:\n" + "\n".join(problems))
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    if progress:
        for line in warnings:
            print(line, file=sys.stderr)
        print(f"book ({profile}) built in {time.perf_counter() - start:.1f} s "
              f"({len(warnings)} warning(s)): {index}", file=sys.stderr)
    return index


__all__ = [
    "PROFILES", "load_profiles", "check_profile", "notebook_parameters", "validate_parameters",
    "check_parameter_type", "check_parameters", "check_notebook_parameters", "PARAMETER_CHECKS",
    "NotebookParameterError", "INJECTED_HEADER",
    "kernel_name", "execute_notebook", "copy_plotly_js", "mathjax_source", "copy_mathjax",
    "check_self_contained", "published_notebooks", "plan", "build_book",
    "clear_verdicts", "notebook_title", "write_landing_dashboard", "DASHBOARD_MD", "VERDICTS_DIR",
    "NotebookExecutionError", "BookBuildError",
]
