"""The public API as tools that do not run code see it: the lazy __init__s declare every name for type checkers."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import landform

LAZY = ["landform", "landform.metrics"]


def _type_checking_imports(module: str) -> dict[str, str]:
    """{name: module it is imported from} of the ``if TYPE_CHECKING:`` block of ``module``'s __init__.py."""
    path = Path(importlib.import_module(module).__file__)
    tree = ast.parse(path.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                for alias in imp.names:
                    found[alias.asname or alias.name] = imp.module
    return found


@pytest.mark.parametrize("module", LAZY)
def test_lazy_exports_are_declared_for_type_checkers(module):
    mod = importlib.import_module(module)
    exports = mod._EXPORTS
    assert _type_checking_imports(module) == exports
    assert [n for n in mod.__all__ if n != "__version__"] == list(exports)
    for name in exports:  # and each resolves at run time to what the declaration names
        value = getattr(mod, name)
        assert value is getattr(importlib.import_module(f"{module}.{exports[name]}"), name)


def test_old_module_paths_still_import():
    from landform.landscape import Landscape
    from landform.results import SavedDensity, SavedDirections, load_run
    from landform.store import GridStore, atomic_write_json, load_landscape

    assert Landscape is landform.Landscape and load_landscape is landform.load_landscape
    assert load_run is landform.load_run and callable(atomic_write_json)
    assert {SavedDensity.__module__, SavedDirections.__module__, GridStore.__module__} == {
        "landform.results.density", "landform.results.directions", "landform.store"
    }  # fmt: skip
