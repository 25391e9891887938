"""`landform analyze --estimate` and `--progressive`: the estimate runs nothing else; a progressive run saves its
standard errors and the report shows them with the certain minima."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from landform import load_landscape
from landform.cli import main


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "rec.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def recipe():
                torch.manual_seed(0)
                model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
                x = torch.randn(64, 3)
                y = (x[:, 0] > 0).long()
                return model, (x, y), nn.functional.cross_entropy
            """
        )
    )
    return path


def test_estimate_prints_stages_and_runs_nothing(tmp_path, recipe_file, capsys):
    out = tmp_path / "run"
    code = main(["analyze", str(recipe_file), "--resolution", "7", "--estimate", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    for stage in ("directions", "grid", "trace", "density", "sharpness", "report", "memory"):
        assert stage in text
    assert "49 points + centre" in text  # 7 x 7 grid
    assert not (out / "landscape").exists() and not (out / "directions.npz").exists()


def test_estimate_of_a_progressive_run_bounds_the_grid(tmp_path, recipe_file, capsys):
    args = ["analyze", str(recipe_file), "--resolution", "7", "--estimate", "--quiet", "--directions", "random"]
    assert main([*args, "--progressive", "--shards", "12"]) == 0
    grid = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("grid"))
    assert "<=" in grid and "progressive over 12 shards: 3/12 of this" in grid
    assert main(args) == 0
    grid = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("grid"))
    assert "<=" not in grid and "progressive" not in grid


def test_estimate_of_two_shards_is_the_full_grid(recipe_file, capsys):
    # The rule never stops before 3 shards, so with 2 the earliest stop is both shards, not "3/2" of the grid.
    args = ["analyze", str(recipe_file), "--resolution", "7", "--estimate", "--quiet", "--directions", "random"]
    assert main([*args, "--progressive", "--shards", "2"]) == 0
    grid = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("grid"))
    assert "2/2 of this at the earliest stop" in grid and "3/2" not in grid


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shards", "1"], "shards (--shards): expected an integer >= 2"),
        (["--rtol", "nan"], "rtol (--rtol): expected a finite number >= 0"),
        (["--rtol", "-0.1"], "rtol (--rtol): expected a finite number >= 0"),
    ],
)
def test_bad_shards_or_rtol_are_refused_before_any_stage(tmp_path, recipe_file, capsys, extra, message):
    # Refused by RunConfig.validate, before the directions stage runs (and writes directions.npz).
    out = tmp_path / "run"
    args = ["analyze", str(recipe_file), "--resolution", "5", "--progressive", *extra, "--out", str(out), "--quiet"]
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rtol", "0.1"], "--rtol: only used by a progressive run"),
        (["--shards", "8", "--rtol", "0"], "--rtol and --shards: only used by a progressive run"),
        (["--rise", "2"], "--rise: only used with --span auto"),
    ],
)
def test_options_that_would_be_ignored_are_refused(tmp_path, recipe_file, capsys, extra, message):
    out = tmp_path / "run"
    assert main(["analyze", str(recipe_file), "--resolution", "5", *extra, "--out", str(out), "--quiet"]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_progressive_run_and_report(tmp_path, recipe_file, capsys):
    out = tmp_path / "run"
    args = [str(recipe_file), "--resolution", "7", "--span", "1.5", "--directions", "random", "--progressive",
            "--shards", "8", "--rtol", "0", "--density-probes", "0", "--trace-hvp", "0", "--sharpness-rho", "0"]
    assert main(["analyze", *args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "data used" in printed and "100.0 %" in printed
    ls = load_landscape(out / "landscape")
    assert ls.stderr is not None and ls.data_fraction == 1.0 and np.all(ls.stderr == 0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["progressive"]["shards_used"] == 8
    report = (out / "report.html").read_text()
    assert "id='progressive'" in report and "id='fig-stderr'" in report
    assert "minimum at" in report and "certain" in report
    # a loose tolerance reaches the CLI: the run stops by the rule ("stable"), not by running out of shards
    out2 = tmp_path / "run2"
    args2 = [a if a != "0" or i != args.index("--rtol") + 1 else "10" for i, a in enumerate(args)]
    assert main(["analyze", *args2, "--out", str(out2), "--quiet", "--no-report"]) == 0
    prog = json.loads((out2 / "summary.json").read_text())["progressive"]
    assert prog["stopped"] == "stable" and prog["shards_used"] >= 3 and prog["rtol"] == 10.0
    assert main(["analyze", *args, "--rtol", "-1", "--out", str(tmp_path / "bad"), "--quiet"]) == 1


def test_progressive_with_a_metric_records_it_like_the_grid_and_reports_it(tmp_path, recipe_file, capsys):
    import importlib.util

    from landform import Objective, grid_landscape, random_directions
    from landform.pointmetrics import accuracy

    args = [str(recipe_file), "--resolution", "5", "--span", "3", "--directions", "random", "--progressive",
            "--shards", "4", "--density-probes", "0", "--trace-hvp", "0", "--sharpness-rho", "0",
            "--metric", "accuracy"]  # fmt: skip
    assert main(["analyze", *args, "--rtol", "0", "--out", str(tmp_path / "all"), "--quiet"]) == 0
    spec = importlib.util.spec_from_file_location("rec", recipe_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, data, loss = mod.recipe()
    obj = Objective(model, data, loss)
    ref = grid_landscape(obj, random_directions(obj, 2, seed=0), span=3.0, resolution=5, progress=False,
                         metrics={"accuracy": accuracy})  # fmt: skip
    ls = load_landscape(tmp_path / "all" / "landscape")
    np.testing.assert_allclose(ls.metrics["accuracy"], ref.metrics["accuracy"], rtol=1e-12)
    assert np.ptp(ref.metrics["accuracy"]) > 0.1 and np.all(ls.metrics_stderr["accuracy"] == 0)
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert summary["basins"]["accuracy"] and summary["progressive"]["metrics_max_stderr"] == {"accuracy": 0.0}
    page = (tmp_path / "all" / "report.html").read_text()
    assert "id='fig-metric_accuracy'" in page and "estimated from 100.0 % of the data" in page
    # stopped early: the map is an estimate and the report says from how much data, with its standard error
    args[args.index("--shards") + 1] = "8"
    assert main(["analyze", *args, "--rtol", "10", "--out", str(tmp_path / "part"), "--quiet"]) == 0
    part = load_landscape(tmp_path / "part" / "landscape")
    assert part.data_fraction < 1 and part.metrics_stderr["accuracy"].max() > 0
    page = (tmp_path / "part" / "report.html").read_text()
    assert (f"estimated from {100 * part.data_fraction:.1f} % of the data with the loss; largest standard error "
            f"{part.metrics_stderr['accuracy'].max():.3g}") in page
