"""estimate_run / stage_counts: the pass counts of each stage equal what the stages really spend (counted on
the objective), and the times are those counts times the measured unit times. No timing is asserted."""

from __future__ import annotations

import pytest
import torch
from conftest import make_mlp
from torch import nn

from landform import InputError, Objective, grid_landscape, hessian_density, hessian_directions, hessian_trace
from landform.estimate import LANCZOS_HVP_BUDGET, estimate_run, stage_counts
from landform.metrics.perturbation import sharpness


class _Counted:
    """Counts full-data passes made through an objective's public methods."""

    def __init__(self, obj: Objective) -> None:
        self.forwards = self.gradients = self.hvps = 0
        lb, gr, hv = obj.loss_batch, obj.gradient, obj.hvp

        def loss_batch(thetas):
            self.forwards += int(thetas.shape[0])
            return lb(thetas)

        def gradient(*a, **k):
            self.gradients += 1
            return gr(*a, **k)

        def hvp(*a, **k):
            self.hvps += 1
            return hv(*a, **k)

        obj.loss_batch, obj.gradient, obj.hvp = loss_batch, gradient, hvp

    def take(self) -> tuple[int, int, int]:
        out = (self.forwards, self.gradients, self.hvps)
        self.forwards = self.gradients = self.hvps = 0
        return out


@pytest.fixture
def obj():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    return Objective(make_mlp(), (x, y), nn.functional.cross_entropy)


def test_counts_match_the_stages_as_run(obj):
    cfg = dict(dims=2, resolution=(5, 3), trace_hvp=7, density_probes=2, density_steps=9, sharpness_rho=0.1,
               sharpness_samples=5, sharpness_steps=3)
    counts = {s.name: s for s in stage_counts(num_params=obj.num_params, **cfg)}
    c = _Counted(obj)
    d = hessian_directions(obj, 2, seed=0)
    f, g, h = c.take()
    assert (f, g) == (0, 0) and h <= counts["directions"].hvps and counts["directions"].upper_bound
    assert counts["directions"].hvps == LANCZOS_HVP_BUDGET(2, obj.num_params) == min(obj.num_params, 60)
    grid_landscape(obj, d, span=0.5, resolution=(5, 3), progress=False)
    assert c.take() == (counts["grid"].forwards, 0, 0) == (16, 0, 0)
    hessian_trace(obj, method="hutch++", n_hvp=7, seed=0)
    assert c.take() == (0, 0, counts["trace"].hvps) == (0, 0, 7)
    hessian_density(obj, n_probes=2, n_steps=9, seed=0)
    assert c.take() == (0, 0, counts["density"].hvps) == (0, 0, 18)
    for kind in ("average", "worst"):
        sharpness(obj, rho=0.1, kind=kind, n_samples=5, n_steps=3, seed=0)
    assert c.take() == (counts["sharpness"].forwards, counts["sharpness"].gradients, 0) == (15, 3, 0)


def test_options_that_skip_stages(obj):
    s = {x.name: x for x in stage_counts(num_params=obj.num_params, dims=3, resolution=[3], directions="random",
                                          trace_hvp=0, density_probes=0, sharpness_rho=0, report=False)}
    assert set(s) == {"directions", "grid", "trace", "density", "sharpness"}
    assert s["grid"].forwards == 28 and s["directions"].hvps == 0 and not s["directions"].upper_bound
    assert s["trace"].hvps == s["density"].hvps == s["sharpness"].forwards == 0
    assert {x.name: x for x in stage_counts(num_params=10, dims=1, resolution=5, trace_hvp=1)}["trace"].hvps == 3
    with pytest.raises(InputError, match="resolution"):
        stage_counts(num_params=10, dims=2, resolution=[3, 3, 3])


def test_estimate_is_counts_times_unit_times(obj):
    est = estimate_run(obj, dims=2, resolution=7, density_steps=9, report=True, repeats=1)
    for s in est.stages:
        if s.name == "report":
            assert s.seconds >= 5.0  # the stated render allowance plus the topology time
            continue
        assert s.seconds == pytest.approx(s.forwards * est.forward_s + s.gradients * est.gradient_s
                                          + s.hvps * est.hvp_s)
    assert est.points == 49 and est.total_s == pytest.approx(sum(s.seconds for s in est.stages))
    assert est.memory["data"] == 40 * 4 * 4 + 40 * 8  # float32 inputs, int64 targets
    assert est.memory["lanczos_basis"] == min(60, obj.num_params) * obj.num_params * 8
    text = est.table()
    for name in ("directions", "grid", "trace", "density", "sharpness", "report", "memory"):
        assert name in text
    with pytest.raises(InputError, match="repeats"):
        estimate_run(obj, repeats=0)
