"""torch.compile of the loss evaluation: compile time and speed-up on the digits CNN, and the grid size where
compiling pays back.

The built-in digits CNN (trained as ``landform analyze`` trains it) and its training data. Sides, interleaved
over ``--rounds`` rounds of ``--reps`` losses each (medians): eager ``Objective.loss_batch`` and the compiled one
(:meth:`landform.Objective.compiled`), at the same perturbed parameters; first the compiled objective's first
call is timed (the compile). Printed: compile seconds, eager and compiled seconds per loss, their ratio, the
largest relative difference of the values, and the break-even grid size ``compile_s / (t_eager - t_compiled)``.
``grid_landscape(compile="auto")`` compiles when ``points x t_loss x (1 - COMPILE_SPEEDUP) > 2 x COMPILE_SECONDS``.

    python benchmarks/compile.py [--rounds 5] [--reps 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median  # noqa: E402

from landform import Objective  # noqa: E402
from landform.evaluate import COMPILE_SECONDS, COMPILE_SPEEDUP  # noqa: E402
from landform.recipes.digits import load_digits_tensors, train_digits_cnn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    print(machine(), f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    model, _ = train_digits_cnn()
    (xtr, ytr), _ = load_digits_tensors(seed=0)
    obj = Objective(model, (xtr, ytr), torch.nn.functional.cross_entropy)
    thetas = obj.theta0[None] + 0.01 * torch.randn(args.reps, obj.num_params, generator=torch.Generator().manual_seed(0))
    comp = obj.compiled()
    t = time.perf_counter()
    comp.loss_batch(thetas[:1])
    compile_s = time.perf_counter() - t
    eager_t, comp_t = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        a = obj.loss_batch(thetas)
        eager_t.append((time.perf_counter() - t) / args.reps)
        t = time.perf_counter()
        b = comp.loss_batch(thetas)
        comp_t.append((time.perf_counter() - t) / args.reps)
    te, tc = median(eager_t), median(comp_t)
    diff = float(((a - b).abs() / a.abs()).max())
    print(f"compile: {compile_s:.1f} s (first call)")
    print(f"loss over {len(ytr)} images: eager {te * 1e3:.2f} ms, compiled {tc * 1e3:.2f} ms, ratio {tc / te:.2f} "
          f"(medians of {args.rounds} interleaved rounds of {args.reps}; per-round eager "
          f"{[round(x * 1e3, 2) for x in eager_t]}, compiled {[round(x * 1e3, 2) for x in comp_t]})")
    print(f"largest relative difference of the values: {diff:.2e}")
    if te > tc:
        print(f"break-even grid: {compile_s / (te - tc):,.0f} points")
    else:
        print("compiled is not faster here: compiling never pays back")
    print(f"compile='auto' rule (COMPILE_SECONDS={COMPILE_SECONDS}, COMPILE_SPEEDUP={COMPILE_SPEEDUP}): compiles from "
          f"{2 * COMPILE_SECONDS / (te * (1 - COMPILE_SPEEDUP)):,.0f} points at this loss time")


if __name__ == "__main__":
    main()
