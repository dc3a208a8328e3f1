"""Checking a notebook's parameters against its ``parameters`` cell before anything runs:
a book profile's (:func:`validate_parameters`) and, inside a kernel, papermill's ``-p``
(:func:`check_notebook_parameters`); names it does not declare, values of another type than
the default, and values the library rejects (:data:`PARAMETER_CHECKS`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


class NotebookParameterError(ValueError):
    """A notebook parameter (a book profile's, or papermill's ``-p``) that the notebook does
    not declare or whose value it would reject. Inside a notebook (:func:`check_notebook_parameters`)
    IPython shows it as its one line, without a traceback (``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


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
    from ...numerics import check_threads

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
    from ... import methods

    if isinstance(value, (str, list, tuple)):
        methods.parse_methods(value if isinstance(value, str) else list(value))  # known keys, each once


def _seeds(value: Any) -> None:
    from ...studies.experiment import parse_seeds

    parse_seeds(value)


def _forget(value: Any, each: bool = False) -> None:
    from ...studies.experiment import check_forget

    if not (each and value == "each"):
        check_forget(value)


def _dataset(value: Any) -> None:
    from ...datasets import check_dataset

    check_dataset(value)


def _model(value: Any) -> None:
    from ...models import available_models

    if value not in available_models():
        raise ValueError(f"Unknown model {value!r}; allowed: {', '.join(available_models())}.")


def _device(value: Any) -> None:
    from ...studies.experiment import check_device

    check_device(value)


def _method_hparams(value: Any) -> None:
    from ...studies.experiment import check_hparams

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
