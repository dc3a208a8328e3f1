"""Building the book (:func:`build_book`): the notebooks that ``_toc.yml`` publishes
(:func:`published_notebooks`), checked with their profile's parameters before any runs
(:func:`plan`), executed into ``book/generated``, the landing page's dashboard from the
verdicts they publish, then ``jupyter-book build`` and the self-containment check."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ...environment import environment
from ...studies.verdicts import PUBLISH_ENV
from . import execute
from .assets import check_self_contained, copy_mathjax, copy_plotly_js
from .execute import execute_notebook
from .parameters import validate_parameters
from .profiles import check_profile, load_profiles

#: The notebooks and their executed copies (the chapters), relative to the book root.
NOTEBOOKS_DIR = Path("notebooks")
GENERATED_DIR = Path("book") / "generated"


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed."""


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
    from ..dashboard import write_dashboard

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
    kernel = execute.kernel_name()  # looked up there: a test replaces it
    copy_plotly_js(root)
    copy_mathjax(root)
    (root / GENERATED_DIR).mkdir(parents=True, exist_ok=True)
    verdict_dir = clear_verdicts(root)

    from tqdm.auto import tqdm

    start = time.perf_counter()
    bar = tqdm(jobs, desc=f"notebooks ({profile})", unit="nb", disable=not progress)
    with environment({PUBLISH_ENV: verdict_dir}):  # kernels inherit it: chapters publish
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
