"""unlearnlib.environment.environment: set and unset variables for a block, restore them after."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from unlearnlib.environment import environment

A, B, C = "UNLEARNLIB_TEST_ENV_A", "UNLEARNLIB_TEST_ENV_B", "UNLEARNLIB_TEST_ENV_C"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (A, B, C):
        monkeypatch.delenv(name, raising=False)


def test_sets_and_restores() -> None:
    os.environ[A] = "before"
    with environment(**{A: "inside", B: 3}):
        assert os.environ[A] == "inside"
        assert os.environ[B] == "3"  # any value is set as its str
    assert os.environ[A] == "before"
    assert B not in os.environ  # unset again: it had no value before


def test_none_unsets_and_restores() -> None:
    os.environ[A] = "before"
    with environment({A: None, B: None}):  # a variable that was not set stays unset
        assert A not in os.environ and B not in os.environ
    assert os.environ[A] == "before" and B not in os.environ


def test_restores_on_exception() -> None:
    os.environ[A] = "before"
    with pytest.raises(RuntimeError, match="boom"):
        with environment({A: "inside"}, **{B: "x"}):
            raise RuntimeError("boom")
    assert os.environ[A] == "before" and B not in os.environ


def test_restores_only_its_own_variables() -> None:
    """Changes to other variables inside the block stay (mock.patch.dict undid them)."""
    with environment(**{A: "1"}):
        os.environ[C] = "kept"
        os.environ[A] = "changed inside"  # its own variable gets back its old state
    assert os.environ[C] == "kept" and A not in os.environ


def test_mapping_and_keywords_merge_keywords_winning() -> None:
    with environment({A: "mapping", B: "mapping"}, **{B: "keyword"}):
        assert (os.environ[A], os.environ[B]) == ("mapping", "keyword")
    assert A not in os.environ and B not in os.environ


def test_product_code_does_not_patch_the_environment_with_mock() -> None:
    """Issue 35: unittest.mock is a test helper; product code uses :func:`environment`."""
    pkg = Path(__file__).resolve().parents[1] / "unlearnlib"
    users = []
    for path in pkg.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unittest"):
                users.append(str(path.relative_to(pkg)))
            elif isinstance(node, ast.Import) and any(a.name.startswith("unittest") for a in node.names):
                users.append(str(path.relative_to(pkg)))
    assert not users, f"product modules importing unittest: {sorted(set(users))}"
