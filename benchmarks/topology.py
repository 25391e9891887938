"""Topology speed and memory: merge tree + persistence + SMAD on dense grids.

For 41^2, 15^3, 41^4 and 21^5 grids of a seeded multi-well test field, measured side by side in one run
(interleaved, medians over rounds):

- landform: merge_tree + persistence pairs + SMAD (the numba sweep, compiled code loaded from its cache);
- floor: np.argsort of the same array (the sort any sweep needs);
- peak memory of the landform analysis, in bytes per grid point above the input array (a fresh subprocess
  per size: VmHWM after resetting it through /proc/self/clear_refs, minus VmRSS before);
- landscaper 1.3.1 (own virtual environment, subprocess): topopy merge tree on the nglpy graph and
  LossLandscape.smad(normalize=True, weighted=True), for the sizes given with --ref-sizes (default 41^2 and
  15^3; 41^4 took 328 s and 7.6 GB here), with the SMAD values of both side by side.
- numba compile time: first call in a fresh cache directory vs a call that loads the cache.

    python benchmarks/topology.py [--rounds 5] [--ref-sizes 41^2,15^3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, reference_python, run_reference, timed  # noqa: E402

from landform.topology import merge_tree, pairs_from_tree, smad  # noqa: E402


def field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth multi-well landscape with small-scale roughness (many minima, like a real rough landscape)."""
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = sum(a**2 for a in axes) * 2.0
    for _ in range(6):
        k = rng.normal(0, 4, len(shape))
        phase = rng.uniform(0, 2 * np.pi)
        out = out + 0.3 * np.cos(sum(ki * a for ki, a in zip(k, axes, strict=True)) + phase)
    return out + 0.01 * rng.random(shape)


def analyse(values: np.ndarray):
    tree = merge_tree(values)
    return tree, pairs_from_tree(tree), smad(tree)


MEM_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, sys.argv[2])
    from topology import field, analyse

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    analyse(field((5, 5)))  # load the compiled code
    v = np.load(sys.argv[1])
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    analyse(v)
    print((status("VmHWM:") - before) / v.size)
    """
)

COMPILE_SCRIPT = "import time, numpy as np; t=time.perf_counter(); from landform.topology import smad; smad(np.random.rand(4, 4)); print(time.perf_counter()-t)"


def parse_sizes(text: str) -> list[tuple[int, ...]]:
    out = []
    for part in text.split(","):
        if part:
            k, n = part.split("^")
            out.append(tuple([int(k)] * int(n)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ref-sizes", default="41^2,15^3")
    ap.add_argument("--quick", action="store_true", help="41^2, 15^3 and 21^4 only")
    args = ap.parse_args()
    sizes = parse_sizes("41^2,15^3,21^4" if args.quick else "41^2,15^3,41^4,21^5")
    ref_sizes = set(parse_sizes(args.ref_sizes)) if reference_python() else set()
    print(f"machine: {machine()}, numpy {np.__version__}")
    # compile time: fresh cache vs cached
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        first = float(
            subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True, text=True).stdout
        )
        cached = float(
            subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True, text=True).stdout
        )
    print(
        f"numba: first call with an empty cache {first:.2f} s (compile), with the cache {cached:.2f} s (import + load)"
    )
    analyse(field((5, 5)))
    tmp = Path(tempfile.mkdtemp(prefix="landform-topo-"))
    for shape in sizes:
        v = field(shape)
        N = v.size
        t_ours, t_sort = [], []
        for r in range(args.rounds):
            pair = [("ours", lambda: analyse(v)), ("sort", lambda: np.argsort(v.ravel(), kind="stable"))]
            for name, fn in pair if r % 2 == 0 else pair[::-1]:
                dt, res = timed(fn)
                (t_ours if name == "ours" else t_sort).append(dt)
                if name == "ours":
                    tree, pairs, s = res
        np.save(tmp / "mem.npy", v)
        mem = subprocess.run(
            [sys.executable, "-c", MEM_SCRIPT, str(tmp / "mem.npy"), str(Path(__file__).parent)],
            capture_output=True,
            text=True,
        )
        bpp = float(mem.stdout) if mem.returncode == 0 else float("nan")
        o, a = median(t_ours), median(t_sort)
        name = f"{shape[0]}^{len(shape)}"
        line = (
            f"{name:>5} ({N:>9,} pts): landform {o:8.4f} s, argsort {a:8.4f} s -> landform/argsort = {o / a:5.2f}; "
            f"peak {bpp:5.0f} B/pt; minima {tree.n_minima}, SMAD {s:.6g}"
        )
        if shape in ref_sizes:
            np.save(tmp / "v.npy", v)
            ref = run_reference({"task": "topology", "values_file": str(tmp / "v.npy")}, timeout=1800)
            rt = ref["merge_tree_seconds"]
            line += (
                f"\n        landscaper merge tree {rt:.2f} s -> landform/landscaper = {o / rt:.2e} ({rt / o:,.0f}x faster); "
                f"its SMAD (contour tree, 1.3.1) {ref['smad']:.6g} in {ref['smad_seconds']:.2f} s; its minima "
                f"{ref['n_minima']}"
            )
        print(line, flush=True)
    print(json.dumps({"note": "SMAD differences are explained in docs/topology.md"}))


if __name__ == "__main__":
    main()
