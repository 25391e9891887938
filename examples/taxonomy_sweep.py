"""Yang et al. (2021) taxonomy on a small sweep: MLP width (load-like) x batch size (temperature-like) on digits.

For every (width, batch size) cell, ``--seeds`` MLPs are trained alike from different seeds on scikit-learn's
8 x 8 digits (offline), and :func:`landform.metrics.taxonomy` measures their training loss, Hessian top
eigenvalue and trace, mode connectivity (a trained Bezier curve between seeds) and CKA of their outputs, and
reads the phase. Prints a markdown table (the one in docs/case-studies.md) and writes it as JSON.

    python examples/taxonomy_sweep.py                      # 3 widths x 3 batch sizes x 2 seeds
    python examples/taxonomy_sweep.py --widths 2,8,64 --batch-sizes 8,64,512 --seeds 3
    python examples/taxonomy_sweep.py --tiny                # the smoke test's size: 2 cells, 100 images (seconds)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landform.metrics import taxonomy
from landform.recipes.training import fit


def digits(n_train: int, seed: int = 0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    X = torch.tensor(X[idx] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[idx], dtype=torch.long)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def train(width: int, batch_size: int, seed: int, data, epochs: int, lr: float) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
    X, y = data
    return fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=lr, momentum=0.9, seed=seed)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="2,8,64")
    p.add_argument("--batch-sizes", default="8,64,512")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--bezier-steps", type=int, default=150)
    p.add_argument("--trace-hvp", type=int, default=30, help="HVPs of each Hutch++ trace")
    p.add_argument("--out", default="landform-runs/taxonomy-sweep.json")
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): width 8, batch sizes 16 and 100, "
                   "2 seeds, 100 images, 3 epochs, 10 Bezier steps, a 6-HVP trace")
    args = p.parse_args(argv)
    if args.tiny:
        args.widths, args.batch_sizes, args.seeds, args.n_train = "8", "16,100", 2, 100
        args.epochs, args.bezier_steps, args.trace_hvp = 3, 10, 6
    widths = [int(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    train_data, test_data = digits(args.n_train)
    rows = []
    t0 = time.perf_counter()
    for w in widths:
        for bs in batches:
            models = [train(w, bs, s, train_data, args.epochs, args.lr) for s in range(args.seeds)]
            with torch.no_grad():
                test_acc = float(
                    np.mean([(m(test_data[0]).argmax(1) == test_data[1]).float().mean().item() for m in models])
                )
            tx = taxonomy(models, train_data, nn.functional.cross_entropy, train_steps=args.bezier_steps,
                          trace_hvp=args.trace_hvp)
            rows.append({"width": w, "batch_size": bs, "test_acc": test_acc, **tx.as_dict()})
            print(
                f"width {w:4d} batch {bs:4d}: loss {tx.train_loss:.3f} trace {tx.trace:.3g} "
                f"lmax {tx.top_eigenvalue:.3g} mc {tx.mc:+.3f} cka {cka_cell(rows[-1])} -> {tx.phase} "
                f"(test acc {test_acc:.3f}, {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print("\n| width | batch | train loss | λmax | trace | mc | CKA | phase | test acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['width']} | {r['batch_size']} | {r['train_loss']:.3f} | {r['top_eigenvalue']:.3g} | "
            f"{r['trace']:.3g} | {r['mc']:+.3f} | {cka_cell(r)} | {r['phase']} | {r['test_acc']:.3f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=float))
    print(f"\nthresholds {rows[0]['thresholds']}; {time.perf_counter() - t0:.0f} s; written {out}")


def cka_cell(row: dict) -> str:
    """The mean CKA, with the number of pairs it averages when a collapsed seed left some pairs without one."""
    pairs = row["per_pair"]["cka"]
    defined = sum(c is not None and not np.isnan(c) for c in pairs)  # None: as_dict's JSON form of NaN
    mean = "-" if defined == 0 else f"{row['cka']:.3f}"
    return mean if defined == len(pairs) else f"{mean} ({defined} of {len(pairs)} pairs)"


if __name__ == "__main__":
    main()
