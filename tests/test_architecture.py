"""The package layout shows the architecture (../shared/DESIGN.md): the engine at the
bottom, methods and tests of unlearning on it, studies that combine them, the book on
top. Every package above the engine has its own floor (issue 35: methods, evaluation,
poisoning and ensemble shared one, so an arrow between them, evaluation training shadows
through the methods, could not be seen). Lower floors never import higher ones, and no
modules import each other in a circle, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PKG = Path(__file__).resolve().parents[1] / "unlearnlib"

#: Floor of each top-level module or subpackage of ``unlearnlib`` (0 = bottom).
#: The engine is the one group that shares a floor: its modules are the pieces every
#: package stands on (the store, the data, the models, training with its shared loop and
#: gradient count, predictions), and :func:`test_no_import_circles` keeps them in order.
#: Above it each package has its own floor. Evaluation is first: it imports the engine
#: alone, so nothing it scores can reach back into it. Certified and poisoning also import
#: only the engine; their floors follow DESIGN.md's order, not an import.
ENGINE = ("store", "numerics", "environment", "datasets", "data", "models", "training", "predict", "cost",
          "loop")
LAYERS = {
    **{m: 0 for m in ENGINE},
    "evaluation": 1,   # metrics and attacks: the engine only
    "methods": 2,      # the engine only (not evaluation: test below)
    "certified": 3,
    "ensemble": 4,     # many models as one computation, reading the methods' losses
    "shadows": 5,      # shadow models: trained through methods and ensemble, scored by evaluation
    "poisoning": 6,
    "studies": 7,
    "book": 8,
    "cli": 9,
    "__main__": 10,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the unlearnlib modules that ``path`` imports (anywhere in it)."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("unlearnlib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("unlearnlib"):
                continue
            out.add(target)
            for a in node.names:  # `from . import methods` imports a module
                if (PKG.parent / Path(*f"{target}.{a.name}".split("."))).with_suffix(".py").exists() or \
                        (PKG.parent / Path(*f"{target}.{a.name}".split("."))).is_dir():
                    out.add(f"{target}.{a.name}")
    return out


def _graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for path in PKG.rglob("*.py"):
        src = _module_name(path)
        g.add_node(src)
        for dst in _imports(path):
            if dst != src and not src.startswith(dst + "."):  # a module importing its own package is fine
                g.add_edge(src, dst)
    return g


def _unit(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "unlearnlib"


def test_every_module_has_a_layer() -> None:
    units = {_unit(n) for n in _graph().nodes} - {"unlearnlib"}
    assert units <= set(LAYERS), f"modules without a layer: {sorted(units - set(LAYERS))}"


def test_no_import_circles() -> None:
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, f"import circles: {cycles[:5]}"


def test_lower_layers_never_import_higher_ones() -> None:
    bad = [(a, b) for a, b in _graph().edges
           if _unit(a) in LAYERS and _unit(b) in LAYERS and LAYERS[_unit(b)] > LAYERS[_unit(a)]]
    assert not bad, f"imports that go up a layer: {bad}"


def test_every_package_above_the_engine_has_its_own_floor() -> None:
    above = {u: f for u, f in LAYERS.items() if u not in ENGINE}
    shared = {f: sorted(u for u, g in above.items() if g == f) for f in set(above.values())}
    assert all(f > 0 for f in above.values()), above
    assert all(len(us) == 1 for us in shared.values()), f"packages sharing a floor: {shared}"


@pytest.mark.parametrize("package", ["evaluation", "methods"])
def test_evaluation_and_methods_import_only_the_engine(package: str) -> None:
    """Issue 35: evaluation imports nothing from methods, ensemble, shadows or studies (the
    shadows it scores are trained in :mod:`unlearnlib.shadows`; the relearning attack
    fine-tunes with the engine's loop), and methods import no evaluation (accuracy and
    per-sample losses are the engine's, :mod:`unlearnlib.predict`)."""
    bad = [(a, b) for a, b in _graph().edges
           if _unit(a) == package and _unit(b) not in (package, *ENGINE)]
    assert not bad, f"{package} imports above the engine: {bad}"


@pytest.mark.parametrize("module", ["unlearnlib.data", "unlearnlib.training"])
def test_the_two_old_circles_are_gone(module: str) -> None:
    g = _graph()
    assert not any(module in c for c in nx.simple_cycles(g))


def test_the_studies_package_names_every_module_it_holds():
    """Issue 35 (small rot): the package docstring is its map; a module it does not name is
    one a newcomer cannot find."""
    import pkgutil

    import unlearnlib.studies as studies

    missing = [m.name for m in pkgutil.iter_modules(studies.__path__) if f":mod:`.{m.name}`" not in studies.__doc__]
    assert not missing, f"unlearnlib/studies/__init__.py does not name: {missing}"
