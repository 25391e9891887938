"""Calibration of the progressive landscape's error bars: across models, spans and seeds of the split, stopped
early, the intervals cover the full-data values about as often as they claim.

With the default 8 pieces per shard the standard error has 8 k - 1 degrees of freedom, so 2 sigma covers about
95 % already at k = 3 shards, where the stopping rule stops first. With ``pieces=1`` it has k - 1: 2 sigma then
covers about 95 % only once k is large (at k = 14), and at k = 4 the honest 95 % interval is t(0.975, 3) = 3.18
standard errors (``provenance["progressive"]["t95"]``). Coverage is pooled over the grid points of 2 models x 2
spans x 8 seeds; points of one run share their shards, so the tolerance is wide.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_mlp
from torch import nn

from landform import Objective, grid_landscape, progressive_landscape, random_directions


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only cost on a shared machine
    yield
    torch.set_num_threads(n)


def _problems():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(640, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + torch.randn(640, 1, generator=g)
    torch.manual_seed(0)
    yield nn.Linear(3, 1), (x, y), nn.functional.mse_loss
    x = torch.randn(640, 4, generator=g)
    yield make_mlp(), (x, torch.randint(0, 3, (640,), generator=g)), nn.functional.cross_entropy


def _coverage(k: int, pieces: int = 1):
    z, t95 = [], None
    for model, data, loss in _problems():
        obj = Objective(model, data, loss, batch_size=64)
        d = random_directions(obj, 2, seed=0, normalization="filter")
        for span in (0.5, 1.5):
            full = grid_landscape(obj, d, span=span, resolution=5, progress=False).values
            for seed in range(8):
                p = progressive_landscape(obj, d, span=span, resolution=5, shards=16, rtol=0, max_shards=k,
                                          seed=seed, progress=False, pieces=pieces)
                assert p.provenance["progressive"]["shards_used"] == k
                t95 = p.provenance["progressive"]["t95"]
                z.append((np.abs(p.values - full) / p.stderr).ravel())
    return np.concatenate(z), t95


def test_two_sigma_covers_about_95_percent_at_the_first_stop():
    z, t95 = _coverage(3, pieces=8)  # shards of 40 samples, pieces of 5: 23 degrees of freedom
    assert t95 == pytest.approx(2.068658, rel=1e-5)
    cover = float((z <= 2.0).mean())
    assert 0.88 <= cover <= 0.995, cover


def test_two_sigma_covers_about_95_percent_late():
    z, _ = _coverage(14)
    cover = float((z <= 2.0).mean())
    assert 0.85 <= cover <= 0.995, cover


def test_t_interval_covers_about_95_percent_early():
    z, t95 = _coverage(4)
    assert t95 == pytest.approx(3.182446, rel=1e-5)
    cover = float((z <= t95).mean())
    assert 0.85 <= cover <= 0.995, cover
