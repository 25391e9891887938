"""Command line: ``landform analyze`` and ``landform report``.

Exit codes: 0 success, 1 bad input or a refused store (a LandformError, message on stderr), 2 usage error,
130 interrupted (the run folder keeps what was computed; run the same command again to resume).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _floats(text: str) -> list[float] | list[tuple[float, float]]:
    """'1' -> [1.0]; '1,0.5' -> [1.0, 0.5]; '-1:2,0.5' -> [(-1, 2), 0.5]."""
    out: list[Any] = []
    for part in text.split(","):
        if ":" in part:
            lo, hi = part.split(":")
            out.append((float(lo), float(hi)))
        else:
            out.append(float(part))
    return out


def _ints(text: str) -> list[int]:
    return [int(p) for p in text.split(",")]


def _per_axis_arg(values: list[Any], n: int, name: str) -> Any:
    if len(values) == 1:
        return values[0] if not isinstance(values[0], tuple) else [values[0]] * n
    if len(values) != n:
        from .errors import InputError

        raise InputError(f"--{name}: give one value or one per direction ({n}), got {len(values)}.")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="landform", description="Loss-landscape analysis of PyTorch models.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser(
        "analyze",
        help="build a landscape and its topology (default: a small CNN on scikit-learn's digits)",
        description="Compute directions, the loss on a grid, its merge tree, persistence and SMAD, and a report. "
        "Running the same command again resumes an interrupted run.",
    )
    a.add_argument("recipe", nargs="?", default=None, help="file.py[:func] or module:func returning model, data, loss")
    a.add_argument("--dims", type=int, default=2, help="number of directions (default 2)")
    a.add_argument("--resolution", type=_ints, default=[41], help="points per axis, one or per axis: 41 or 41,21")
    a.add_argument(
        "--span",
        type=_floats,
        default=None,
        help="half-width per axis, or lo:hi ranges: 1.0 or -1:2,0.5 (default 1.0)",
    )
    a.add_argument(
        "--directions",
        default="hessian",
        help="hessian (top eigenvectors, default), random, filter (random, filter-normalised), or a .npy/.pt file (n, P)",
    )
    a.add_argument("--seed", type=int, default=0, help="seed of directions and probes (default 0)")
    a.add_argument("--chunk-points", type=int, default=256, help="points per stored chunk (the most a kill loses)")
    a.add_argument(
        "--parallel",
        choices=["grid", "data"],
        default="grid",
        help="under torchrun: ranks split the grid points (grid, default) or the data (data; sums all-reduced)",
    )
    a.add_argument("--out", default=None, help="run folder (default landform-runs/<recipe>-<dims>d-<directions>)")
    a.add_argument("--trace-hvp", type=int, default=30, help="HVP budget of the Hutch++ trace (0 to skip; default 30)")
    a.add_argument(
        "--density-probes",
        type=int,
        default=2,
        help="probes of the spectral density (40 Lanczos steps each; 0 to skip)",
    )
    a.add_argument("--no-report", action="store_true", help="skip figures and report.html")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.add_argument(
        "--sharpness-rho", type=float, default=0.05, help="radius of average/worst-case L2 sharpness (0 to skip)"
    )
    r = sub.add_parser("report", help="(re)build figures and report.html of a run folder")
    r.add_argument("run_dir")
    c = sub.add_parser(
        "compare",
        help="one table and figure of several runs, with distances between their persistence diagrams",
    )
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--out", default="landform-compare", help="folder for comparison.json and comparison.png")
    return p


def _init_distributed() -> tuple[int, int]:
    """Join the torchrun process group when launched with WORLD_SIZE > 1; returns (rank, world)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _close_distributed() -> None:
    """Wait for every rank, then leave the process group (a rank that exits early aborts the others)."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def _load_directions(objective, spec: str, dims: int, seed: int, run_dir: Path, log, write: bool = True):
    import numpy as np
    import torch

    from .directions import as_directions, random_directions
    from .errors import InputError

    saved = run_dir / "directions.npz"
    if saved.exists():
        z = np.load(saved, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        if meta.get("spec") == spec and meta.get("dims") == dims and meta.get("seed") == seed:
            vecs = torch.as_tensor(z["vectors"]).to(device=objective.device, dtype=objective.dtype)
            from .directions import Directions

            ev = None if meta.get("eigenvalues") is None else np.asarray(meta["eigenvalues"])
            log(f"directions: reusing {saved}")
            return Directions(vecs, meta["kind"], meta.get("normalization"), seed, ev, meta.get("extra", {}))
    if spec == "hessian":
        from .hessian import hessian_directions

        log(f"directions: top-{dims} Hessian eigenvectors (Lanczos)...")
        d = hessian_directions(objective, dims, seed=seed)
    elif spec == "random":
        d = random_directions(objective, dims, seed=seed)
    elif spec == "filter":
        d = random_directions(objective, dims, seed=seed, normalization="filter")
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"--directions: expected hessian, random, filter or a .npy/.pt file, got {spec!r}.")
        arr = torch.load(path, map_location="cpu") if path.suffix == ".pt" else torch.as_tensor(np.load(path))
        d = as_directions(objective, torch.as_tensor(arr).to(objective.device), n=dims)
    meta = {
        "spec": spec,
        "dims": dims,
        "seed": seed,
        "kind": d.kind,
        "normalization": d.normalization,
        "eigenvalues": None if d.eigenvalues is None else [float(x) for x in d.eigenvalues],
        "extra": d.extra,
    }
    from .store import atomic_write_bytes

    if write:
        buf = io.BytesIO()
        np.savez(buf, vectors=d.vectors.detach().cpu().numpy(), meta=np.asarray(json.dumps(meta)))
        atomic_write_bytes(saved, buf.getvalue())
    return d


def analyze(args: argparse.Namespace) -> int:
    import numpy as np

    from . import __version__
    from .evaluate import grid_landscape
    from .objective import Objective
    from .recipes import load_recipe
    from .store import atomic_write_json
    from .topology import merge_tree, pairs_from_tree, persistence_range, smad

    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    from .errors import InputError

    if args.dims < 1:
        raise InputError(f"--dims: expected >= 1, got {args.dims}.")
    log(f"recipe: {args.recipe or 'built-in digits CNN'}")
    rec = load_recipe(args.recipe)
    timings["recipe_s"] = time.perf_counter() - t0
    slug = f"{rec.name}-{args.dims}d-{Path(args.directions).stem}"
    run_dir = Path(args.out or Path("landform-runs") / slug)
    run_dir.mkdir(parents=True, exist_ok=True)
    rank, world = _init_distributed()
    data_parallel = world > 1 and args.parallel == "data"
    if rank != 0:
        log = lambda *a: None  # noqa: E731
    objective = Objective(rec.model, rec.data, rec.loss_fn, data_parallel=data_parallel)
    log(f"objective: {objective}" + (f", {world} ranks ({args.parallel}-parallel)" if world > 1 else ""))
    t = time.perf_counter()
    if world > 1 and not data_parallel:
        # rank 0 computes the directions and hands them to every rank (no collectives inside)
        from .evaluate import _on_rank0

        def first():
            dd = _load_directions(objective, args.directions, args.dims, args.seed, run_dir, log)
            return dd.__class__(dd.vectors.cpu(), dd.kind, dd.normalization, dd.seed, dd.eigenvalues, dd.extra)

        d = _on_rank0(first, world)
        d = d.__class__(d.vectors.to(objective.device), d.kind, d.normalization, d.seed, d.eigenvalues, d.extra)
    else:
        d = _load_directions(objective, args.directions, args.dims, args.seed, run_dir, log, write=rank == 0)
    timings["directions_s"] = time.perf_counter() - t
    span = _per_axis_arg(args.span or [1.0], args.dims, "span")
    resolution = _per_axis_arg(args.resolution, args.dims, "resolution")
    command = "landform " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("landform") else None
    t = time.perf_counter()
    ls = grid_landscape(
        objective,
        d,
        span=span,
        resolution=resolution,
        out=str(run_dir / "landscape"),
        chunk_points=args.chunk_points,
        progress=not args.quiet,
        provenance={"recipe": args.recipe or "built-in:digits", "command": command or " ".join(sys.argv)},
    )
    timings["landscape_s"] = time.perf_counter() - t
    if rank != 0 and not data_parallel:
        return EXIT_OK  # grid-parallel: rank 0 does the (cheap) rest alone
    summary: dict[str, Any] = {
        "landform_version": __version__,
        "recipe": {"spec": args.recipe or "built-in:digits", "name": rec.name, **rec.info},
        "landscape": ls.summary(),
        "directions": {k: v for k, v in ls.directions.items() if k != "fingerprint"},
        "span": span,
        "resolution": resolution,
    }
    if ls.n_nonfinite == 0:
        t = time.perf_counter()
        tree = merge_tree(ls.values)
        pairs = pairs_from_tree(tree)
        summary["topology"] = {
            "smad": smad(tree),
            "n_minima": tree.n_minima,
            "n_saddles": int(tree.saddles.size),
            "persistence_range": persistence_range(pairs),
            "value_range": tree.value_range,
            "graph": tree.graph,
        }
        if rank == 0:
            np.save(run_dir / "persistence.npy", pairs)
        timings["topology_s"] = time.perf_counter() - t
    else:
        summary["topology"] = None
        log(f"warning: {ls.n_nonfinite} points have NaN/inf loss; topology skipped (shrink --span).")
    if args.trace_hvp:
        from .hessian import hessian_trace

        t = time.perf_counter()
        tr = hessian_trace(objective, method="hutch++", n_hvp=max(3, args.trace_hvp), seed=args.seed)
        summary["hessian"] = {"trace": tr.value, "trace_stderr": tr.stderr, "trace_n_hvp": tr.n_hvp}
        timings["trace_s"] = time.perf_counter() - t
    if args.density_probes:
        from .hessian import hessian_density

        t = time.perf_counter()
        dens = hessian_density(objective, n_probes=args.density_probes, n_steps=40, seed=args.seed)
        from .store import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, grid=dens.grid, density=dens.density, nodes=dens.nodes, weights=dens.weights)
        if rank == 0:
            atomic_write_bytes(run_dir / "density.npz", buf.getvalue())
        summary.setdefault("hessian", {})["density_n_hvp"] = dens.n_hvp
        timings["density_s"] = time.perf_counter() - t
    if args.sharpness_rho:
        from .metrics.perturbation import sharpness

        t = time.perf_counter()
        summary["sharpness"] = {
            kind: sharpness(objective, rho=args.sharpness_rho, kind=kind, seed=args.seed).value
            for kind in ("average", "worst")
        }
        summary["sharpness"]["rho"] = args.sharpness_rho
        timings["sharpness_s"] = time.perf_counter() - t
    if d.eigenvalues is not None:
        summary.setdefault("hessian", {})["top_eigenvalues"] = [float(x) for x in d.eigenvalues]
    timings["total_s"] = time.perf_counter() - t0
    summary["timings"] = timings
    if rank != 0:
        return EXIT_OK  # data-parallel: every rank took part in the collectives; rank 0 writes
    atomic_write_json(run_dir / "summary.json", summary)
    if not args.no_report:
        try:
            from .report import build_report
        except ImportError:  # pragma: no cover - report module optional during development
            build_report = None
        if build_report is not None:
            t = time.perf_counter()
            path = build_report(run_dir)
            timings["report_s"] = time.perf_counter() - t
            summary["report"] = str(path)
            log(f"report: {path}")
    print(format_summary(summary, run_dir))
    return EXIT_OK


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    ls = summary["landscape"]
    lines = [f"landform run: {run_dir}"]
    rec = summary.get("recipe", {})
    if "test_accuracy" in rec:
        lines.append(
            f"  model           {rec.get('name')}: train acc {rec['train_accuracy']:.3f}, test acc {rec['test_accuracy']:.3f}"
        )
    dirs = summary.get("directions", {})
    ev = dirs.get("eigenvalues")
    lines.append(
        f"  directions      {dirs.get('kind')}" + (f" (eigenvalues {', '.join(f'{x:.4g}' for x in ev)})" if ev else "")
    )
    lines.append(f"  grid            {' x '.join(map(str, ls['shape']))}, span {summary.get('span')}")
    lines.append(f"  loss at centre  {ls['center_value']:.6g}")
    if ls["min"] is not None:
        lines.append(f"  loss range      [{ls['min']:.6g}, {ls['max']:.6g}]")
    if ls["n_nonfinite"]:
        lines.append(f"  NaN/inf points  {ls['n_nonfinite']} (kept as they are; topology skipped)")
    topo = summary.get("topology")
    if topo:
        lines.append(f"  SMAD            {topo['smad']:.6g}")
        lines.append(f"  minima/saddles  {topo['n_minima']} / {topo['n_saddles']}")
        lines.append(f"  persistence rng {topo['persistence_range']:.6g}")
    h = summary.get("hessian", {})
    if "trace" in h:
        lines.append(f"  Hessian trace   {h['trace']:.6g} +- {h['trace_stderr']:.2g} ({h['trace_n_hvp']} HVPs)")
    sh = summary.get("sharpness")
    if sh:
        lines.append(f"  sharpness       average {sh['average']:.4g}, worst {sh['worst']:.4g} (L2, rho {sh['rho']:g})")
    lines.append(f"  time            {summary['timings']['total_s']:.1f} s")
    if summary.get("report"):
        lines.append(f"  report          {summary['report']}")
    return "\n".join(lines)


def compare(args: argparse.Namespace) -> int:
    """Print and save one table of several runs, with diagram distances and a figure."""
    import numpy as np

    from .errors import StoreError
    from .metrics.diagrams import bottleneck_distance, wasserstein_distance
    from .store import atomic_write_json

    runs: dict[str, dict[str, Any]] = {}
    diagrams: dict[str, Any] = {}
    for rd in args.run_dirs:
        path = Path(rd)
        if not (path / "summary.json").exists():
            raise StoreError(f"{path}: no summary.json; is it a finished landform run folder?")
        name = path.name if path.name not in runs else str(path)
        runs[name] = json.loads((path / "summary.json").read_text())
        if (path / "persistence.npy").exists():
            diagrams[name] = np.load(path / "persistence.npy")
    cols = ["SMAD", "pers. range", "minima", "λmax", "trace", "sharp. avg", "sharp. worst", "CKA"]
    rows = []
    for name, s in runs.items():
        topo = s.get("topology") or {}
        h = s.get("hessian") or {}
        sh = s.get("sharpness") or {}
        rows.append(
            [
                name,
                topo.get("smad"),
                topo.get("persistence_range"),
                topo.get("n_minima"),
                (h.get("top_eigenvalues") or [None])[0],
                h.get("trace"),
                sh.get("average"),
                sh.get("worst"),
                s.get("cka"),
            ]
        )

    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

    width = max(len(r[0]) for r in rows) + 2
    print("run".ljust(width) + "".join(c.rjust(13) for c in cols))
    for r in rows:
        print(r[0].ljust(width) + "".join(cell(v).rjust(13) for v in r[1:]))
    names = list(diagrams)
    dist = {"bottleneck": {}, "wasserstein_1": {}}
    if len(names) > 1:
        print("\npersistence-diagram distances (landform.metrics, L-infinity ground metric):")
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                bn = bottleneck_distance(diagrams[a], diagrams[b])
                w1 = wasserstein_distance(diagrams[a], diagrams[b])
                dist["bottleneck"][f"{a} | {b}"] = bn
                dist["wasserstein_1"][f"{a} | {b}"] = w1
                print(f"  {a} vs {b}: bottleneck {bn:.4g}, 1-Wasserstein {w1:.4g}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "comparison.json", {"columns": ["run", *cols], "rows": rows, "distances": dist})
    from matplotlib.figure import Figure

    from .plot import plot_comparison

    fig = Figure(figsize=(8, 4.2), layout="constrained")
    plot_comparison(runs, fig.add_subplot())
    fig.savefig(out / "comparison.png", dpi=110)
    print(f"\nwritten: {out / 'comparison.json'}, {out / 'comparison.png'}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from .errors import LandformError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            if args.command == "analyze":
                return analyze(args)
            if args.command == "compare":
                return compare(args)
            if args.command == "report":
                from .report import build_report

                print(build_report(Path(args.run_dir)))
                return EXIT_OK
    except LandformError as exc:
        print(f"landform: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            "\nlandform: interrupted; what was computed is saved. Run the same command again to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        _close_distributed()
    return EXIT_USAGE  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
