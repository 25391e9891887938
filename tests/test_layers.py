"""The torch layer knows nothing of plots: its modules import neither landform.plot / landform.report nor
matplotlib / plotly (checked on the source, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "landform"
#: Modules that compute (torch layer and numpy-only results); run.py is the pipeline that also builds the report.
COMPUTE = ["objective", "evaluate", "hessian", "curvature", "curvature_run", "progressive", "geometry", "directions",
           "sampling", "trajectory", "eigenmap", "estimate", "track", "pointmetrics", "_chain", "checkpoints"]  # fmt: skip
FORBIDDEN = ("matplotlib", "plotly")


def _plot_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    compat = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]  # moved names
    skip = {id(x) for f in compat for x in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if (node.level and mod.split(".")[0] in ("plot", "report")) or mod.split(".")[0] in FORBIDDEN:
                found.append(f"line {node.lineno}: from {'.' * node.level}{mod}")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN]
    return found


@pytest.mark.parametrize("name", COMPUTE)
def test_compute_modules_import_no_plotting(name):
    path = SRC / f"{name}.py"
    assert path.exists(), path
    assert _plot_imports(path) == []


def test_the_check_sees_a_lazy_plot_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from .report import _png\n    import matplotlib.pyplot as plt\n")
    assert _plot_imports(bad) == ["line 2: from .report", "line 3: import matplotlib.pyplot"]
