"""Coverage of the progressive landscape's error bars, stopped early, against the full-data values.

Two small problems (a linear regression under MSE, a 4-16-3 tanh MLP under cross-entropy; 640 samples, batches
of 64), random filter-normalised planes at spans 0.5 and 1.5, a 5 x 5 grid, 16 shards, split seeds 0-7; each
run is stopped after k shards (``max_shards``) and every grid point's |estimate - full-data value| is compared
with 2 standard errors and with t95 standard errors (t95 from the degrees of freedom in the provenance).
Printed: the share of points covered, pooled over the runs, and the lowest share of a single run (the points of
one run share their shards, so one unlucky split moves them together).

    python benchmarks/progressive_coverage.py     # about a minute on 2 cores
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from landform import Objective, grid_landscape, progressive_landscape, random_directions  # noqa: E402


def problems():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(640, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + torch.randn(640, 1, generator=g)
    torch.manual_seed(0)
    yield "linear, MSE", nn.Linear(3, 1), (x, y), nn.functional.mse_loss
    x = torch.randn(640, 4, generator=g)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    yield "MLP 4-16-3, cross-entropy", mlp, (x, torch.randint(0, 3, (640,), generator=g)), nn.functional.cross_entropy


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    print("k shards of 16 | pieces | dof | t95 | 2 SE covers | t95 SE covers | lowest run, 2 SE")
    cases = [(3, 8), (3, 1), (4, 8), (4, 1), (14, 1)]
    full = {}
    for k, pieces in cases:
        cover2, covert, worst, dof, t95 = [], [], [], None, None
        for name, model, data, loss in problems():
            obj = Objective(model, data, loss, batch_size=64)
            d = random_directions(obj, 2, seed=0, normalization="filter")
            for span in (0.5, 1.5):
                key = (name, span)
                if key not in full:
                    full[key] = grid_landscape(obj, d, span=span, resolution=5, progress=False).values
                for seed in range(8):
                    p = progressive_landscape(obj, d, span=span, resolution=5, shards=16, rtol=0, max_shards=k,
                                              seed=seed, progress=False, pieces=pieces)
                    info = p.provenance["progressive"]
                    dof, t95 = info["dof"], info["t95"]
                    z = (np.abs(p.values - full[key]) / p.stderr).ravel()
                    cover2.append(z <= 2.0)
                    covert.append(z <= t95)
                    worst.append(float((z <= 2.0).mean()))
        c2, ct = float(np.concatenate(cover2).mean()), float(np.concatenate(covert).mean())
        print(f"{k:>14} | {pieces:>6} | {dof:>3} | {t95:.2f} | {100 * c2:10.1f} % | {100 * ct:12.1f} % | "
              f"{100 * min(worst):.0f} %")


if __name__ == "__main__":
    main()
