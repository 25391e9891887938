"""Do grid values depend on the number of CPU threads? Each case runs in two subprocesses, with
OMP_NUM_THREADS=1 and =2, and the script prints the largest difference of the grids.

Cases (seed 0): the built-in digits CNN trained as `landform analyze` trains it (2 epochs here) on its
1,438 training images, with random directions and with its top-2 Hessian directions (``digits-hessian``: the
two eigenvalues are compared with the grid values); a 64-512-512-10 MLP on 4,096 rows; a 2-conv CNN on 512 32x32 images; and an MSE
regression on 200,000 rows in one batch, once more with batch_size=16,384. torch splits a reduction over more
than 32,768 elements across threads, which reorders the float32 sum; the 200,000-row MSE is the case where this
shows, and batches under that size (or landform.determinism.single_threaded()) make it identical.

Training cases compare the trained weights instead of a grid: ``train-cnn`` is the fit-regime study's
"underfit" digits CNN (one epoch on 300 images) through ``landform.recipes.training.fit(deterministic=False)``,
``train-cnn-det`` the same with the default ``deterministic=True``; ``train-dimenet`` / ``train-dimenet-det``
the atomistic study's DimeNet++ (48 molecules, 2 epochs; about a minute each) without and with the one
deterministic thread its training now runs on.

    python benchmarks/threads.py          # about 2 minutes on 2 cores
    python benchmarks/threads.py --cases train-cnn train-cnn-det train-dimenet train-dimenet-det
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
if case.startswith("train-"):  # training itself: the trained weights are the compared numbers
    det = case.endswith("-det")
    if case.startswith("train-cnn"):  # the fit-regime study's "underfit" model through landform's fit
        from landform.recipes.digits import DigitsCNN, load_digits_tensors
        from landform.recipes.training import fit
        (x, y), _ = load_digits_tensors(seed=0)
        m = fit(DigitsCNN(), x[:300], y[:300], epochs=1, batch_size=128, seed=0, deterministic=det)
    else:  # DimeNet++ of the atomistic study (examples/recipes/qm9.py), 48 molecules, 2 epochs
        sys.path.insert(0, "examples")
        import recipes.qm9 as q
        data = q.load_qm9(("gap",), n_train=48, n_test=8, seed=0, pool=2000)
        m = q.train_qm9("dimenet++", "gap", epochs=2, seed=0, data=data, deterministic=det)[0]
    print(json.dumps(torch.cat([p.detach().double().flatten() for p in m.parameters()]).tolist()))
    sys.exit(0)
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
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the CASE code imports examples/recipes
    out = subprocess.run([sys.executable, "-c", CASE, case], capture_output=True, text=True, env=env, check=True, cwd=root)
    return np.array(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["digits", "digits-hessian", "mlp", "cnn", "mse", "mse-batched"])
    cases = ap.parse_args().cases
    print(f"{'case':<17} {'max |diff|':>12} {'max rel diff':>13}  bitwise  (OMP_NUM_THREADS 1 vs 2; grid values or weights)")
    for case in cases:
        a, b = run(case, 1), run(case, 2)
        diff = np.abs(a - b)
        rel = (diff / np.where(a == 0, np.inf, np.abs(a))).max()
        print(f"{case:<17} {diff.max():12.3g} {rel:13.3g}  {np.array_equal(a, b)}")


if __name__ == "__main__":
    main()
