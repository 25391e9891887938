"""Dimension sweep (the paper's section 4.2): the built-in digits CNN along its top-2, 3, 4 and 5 Hessian
directions; SMAD, minima and persistence pairs per dimension show whether basins separated in a 2D slice
join through the extra dimensions. ``--adaptive`` checks each grid's count of significant minima
(persistence >= 2 % of the loss range) against an adaptive scattered landscape along the same directions,
which refines around saddles and shallow minima instead of relying on a coarse grid.

    python examples/dimension_sweep.py [--span 1.0] [--adaptive]
    python examples/dimension_sweep.py --tiny --adaptive   # the smoke test's size (seconds)
    python examples/dimension_sweep.py --geometry paper --span 0.05   # fractions of ||theta0||, sqrt(numel) directions

Writes sweep.json (the table) and each grid landscape under <out>/dims<n>/ (for benchmarks/smad_side_by_side.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from landform import Objective, adaptive_landscape, dimension_sweep, hessian_directions
from landform.recipes.digits import load_digits_tensors, train_digits_cnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import default_out  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--span", default="1.0", help="half-width (a number, or 'auto': rise 1 from each eigenvalue)")
    ap.add_argument(
        "--geometry",
        choices=["unit", "paper"],
        default="unit",
        help="paper: directions rescaled per tensor to sqrt(numel), --span a fraction of ||theta0|| (edge exactly there)",
    )
    ap.add_argument("--out", default=None, help="default: examples-runs/dimension_sweep (with --geometry paper: examples-runs/dimension_sweep-paper)")
    ap.add_argument("--small", action="store_true", help="small grids (9^2, 5^3, 3^4, 3^5) and adaptive budgets")
    ap.add_argument("--tiny", action="store_true", help="--small, and the CNN trained 2 epochs, its loss on 128 images "
                    "(the smoke test's size: seconds)")
    ap.add_argument("--adaptive", action="store_true", help="check minima counts with adaptive sampling")
    args = ap.parse_args()
    args.out = args.out or default_out("dimension_sweep", args.geometry)
    args.small = args.small or args.tiny
    t0 = time.perf_counter()
    model, _ = train_digits_cnn(epochs=2 if args.tiny else 15)
    (x, y), _ = load_digits_tensors()
    if args.tiny:
        x, y = x[:128], y[:128]
    obj = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    res = {2: 9, 3: 5, 4: 3, 5: 3} if args.small else {2: 41, 3: 15, 4: 9, 5: 7}
    paper = args.geometry == "paper"
    dirs = hessian_directions(obj, 5, seed=0, normalization="numel" if paper else None)
    span = args.span if args.span == "auto" else float(args.span)
    units = "relative" if paper else "absolute"
    sweep = dimension_sweep(obj, (2, 3, 4, 5), span=span, span_units=units, resolution=res, directions=dirs)
    print(f"top-5 Hessian eigenvalues: {[round(v, 4) for v in sweep.eigenvalues]}")
    print(sweep.table())
    adaptive = []
    if args.adaptive:
        budget = dict(n_initial=64, n_per_round=32, max_rounds=2) if args.small else {}
        print(f"\n{'dims':>4} {'grid significant':>16} {'adaptive significant':>20} {'points':>7} {'rounds':>6} stable")
        for row in sweep.rows:
            n = row["dims"]
            # the same box as the grid: its coefficient spans (row["span"])
            sl = adaptive_landscape(obj, dirs.vectors[:n], span=row["span"], seed=0, **budget)
            info = sl.provenance["adaptive"]
            last = info["history"][-1]
            adaptive.append({"dims": n, "grid_significant": row["n_significant"],
                             "adaptive_significant": last["significant_minima"], "points": last["points"],
                             "rounds": last["round"], "converged": info["converged"]})  # fmt: skip
            a = adaptive[-1]
            print(f"{n:>4} {a['grid_significant']:>16} {a['adaptive_significant']:>20} {a['points']:>7} {a['rounds']:>6} "
                  f"{a['converged']}")  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for row, ls in zip(sweep.rows, sweep.landscapes, strict=True):
        ls.save(out / f"dims{row['dims']}")  # for benchmarks/smad_side_by_side.py
    (out / "sweep.json").write_text(
        json.dumps({"rows": sweep.rows, "eigenvalues": sweep.eigenvalues, "adaptive": adaptive}, indent=1)
    )
    print(f"time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
