"""Grid evaluation speed: landform vs the physical floor and vs the reference package.

On the built-in digits CNN (trained as `landform analyze` trains it), for a 2D 41x41 and a 3D 15^3 grid,
measured side by side in one run with the three sides interleaved, medians over rounds:

- floor: the same number of plain no-grad forward passes (model(x) + loss) of the unperturbed model over
  the same data;
- landform: grid_landscape on the same directions and grid;
- landscaper 1.3.1: compute_loss_landscape on the same weights, data, directions and grid, in its own
  virtual environment (subprocess; only its compute call is timed).

Because the machine's load drifts over the tens of seconds one grid takes, the floor ratio is also measured
finely interleaved: small 5^dim grids of landform alternating with as many plain forward passes.

Both packages get the reference's geometry (per-layer sqrt(numel) normalised directions, step
||theta0|| * distance / (steps / 2)), so the values can be compared as well: the script prints the largest
difference and where the reference's axis labels put the points (it labels index i as
linspace(-distance, distance)[i] but moves (i - steps//2) steps).

    python benchmarks/grid.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, reference_python, run_reference, timed  # noqa: E402

from landform import Objective, grid_landscape  # noqa: E402
from landform.recipes.digits import load_digits_tensors, train_digits_cnn  # noqa: E402


def reference_geometry(obj: Objective, n: int, seed: int, steps: int, distance: float):
    """Directions and axes that reproduce the reference's grid points exactly."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n, obj.num_params, generator=g)
    dirs = raw.clone()
    for v in dirs:  # per tensor: scale to sqrt(numel) (the reference's normalize_direction)
        for sl in obj.layout.blocks():
            v[sl] *= (sl.stop - sl.start) ** 0.5 / (v[sl].norm() + 1e-10)
    model_norm = float(obj.theta0.norm())
    step = model_norm * distance / (steps / 2)
    unit = dirs / dirs.norm(dim=1, keepdim=True)
    axis = (np.arange(steps) - steps // 2) * step  # what the reference computes at index i
    return dirs, unit, axis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small grids (21^2, 7^3), one round")
    args = ap.parse_args()
    cases = [(2, 21), (3, 7)] if args.quick else [(2, 41), (3, 15)]
    rounds = 1 if args.quick else args.rounds
    distance = 0.05
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    obj = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    have_ref = reference_python() is not None
    print(f"machine: {machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: digits CNN, P = {obj.num_params}, N = {obj.num_samples} samples, one batch")
    if not have_ref:
        from _common import SETUP_HINT

        print(f"reference landscaper 1.3.1 not found; only the floor ratio is measured. Set it up: {SETUP_HINT}")
    tmp = Path(tempfile.mkdtemp(prefix="landform-bench-"))
    model_file = tmp / "model.pt"
    torch.save({"width": 8, "state": model.state_dict(), "x": x, "y": y}, model_file)

    for dim, steps in cases:
        dirs, unit, axis = reference_geometry(obj, dim, seed=0, steps=steps, distance=distance)
        torch.save(dirs, tmp / "dirs.pt")
        npts = steps**dim

        def floor():
            with torch.no_grad():
                model.eval()
                for _ in range(npts):
                    torch.nn.functional.cross_entropy(model(x), y)

        def ours():
            return grid_landscape(obj, unit, span=[(axis[0], axis[-1])] * dim, resolution=steps, progress=False)

        def ref():
            task = {
                "task": "grid",
                "model_file": str(model_file),
                "dirs_file": str(tmp / "dirs.pt"),
                "steps": steps,
                "distance": distance,
                "dim": dim,
                "out_file": str(tmp / "ref.npy"),
            }
            return run_reference(task)["seconds"]

        times = {"floor": [], "landform": [], "landscaper": []}
        ls = None
        for r in range(rounds):
            order = ["floor", "landform", "landscaper"]
            order = order[r % 3 :] + order[: r % 3]
            for side in order:
                if side == "floor":
                    times["floor"].append(timed(floor)[0])
                elif side == "landform":
                    dt, ls = timed(ours)
                    times["landform"].append(dt)
                elif have_ref:
                    times["landscaper"].append(ref())
        f, o = median(times["floor"]), median(times["landform"])
        line = f"{dim}D {'x'.join([str(steps)] * dim)} ({npts} pts): floor {f:.2f} s, landform {o:.2f} s"
        line += f" -> landform/floor = {o / f:.3f}"
        if have_ref:
            rf = median(times["landscaper"])
            line += f"; landscaper {rf:.2f} s -> landform/landscaper = {o / rf:.3f} ({rf / o:.1f}x faster)"
            theirs = np.load(tmp / "ref.npy")
            diff = np.abs(theirs - ls.values) / np.maximum(np.abs(ls.values), 1e-12)
            line += f"\n   same grid points: max relative difference of values {diff.max():.2e}"
            line += (
                f"; reference labels its last point {distance:g} but it lies at "
                f"{(steps // 2) / (steps / 2) * distance:.5g} (x ||theta0||)"
            )
        print(line, flush=True)
        # The machine's load drifts over the tens of seconds a whole grid takes; alternate small pieces too:
        # 5^dim-point grids of landform against as many plain forward passes, many times, medians per point.
        small = 5
        npts_small = small**dim
        fine = {"floor": [], "landform": []}
        for r in range(max(20, 1200 // npts_small)):

            def floor_small():
                with torch.no_grad():
                    for _ in range(npts_small):
                        torch.nn.functional.cross_entropy(model(x), y)

            def ours_small():
                grid_landscape(obj, unit, span=[(axis[0], axis[-1])] * dim, resolution=small, progress=False)

            for side, fn in (("floor", floor_small), ("landform", ours_small))[:: 1 if r % 2 else -1]:
                fine[side].append(timed(fn)[0] / npts_small)
        fr = median(fine["landform"]) / median(fine["floor"])
        print(
            f"   fine-interleaved ({len(fine['floor'])} alternations of {npts_small}-point grids): landform "
            f"{median(fine['landform']) * 1e3:.2f} ms/pt, floor {median(fine['floor']) * 1e3:.2f} ms/pt -> "
            f"landform/floor = {fr:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
