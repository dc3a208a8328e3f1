"""Executing one notebook with papermill (:func:`execute_notebook`) in a kernel that runs
this interpreter (:func:`kernel_name`); the executed copy is written atomically, without
its widget outputs."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping

from ...store import atomic_write_bytes
from .parameters import validate_parameters

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookExecutionError(RuntimeError):
    """A notebook raised while papermill executed it."""


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
