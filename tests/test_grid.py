from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import perturbed_loss

from landform import InputError, Objective, grid_axes, grid_landscape, random_directions


@pytest.mark.parametrize("resolution, span", [((7,), 0.5), ((5, 3), (0.5, 1.0)), ((3, 4, 5), ((-0.2, 0.4), 0.3, 1.0))])
def test_grid_values_equal_hand_perturbed_model(cnn_problem, resolution, span):
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    n = len(resolution)
    d = random_directions(obj, n, seed=3)
    ls = grid_landscape(obj, d, span=span, resolution=resolution, progress=False)
    assert ls.values.shape == tuple(resolution)
    rng = np.random.default_rng(0)
    # every point of small grids, a sample of larger ones; non-square grids catch any transposition
    idxs = list(np.ndindex(*resolution))
    for idx in [idxs[i] for i in rng.choice(len(idxs), size=min(len(idxs), 12), replace=False)]:
        coeffs = [ls.axes[k][idx[k]] for k in range(n)]
        ref = perturbed_loss(model, data, loss_fn, coeffs, d.vectors)
        assert ls.values[idx] == pytest.approx(ref, rel=2e-5, abs=1e-6), idx


def test_centre_is_exact_and_axes_are_real_displacements(cnn_problem):
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=0)
    ls = grid_landscape(obj, d, span=(1.0, 0.3), resolution=(5, 7), progress=False)
    assert ls.axes[0][2] == 0.0 and ls.axes[1][3] == 0.0
    assert ls.values[2, 3] == ls.center_value == obj.loss()
    # the last grid point is exactly the span (no (steps//2)/(steps/2) shortfall)
    assert ls.axes[0][-1] == 1.0 and ls.axes[0][0] == -1.0 and ls.axes[1][-1] == pytest.approx(0.3)
    # unit directions: the coordinate is the Euclidean distance moved in parameter space
    theta = obj.theta0 + ls.axes[0][-1] * d.vectors[0] + ls.axes[1][0] * d.vectors[1]
    dist = float((theta - obj.theta0).double().norm())
    assert dist == pytest.approx(np.hypot(1.0, 0.3), rel=1e-5)


@pytest.mark.filterwarnings("ignore:grid_landscape. axis 1 has an even resolution")
@pytest.mark.parametrize("resolution", [(5, 5), (5, 4)])
def test_axis_orientation_at_asymmetric_points(mlp_problem, resolution):
    """values[i, j] belongs to (axes[0][i], axes[1][j]), checked where both coordinates are non-zero and every
    axis is asymmetric about the centre: a transposed grid, or one flipped along either axis, fails."""
    model, data, loss_fn = mlp_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=0)
    ls = grid_landscape(obj, d, span=[(-0.2, 0.6), (-1.0, 1.4)], resolution=resolution, progress=False)
    assert ls.values.shape == resolution
    r0, r1 = resolution
    for i, j in [(3, 1), (0, r1 - 1), (r0 - 1, 0), (r0 - 1, r1 - 2)]:
        a0, a1 = ls.axes[0][i], ls.axes[1][j]
        assert a0 != 0 and a1 != 0 and a0 != -ls.axes[0][r0 - 1 - i] and a1 != -ls.axes[1][r1 - 1 - j]
        ref = perturbed_loss(model, data, loss_fn, [a0, a1], d.vectors)
        assert ls.values[i, j] == pytest.approx(ref, rel=1e-5, abs=1e-7), (i, j)
        # the mirror images of this point are other losses (so a flip could not pass by symmetry)
        for k, l in [(r0 - 1 - i, j), (i, r1 - 1 - j)] + ([(j, i)] if r0 == r1 else []):
            assert abs(ls.values[k, l] - ref) > 1e-4, ((i, j), (k, l))


def test_grid_axes_snaps_centre_and_handles_ranges():
    ax = grid_axes([(-0.3, 0.9), 1.0], [5, 4], 2)
    assert ax[0][1] == 0.0 and len(ax[1]) == 4
    assert ax[0][0] == -0.3 and ax[0][-1] == 0.9 and not np.any(ax[1] == 0.0)
    # an integer too large for float64 is bad input, named, not an OverflowError from float()
    for span in (10**400, [(0, 10**400)]):
        with pytest.raises(InputError, match="span: axis 0 .*float64"):
            grid_axes(span, 3, 1)


def test_even_resolution_warns_centre_missing(mlp_problem):
    obj = Objective(*mlp_problem)
    with pytest.warns(UserWarning, match="even resolution"):
        grid_landscape(obj, random_directions(obj, 1), span=1.0, resolution=4, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"span": 0.0}, "span"),
        ({"span": -1.0}, "span"),
        ({"span": [(1.0, -1.0), 1.0]}, "lo < hi"),
        ({"resolution": 1}, "resolution >= 2"),
        ({"resolution": [5, 5, 5]}, "one entry per direction"),
        ({"span": float("nan")}, "finite"),
        ({"span": 1e308}, "overflows float64"),  # finite, but hi - lo is not: the grid would be NaN
        ({"span": [(-1e308, 1e308), 1.0]}, "overflows float64"),
        ({"span": [1.0, (1e16, 1e16 + 4)]}, "axis 1 .* 5 distinct"),  # float64 steps of 2 there: points would repeat
        # not numbers, or beyond float64: an InputError naming the span, not a TypeError/ValueError/OverflowError
        ({"span": 10**400}, "span: axis 0"),
        ({"span": [(-(10**400), 1.0), 1.0]}, "span: axis 0"),
        ({"span": [1.0, None]}, "span: axis 1"),
        ({"span": [1.0, ("a", 1.0)]}, "span: axis 1"),
        ({"span": ["1.0", 1.0]}, "span: axis 0"),  # was read as 1.0 by the span conversion
        ({"span": [1.0, ("a", 1.0)], "span_units": "relative"}, "span: axis 1"),
        ({"span": 10**400, "span_units": "relative"}, "span: axis 0"),
        # finite as given, infinite times ||theta0|| (1.75 here): named as the relative span it is, not as "inf"
        ({"span": [1.0, 1.5e308], "span_units": "relative"}, r"axis 1 has 1.5e\+308 \(relative\)"),
    ],
)
def test_bad_grid_arguments(mlp_problem, kwargs, match):
    obj = Objective(*mlp_problem)
    args = {"span": 1.0, "resolution": 5, **kwargs}
    with pytest.raises(InputError, match=match):
        grid_landscape(obj, random_directions(obj, 2), progress=False, **args)


def test_bad_directions(mlp_problem):
    obj = Objective(*mlp_problem)
    P = obj.num_params
    with pytest.raises(InputError, match=r"\(n, P\)"):
        grid_landscape(obj, torch.randn(2, P + 1), progress=False)
    with pytest.raises(InputError, match="all zeros"):
        grid_landscape(obj, torch.zeros(2, P), progress=False)
    with pytest.raises(InputError, match="NaN"):
        grid_landscape(obj, torch.full((1, P), float("nan")), progress=False)
    with pytest.raises(InputError, match="missing"):
        grid_landscape(obj, [{"0.weight": torch.zeros(5, 4)}], progress=False)


def test_per_parameter_dict_directions(mlp_problem):
    model, data, loss_fn = mlp_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=4)
    dicts = [obj.layout.unflatten(v) for v in d.vectors]
    a = grid_landscape(obj, d, span=0.5, resolution=3, progress=False)
    b = grid_landscape(obj, dicts, span=0.5, resolution=3, progress=False)
    np.testing.assert_array_equal(a.values, b.values)


def test_nonfinite_losses_are_kept_and_flagged(mlp_problem):
    model, data, _ = mlp_problem

    def loss_fn(out, y):
        # explodes to inf far from the centre
        return torch.where(out.abs().max() > 3.0, torch.tensor(float("inf")), out.pow(2).mean())

    obj = Objective(model, data, loss_fn)
    with pytest.warns(UserWarning, match="NaN or inf"):
        ls = grid_landscape(obj, random_directions(obj, 1, seed=0), span=50.0, resolution=9, progress=False)
    assert ls.n_nonfinite > 0
    assert np.isinf(ls.values).sum() == ls.n_nonfinite
    assert np.isfinite(ls.values[4])
    with pytest.raises(Exception, match="not finite"):
        ls.smad()
