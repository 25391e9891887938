"""SMAD of landform and of landscaper 1.3.1 on the same arrays, 2D and 3D, side by side.

Arrays: the multi-well test field of benchmarks/topology.py (21^2 and 9^3; topology.py prints 41^2 and 15^3), real landscapes of the
built-in digits CNN along filter-normalised random directions (31^2 and 11^3), and uniform noise (15^2 and
7^3, where every saddle is a corner case). landscaper runs in its own virtual environment
(LossLandscape(values, ranges).smad(normalize=True, weighted=True), its release computes SMAD on the
contour tree); landform computes DESIGN.md's definition on the merge tree of the axis graph.
A second table lists each array's split saddles (the join saddles of ``merge_tree(-values)``, where the
superlevel sets split) as fractions of the loss range: the saddles the release can pair minima with.

    python benchmarks/smad_compare.py [--no-reference]   (--no-reference: landform's columns only)
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


def split_saddles(v: np.ndarray) -> np.ndarray:
    """Values of the split saddles of ``v`` (join saddles of -v), as fractions of the loss range, ascending."""
    tree = merge_tree(-v)
    vals = v.ravel()[tree.saddles]  # the loss there (not -v: the fraction of the range is of the loss itself)
    return np.sort((vals - v.min()) / (v.max() - v.min()))


def main() -> None:
    with_reference = "--no-reference" not in sys.argv[1:]
    if with_reference and reference_python() is None:
        raise SystemExit(f"landscaper 1.3.1 is needed: {SETUP_HINT} (or pass --no-reference)")
    tmp = Path(tempfile.mkdtemp(prefix="landform-smad-"))
    print(f"{'array':18s} {'minima':>6s} {'landform SMAD':>14s} {'landscaper SMAD':>16s} {'rel. diff':>10s}")
    data = arrays()
    for name, v in data.items():
        ours = smad(v)
        if with_reference:
            np.save(tmp / "v.npy", v)
            ref = run_reference({"task": "topology", "values_file": str(tmp / "v.npy")}, timeout=1800)
            rel = abs(ours - ref["smad"]) / max(abs(ref["smad"]), 1e-300)
            theirs, rel_s = f"{ref['smad']:16.8g}", f"{rel:10.2e}"
        else:
            theirs, rel_s = f"{'-':>16s}", f"{'-':>10s}"
        print(f"{name:18s} {merge_tree(v).n_minima:6d} {ours:14.8g} {theirs} {rel_s}", flush=True)
    print(f"\n{'array':18s} {'split saddles':>13s}  lowest (fraction of the loss range)")
    for name, v in data.items():
        fr = split_saddles(v)
        print(f"{name:18s} {fr.size:13d}  {', '.join(f'{x:.4f}' for x in fr[:5])}", flush=True)


if __name__ == "__main__":
    main()
