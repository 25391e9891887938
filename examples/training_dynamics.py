"""Training dynamics: the digits CNN followed over epochs with ``landform track``.

For each seed, the built-in DigitsCNN (3,850 parameters) is trained with Adam on scikit-learn's digits, and its
state dict saved at the epochs in --epochs (0 = the initialisation). ``track_checkpoints`` then evaluates every
checkpoint in one shared subspace (trajectory PCA around the last checkpoint, absolute units: distances in
parameter space) and in its own top-2 Hessian subspace, with SMAD's spread over data subsamples, Hutch++
trace and lambda_max. Writes examples-runs/training_dynamics/seed<k>/ (summary.json, report.html) and
table.json, and prints one table and whether "SMAD falls while the trace rises" holds per seed (Spearman
rank correlation of each metric with the epoch).

    python examples/training_dynamics.py [--seeds 0 1 2] [--epochs 0 1 2 4 8 15] [--resolution 11]
    python examples/training_dynamics.py --tiny   # the smoke test's size: 1 seed, epochs 0 1 2 on 256 images (seconds)
    python examples/training_dynamics.py --geometry paper --span 0.5   # the paper's MultiBERT geometry (11 x 11),
                                                                        # in examples-runs/training_dynamics-paper

``--geometry paper``: landscaper 1.3.1's geometry (docs/geometry.md): ``--span`` is its distance D, a fraction of
||theta||, over ``--resolution`` steps (every grid's edge at ``landscaper_span(D, resolution)`` x ||theta||: the
shared plane's at the last checkpoint's norm, each own-Hessian plane's at its own checkpoint's), each checkpoint's
Hessian eigenvectors rescaled per tensor to sqrt(numel) (the shared trajectory-PCA directions stay unit vectors).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landform.recipes.digits import DigitsCNN, load_digits_tensors
from landform.recipes.training import fit
from landform.report.track import build_track_report
from landform.track import track_checkpoints

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import add_track_geometry_args, default_out, spearman, track_geometry, track_spans_text, verdict  # noqa: E402


def train_with_checkpoints(seed: int, epochs: list[int], folder: Path, lr: float = 3e-3, batch_size: int = 64,
                           n_train: int | None = None):
    """Adam on cross-entropy (one optimiser for the whole run); state dict saved after each epoch in ``epochs``.
    ``n_train``: the first images of the train split only (default all)."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = load_digits_tensors(seed=seed)
    xtr, ytr = xtr[:n_train], ytr[:n_train]
    model = DigitsCNN()
    folder.mkdir(parents=True, exist_ok=True)
    if 0 in epochs:
        torch.save(copy.deepcopy(model.state_dict()), folder / "epoch-0.pt")

    def save(ep: int, m: nn.Module) -> None:
        if ep in epochs:
            torch.save(copy.deepcopy(m.state_dict()), folder / f"epoch-{ep}.pt")

    fit(model, xtr, ytr, epochs=max(epochs), batch_size=batch_size, lr=lr, seed=seed, on_epoch=save)
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    return DigitsCNN(), (xtr, ytr), acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/training_dynamics (with --geometry paper: examples-runs/training_dynamics-paper)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, nargs="+", default=[0, 1, 2, 4, 8, 15])
    ap.add_argument("--resolution", type=int, default=11)
    add_track_geometry_args(ap)
    ap.add_argument("--subsamples", type=int, default=3, help="data subsamples (80%%) for SMAD's spread; 0 skips")
    ap.add_argument("--n-hvp", type=int, default=20, help="Hutch++ budget of the trace")
    ap.add_argument("--tol", type=float, default=1e-3, help="relative residual of the Hessian eigenpairs")
    ap.add_argument("--n-train", type=int, default=None, help="training images (default: the whole train split)")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): seed 0, epochs 0 1 2, 256 images, "
                    "3 x 3 grids, 2 subsamples, a 3-HVP trace, loose eigenvector tolerance")
    args = ap.parse_args()
    args.out = args.out or default_out("training_dynamics", args.geometry)
    if args.tiny:
        args.seeds, args.epochs, args.n_train, args.resolution = [0], [0, 1, 2], 256, 3
        args.subsamples, args.n_hvp, args.tol = 2, 3, 1e-1
    geometry = track_geometry(args)
    out = Path(args.out)
    table = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        run = out / f"seed{seed}"
        template, train, acc = train_with_checkpoints(seed, sorted(set(args.epochs)), run / "checkpoints-in",
                                                     n_train=args.n_train)
        s = track_checkpoints(
            template,
            train,
            nn.functional.cross_entropy,
            run / "checkpoints-in",
            run / "track",
            dims=2,
            resolution=args.resolution,
            **geometry,
            hessian=True,
            subsample_seeds=tuple(range(args.subsamples)),
            trace_hvp=args.n_hvp,
            seed=seed,
            tol=args.tol,
            log=lambda m: print(m, flush=True),
        )
        build_track_report(run / "track")
        print(track_spans_text(seed, s, geometry), flush=True)
        for r in s["rows"]:
            table.append({"seed": seed, "test_accuracy_final": acc, **{k: r.get(k) for k in (
                "step", "loss", "smad", "smad_std", "own_smad", "n_minima", "trace", "trace_stderr", "lambda_max",
                "bottleneck_prev")}})  # fmt: skip
    (out / "table.json").write_text(json.dumps(table, indent=1))
    print(f"\n{'seed':>4} {'epoch':>5} {'loss':>9} {'SMAD pca':>17} {'SMAD own':>9} {'trace':>14} {'λmax':>8}")
    for r in table:
        sm = "-" if r["smad"] is None else f"{r['smad']:.4f}" + (f" ± {r['smad_std']:.4f}" if r.get("smad_std") is not None else "")
        own = "-" if r["own_smad"] is None else f"{r['own_smad']:.4f}"
        print(
            f"{r['seed']:>4} {r['step']:>5} {r['loss']:>9.4f} {sm:>17} {own:>9} "
            f"{r['trace']:>8.2f} ± {r['trace_stderr']:<4.2f} {r['lambda_max']:>8.3f}"
        )
    print("\nSpearman rank correlation with the epoch (per seed; two-sided p): SMAD (pca), SMAD (own Hessian), trace, λmax")
    for seed in args.seeds:
        rows = [r for r in table if r["seed"] == seed]
        ep = [r["step"] for r in rows]
        corr = {k: spearman(ep, [r[k] if r[k] is not None else np.nan for r in rows]) for k in ("smad", "own_smad", "trace", "lambda_max")}
        rho = " ".join(f"{corr[k][0]:+.2f} (p {corr[k][1]:.2g})" for k in ("smad", "own_smad", "trace", "lambda_max"))
        print(f"  seed {seed}: {rho}  -> 'SMAD (own Hessian) falls while the trace rises': "
              f"{verdict(corr['own_smad'], corr['trace'])}")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; reports: {out}/seed*/track/report.html")


if __name__ == "__main__":
    main()
