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


# ----------------------------------------------------------------------------- the run stage (--eigenvalue-map)
def _tiny_objective():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    x, y = torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 1, generator=g, dtype=torch.float64)
    return model, x, y, Objective(model, (x, y), nn.functional.mse_loss)


def test_run_stage_matches_dense_hessians_on_the_landscapes_points_and_is_cached(tmp_path):
    import json

    from landform.estimate import stage_counts
    from landform.results import load_run
    from landform.run import RunConfig, analyze

    model, x, y, obj = _tiny_objective()
    P = obj.num_params  # 13: the Lanczos budget per eigenvalue is min(P, 60) = 13
    cfg = RunConfig(resolution=5, span=2.0, directions="random", trace_hvp=0, density_probes=0, sharpness_rho=0,
                    progress=False, eigenvalue_map=3, eigenvalue_map_smallest=True)  # fmt: skip
    r = analyze(obj, cfg, tmp_path / "run")
    em = load_eigenvalue_map(tmp_path / "run" / "eigenvalue_map.npz")
    ls = r.landscape()
    assert [a.tolist() for a in em.axes] == [ls.axes[0][[0, 2, 4]].tolist(), ls.axes[1][[0, 2, 4]].tolist()]
    d = random_directions(obj, 2, seed=0)
    for i, a in enumerate(em.axes[0]):
        for j, b in enumerate(em.axes[1]):
            theta = obj.theta0 + float(a) * d.vectors[0] + float(b) * d.vectors[1]
            H = _dense_hessian_at(model.eval(), x, y, nn.functional.mse_loss, theta).numpy()
            ev = np.linalg.eigvalsh(H)
            assert em.values["LA"][i, j] == pytest.approx(ev[-1], rel=1e-4, abs=1e-8), (i, j)
            assert em.values["SA"][i, j] == pytest.approx(ev[0], rel=1e-4, abs=1e-6), (i, j)
    assert em.values["SA"].min() < 0 < em.values["LA"].min()  # two different ends of the spectrum
    sec = r.extras["eigenvalue_map"]
    assert sec["n_hvp"] == em.n_hvp and sec["shape"] == [3, 3] and sec["which"] == ["LA", "SA"]
    assert sec["LA"] == {"min": float(em.values["LA"].min()), "max": float(em.values["LA"].max())}
    # the estimate's count is the stage's Lanczos budget; the stage spends at most that and its residual checks
    est = {s.name: s for s in stage_counts(num_params=P, dims=2, resolution=5, eigenvalue_map=3,
                                           eigenvalue_map_smallest=True)}  # fmt: skip
    assert est["eigen map"].hvps == sec["hvp_budget"] == 9 * 2 * P and est["eigen map"].upper_bound
    assert 9 * 2 * 2 <= sec["n_hvp"] <= sec["hvp_budget"] + 9 * 2 * 3
    page = (tmp_path / "run" / "report.html").read_text()
    assert "id='fig-eigenvalue_map_LA'" in page and "id='fig-eigenvalue_map_SA'" in page
    assert f"{em.n_hvp:,} HVPs spent" in page
    # a rerun reuses the saved map; a changed setting recomputes it
    stamp = (tmp_path / "run" / "eigenvalue_map.npz").stat().st_mtime_ns
    again = analyze(obj, cfg, tmp_path / "run")
    assert "eigenvalue_map_s" not in again.timings and again.extras["eigenvalue_map"] == sec
    assert (tmp_path / "run" / "eigenvalue_map.npz").stat().st_mtime_ns == stamp
    only_top = analyze(obj, RunConfig(**{**cfg.to_dict(), "eigenvalue_map_smallest": False}), tmp_path / "run")
    assert "eigenvalue_map_s" in only_top.timings and list(load_eigenvalue_map(tmp_path / "run" /
                                                                               "eigenvalue_map.npz").values) == ["LA"]
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["eigenvalue_map"]["which"] == ["LA"] and load_run(tmp_path / "run").extras["eigenvalue_map"]


def test_a_saved_map_is_reused_only_on_its_own_directions_and_points(tmp_path):
    from types import SimpleNamespace

    from landform.curvature_run import EIGENVALUE_MAP_FILE, eigenvalue_map_valid
    from landform.eigenmap import EigenvalueMap
    from landform.results import Landscape

    axes = (np.linspace(-1, 1, 5), np.linspace(-2, 2, 5))
    ls = Landscape(np.zeros((5, 5)), axes, {"fingerprint": "abc"})
    sub = (axes[0][[0, 2, 4]], axes[1][[0, 2, 4]])
    EigenvalueMap(sub, {"LA": np.ones((3, 3))}, {"LA": np.zeros((3, 3))}, 10, directions={"fingerprint": "abc"},
                  provenance={"key": "k1"}).save(tmp_path / EIGENVALUE_MAP_FILE)  # fmt: skip

    def ctx(landscape, points=3):
        return SimpleNamespace(out=tmp_path, landscape=landscape, config=SimpleNamespace(eigenvalue_map=points))

    assert eigenvalue_map_valid(ctx(ls), "k1")
    assert not eigenvalue_map_valid(ctx(ls), "k2")  # other settings or objective
    assert not eigenvalue_map_valid(ctx(Landscape(ls.values, axes, {"fingerprint": "xyz"})), "k1")  # directions
    assert not eigenvalue_map_valid(ctx(Landscape(ls.values, (axes[0], 2 * axes[1]), ls.directions)), "k1")  # span
    assert not eigenvalue_map_valid(ctx(ls, points=5), "k1")  # other points


def test_cli_flag_estimate_and_bad_points(tmp_path, capsys):
    import textwrap

    from landform import InputError
    from landform.cli import build_parser, main
    from landform.run import RunConfig

    p = build_parser()
    assert p.parse_args(["analyze", "--eigenvalue-map"]).eigenvalue_map == 5
    assert p.parse_args(["analyze", "--eigenvalue-map", "7"]).eigenvalue_map == 7
    assert p.parse_args(["analyze"]).eigenvalue_map == 0
    rec = tmp_path / "rec.py"
    rec.write_text(textwrap.dedent("""
        import torch
        def recipe():
            torch.manual_seed(0)
            return torch.nn.Linear(4, 2), (torch.randn(8, 4), torch.randint(0, 2, (8,))), torch.nn.functional.cross_entropy
        """))  # fmt: skip
    base = ["analyze", str(rec), "--resolution", "9", "--directions", "random", "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*base, "--estimate", "--eigenvalue-map", "3", "--eigenvalue-map-smallest"]) == 0
    text = capsys.readouterr().out  # P = 10: Lanczos of at most 10 HVPs at each of 9 points, for 2 eigenvalues
    line = next(x for x in text.splitlines() if x.strip().startswith("eigen map"))
    assert line.split()[2:6] == ["0", "0", "180", "<="]  # forwards, gradients, HVPs, an upper bound
    assert "9 points x 2 eigenvalue(s), Lanczos <= 10 HVPs each" in line
    assert not (tmp_path / "r" / "landscape").exists()
    assert main([*base, "--eigenvalue-map", "1"]) == 1
    assert "eigenvalue_map (--eigenvalue-map): a map needs at least 2 points per axis" in capsys.readouterr().err
    with pytest.raises(InputError, match="eigenvalue_map_smallest"):
        RunConfig(eigenvalue_map_smallest=1).validate()


def test_plot_over_the_landscapes_coordinates_and_the_map_loads_without_torch(tmp_path):
    import subprocess
    import sys

    from landform.eigenmap import EigenvalueMap
    from landform.plot import plot_eigenvalue_map
    from landform.results import Landscape

    ls = Landscape(np.add.outer(np.linspace(-1, 1, 9) ** 2, np.linspace(-3, 3, 7) ** 2), (np.linspace(-1, 1, 9),
                   np.linspace(-3, 3, 7)))  # fmt: skip
    em = EigenvalueMap((np.array([-0.5, 0.5]), np.array([-1.0, 0.0, 1.0])), {"LA": np.arange(6.0).reshape(2, 3)},
                       {"LA": np.zeros((2, 3))}, 12)  # fmt: skip
    bare = plot_eigenvalue_map(em)
    ax = plot_eigenvalue_map(em, landscape=ls)
    assert ax.get_xlim() == (-1.0, 1.0) and ax.get_ylim() == (-3.0, 3.0)  # the loss's coordinates, not the map's
    assert len(ax.collections) > len(bare.collections)  # the loss's contour lines drawn over the map
    em.save(tmp_path / "m.npz")
    code = (
        "import sys; from landform.eigenmap import load_eigenvalue_map as L; "
        f"m = L({str(tmp_path / 'm.npz')!r}); assert m.values['LA'][1, 2] == 5.0; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
