"""Span units (absolute / relative to ||theta0||), landscaper's conventions, and spans chosen from the curvature."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import perturbed_loss

from landform import (
    InputError,
    Objective,
    auto_span,
    grid_landscape,
    hessian_directions,
    landscaper_span,
    load_landscape,
    normalize_directions,
    random_directions,
    sample_points,
    scattered_landscape,
)
from landform.sampling import adaptive_landscape, dimension_sweep


def _theta0_norm_by_hand(model: torch.nn.Module) -> float:
    return math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in model.parameters() if p.requires_grad))


def test_relative_span_is_the_absolute_grid_of_span_times_theta0_norm(cnn_problem):
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=4)  # orthonormal
    norm = _theta0_norm_by_hand(model)
    rel = grid_landscape(obj, d, span=(0.05, 0.1), span_units="relative", resolution=(7, 5), progress=False)
    dn = d.norms
    ab = grid_landscape(obj, d, span=(0.05 * norm / dn[0], 0.1 * norm / dn[1]), resolution=(7, 5), progress=False)
    np.testing.assert_allclose(rel.values, ab.values, rtol=1e-6)
    for a, b in zip(rel.axes, ab.axes, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-17)
    # unit directions: the same grid as absolute span s * ||theta0|| (to the float32 norm of a unit vector)
    ab2 = grid_landscape(obj, d, span=(0.05 * norm, 0.1 * norm), resolution=(7, 5), progress=False)
    np.testing.assert_allclose(rel.values, ab2.values, rtol=1e-5)
    assert rel.axes[0][-1] == pytest.approx(0.05 * norm, rel=1e-6)
    geo = rel.provenance["geometry"]
    assert geo["span_units"] == "relative" and geo["theta0_norm"] == pytest.approx(norm, rel=1e-12)
    assert geo["relative_span"] == pytest.approx([0.05, 0.1], rel=1e-12)
    assert ab.provenance["geometry"]["span_units"] == "absolute"


def test_relative_edge_is_exactly_that_distance_for_normalised_directions(cnn_problem):
    """'layer'/'numel' directions are not unit vectors: the edge still lies at span * ||theta0||."""
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    norm = _theta0_norm_by_hand(model)
    for normalization in ("layer", "numel"):
        d = random_directions(obj, 2, seed=2, normalization=normalization)
        ls = grid_landscape(obj, d, span=0.2, span_units="relative", resolution=5, progress=False)
        for i in range(2):
            edge = ls.axes[i][-1] * d.vectors[i].double()
            assert float(edge.norm()) == pytest.approx(0.2 * norm, rel=1e-6), normalization
        ref = perturbed_loss(model, data, loss_fn, [ls.axes[0][-1], ls.axes[1][0]], d.vectors)
        assert ls.values[-1, 0] == pytest.approx(ref, rel=2e-5)


def test_geometry_round_trips_through_the_store(cnn_problem, tmp_path):
    obj = Objective(*cnn_problem)
    d = random_directions(obj, 2, seed=0, normalization="numel")
    ls = grid_landscape(
        obj, d, span=[0.1, (-0.05, 0.2)], span_units="relative", resolution=5, out=str(tmp_path / "a"), progress=False
    )
    back = load_landscape(tmp_path / "a")
    assert back.provenance["geometry"] == ls.provenance["geometry"]
    assert back.provenance["geometry"]["span"] == [0.1, [-0.05, 0.2]]
    assert back.directions["normalization"] == "numel"
    ls.save(tmp_path / "b")
    rs = load_landscape(tmp_path / "b").provenance["geometry"]["relative_span"]
    assert rs[0] == pytest.approx(0.1) and rs[1] == pytest.approx([-0.05, 0.2])
    # a relative run and an absolute run of another span do not share a store
    with pytest.raises(Exception, match="different|fingerprint|another"):
        grid_landscape(obj, d, span=0.1, resolution=5, out=str(tmp_path / "a"), progress=False)


def test_numel_normalisation_is_landscapers_release_convention(cnn_problem):
    """Each tensor block of the direction gets norm sqrt(numel), keeping the raw direction's orientation."""
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    raw = random_directions(obj, 2, seed=5).vectors.double()
    d = random_directions(obj, 2, seed=5, normalization="numel")
    for r, v in zip(raw, d.vectors.double(), strict=True):
        i = 0
        for p in model.parameters():
            k = p.numel()
            block, rblock = v[i : i + k], r[i : i + k]
            want = rblock * math.sqrt(k) / float(rblock.norm())  # landscaper 1.3.1 normalize_direction
            torch.testing.assert_close(block, want, rtol=1e-6, atol=1e-7)
            i += k
    assert d.metadata()["norms"] == pytest.approx([math.sqrt(obj.num_params)] * 2, rel=1e-6)
    # given directions: the same rescaling
    again = normalize_directions(obj, random_directions(obj, 2, seed=5), "numel")
    torch.testing.assert_close(again.vectors, d.vectors)
    assert again.normalization == "numel" and again.kind == "random"


def test_landscaper_span_reproduces_its_stepping(mlp_problem):
    """landscaper steps k * ||theta0|| * distance / (steps / 2), k = -(steps//2)..steps//2."""
    obj = Objective(*mlp_problem)
    d = random_directions(obj, 1, seed=0, normalization="numel")
    for distance, steps in [(0.05, 51), (0.5, 11), (0.3, 7)]:
        ls = grid_landscape(
            obj, d, span=landscaper_span(distance, steps), span_units="relative", resolution=steps, progress=False
        )
        geo = ls.provenance["geometry"]
        shown = ls.axes[0] * geo["direction_norms"][0] / geo["theta0_norm"]
        k = np.arange(steps) - steps // 2
        np.testing.assert_allclose(shown, k * distance / (steps / 2), rtol=1e-12, atol=1e-15)
    assert landscaper_span(0.05, 51) == 0.05 * 25 / 25.5
    with pytest.raises(InputError, match="steps"):
        landscaper_span(0.05, 1)


def test_scattered_adaptive_and_sweep_take_relative_units(mlp_problem):
    model, data, loss_fn = mlp_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=1, normalization="layer")
    norm = _theta0_norm_by_hand(model)
    pts = sample_points(20, 2, span=0.1, seed=0)
    rel = scattered_landscape(obj, d, pts, span_units="relative")
    ab = scattered_landscape(obj, d, pts * norm / d.norms[None, :])
    np.testing.assert_allclose(rel.points, ab.points, rtol=1e-12)
    np.testing.assert_allclose(rel.values, ab.values, rtol=1e-6)
    assert rel.provenance["geometry"]["span_units"] == "relative"
    ad = adaptive_landscape(obj, d, span=0.1, span_units="relative", n_initial=16, n_per_round=8, max_rounds=1)
    lim = 0.1 * norm / d.norms
    assert np.all(np.abs(ad.points) <= lim[None, :] * (1 + 1e-12))
    assert np.abs(ad.points).max(axis=0) == pytest.approx(lim, rel=0.3)  # the box is the relative one, not 0.1
    sw = dimension_sweep(obj, (1, 2), span=0.1, span_units="relative", resolution={1: 5, 2: 5}, directions=d)
    assert sw.rows[1]["span"] == pytest.approx(list(lim), rel=1e-12)


def test_auto_span_from_eigenvalues_and_from_hvp_against_dense_hessian(mlp_problem):
    model, data, loss_fn = mlp_problem
    obj = Objective(model, data, loss_fn)
    h = hessian_directions(obj, 2, seed=0)
    a = auto_span(obj, h, rise=0.3)
    assert a.source == "eigenvalues" and a.n_hvp == 0 and a.rules == ("curvature", "curvature")
    assert a.span == pytest.approx(tuple(np.sqrt(2 * 0.3 / h.eigenvalues[:2])), rel=1e-12)
    # random directions: d^T H d with one HVP each, against the dense Hessian
    theta0 = obj.theta0.detach().double()
    H = torch.autograd.functional.hessian(lambda t: _loss_at(model, data, loss_fn, t), theta0)
    d = random_directions(obj, 3, seed=2, normalization="layer")
    b = auto_span(obj, d, rise=0.5)
    c = torch.einsum("ip,pq,iq->i", d.vectors.double(), H, d.vectors.double()).numpy()
    assert b.source == "hvp" and b.n_hvp == 3
    np.testing.assert_allclose(b.curvatures, c, rtol=1e-4)
    np.testing.assert_allclose(b.span, np.sqrt(2 * 0.5 / np.abs(c)), rtol=1e-4)
    # the quadratic model's rise at the edge is the stated rise
    for i in range(3):
        s = b.span[i]
        assert 0.5 * s * s * abs(float(d.vectors[i].double() @ H @ d.vectors[i].double())) == pytest.approx(
            0.5, rel=1e-4
        )
    ls = grid_landscape(obj, d, span=b, resolution=5, progress=False)
    assert ls.axes[2][-1] == pytest.approx(b.span[2]) and ls.provenance["geometry"]["auto"]["rise"] == 0.5
    # Hessian directions rescaled per tensor are no eigenvectors any more: their curvature is measured
    hn = hessian_directions(obj, 2, seed=0, normalization="numel")
    assert hn.norms == pytest.approx([math.sqrt(obj.num_params)] * 2, rel=1e-6)
    cn = auto_span(obj, hn, rise=0.3)
    assert cn.source == "hvp" and cn.curvatures == pytest.approx(
        tuple(torch.einsum("ip,pq,iq->i", hn.vectors.double(), H, hn.vectors.double()).numpy()), rel=1e-4
    )
    ls2 = grid_landscape(obj, h, span="auto", resolution=3, progress=False)
    assert ls2.axes[0][-1] == pytest.approx(math.sqrt(2 / h.eigenvalues[0]))


def _loss_at(model, data, loss_fn, theta):
    from torch.func import functional_call

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for p in model.parameters() if p.requires_grad]
    parts = torch.split(theta, [int(np.prod(s)) for s in shapes])
    params = {n: t.view(s).to(torch.float32) for n, s, t in zip(names, shapes, parts, strict=True)}
    x, y = data
    return loss_fn(functional_call(model, params, (x,)), y).double()


class _Quad(torch.nn.Module):
    """Loss = 0.5 * (a w0^2 - b w1^2) + 0 * w2: curvature a, -b and 0 along the coordinate axes."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.1]))

    def forward(self, x):
        return (0.5 * (4.0 * self.w[0] ** 2 - 1.0 * self.w[1] ** 2) + 0.0 * self.w[2]) * torch.ones(x.shape[0])


def test_auto_span_negative_and_flat_curvature_rules():
    obj = Objective(_Quad(), (torch.zeros(4, 1), torch.zeros(4)), lambda out, y: out.mean())
    a = auto_span(obj, torch.eye(3), rise=2.0)
    assert a.curvatures == pytest.approx((4.0, -1.0, 0.0), abs=1e-6)
    assert a.rules == ("curvature", "negative curvature", "flat")
    assert a.span[0] == pytest.approx(1.0) and a.span[1] == pytest.approx(2.0)
    assert a.span[2] == pytest.approx(2.0)  # flat: the widest distance among the other axes
    with pytest.raises(InputError, match="zero curvature"):
        auto_span(obj, torch.eye(3)[2:], rise=1.0)


def test_bad_geometry_arguments(mlp_problem):
    obj = Objective(*mlp_problem)
    d = random_directions(obj, 2, seed=0)
    with pytest.raises(InputError, match="span_units"):
        grid_landscape(obj, d, span=0.1, span_units="percent", resolution=3, progress=False)
    with pytest.raises(InputError, match="rise"):
        auto_span(obj, d, rise=0.0)
    with pytest.raises(InputError, match="rise"):
        auto_span(obj, d, rise="1")
    other = auto_span(obj, random_directions(obj, 2, seed=1))
    with pytest.raises(InputError, match="other directions"):
        grid_landscape(obj, d, span=other, resolution=3, progress=False)
    with pytest.raises(InputError, match="'auto'"):
        grid_landscape(obj, d, span="wide", resolution=3, progress=False)
    with pytest.raises(InputError, match="span_units"):
        scattered_landscape(obj, d, np.zeros((2, 2)), span_units="rel")


def test_relative_axes_are_plotted_over_theta0_norm(cnn_problem):
    from landform.plot import plot_contour

    obj = Objective(*cnn_problem)
    d = random_directions(obj, 2, seed=0, normalization="numel")  # ||d_i|| = sqrt(P), not ||theta0||
    ls = grid_landscape(obj, d, span=(0.1, 0.3), span_units="relative", resolution=5, progress=False)
    ax = plot_contour(ls)
    assert ax.get_xlim() == pytest.approx((-0.1, 0.1)) and ax.get_ylim() == pytest.approx((-0.3, 0.3))
    assert "‖θ₀‖" in ax.get_xlabel()
    ab = grid_landscape(obj, d, span=(0.1, 0.3), resolution=5, progress=False)
    ax2 = plot_contour(ab)
    assert ax2.get_xlim() == pytest.approx((-0.1, 0.1)) and "‖θ₀‖" not in ax2.get_xlabel()


@pytest.mark.slow  # a subprocess run of the example (about 20 s); the paper geometry itself is tested above
def test_fit_regimes_example_in_the_papers_geometry(tmp_path):
    """`--geometry paper` (at --tiny size): numel-normalised Hessian directions on landscaper's grid, one run per
    regime and seed."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "fit_regimes.py"
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(script), "--tiny", "--geometry", "paper", "--train-seeds", "2", "--steps", "5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "table.json").read_text())
    assert sorted((r["regime"], r["seed"]) for r in rows) == sorted(
        (g, s) for g in ("underfit", "well-fit", "overfit") for s in (0, 1)
    )
    ls = load_landscape(out / "overfit-s1" / "landscape")
    geo = ls.provenance["geometry"]
    assert ls.shape == (5, 5) and ls.directions["normalization"] == "numel" and ls.directions["kind"] == "hessian"
    assert geo["span_units"] == "relative"
    assert geo["relative_span"] == pytest.approx([landscaper_span(0.05, 5)] * 2, rel=1e-12)
    reports = sorted(p.parent.name for p in out.glob("*/report.html"))
    assert reports == ["underfit-s0"]  # seed 0 only, and at --tiny only the first run


_RECIPE = """
import torch
from torch import nn

def recipe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    return model, (x, y), nn.functional.cross_entropy
"""


def test_cli_span_units_normalization_and_auto_span(tmp_path, capsys):
    from landform.cli import main
    from landform.results import load_directions

    rf = tmp_path / "r.py"
    rf.write_text(_RECIPE)
    quick = ["--quiet", "--no-report", "--trace-hvp", "0", "--density-probes", "0", "--sharpness-rho", "0"]
    out = tmp_path / "rel"
    args = ["--directions", "random", "--normalization", "numel", "--span-units", "relative", "--span", "0.1"]
    assert main(["analyze", str(rf), *args, "--resolution", "5", "--out", str(out), *quick]) == 0
    printed = capsys.readouterr().out
    ls = load_landscape(out / "landscape")
    geo = ls.provenance["geometry"]
    assert ls.directions["normalization"] == "numel" and geo["span_units"] == "relative"
    assert geo["relative_span"] == pytest.approx([0.1, 0.1], rel=1e-12)
    assert "0.1, 0.1 x ||theta0|| (||theta0|| = " in printed  # relative: the fraction first, then the norm
    # --span auto: each edge where the quadratic model (dense Hessian) rises by --rise
    out2 = tmp_path / "auto"
    args2 = ["--directions", "random", "--span", "auto", "--rise", "0.5", "--resolution", "5"]
    assert main(["analyze", str(rf), *args2, "--out", str(out2), *quick]) == 0
    printed = capsys.readouterr().out
    assert "auto (rise 0.5)" in printed
    d = torch.as_tensor(load_directions(out2 / "directions.npz").vectors).double()
    ns: dict = {}
    exec(_RECIPE, ns)
    model, data, loss_fn = ns["recipe"]()
    H = torch.autograd.functional.hessian(lambda t: _loss_at(model, data, loss_fn, t), _flat(model))
    c = torch.einsum("ip,pq,iq->i", d, H, d).numpy()
    ls2 = load_landscape(out2 / "landscape")
    np.testing.assert_allclose([a[-1] for a in ls2.axes], np.sqrt(2 * 0.5 / np.abs(c)), rtol=1e-4)
    assert json.loads((out2 / "summary.json").read_text())["geometry"]["auto"]["rise"] == 0.5
    # bad values are refused with the flag's name
    assert main(["analyze", str(rf), "--rise", "0", "--span", "auto", "--out", str(tmp_path / "x"), *quick]) == 1
    assert "rise" in capsys.readouterr().err
    # an automatic span is a coefficient span: relative units are refused, not silently dropped
    bad = ["--span", "auto", "--span-units", "relative", "--out", str(tmp_path / "y")]
    assert main(["analyze", str(rf), *bad, *quick]) == 1
    assert "span_units (--span-units): span 'auto'" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_resolve_span_refuses_relative_units_for_an_automatic_span(mlp_problem):
    from landform.geometry import auto_span, resolve_span

    obj = Objective(*mlp_problem)
    d = random_directions(obj, 2, seed=0)
    for span in ("auto", auto_span(obj, d)):
        with pytest.raises(InputError, match="span_units: a span chosen from the curvature"):
            resolve_span(obj, d, span, "relative")
        with pytest.raises(InputError, match="span_units: a span chosen from the curvature"):
            grid_landscape(obj, d, span=span, span_units="relative", resolution=3, progress=False)


def _flat(model):
    return torch.cat([p.detach().double().reshape(-1) for p in model.parameters()])


def test_run_config_geometry_fields_are_validated():
    from landform.run import RunConfig

    for bad in [dict(span_units="percent"), dict(normalization="filter"), dict(normalization="unit"),
                dict(rise=-1.0), dict(span="wide"), dict(directions="filter", normalization="numel")]:  # fmt: skip
        with pytest.raises(InputError, match=next(iter(bad)) if "directions" not in bad else "normalization"):
            RunConfig(**bad).validate()
