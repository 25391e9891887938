"""SMAD of landform and of landscaper 1.3.1 on the same arrays, 2D and 3D, side by side.

Arrays: the multi-well test field of benchmarks/topology.py (21^2 and 9^3; topology.py prints 41^2 and 15^3), real landscapes of the
built-in digits CNN along filter-normalised random directions (31^2 and 11^3), and uniform noise (15^2 and
7^3, where every saddle is a corner case). landscaper runs in its own virtual environment
(LossLandscape(values, ranges).smad(normalize=True, weighted=True), its release computes SMAD on the
contour tree); landform computes DESIGN.md's definition on the merge tree of the axis graph.

    python benchmarks/smad_compare.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SETUP_HINT, reference_python, run_reference  # noqa: E402
from topology import field  # noqa: E402

from landform import Objective, grid_landscape, random_directions  # noqa: E402
from landform.recipes.digits import load_digits_tensors, train_digits_cnn  # noqa: E402
from landform.topology import merge_tree, smad  # noqa: E402


def arrays() -> dict[str, np.ndarray]:
    out = {"field 21^2": field((21, 21)), "field 9^3": field((9, 9, 9))}
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    obj = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    d2 = random_directions(obj, 2, seed=1, normalization="filter")
    out["digits CNN 31^2"] = grid_landscape(obj, d2, span=1.0, resolution=31, progress=False).values
    d3 = random_directions(obj, 3, seed=1, normalization="filter")
    out["digits CNN 11^3"] = grid_landscape(obj, d3, span=1.0, resolution=11, progress=False).values
    rng = np.random.default_rng(0)
    out["noise 15^2"] = rng.random((15, 15))
    out["noise 7^3"] = rng.random((7, 7, 7))
    return out


def main() -> None:
    if reference_python() is None:
        raise SystemExit(f"landscaper 1.3.1 is needed: {SETUP_HINT}")
    tmp = Path(tempfile.mkdtemp(prefix="landform-smad-"))
    print(f"{'array':18s} {'minima':>6s} {'landform SMAD':>14s} {'landscaper SMAD':>16s} {'rel. diff':>10s}")
    for name, v in arrays().items():
        np.save(tmp / "v.npy", v)
        ref = run_reference({"task": "topology", "values_file": str(tmp / "v.npy")}, timeout=1800)
        ours = smad(v)
        rel = abs(ours - ref["smad"]) / max(abs(ref["smad"]), 1e-300)
        print(f"{name:18s} {merge_tree(v).n_minima:6d} {ours:14.8g} {ref['smad']:16.8g} {rel:10.2e}", flush=True)


if __name__ == "__main__":
    main()
