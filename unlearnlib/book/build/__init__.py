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

The package, by concern: :mod:`.profiles` (``book/profiles.yml``), :mod:`.parameters`
(checking a notebook's parameters), :mod:`.execute` (papermill, the kernel),
:mod:`.assets` (plotly.js and MathJax in the static folder, the self-containment check) and
:mod:`.book` (:func:`build_book`).
"""

# ruff: noqa: F401 - the package re-exports its modules' names, private ones that tests and
# other modules use included
from __future__ import annotations

from .assets import (
    _FETCHED_LINKS,
    _LOCAL_SCHEMES,
    MATHJAX_COMPONENT,
    MATHJAX_DIR,
    PLOTLY_JS,
    STATIC_DIR,
    _page_resources,
    check_self_contained,
    copy_mathjax,
    copy_plotly_js,
    mathjax_source,
)
from .book import (
    DASHBOARD_MD,
    GENERATED_DIR,
    NOTEBOOKS_DIR,
    VERDICTS_DIR,
    BookBuildError,
    _jupyter_book,
    build_book,
    clear_verdicts,
    notebook_title,
    plan,
    published_notebooks,
    write_landing_dashboard,
)
from .execute import (
    _ANSI,
    _WIDGET_VIEW,
    NotebookExecutionError,
    _runs_this_python,
    _strip_widgets,
    _write_shared,
    execute_notebook,
    kernel_name,
)
from .parameters import (
    INJECTED_HEADER,
    PARAMETER_CHECKS,
    NotebookParameterError,
    _assignments,
    _default_value,
    _injected_cell,
    _same_kind,
    _type_name,
    check_notebook_parameters,
    check_parameter_type,
    check_parameters,
    notebook_parameters,
    validate_parameters,
)
from .profiles import PROFILES, PROFILES_FILE, _repo_profiles, check_profile, load_profiles

__all__ = [
    "PROFILES", "load_profiles", "check_profile", "notebook_parameters", "validate_parameters",
    "check_parameter_type", "check_parameters", "check_notebook_parameters", "PARAMETER_CHECKS",
    "NotebookParameterError", "INJECTED_HEADER",
    "kernel_name", "execute_notebook", "copy_plotly_js", "mathjax_source", "copy_mathjax",
    "check_self_contained", "published_notebooks", "plan", "build_book",
    "clear_verdicts", "notebook_title", "write_landing_dashboard", "DASHBOARD_MD", "VERDICTS_DIR",
    "NotebookExecutionError", "BookBuildError",
]
