"""The package layout shows the architecture (../shared/DESIGN.md): the engine at the
bottom, methods and tests of unlearning on it, studies that combine them, the book on
top. Lower layers never import higher ones, and no modules import each other in a
circle, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PKG = Path(__file__).resolve().parents[1] / "unlearnlib"

#: Layer of each top-level module or subpackage of ``unlearnlib`` (0 = bottom).
LAYERS = {
    "store": 0, "numerics": 0, "datasets": 0, "data": 0, "models": 0, "training": 0,
    "methods": 1, "evaluation": 1, "poisoning": 1, "ensemble": 1, "certified": 1,
    "studies": 2,
    "book": 3, "cli": 3, "__main__": 3,
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
