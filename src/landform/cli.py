"""Command line: ``landform analyze``, ``landform report`` and ``landform compare``.

It only parses, calls :mod:`landform.run` (the main job) or :mod:`landform.report`, and prints.

Exit codes: 0 success, 1 bad input or a refused store (a LandformError, message on stderr), 2 usage error,
130 interrupted (the run folder keeps what was computed; run the same command again to resume).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import RunResult

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _floats(text: str) -> list[float] | list[tuple[float, float]] | str:
    """'1' -> [1.0]; '1,0.5' -> [1.0, 0.5]; '-1:2,0.5' -> [(-1, 2), 0.5]; 'auto' -> 'auto'."""
    if text.strip() == "auto":
        return "auto"
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
        help="half-width per axis, or lo:hi ranges: 1.0 or -1:2,0.5 (default 1.0), or auto: from the curvature, so "
        "the quadratic model rises by --rise at each axis' edge",
    )
    a.add_argument(
        "--span-units",
        choices=["absolute", "relative"],
        default="absolute",
        help="absolute: coefficients of the directions (distances for unit directions; default); relative: "
        "fractions of ||theta0||, the paper's units (the edge lies exactly there)",
    )
    a.add_argument(
        "--normalization",
        choices=["none", "layer", "numel"],
        default="none",
        help="per-tensor rescaling of the directions: layer (to ||p||) or numel (to sqrt(numel): landscaper 1.3.1; "
        "with --span-units relative, the paper's geometry)",
    )
    a.add_argument("--rise", type=float, default=None, help="loss rise at each edge for --span auto (default 1)")
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
    a.add_argument(
        "--estimate",
        action="store_true",
        help="time a few losses, gradients and HVPs, print each stage's expected time and memory, and exit",
    )
    a.add_argument(
        "--progressive",
        action="store_true",
        help="evaluate the grid shard by shard of the data until its topology is stable (standard errors saved)",
    )
    a.add_argument(
        "--rtol", type=float, default=None, help="--progressive: tolerance of the stopping rule (default 0.05; 0: all data)"
    )
    a.add_argument("--shards", type=int, default=None, help="--progressive: parts the data is split into (default 16)")
    a.add_argument(
        "--compile", choices=["off", "on", "auto"], default="off", help="evaluate the grid through torch.compile"
    )
    a.add_argument(
        "--per-layer", action="store_true", help="top Hessian eigenvalue and trace of each layer (table and figure)"
    )
    a.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="record a per-point metric with the loss (built in: accuracy, for classification recipes); repeatable",
    )
    a.add_argument(
        "--eigenvalue-map",
        type=int,
        nargs="?",
        const=5,
        default=0,
        metavar="POINTS",
        help="map the top Hessian eigenvalue over POINTS x POINTS of the grid's points (default 5; one Lanczos run "
        "of at most 60 HVPs each; its contour in the report)",
    )
    a.add_argument(
        "--eigenvalue-map-smallest", action="store_true", help="--eigenvalue-map: also the smallest eigenvalue"
    )
    r = sub.add_parser("report", help="(re)build figures and report.html of a run folder")
    r.add_argument("run_dir")
    c = sub.add_parser(
        "compare",
        help="one table and figure of several runs, with distances between their persistence diagrams",
    )
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--out", default="landform-compare", help="folder for comparison.json and comparison.png")
    _add_track_parser(sub)
    return p


def _add_track_parser(sub: Any) -> None:
    t = sub.add_parser(
        "track",
        help="landscape metrics of every checkpoint of a training run, in one shared subspace",
        description="Evaluate every checkpoint in one shared subspace (trajectory PCA by default) and optionally "
        "its own top-Hessian one: loss, SMAD with its spread over data subsamples, minima, persistence range, "
        "trace, lambda_max and the bottleneck distance to the previous checkpoint. The recipe gives the "
        "architecture and data; the checkpoints give the weights. Running it again resumes per checkpoint.",
    )
    t.add_argument("recipe", nargs="?", default=None, help="file.py[:func] or module:func (default: digits CNN)")
    t.add_argument(
        "--checkpoints", required=True, help="folder or glob of state-dict files (sorted by the step in their names)"
    )
    t.add_argument("--dims", type=int, default=2, help="dimension of the shared subspace (default 2)")
    t.add_argument("--directions", choices=["pca", "filter-pca"], default="pca", help="shared subspace (default pca)")
    t.add_argument("--resolution", type=int, default=21, help="points per axis (default 21)")
    t.add_argument(
        "--span", type=_floats, default=None, help="half-width per axis (default: 1.1 x the trajectory's extent)"
    )
    t.add_argument(
        "--span-units",
        choices=["absolute", "relative"],
        default="absolute",
        help="relative: --span is a fraction of ||theta|| (the shared grid: of the last checkpoint's; each own-Hessian "
        "grid: of its own checkpoint's)",
    )
    t.add_argument("--hessian", action="store_true", help="also each checkpoint's own top-Hessian subspace")
    t.add_argument(
        "--own-normalization",
        choices=["none", "layer", "numel", "filter"],
        default="none",
        help="--hessian: per-tensor rescaling of the own eigenvectors (numel + --span-units relative: the paper's "
        "geometry)",
    )
    t.add_argument("--subsamples", type=int, default=3, help="data subsamples for SMAD's spread (0 skips; default 3)")
    t.add_argument("--data-fraction", type=float, default=0.8, help="fraction of the data per subsample")
    t.add_argument("--trace-hvp", type=int, default=30, help="Hutch++ budget (0 skips trace and lambda_max)")
    t.add_argument("--tol", type=float, default=1e-4, help="relative residual of the Hessian eigenpairs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="run folder (default landform-runs/<recipe>-track)")
    t.add_argument("--no-report", action="store_true", help="skip report.html")
    t.add_argument("--quiet", action="store_true", help="no progress messages")


def track(args: argparse.Namespace) -> int:
    from .errors import InputError
    from .recipes import load_recipe
    from .track import track_checkpoints

    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if args.subsamples == 1 or args.subsamples < 0:
        raise InputError(f"--subsamples: expected 0 (skip) or at least 2, got {args.subsamples}.")
    if args.span == "auto":
        raise InputError(
            "--span: track has no automatic span from the curvature (each checkpoint's would differ); give "
            "half-widths (one or one per direction), or leave --span out for 1.1 x the trajectory's extent."
        )
    if args.own_normalization != "none" and not args.hessian:
        raise InputError("--own-normalization: only used with --hessian (the own eigenvectors); add --hessian or drop it.")
    if args.span_units == "relative" and args.span is None:
        raise InputError("--span-units relative: give --span as a fraction of ||theta|| (for example --span 0.05).")
    rec = load_recipe(args.recipe)
    run_dir = Path(args.out or Path("landform-runs") / f"{rec.name}-track")
    span = None if args.span is None else _per_axis_arg(args.span, args.dims, "span")
    summary = track_checkpoints(
        rec.model,
        rec.data,
        rec.loss_fn,
        args.checkpoints,
        run_dir,
        dims=args.dims,
        directions=args.directions,
        span=span,
        span_units=args.span_units,
        resolution=args.resolution,
        hessian=args.hessian,
        own_normalization=None if args.own_normalization == "none" else args.own_normalization,
        subsample_seeds=tuple(range(args.subsamples)),
        data_fraction=args.data_fraction,
        trace_hvp=args.trace_hvp,
        tol=args.tol,
        seed=args.seed,
        log=log,
    )
    if not args.no_report:
        from .report.track import build_track_report

        log(f"report: {build_track_report(run_dir)}")
    cols = ["loss", "smad", "smad_std", "n_minima", "persistence_range", "trace", "lambda_max", "bottleneck_prev"]
    print(f"landform track: {run_dir}")
    print("checkpoint".ljust(24) + "step".rjust(8) + "".join(c[:12].rjust(13) for c in cols))
    for r in summary["rows"]:
        cells = ["-" if r.get(c) is None else (f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])) for c in cols]
        print(r["name"][:23].ljust(24) + str(r.get("step", "-")).rjust(8) + "".join(x.rjust(13) for x in cells))
    return EXIT_OK


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


def analyze(args: argparse.Namespace) -> int:
    from .errors import InputError
    from .objective import Objective
    from .recipes import load_recipe
    from .run import RunConfig
    from .run import analyze as run_analyze

    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    if args.dims < 1:
        raise InputError(f"--dims: expected >= 1, got {args.dims}.")
    given = [f"--{k}" for k in ("rtol", "shards") if getattr(args, k) is not None]
    if given and not args.progressive:
        raise InputError(f"{' and '.join(given)}: only used by a progressive run; add --progressive, or drop them.")
    if args.rise is not None and args.span != "auto":
        raise InputError("--rise: only used with --span auto (the loss rise the span is chosen for); add --span auto, "
                         "or drop --rise.")
    command = "landform " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("landform") else None
    config = RunConfig(
        dims=args.dims,
        resolution=_per_axis_arg(args.resolution, args.dims, "resolution"),
        span=args.span if args.span == "auto" else _per_axis_arg(args.span or [1.0], args.dims, "span"),
        span_units=args.span_units,
        normalization=None if args.normalization == "none" else args.normalization,
        rise=1.0 if args.rise is None else args.rise,
        directions=args.directions,
        seed=args.seed,
        chunk_points=args.chunk_points,
        parallel=args.parallel,
        trace_hvp=args.trace_hvp,
        density_probes=args.density_probes,
        sharpness_rho=args.sharpness_rho,
        report=not args.no_report,
        progress=not args.quiet,
        command=command or " ".join(sys.argv),
        progressive=args.progressive,
        rtol=0.05 if args.rtol is None else args.rtol,
        shards=16 if args.shards is None else args.shards,
        compile=args.compile,
        per_layer=args.per_layer,
        metrics=tuple(args.metric),
        eigenvalue_map=args.eigenvalue_map,
        eigenvalue_map_smallest=args.eigenvalue_map_smallest,
    ).validate()
    log(f"recipe: {args.recipe or 'built-in digits CNN'}")
    rec = load_recipe(args.recipe)
    recipe_s = time.perf_counter() - t0
    run_dir = Path(args.out or Path("landform-runs") / f"{rec.name}-{args.dims}d-{Path(args.directions).stem}")
    _rank, world = _init_distributed()
    if world > 1:
        from .distributed import broadcast_model

        broadcast_model(rec.model)  # rank 0's weights and buffers on every rank, before anything is evaluated
    objective = Objective(rec.model, rec.data, rec.loss_fn, data_parallel=world > 1 and args.parallel == "data")
    log(f"objective: {objective}" + (f", {world} ranks ({args.parallel}-parallel)" if world > 1 else ""))
    if args.estimate or not args.quiet:
        from .estimate import estimate_run

        est = estimate_run(
            objective, dims=config.dims, resolution=config.resolution, directions=str(config.directions),
            trace_hvp=config.trace_hvp, density_probes=config.density_probes, density_steps=config.density_steps,
            sharpness_rho=config.sharpness_rho, report=config.report, repeats=3 if args.estimate else 1,
            eigenvalue_map=config.eigenvalue_map, eigenvalue_map_smallest=config.eigenvalue_map_smallest,
            progressive_shards=config.shards if config.progressive else 0,
        )
        if args.estimate:
            print(est.table())
            return EXIT_OK
        log(est.table())
    info = {"spec": args.recipe or "built-in:digits", "name": rec.name, **rec.info, "load_s": recipe_s}
    result = run_analyze(objective, config, run_dir, recipe_info=info, log=log)
    if result is not None:
        print(format_summary(result, recipe_s=recipe_s))
    return EXIT_OK


def _span_line(result: RunResult) -> str:
    """The span as asked for, and what it became (auto: the chosen spans; relative: the fraction of ||theta0||)."""
    geo = result.extras.get("geometry") if isinstance(result.extras, dict) else None
    if not geo:
        return str(result.span)

    def fmt(vals: list[Any]) -> str:
        return ", ".join(f"[{v[0]:.4g}, {v[1]:.4g}]" if isinstance(v, list) else f"{v:.4g}" for v in vals)

    rel = fmt(geo["relative_span"])
    if geo.get("auto"):
        a = geo["auto"]
        curv = ", ".join(f"{c:.4g}" for c in a["curvatures"])
        return (
            f"auto (rise {a['rise']:g}): {fmt(a['span'])} (= {rel} x ||theta0||; curvature {curv} from "
            f"{a['source']}; {', '.join(a['rules'])})"
        )
    if geo["span_units"] == "relative":
        return f"{rel} x ||theta0|| (||theta0|| = {geo['theta0_norm']:.4g}; coefficients {fmt(geo['absolute_span'])})"
    return f"{fmt(geo['absolute_span'])} (= {rel} x ||theta0||)"


def format_summary(result: RunResult, *, recipe_s: float = 0.0) -> str:
    """The run's key numbers as the lines ``landform analyze`` prints."""
    ls = result.landscape_summary
    lines = [f"landform run: {result.path}"]
    rec = result.recipe
    if "test_accuracy" in rec:
        lines.append(
            f"  model           {rec.get('name')}: train acc {rec['train_accuracy']:.3f}, test acc {rec['test_accuracy']:.3f}"
        )
    ev = result.directions.get("eigenvalues")
    lines.append(
        f"  directions      {result.directions.get('kind')}"
        + (f" (eigenvalues {', '.join(f'{x:.4g}' for x in ev)})" if ev else "")
    )
    lines.append(f"  grid            {' x '.join(map(str, ls['shape']))}, span {_span_line(result)}")
    lines.append(f"  loss at centre  {ls['center_value']:.6g}")
    prog = result.extras.get("progressive")
    if prog:
        lines.append(
            f"  data used       {100 * prog['data_fraction']:.1f} % ({prog['shards_used']} of {prog['shards']} shards, "
            f"{prog['stopped']}); largest standard error {prog['max_stderr']:.3g}"
        )
    if ls["min"] is not None:
        lines.append(f"  loss range      [{ls['min']:.6g}, {ls['max']:.6g}]")
    if ls["n_nonfinite"]:
        lines.append(f"  NaN/inf points  {ls['n_nonfinite']} (kept as they are; topology skipped)")
    topo = result.topology
    if topo:
        lines.append(f"  SMAD            {topo.smad:.6g}")
        lines.append(f"  minima/saddles  {topo.n_minima} / {topo.n_saddles}")
        lines.append(f"  persistence rng {topo.persistence_range:.6g}")
    h = result.hessian
    if h.trace is not None:
        lines.append(f"  Hessian trace   {h.trace:.6g} +- {h.trace_stderr:.2g} ({h.trace_n_hvp} HVPs)")
    for r in (result.extras or {}).get("per_layer") or []:
        lines.append(
            f"  layer {r['layer'][:9]:<9} lmax {r['top_eigenvalue']:.4g}, trace {r['trace']:.4g} ({r['size']:,} params)"
        )
    for name, brows in ((result.extras or {}).get("basins") or {}).items():
        lines.append(f"  basins/{name:<8} " + ", ".join(f"{b['size']} pts {name} {b['mean']:.3f}" for b in brows[:4]))
    em = (result.extras or {}).get("eigenvalue_map")
    if em:
        ranges = ", ".join(
            f"{'lmax' if w == 'LA' else 'lmin'} [{em[w]['min']:.4g}, {em[w]['max']:.4g}]" for w in em["which"]
        )
        lines.append(
            f"  eigenvalue map  {' x '.join(map(str, em['shape']))} points: {ranges} ({em['n_hvp']:,} HVPs)"
        )
    sh = result.sharpness
    if sh:
        lines.append(f"  sharpness       average {sh.average:.4g}, worst {sh.worst:.4g} (L2, rho {sh.rho:g})")
    reused = [name for name, rec in result.stages.items() if f"{name}_s" not in result.timings]
    lines.append(
        f"  time            {result.timings.get('total_s', 0.0) + recipe_s:.1f} s"
        + (f" (reused: {', '.join(reused)})" if reused else "")
    )
    if result.report:
        lines.append(f"  report          {result.report}")
    return "\n".join(lines)


def compare(args: argparse.Namespace) -> int:
    """Print and save one table of several runs, with diagram distances and a figure."""
    from .run import compare as run_compare

    cmp = run_compare(args.run_dirs, args.out)

    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

    width = max(len(r[0]) for r in cmp.rows) + 2
    print("run".ljust(width) + "".join(c.rjust(13) for c in cmp.columns))
    for r in cmp.rows:
        print(r[0].ljust(width) + "".join(cell(v).rjust(13) for v in r[1:]))
    if cmp.bottleneck:
        print("\npersistence-diagram distances (landform.metrics, L-infinity ground metric):")
        for pair, bn in cmp.bottleneck.items():
            a, b = pair.split(" | ")
            print(f"  {a} vs {b}: bottleneck {bn:.4g}, 1-Wasserstein {cmp.wasserstein_1[pair]:.4g}")
    print(f"\nwritten: {cmp.json_path}, {cmp.figure_path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from .errors import LandformError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            if args.command in ("analyze", "track"):  # long tensor work: reuse freed blocks (landform.allocator)
                from .allocator import keep_freed_memory_unless_disabled

                keep_freed_memory_unless_disabled()
            if args.command == "analyze":
                return analyze(args)
            if args.command == "compare":
                return compare(args)
            if args.command == "track":
                return track(args)
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
