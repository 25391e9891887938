"""A run killed with SIGKILL and started again with the same command finishes with bitwise the values of
an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from landform import load_landscape

RECIPE = textwrap.dedent(
    """
    import time
    import torch
    from torch import nn

    def slow_mse(out, y):
        time.sleep(0.002)  # slow enough to be killed mid-run
        return nn.functional.mse_loss(out, y)

    def recipe():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(64, 3, generator=g), torch.randn(64, 1, generator=g)
        return model, (x, y), slow_mse
    """
)


def _cmd(recipe, out):
    return [
        sys.executable, "-m", "landform", "analyze", str(recipe), "--directions", "random", "--resolution", "31",
        "--span", "2", "--out", str(out), "--chunk-points", "40", "--quiet", "--no-report", "--trace-hvp", "0",
        "--density-probes", "0", "--sharpness-rho", "0",
    ]  # fmt: skip


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    recipe = tmp_path / "slow.py"
    recipe.write_text(RECIPE)
    clean = tmp_path / "clean"
    assert subprocess.run(_cmd(recipe, clean), capture_output=True).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(recipe, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = killed / "landscape" / "chunks"
    deadline = time.time() + 120
    while time.time() < deadline:
        if chunks.exists() and len([f for f in os.listdir(chunks) if f.endswith(".npy")]) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = load_landscape(killed / "landscape")
    assert not partial.complete and partial.n_missing > 0  # really killed mid-run
    done_before = partial.values.size - partial.n_missing
    out = subprocess.run(_cmd(recipe, killed), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    a = load_landscape(clean / "landscape")
    b = load_landscape(killed / "landscape")
    assert b.complete
    np.testing.assert_array_equal(a.values, b.values)  # bitwise
    evaluated_after = b.provenance["timings"]["points_evaluated"]
    assert evaluated_after == b.values.size - done_before  # only the missing chunks were recomputed
