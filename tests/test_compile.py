"""grid_landscape(compile=...): torch.compile of the loss gives the eager values to float32 rounding, and
"auto" compiles only when the grid pays back the compile time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import make_mlp
from torch import nn

import landform.evaluate as ev
from landform import InputError, Objective, grid_landscape, random_directions


def _compile_unavailable() -> str | None:
    try:
        import torch._dynamo  # noqa: F401
    except Exception as exc:  # pragma: no cover
        return f"torch._dynamo cannot be imported ({exc})"
    if not torch._dynamo.is_dynamo_supported():  # pragma: no cover
        return "torch.compile is not supported on this Python/platform"
    if shutil.which("g++") is None and shutil.which("c++") is None and shutil.which("clang++") is None:
        return "torch.compile's CPU backend (inductor) needs a C++ compiler; none is on PATH"  # pragma: no cover
    return None


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)
    obj = Objective(make_mlp(), (x, y), nn.functional.cross_entropy, batch_size=16)
    return obj, random_directions(obj, 2, seed=0)


@pytest.mark.skipif(_compile_unavailable() is not None, reason=str(_compile_unavailable()))
def test_compiled_values_equal_eager(problem, monkeypatch):
    obj, d = problem
    eager = grid_landscape(obj, d, span=1.0, resolution=3, progress=False)
    comp = grid_landscape(obj, d, span=1.0, resolution=3, progress=False, compile=True)
    assert comp.provenance["compiled"] and not eager.provenance["compiled"]
    np.testing.assert_allclose(comp.values, eager.values, rtol=1e-6, atol=0)
    assert len(np.unique(comp.values)) == 9  # every point moved the compiled model
    # "auto" with a free compile: compiles; with an expensive one: stays eager
    monkeypatch.setattr(ev, "COMPILE_SECONDS", 0.0)
    assert grid_landscape(obj, d, span=1.0, resolution=3, progress=False, compile="auto").provenance["compiled"]


def test_auto_stays_eager_for_small_grids(problem):
    obj, d = problem
    ls = grid_landscape(obj, d, span=1.0, resolution=3, progress=False, compile="auto")
    assert ls.provenance["compiled"] is False
    with pytest.raises(InputError, match="compile"):
        grid_landscape(obj, d, span=1.0, resolution=3, progress=False, compile="yes")
    with pytest.raises(InputError, match="private_copy=True"):
        Objective(obj.model, (torch.randn(4, 4), torch.randint(0, 3, (4,))), nn.functional.cross_entropy,
                  private_copy=False).compiled()
