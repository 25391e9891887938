"""Do grid values depend on the number of CPU threads? Each case runs in two subprocesses, with
OMP_NUM_THREADS=1 and =2, and the script prints the largest difference of the grids.

Cases (seed 0): the built-in digits CNN trained as `landform analyze` trains it (2 epochs here) on its
1,438 training images, with random directions and with its top-2 Hessian directions (``digits-hessian``: the
two eigenvalues are compared with the grid values); a 64-512-512-10 MLP on 4,096 rows; a 2-conv CNN on 512 32x32 images; and an MSE
regression on 200,000 rows in one batch, once more with batch_size=16,384. torch splits a reduction over more
than 32,768 elements across threads, which reorders the float32 sum; the 200,000-row MSE is the case where this
shows, and batches under that size (or landform.determinism.single_threaded()) make it identical.

    python benchmarks/threads.py          # about 2 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

CASE = r"""
import json, sys, torch
from torch import nn
from landform import Objective, grid_landscape, random_directions
case = sys.argv[1]
torch.manual_seed(0)
kw = {}
if case in ("digits", "digits-hessian"):
    from landform.recipes.digits import recipe
    r = recipe(epochs=2); model, data, loss = r.model, r.data, r.loss_fn
elif case == "mlp":
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    data, loss = (torch.randn(4096, 64), torch.randint(0, 10, (4096,))), nn.functional.cross_entropy
elif case == "cnn":
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    data, loss = (torch.randn(512, 3, 32, 32), torch.randint(0, 10, (512,))), nn.functional.cross_entropy
else:
    model = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 1))
    data, loss = (torch.randn(200000, 16), torch.randn(200000, 1)), nn.functional.mse_loss
    if case == "mse-batched":
        kw["batch_size"] = 16384
obj = Objective(model, data, loss, **kw)
if case == "digits-hessian":  # landform analyze's default directions: top-2 Hessian eigenvectors (Lanczos)
    from landform import hessian_directions
    d = hessian_directions(obj, 2)
    extra = [float(v) for v in d.eigenvalues]
else:
    d, extra = random_directions(obj, 2, seed=0), []
ls = grid_landscape(obj, d, resolution=3, progress=False)
print(json.dumps(extra + ls.values.ravel().tolist()))
"""


def run(case: str, threads: int) -> np.ndarray:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CASE, case], capture_output=True, text=True, env=env, check=True)
    return np.array(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["digits", "digits-hessian", "mlp", "cnn", "mse", "mse-batched"])
    cases = ap.parse_args().cases
    print(f"{'case':<12} {'max |diff|':>12} {'max rel diff':>13}  bitwise  (OMP_NUM_THREADS 1 vs 2, 3x3 grid)")
    for case in cases:
        a, b = run(case, 1), run(case, 2)
        diff = np.abs(a - b)
        print(f"{case:<12} {diff.max():12.3g} {(diff / np.abs(a)).max():13.3g}  {np.array_equal(a, b)}")


if __name__ == "__main__":
    main()
