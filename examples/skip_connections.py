"""Skip connections (the paper's Table 2), on scikit-learn's digit images.

A small residual CNN (a stem and three residual blocks of 3x3 convolutions with BatchNorm) trained with and
without its skip connections, over several seeds; SMAD (top-2 Hessian plane) mean +- sd and the persistence
range. Writes examples-runs/skip_connections/<variant>-seed<k>/ and prints one table.

    python examples/skip_connections.py [--seeds 3] [--resolution 21] [--epochs 8]
    python examples/skip_connections.py --tiny   # the smoke test's size (seconds)
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
from _shared import accuracy, add_geometry_args, analyse_model, default_out, fit, geometry_kwargs, write_table  # noqa: E402

from landform.recipes.digits import load_digits_tensors  # noqa: E402


class Block(nn.Module):
    def __init__(self, c: int, skip: bool) -> None:
        super().__init__()
        self.skip = skip
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
        )  # fmt: skip

    def forward(self, x):
        y = self.body(x)
        return torch.relu(y + x if self.skip else y)


class SmallResNet(nn.Module):
    def __init__(self, skip: bool, c: int = 8, blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.Sequential(*[Block(c, skip) for _ in range(blocks)])
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


def train(skip: bool, seed: int, epochs: int, n_train: int | None = None):
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = load_digits_tensors(seed=0)
    xtr, ytr = xtr[:n_train], ytr[:n_train]
    model = fit(SmallResNet(skip), xtr, ytr, epochs=epochs, batch_size=64, seed=seed)
    return model, (xtr, ytr), accuracy(model, xtr, ytr), accuracy(model, xte, yte)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/skip_connections (with --geometry paper: examples-runs/skip_connections-paper)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--resolution", type=int, default=21)
    ap.add_argument("--span", type=float, default=1.0, help="half-width of the grid along the unit eigenvectors")
    add_geometry_args(ap)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--n-train", type=int, default=None, help="training images (default: the whole train split)")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): 2 seeds, 64 images, 1 epoch, 3 x 3 grid, "
                    "the first run's report only")
    args = ap.parse_args()
    args.out = args.out or default_out("skip_connections", args.geometry)
    if args.tiny:
        args.seeds, args.epochs, args.resolution, args.n_train = 2, 1, 3, 64
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = []
    for skip in (True, False):
        for seed in range(args.seeds):
            model, data, acc_tr, acc_te = train(skip, seed, args.epochs, args.n_train)
            name = f"{'skip' if skip else 'noskip'}-seed{seed}"
            subsamples = () if args.geometry == "paper" else (0, 1)
            s = analyse_model(name, model, data, out, seeds=subsamples, resolution=args.resolution,
                              **geometry_kwargs(args), info={"train_accuracy": acc_tr, "test_accuracy": acc_te},
                              report=not (args.tiny and rows),  # --tiny: the first run's report only
                              **({"n_hvp": 6, "tol": 1e-2} if args.tiny else {}))  # fmt: skip
            rows.append(
                {
                    "skip": skip,
                    "seed": seed,
                    "test_acc": acc_te,
                    "smad": s.topology.smad,
                    "persistence_range": s.topology.persistence_range,
                    "n_minima": s.topology.n_minima,
                }
            )
    print(f"{'skip':5s} {'SMAD mean +- sd':>26s} {'persistence range':>22s} {'minima':>8s} {'test acc':>9s}")
    for skip in (True, False):
        sel = [r for r in rows if r["skip"] == skip]
        sm = np.array([r["smad"] for r in sel])
        pr = np.array([r["persistence_range"] for r in sel])
        print(
            f"{'yes' if skip else 'no':5s} {sm.mean():12.4g} +- {sm.std(ddof=1):<10.3g} {pr.mean():10.4g} +- "
            f"{pr.std(ddof=1):<8.3g} {np.mean([r['n_minima'] for r in sel]):8.2f} "
            f"{np.mean([r['test_acc'] for r in sel]):9.3f}"
        )
    write_table(out / "table.json", rows)
    print(f"time {time.perf_counter() - t0:.0f} s; runs and reports under {out}")


if __name__ == "__main__":
    main()
