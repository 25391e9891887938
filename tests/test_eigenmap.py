"""The eigenvalue map against dense Hessians at every grid point; its file round trip and its figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landform import InputError, Objective, random_directions
from landform.curvature import eigenvalue_map
from landform.eigenmap import load_eigenvalue_map


def _dense_hessian_at(model, x, y, loss_fn, theta):
    named = [(n, p) for n, p in model.named_parameters()]

    def f(t):
        params, i = {}, 0
        for n, p in named:
            params[n] = t[i : i + p.numel()].view_as(p)
            i += p.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(f, theta)


def test_map_matches_dense_extreme_eigenvalues_at_every_point(capsys):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    x, y = torch.randn(20, 3, generator=g, dtype=torch.float64), torch.randn(20, 1, generator=g, dtype=torch.float64)
    obj = Objective(model, (x, y), nn.functional.mse_loss)
    d = random_directions(obj, 2, seed=0)
    em = eigenvalue_map(obj, d, span=2.0, resolution=3, which=("LA", "SA"), tol=1e-8)
    err = capsys.readouterr().err
    assert "9 points x 2 eigenvalue(s)" in err and f"spent {em.n_hvp:,} HVPs" in err
    for i, a in enumerate(em.axes[0]):
        for j, b in enumerate(em.axes[1]):
            theta = obj.theta0 + a * d.vectors[0] + b * d.vectors[1]
            ev = torch.linalg.eigvalsh(_dense_hessian_at(model.eval(), x, y, nn.functional.mse_loss, theta))
            assert em.values["LA"][i, j] == pytest.approx(float(ev[-1]), rel=1e-6)
            assert em.values["SA"][i, j] == pytest.approx(float(ev[0]), rel=1e-5, abs=1e-8)
    assert em.values["LA"].std() > 1e-3 * abs(em.values["LA"]).mean()  # the curvature changes over the plane
    assert em.values["SA"].min() < 0  # negative curvature somewhere: SA is not LA
    with torch.no_grad():
        assert obj.loss() == pytest.approx(float(nn.functional.mse_loss(model(x), y)))  # the objective is untouched


def test_round_trip_and_figure(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    obj = Objective(model, (torch.randn(10, 3), torch.randint(0, 2, (10,))), nn.functional.cross_entropy)
    em = eigenvalue_map(obj, random_directions(obj, 2), span=1.0, resolution=(3, 2), which="LA", verbose=False)
    em.save(tmp_path / "m.npz")
    back = load_eigenvalue_map(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.values["LA"], em.values["LA"])
    assert back.n_hvp == em.n_hvp and [a.tolist() for a in back.axes] == [a.tolist() for a in em.axes]
    from landform.plot import plot_eigenvalue_map

    ax = plot_eigenvalue_map(back)
    assert "HVPs" in ax.get_title()
    with pytest.raises(InputError, match="this map holds"):
        plot_eigenvalue_map(back, which="SA")


def test_bad_which():
    obj = Objective(nn.Linear(3, 1), (torch.randn(4, 3), torch.randn(4, 1)), nn.functional.mse_loss)
    with pytest.raises(InputError, match="which: expected 'LA', 'SA' or both"):
        eigenvalue_map(obj, random_directions(obj, 1), which=("LM",), verbose=False)
