"""Scattered sampling, adaptive refinement and the dimension sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landform import (
    InputError,
    Objective,
    adaptive_landscape,
    dimension_sweep,
    grid_landscape,
    hessian_directions,
    sample_points,
    scattered_landscape,
)
from landform.sampling import ScatteredLandscape
from landform.topology import persistence, smad


@pytest.mark.parametrize("method", ["sobol", "random", "lhs", "ball"])
def test_sample_points(method):
    p = sample_points(200, 3, method=method, span=[1.0, 0.5, (0.0, 2.0)], seed=3)
    assert p.shape == (200, 3) and np.all(p[0] == 0.0)
    assert np.all(np.abs(p[:, 0]) <= 1.0) and np.all(np.abs(p[:, 1]) <= 0.5)
    assert np.all((p[:, 2] >= 0.0) & (p[:, 2] <= 2.0))
    np.testing.assert_array_equal(p, sample_points(200, 3, method=method, span=[1.0, 0.5, (0.0, 2.0)], seed=3))
    if method == "ball":
        u = (p[1:] - np.array([0.0, 0.0, 1.0])) / np.array([1.0, 0.5, 1.0])
        assert np.all(np.linalg.norm(u, axis=1) <= 1.0 + 1e-12)
    if method == "lhs":  # one point per stratum along each axis
        strata = np.floor((p[1:, 0] + 1.0) / 2.0 * 199).astype(int)
        assert len(np.unique(strata)) == 199
    with pytest.raises(InputError, match="method"):
        sample_points(10, 2, method="grid")
    with pytest.raises(InputError, match="n_points"):
        sample_points(1, 2)


class DoubleWell(nn.Module):
    """Parameters w (2,); the loss is a known function of w, so the landscape along e1, e2 is exactly f."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, x):
        return self.w.expand(x.shape[0], 2)


def double_well_loss(out, _y):
    w = out[0]
    return (w[0] ** 2 - 1.0) ** 2 + 0.5 * w[1] ** 2 + 0.2 * w[0]


@pytest.fixture
def well_objective():
    return Objective(DoubleWell(), (torch.zeros(4, 1), torch.zeros(4)), double_well_loss)


def test_scattered_values_are_direct_evaluations(well_objective, tmp_path):
    obj = well_objective
    E = torch.eye(2, dtype=torch.float64)
    pts = sample_points(50, 2, span=1.5, seed=0)
    sl = scattered_landscape(obj, E, pts)
    for p, v in zip(pts[:10], sl.values[:10], strict=True):
        assert v == pytest.approx(obj.loss(torch.as_tensor(p)))
    sl.save(tmp_path / "s.npz")
    back = ScatteredLandscape.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.values, sl.values)
    with pytest.raises(InputError, match="one column per direction"):
        scattered_landscape(obj, E, pts[:, :1])


def test_adaptive_finds_both_wells_and_stops(well_objective):
    res = adaptive_landscape(well_objective, torch.eye(2, dtype=torch.float64), span=1.6, n_initial=64, n_per_round=48)
    hist = res.provenance["adaptive"]["history"]
    assert res.provenance["adaptive"]["converged"]
    assert hist[-1]["significant_minima"] == 2
    assert len(res.values) == 64 + 48 * (len(hist) - 1)
    tree = res.merge_tree()
    pers = res.persistence()
    big = tree.minima[(pers[:, 1] - pers[:, 0]) > 0.2]
    xs = sorted(res.points[big, 0].round(1).tolist())
    assert len(xs) == 2 and xs[0] == pytest.approx(-1.0, abs=0.25) and xs[1] == pytest.approx(1.0, abs=0.25)


def test_dimension_sweep_matches_direct_grids():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (40,), generator=g)
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    d = hessian_directions(obj, 3)
    sweep = dimension_sweep(obj, (1, 2, 3), span=3.0, resolution={1: 21, 2: 11, 3: 7}, directions=d)
    assert [r["dims"] for r in sweep.rows] == [1, 2, 3]
    for r, res in zip(sweep.rows, (21, 11, 7), strict=True):
        ls = grid_landscape(obj, d.vectors[: r["dims"]], span=3.0, resolution=res, progress=False)
        assert r["smad"] == pytest.approx(smad(ls.values))
        pairs = persistence(ls.values)
        R = float(ls.values.max() - ls.values.min())
        assert r["n_significant"] == int(((pairs[:, 1] - pairs[:, 0]) >= 0.02 * R).sum())
    assert "SMAD" in sweep.table() and sweep.eigenvalues[0] >= sweep.eigenvalues[1]
