"""robust_smad, dimension_sweep and the run pipeline share one chain: direction kind -> grid -> merge tree -> SMAD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from landform import Objective
from landform.metrics import robust_smad
from landform.run import RunConfig, analyze
from landform.sampling import dimension_sweep


class _Sin(nn.Module):
    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sin(3 * t)


@pytest.fixture(scope="module")
def wavy():
    """A small sine network whose landscape has several minima within the span used below."""
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, :1] * x[:, 1:2] > 0).long().squeeze(1)
    model = nn.Sequential(nn.Linear(4, 6), _Sin(), nn.Linear(6, 2))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return Objective(model, (x, y), nn.functional.cross_entropy)


def _run(obj, tmp_path, kind, seed, dims=2, resolution=9, span=3.0):
    cfg = RunConfig(dims=dims, resolution=resolution, span=span, directions=kind, seed=seed, trace_hvp=0,
                    density_probes=0, sharpness_rho=0, report=False, progress=False)  # fmt: skip
    return analyze(obj, cfg, tmp_path / f"{Path(kind).stem}-{seed}-{dims}")


@pytest.mark.parametrize("kind", ["random", "filter", "hessian"])
def test_robust_smad_gives_the_numbers_of_a_run(wavy, tmp_path, kind):
    rob = robust_smad(wavy, seeds=(0, 1), directions=kind, span=3.0, resolution=9)
    for i, seed in enumerate((0, 1)):
        topo = _run(wavy, tmp_path, kind, seed).topology
        assert rob.smad[i] == topo.smad and rob.n_minima[i] == topo.n_minima
        assert rob.persistence_range[i] == topo.persistence_range
    assert rob.n_minima.max() > 1 and rob.smad.max() > 0  # a landscape with something to measure


def test_dimension_sweep_rows_are_runs_on_the_top_directions(wavy, tmp_path):
    from landform import hessian_directions

    sweep = dimension_sweep(wavy, (1, 2), span=3.0, resolution={1: 11, 2: 9}, seed=0)
    top = _run(wavy, tmp_path, "hessian", 0, dims=2).topology  # the same Lanczos request as the sweep's
    row = sweep.rows[1]
    assert (row["smad"], row["n_minima"], row["persistence_range"]) == (top.smad, top.n_minima, top.persistence_range)
    # the 1-D row slices those directions: a run on that slice, given as a file, gives its numbers
    path = tmp_path / "top1.npy"
    np.save(path, hessian_directions(wavy, 2, seed=0).vectors[:1].numpy())
    one = _run(wavy, tmp_path, str(path), 0, dims=1, resolution=11).topology
    row = sweep.rows[0]
    assert (row["smad"], row["n_minima"], row["persistence_range"]) == (one.smad, one.n_minima, one.persistence_range)
    assert row["n_minima"] > 1
    # each row's grid comes back with the sweep, and saved and reloaded it gives that row's numbers
    from landform import load_landscape
    from landform._chain import grid_topology

    assert [ls.values.ndim for ls in sweep.landscapes] == [1, 2]
    for r, ls in zip(sweep.rows, sweep.landscapes, strict=True):
        ls.save(tmp_path / f"dims{r['dims']}")
        back = grid_topology(load_landscape(tmp_path / f"dims{r['dims']}").values)
        assert (back.smad, back.tree.n_minima) == (r["smad"], r["n_minima"])
