"""Scaling of `landform analyze` under torchrun on this machine: 1 and 2 ranks (grid-parallel), the built-in
digits CNN, random directions.

For each rank count and grid (21^2 and 41^2), `python -m torch.distributed.run --nproc-per-node R -m landform
analyze ...` with OMP_NUM_THREADS = cores / R, interleaved over rounds, medians. Printed: points per second
of the grid evaluation, the fraction of that time not spent in forward passes (1 - points per rank x the
measured seconds of one plain forward pass at the same thread count / evaluation time: communication,
writes, Python), and the peak resident memory of rank 0 (flat as the grid grows: points stream through
chunks).

    python benchmarks/scale.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median  # noqa: E402

from landform.recipes.digits import load_digits_tensors, train_digits_cnn  # noqa: E402


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forward_seconds(threads: int) -> float:
    torch.set_num_threads(threads)
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    model.eval()
    with torch.no_grad():
        for _ in range(5):
            torch.nn.functional.cross_entropy(model(x), y)
        t0 = time.perf_counter()
        for _ in range(40):
            torch.nn.functional.cross_entropy(model(x), y)
    return (time.perf_counter() - t0) / 40


def run(nproc: int, res: int, out: Path) -> dict:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
        "--master-port", str(port()), "-m", "landform", "analyze", "--directions", "random", "--resolution", str(res),
        "--out", str(out), "--quiet", "--no-report", "--trace-hvp", "0", "--density-probes", "0",
        "--sharpness-rho", "0", "--chunk-points", "64",
    ]  # fmt: skip
    cores = os.cpu_count() or 2
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // nproc))}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    meta = json.loads((out / "landscape" / "landscape.json").read_text())
    return meta["provenance"]["timings"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 2
    print(f"machine: {machine()}, torch {torch.__version__}")
    fwd = {n: forward_seconds(max(1, cores // n)) for n in (1, 2)}
    print(
        f"one plain forward pass over the data: {fwd[1] * 1e3:.2f} ms ({cores} threads), {fwd[2] * 1e3:.2f} ms ({max(1, cores // 2)} threads)"
    )
    tmp = Path(tempfile.mkdtemp(prefix="landform-scale-"))
    for res in (21, 41):
        stats = {1: [], 2: []}
        for r in range(args.rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                out = tmp / f"r{res}-n{n}-{r}"
                stats[n].append(run(n, res, out))
        base = None
        for n in (1, 2):
            ev = median([s["evaluate_s"] for s in stats[n]])
            pts = res * res
            pps = pts / ev
            other = 1 - (pts / n) * fwd[n] / ev
            rss = median([s["peak_rss_mb"] for s in stats[n]])
            base = base or pps
            print(
                f"{res}x{res}, {n} rank(s): {pps:7.1f} points/s (x{pps / base:.2f}), not forward passes "
                f"{100 * other:5.1f} %, rank-0 peak RSS {rss:.0f} MB"
            )


if __name__ == "__main__":
    main()
