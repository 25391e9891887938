from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from landform import load_landscape
from landform.cli import main


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "my_recipe.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def recipe():
                torch.manual_seed(0)
                model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
                x = torch.randn(50, 3)
                y = (x[:, 0] > 0).long()
                return model, (x, y), nn.functional.cross_entropy

            def frozen():
                model, data, loss = recipe()
                model.requires_grad_(False)
                return model, data, loss
            """
        )
    )
    return path


def test_analyze_user_recipe(tmp_path, recipe_file, capsys):
    out = tmp_path / "run"
    args = [str(recipe_file), "--dims", "2", "--resolution", "9,7", "--span", "2,1", "--directions", "random"]
    code = main(["analyze", *args, "--out", str(out), "--quiet", "--no-report"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "SMAD" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    ls = load_landscape(out / "landscape")
    assert ls.shape == (9, 7)
    assert summary["topology"]["smad"] == pytest.approx(ls.smad())
    assert summary["landscape"]["center_value"] == pytest.approx(ls.values[4, 3])
    # the recipe's model has 26 parameters: a budget of 30 HVPs >= P gives the exact trace from P products
    assert summary["hessian"]["trace_n_hvp"] == 26 and summary["hessian"]["trace_stderr"] == 0
    assert np.load(out / "persistence.npy").shape[1] == 2


def test_analyze_bad_input_exit_code(tmp_path, recipe_file, capsys):
    code = main(["analyze", f"{recipe_file}:frozen", "--out", str(tmp_path / "r"), "--quiet", "--no-report"])
    assert code == 1
    assert "no trainable parameters" in capsys.readouterr().err
    code = main(["analyze", str(recipe_file), "--resolution", "1", "--out", str(tmp_path / "s"), "--quiet"])
    assert code == 1
    assert "resolution" in capsys.readouterr().err


def test_main_job_on_builtin_example(tmp_path):
    """The README's first command, scaled down (9 x 9 grid, one density probe instead of two: the density stage
    alone was half the run): the built-in digits CNN with Hessian directions."""
    out = tmp_path / "digits"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "landform",
            "analyze",
            "--resolution",
            "9",
            "--density-probes",
            "1",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["test_accuracy"] > 0.9
    ev = summary["hessian"]["top_eigenvalues"]
    assert len(ev) == 2 and ev[0] >= ev[1] > 0
    assert summary["directions"]["kind"] == "hessian"
    assert summary["landscape"]["shape"] == [9, 9]
    assert summary["stages"]["density"]["sections"]["hessian"]["density_n_hvp"] == 40  # the one probe ran


def test_compare_runs(tmp_path, recipe_file, capsys):
    outs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        args = [str(recipe_file), "--resolution", "9", "--span", "3", "--directions", "random", "--seed", str(seed)]
        assert main(["analyze", *args, "--out", str(out), "--quiet", "--no-report", "--density-probes", "0"]) == 0
        outs.append(out)
    capsys.readouterr()
    code = main(["compare", *map(str, outs), "--out", str(tmp_path / "cmp")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "run0" in printed and "run1" in printed and "bottleneck" in printed
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    s0 = json.loads((outs[0] / "summary.json").read_text())
    assert data["rows"][0][1] == pytest.approx(s0["topology"]["smad"])
    assert s0["sharpness"]["worst"] >= s0["sharpness"]["average"] > 0
    gudhi = pytest.importorskip("gudhi")
    # an independent reference (gudhi), on the two runs' saved diagrams; they differ, so comparing a run with
    # itself (distance 0) or reading the wrong file fails
    d = gudhi.bottleneck_distance(np.load(outs[0] / "persistence.npy"), np.load(outs[1] / "persistence.npy"), 0)
    assert d > 0
    assert list(data["distances"]["bottleneck"].values())[0] == pytest.approx(d, abs=1e-12)
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000
    assert main(["compare", str(tmp_path / "nothing")]) == 1
