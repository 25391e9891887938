"""The paper's geometry in landform against landscaper 1.3.1's own grid on the same weights.

landscaper 1.3.1 (`compute_loss_landscape`, run in its own virtual environment) rescales every tensor of each
direction to norm sqrt(numel) and steps by ||theta0|| * distance / (steps / 2). landform reproduces it with
`normalization="numel"` and `span_units="relative"` at `span=landscaper_span(distance, steps)`; this script
gives both the same trained digits CNN, data and raw directions (random orthonormal and the top Hessian
eigenvectors) and prints the largest relative difference of the loss over the grid. landscaper adds
Gaussian noise to its maximum value(s) ("to avoid flat regions"): those points are left out and counted.

    python benchmarks/paper_geometry.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SETUP_HINT, machine, reference_python, run_reference  # noqa: E402

from landform import (  # noqa: E402
    Objective,
    grid_landscape,
    hessian_directions,
    landscaper_span,
    normalize_directions,
    random_directions,
)
from landform.recipes.digits import load_digits_tensors, train_digits_cnn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="11^2 and 5^3 grids")
    args = ap.parse_args()
    if reference_python() is None:
        raise SystemExit(f"landscaper 1.3.1 is needed: {SETUP_HINT}")
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    obj = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    tmp = Path(tempfile.mkdtemp(prefix="landform-geometry-"))
    torch.save({"width": 8, "state": model.state_dict(), "x": x, "y": y}, tmp / "model.pt")
    hess = hessian_directions(obj, 3, seed=0)
    cases = [  # (raw directions, dims, distance, steps)
        ("random", 2, 0.05, 11 if args.quick else 51),
        ("hessian", 2, 0.05, 11 if args.quick else 51),
        ("hessian", 2, 0.5, 11),
        ("random", 3, 0.05, 5 if args.quick else 11),
    ]
    print(f"machine: {machine()}, torch {torch.__version__}; digits CNN, P = {obj.num_params}")
    print(f"||theta0|| = {float(obj.theta0.double().norm()):.6g}")
    head = f"{'directions':>10} {'grid':>9} {'distance':>8} {'landform span':>13} {'points':>6} {'noised':>6} {'max rel. diff':>13}"
    print(head)
    for kind, n, distance, steps in cases:
        raw = random_directions(obj, n, seed=0) if kind == "random" else hess
        raw_v = raw.vectors[:n]
        torch.save(raw_v.clone(), tmp / "dirs.pt")
        task = {
            "task": "grid",
            "model_file": str(tmp / "model.pt"),
            "dirs_file": str(tmp / "dirs.pt"),
            "steps": steps,
            "distance": distance,
            "dim": n,
            "out_file": str(tmp / "ref.npy"),
        }
        run_reference(task, timeout=3600)
        theirs = np.load(tmp / "ref.npy")
        d = normalize_directions(obj, raw_v, "numel")
        span = landscaper_span(distance, steps)
        ours = grid_landscape(obj, d, span=span, span_units="relative", resolution=steps, progress=False).values
        noised = theirs >= np.max(ours) * (1 - 1e-6)  # landscaper perturbs its maximum value(s)
        noised |= theirs == theirs.max()
        keep = ~noised
        rel = np.abs(theirs[keep] - ours[keep]) / np.abs(ours[keep])
        grid = "x".join([str(steps)] * n)
        print(
            f"{kind:>10} {grid:>9} {distance:>8g} {span:>13.6g} {ours.size:>6} {int(noised.sum()):>6} {rel.max():>13.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
