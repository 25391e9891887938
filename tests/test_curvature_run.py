"""``landform analyze --per-layer --metric accuracy`` through landform.run: the saved sections equal the library
functions' results, the report shows them, and bad names are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landform import InputError, Objective, random_directions
from landform.curvature import layer_curvature
from landform.pointmetrics import accuracy
from landform.results import load_run
from landform.run import RunConfig, analyze
from landform.topology import basin_statistics

CFG = dict(resolution=5, span=3.0, directions="random", trace_hvp=9, density_probes=0, sharpness_rho=0,
           progress=False)  # fmt: skip


def _objective():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] + 0.3 * torch.randn(40, generator=g) > 0).long()
    return Objective(model, (x, y), nn.functional.cross_entropy, batch_size=15)


def test_per_layer_and_metric_sections_equal_the_library_and_show_in_the_report(tmp_path):
    obj = _objective()
    r = analyze(obj, RunConfig(**CFG, per_layer=True, metrics=("accuracy",)), tmp_path / "run")
    rows = r.extras["per_layer"]
    ref = layer_curvature(obj, trace_hvp=9, tol=1e-3, seed=0)
    assert [x["layer"] for x in rows] == ["0", "2"]
    for a, b in zip(rows, ref, strict=True):
        assert a["top_eigenvalue"] == pytest.approx(b["top_eigenvalue"], rel=1e-9)
        assert a["trace"] == pytest.approx(b["trace"], rel=1e-9)
    ls = load_run(tmp_path / "run").landscape()
    from landform import grid_landscape

    direct = grid_landscape(obj, random_directions(obj, 2, seed=0), span=3.0, resolution=5, progress=False,
                            metrics={"accuracy": accuracy})  # fmt: skip
    np.testing.assert_array_equal(ls.metrics["accuracy"], direct.metrics["accuracy"])
    st = basin_statistics(ls.values, ls.metrics["accuracy"])
    saved = r.extras["basins"]["accuracy"]
    assert [b["size"] for b in saved] == st.size.tolist()
    assert [b["mean"] for b in saved] == pytest.approx(st.mean.tolist())
    page = (tmp_path / "run" / "report.html").read_text()
    assert "id='per-layer'" in page and "id='basins-accuracy'" in page and "id='fig-metric_accuracy'" in page


def test_cli_refuses_an_unknown_metric(tmp_path, capsys):
    from landform.cli import main

    code = main(["analyze", "--metric", "f1", "--resolution", "3", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 1
    assert "metrics: unknown metric 'f1'; built in: accuracy" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown metric 'f1'"):
        RunConfig(metrics=("f1",)).validate()


def test_compare_shows_the_taxonomy_that_runs_carry(tmp_path):
    from landform.curvature_run import taxonomy_stage
    from landform.metrics import taxonomy
    from landform.run import compare

    obj = _objective()
    seeds = []
    for s in range(2):
        torch.manual_seed(s)
        seeds.append(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)))
    data = (obj._batches[0].args[0], obj._batches[0].target)
    cfg = RunConfig(**{**CFG, "resolution": 3, "trace_hvp": 0}, report=False)
    stage = taxonomy_stage(seeds, data, nn.functional.cross_entropy, curve="linear", trace_hvp=6)
    analyze(obj, cfg, tmp_path / "a", extra_stages=[stage])
    analyze(obj, cfg, tmp_path / "b")
    cmp = compare([tmp_path / "a", tmp_path / "b"], None)
    assert cmp.columns[-2:] == ("mc", "phase")
    ref = taxonomy(seeds, data, nn.functional.cross_entropy, curve="linear", trace_hvp=6)
    row_a, row_b = cmp.rows
    assert row_a[-2] == pytest.approx(ref.mc) and row_a[-1] == ref.phase and row_a[-3] == pytest.approx(ref.cka)
    assert row_b[-2:] == [None, None]
