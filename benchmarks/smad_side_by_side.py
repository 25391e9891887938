"""SMAD side by side on saved landscapes: landform's merge-tree SMAD and landscaper 1.3.1's released SMAD.

Takes run folders (or folders above them), finds every saved grid landscape (a `landscape.json` store) under
them, and computes on the same saved array both landform's SMAD (DESIGN.md: minima paired with their
merge-tree join saddle) and the released landscaper 1.3.1's `LossLandscape(values, ranges).smad(normalize=True,
weighted=True)`, which landscaper itself computes in its own virtual environment (contour tree: minima may be
paired with split saddles, so a single-basin bowl scores > 0). landscaper's answers are cached by the
SHA-256 of the array (`--cache`), because its contour tree takes about a minute per 51 x 51 array.

    python benchmarks/smad_side_by_side.py examples-runs/fit_regimes examples-runs/fit_regimes-paper [--markdown]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SETUP_HINT, reference_python, run_reference  # noqa: E402

from landform import load_landscape  # noqa: E402
from landform.topology import merge_tree, smad  # noqa: E402


def stores(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "landscape.json").exists():
            found.append(p)
        found += sorted(q.parent for q in p.rglob("landscape.json") if q.parent != p)
    return found


def span_text(ls) -> str:
    geo = ls.provenance.get("geometry") or {}
    if not geo:
        return f"{ls.axes[0][-1]:.3g} (absolute)"
    rel = geo["relative_span"][0]
    rel = rel[1] if isinstance(rel, list) else rel
    if geo.get("auto"):
        return f"auto rise {geo['auto']['rise']:g}"
    if geo["span_units"] == "relative":
        return f"{rel:.4g} x ‖θ₀‖"
    a = geo["absolute_span"][0]
    return f"{a[1] if isinstance(a, list) else a:.3g} (= {rel:.3g} x ‖θ₀‖)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders, or folders that contain them")
    ap.add_argument("--cache", default="examples-runs/landscaper-smad-cache.json")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds landscaper may spend on one array (its empty-region graph grows fast with the "
                    "points of a 4-D or 5-D grid); an array over it is reported as not computed")
    args = ap.parse_args()
    if reference_python() is None:
        raise SystemExit(f"landscaper 1.3.1 is needed: {SETUP_HINT}")
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    rows, todo, arrays = [], [], {}
    root = Path.cwd()
    for st in stores(args.runs):
        ls = load_landscape(st)
        if not ls.complete or ls.n_nonfinite:
            print(f"skipped {st}: incomplete or non-finite", file=sys.stderr)
            continue
        key = hashlib.sha256(np.ascontiguousarray(ls.values).tobytes()).hexdigest()
        tree = merge_tree(ls.values)
        run = st.parent if st.name == "landscape" else st  # a run folder's store, or a landscape saved on its own
        name = str(run.relative_to(root) if run.is_relative_to(root) else run)
        norm = ls.directions.get("normalization")
        rows.append([name, "x".join(map(str, ls.shape)), span_text(ls), str(norm), smad(tree), tree.n_minima, key])
        if key not in cache:
            todo.append(key)
            arrays[key] = ls.values
    skipped: dict[str, str] = {}
    if todo:
        tmp = Path(tempfile.mkdtemp(prefix="landform-smad-"))
        print(f"landscaper 1.3.1: {len(todo)} arrays not in the cache, computing one at a time (at most "
              f"{args.timeout:g} s each)...", file=sys.stderr, flush=True)  # fmt: skip
        for n, k in enumerate(todo, 1):
            np.save(tmp / f"{k}.npy", arrays[k])
            t0 = time.perf_counter()
            try:
                res = run_reference({"task": "smad_many", "values_files": [str(tmp / f"{k}.npy")]}, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                skipped[k] = f"not computed: over {args.timeout:g} s"
                print(f"  [{n}/{len(todo)}] {arrays[k].shape}: stopped after {args.timeout:g} s", file=sys.stderr, flush=True)
                continue
            print(f"  [{n}/{len(todo)}] {arrays[k].shape}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            # written after every array, so an interrupted run keeps what it computed; another run may have
            # added entries meanwhile: keep them
            disk = json.loads(cache_path.read_text()) if cache_path.exists() else {}
            cache = {**disk, **cache, k: res["results"][0]}
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp_cache = cache_path.with_suffix(".tmp")
            tmp_cache.write_text(json.dumps(cache, indent=1))
            tmp_cache.replace(cache_path)

    def mean_sd(a: np.ndarray) -> str:  # one training seed has no spread: its value alone
        return f"{a.mean():.4g} ± {a.std(ddof=1):.2g}" if len(a) > 1 else f"{a[0]:.4g} (one seed)"

    groups: dict[str, list[list]] = {}  # runs that differ only by a training seed (name ending in -sN or -seedN)
    for r in rows:
        m = re.match(r"(.*)-s(?:eed)?\d+$", r[0])
        if m:
            groups.setdefault(m.group(1), []).append(r)
    head = ["run", "grid", "span", "normalisation", "landform SMAD", "minima", "landscaper 1.3.1 SMAD", "its minima"]
    out = [[*r[:4], f"{r[4]:.4g}", str(r[5]), *((f"{cache[r[6]]['smad']:.4g}", str(cache[r[6]]["n_minima"]))
            if r[6] in cache else (skipped[r[6]], "-"))] for r in rows]  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in out:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in out)) for i, h in enumerate(head)] if out else [len(h) for h in head]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        for r in out:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    done = [r for r in rows if r[6] in cache]
    one = [cache[r[6]]["smad"] for r in done if r[5] == 1]
    many = [r for r in done if r[5] > 1]
    same = sum(abs(cache[r[6]]["smad"] - r[4]) <= 1e-6 * max(abs(r[4]), 1e-300) for r in many)
    print(f"\n{len(done)} landscapes: {len(one)} with one minimum (landform 0; landscaper 1.3.1 "
          + (f"{min(one):.4g} to {max(one):.4g}" if one else "-") + f"), {len(many)} with several (landscaper equal to "
          f"landform within 1e-6 relative on {same})" + (f"; {len(rows) - len(done)} not computed" if len(done) < len(rows) else ""))
    if groups:
        print()
        print("| runs (training seeds) | landform SMAD mean ± sd | single-basin runs | landscaper 1.3.1 SMAD mean ± sd "
              "| its range over the seeds |")
        print("|---|---|---|---|---|")
        for g, rs in groups.items():
            rs = [r for r in rs if r[6] in cache]
            if not rs:
                continue
            ours = np.array([r[4] for r in rs])
            theirs = np.array([cache[r[6]]["smad"] for r in rs])
            print(f"| {g} ({len(rs)}) | {mean_sd(ours)} | {sum(r[5] == 1 for r in rs)} of {len(rs)} "
                  f"| {mean_sd(theirs)} | {theirs.min():.4g} - {theirs.max():.4g} |")


if __name__ == "__main__":
    main()
