"""Dimension sweep (the paper's section 4.2): the built-in digits CNN along its top-2, 3, 4 and 5 Hessian
directions; SMAD, minima and persistence pairs per dimension show whether basins separated in a 2D slice
join through the extra dimensions.

    python examples/dimension_sweep.py [--span 1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from landform import Objective, dimension_sweep
from landform.recipes.digits import load_digits_tensors, train_digits_cnn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--span", type=float, default=1.0)
    ap.add_argument("--out", default="examples-runs/dimension_sweep")
    ap.add_argument("--small", action="store_true", help="tiny grids (a smoke test)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    obj = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    res = {2: 9, 3: 5, 4: 3, 5: 3} if args.small else {2: 41, 3: 15, 4: 9, 5: 7}
    sweep = dimension_sweep(obj, (2, 3, 4, 5), span=args.span, resolution=res)
    print(f"top-5 Hessian eigenvalues: {[round(v, 4) for v in sweep.eigenvalues]}")
    print(sweep.table())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"rows": sweep.rows, "eigenvalues": sweep.eigenvalues}, indent=1))
    print(f"time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
