"""torch.distributed with the gloo backend on CPU: 2 ranks give the same landscape and HVPs as 1 rank."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from landform import load_landscape

RECIPE = textwrap.dedent(
    """
    import torch
    from torch import nn

    def recipe():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(90, 3, generator=g), torch.randint(0, 2, (90,), generator=g)
        return model, (x, y), nn.functional.cross_entropy
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _analyze(recipe, out, nproc, parallel, extra=()):
    base = [
        "analyze", str(recipe), "--directions", "hessian", "--resolution", "9,7", "--span", "1.5", "--out", str(out),
        "--chunk-points", "5", "--quiet", "--no-report", "--density-probes", "0", "--parallel", parallel, *extra,
    ]  # fmt: skip
    if nproc == 1:
        cmd = [sys.executable, "-m", "landform", *base]
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
            "127.0.0.1", "--master-port", str(_free_port()), "-m", "landform", *base,
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out_ = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out_.returncode == 0, out_.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("parallel", ["grid", "data"])
def test_two_ranks_match_one(tmp_path, parallel):
    recipe = tmp_path / "r.py"
    recipe.write_text(RECIPE)
    one = _analyze(recipe, tmp_path / "one", 1, parallel)
    two = _analyze(recipe, tmp_path / "two", 2, parallel)
    a = load_landscape(tmp_path / "one" / "landscape")
    b = load_landscape(tmp_path / "two" / "landscape")
    assert b.provenance["timings"]["ranks"] == 2 and b.provenance["timings"]["parallel"] == parallel
    if parallel == "grid":
        np.testing.assert_array_equal(a.values, b.values)  # same points, same data: bitwise
    else:
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)  # sums split across ranks: rounding only
    # the HVP-based results (Lanczos eigenvalues, Hutch++ trace) agree too
    np.testing.assert_allclose(two["hessian"]["top_eigenvalues"], one["hessian"]["top_eigenvalues"], rtol=1e-5)
    assert two["hessian"]["trace"] == pytest.approx(one["hessian"]["trace"], rel=1e-5)
    assert two["topology"]["smad"] == pytest.approx(one["topology"]["smad"], rel=1e-6, abs=1e-12)
