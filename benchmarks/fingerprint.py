"""Cost of the store fingerprint relative to the grid it guards.

On the built-in digits objective (DigitsCNN on its 1,438 training images), interleaved over rounds,
medians: the time of ``landform.fingerprint.fingerprint(objective, directions, axes)`` (full streamed hash of
the data, the loss's code, weights, buffers, model, directions, axes) and of one full-data loss evaluation;
their ratio, and the fingerprint's share of a 41x41 grid (1,681 loss evaluations, the CLI default).

    python benchmarks/fingerprint.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, timed  # noqa: E402

from landform import Objective, grid_axes, random_directions  # noqa: E402
from landform.fingerprint import fingerprint  # noqa: E402
from landform.recipes.digits import DigitsCNN, load_digits_tensors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    (x, y), _ = load_digits_tensors()
    obj = Objective(DigitsCNN().eval(), (x, y), torch.nn.functional.cross_entropy)
    d = random_directions(obj, 2, seed=0)
    axes = grid_axes(1.0, 41, 2)
    obj.loss()  # warm up
    fp_t, loss_t = [], []
    for _ in range(args.rounds):
        fp_t.append(timed(lambda: fingerprint(obj, d, axes))[0])
        loss_t.append(timed(obj.loss)[0])
    fp, loss = median(fp_t), median(loss_t)
    print(machine())
    print(f"digits objective: P={obj.num_params}, N={obj.num_samples}, {args.rounds} interleaved rounds, medians")
    print(f"fingerprint        {fp * 1e3:8.2f} ms  (spread {min(fp_t) * 1e3:.2f}-{max(fp_t) * 1e3:.2f})")
    print(f"one loss eval      {loss * 1e3:8.2f} ms  (spread {min(loss_t) * 1e3:.2f}-{max(loss_t) * 1e3:.2f})")
    print(f"fingerprint / one loss evaluation: {fp / loss:.3f}")
    print(f"fingerprint / 41x41 grid (1,681 evaluations): {fp / (1681 * loss):.2e}")


if __name__ == "__main__":
    main()
