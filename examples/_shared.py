"""Helpers shared by the case-study examples: one run folder per model, written by :func:`landform.run.analyze`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landform import Objective
from landform.allocator import keep_freed_memory_unless_disabled
from landform.metrics import robust_smad
from landform.recipes.digits import fit_classifier as fit  # noqa: F401  (the examples' training loop)
from landform.results import RunResult
from landform.run import RunConfig, RunContext, Stage, analyze

# Every example is a long run of full-batch passes: reuse freed blocks as the CLI does (docs/benchmarks.md,
# "Memory reuse on full batches"; LANDFORM_KEEP_FREED_MEMORY=0 turns it off). Numbers do not change.
keep_freed_memory_unless_disabled()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _robust_stage(seeds: tuple[int, ...], span: float, resolution: int) -> Stage:
    """SMAD's spread over data subsamples, as an extra stage of the run (cached like trace and sharpness)."""
    settings = {"seeds": list(seeds), "data_fraction": 0.8, "directions": "hessian", "span": span,
                "resolution": resolution}  # fmt: skip

    def compute(ctx: RunContext) -> dict[str, Any]:
        rob = robust_smad(ctx.objective, seeds=seeds, data_fraction=0.8, directions="hessian", span=span,
                          resolution=resolution)  # fmt: skip
        return {"robust_smad": rob.summary()}

    return Stage("robust_smad", compute, lambda c: bool(seeds), lambda c: settings)


def analyse_model(
    name: str,
    model: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    out: Path,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    span: float = 1.0,
    resolution: int = 21,
    info: dict[str, Any] | None = None,
    loss_fn: Any = None,
    n_hvp: int = 30,
    with_sharpness: bool = True,
    progress: bool = False,
    tol: float = 1e-5,
    normalization: str | None = None,
    span_units: str = "absolute",
    report: bool = True,
) -> RunResult:
    """The main job (:func:`landform.run.analyze`: Hessian-direction landscape, topology, trace, lambda_max,
    sharpness, report) plus SMAD's spread over data subsamples (``seeds``; none = skipped), into out/<name>/.
    ``loss_fn`` defaults to cross-entropy. ``normalization="numel"`` with ``span_units="relative"`` is the
    paper's geometry (see landform.geometry); ``span="auto"`` chooses the span from the curvature."""
    if seeds and (span_units != "absolute" or normalization is not None or isinstance(span, str)):
        raise ValueError("the data-subsample spread (seeds) uses unit directions and absolute spans; pass seeds=()")
    obj = Objective(model, train, loss_fn or torch.nn.functional.cross_entropy)
    config = RunConfig(
        dims=2,
        resolution=resolution,
        span=span,
        span_units=span_units,
        normalization=normalization,
        directions="hessian",
        seed=0,
        lanczos_tol=tol,
        trace_hvp=n_hvp,
        density_probes=0,
        sharpness_rho=0.05 if with_sharpness else 0.0,
        report=report,
        progress=progress,
        command=f"examples: analyse_model({name!r})",
    )
    return analyze(obj, config, out / name, recipe_info={"name": name, **(info or {})},
                   extra_stages=[_robust_stage(tuple(seeds), span, resolution)])  # fmt: skip


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(rows, indent=1, default=float))


def add_geometry_args(ap: Any) -> None:
    """``--geometry unit|paper`` for the case-study scripts."""
    ap.add_argument(
        "--geometry",
        choices=["unit", "paper"],
        default="unit",
        help="unit: --span along unit eigenvectors (default); paper: landscaper 1.3.1's geometry, --span is its "
        "distance (a fraction of ||theta0||) over --resolution steps, directions rescaled per tensor to sqrt(numel)",
    )


def geometry_kwargs(args: Any) -> dict[str, Any]:
    """analyse_model's span, span_units and normalization for ``args.geometry``, ``args.span``, ``args.resolution``."""
    if getattr(args, "geometry", "unit") == "paper":
        from landform import landscaper_span

        return {
            "span": landscaper_span(float(args.span), int(args.resolution)),
            "span_units": "relative",
            "normalization": "numel",
        }
    return {"span": args.span}


def default_out(study: str, geometry: str) -> str:
    """The run folder when --out is not given: examples-runs/<study>, or <study>-paper for --geometry paper (a
    paper-geometry run must not meet the unit run's stores in one folder)."""
    return f"examples-runs/{study}" + ("-paper" if geometry == "paper" else "")


def add_track_geometry_args(ap: Any) -> None:
    """``--geometry unit|paper`` and ``--span`` for the training-dynamics scripts (landform track)."""
    ap.add_argument("--geometry", choices=["unit", "paper"], default="unit",
                    help="unit: absolute distances along unit directions; paper: landscaper 1.3.1's geometry (--span "
                    "is its distance, a fraction of ||theta||, own directions rescaled per tensor to sqrt(numel))")
    ap.add_argument("--span", type=float, default=None,
                    help="unit: half-width in parameter space (default: 1.1 x the trajectory's extent); paper: the "
                    "distance (default 0.5, the paper's MultiBERT setting)")  # fmt: skip


def track_geometry(args: Any) -> dict[str, Any]:
    """track_checkpoints' span, span_units and own_normalization for ``args.geometry``, ``args.span`` and
    ``args.resolution``: the paper's distance becomes ``landscaper_span(distance, resolution)`` of ||theta||."""
    if args.geometry != "paper":
        return {"span": args.span}
    from landform import landscaper_span

    distance = 0.5 if args.span is None else args.span
    return {"span": landscaper_span(distance, args.resolution), "span_units": "relative", "own_normalization": "numel"}


def track_spans_text(seed: int, summary: dict[str, Any], geometry: dict[str, Any]) -> str:
    """One line on the half-widths a track run used (shared plane; own Hessian planes)."""
    own = ("the first" if geometry.get("span_units") != "relative"
           else f"edges at {geometry['span']:.4g} of each checkpoint's ||theta||")  # fmt: skip
    return f"seed {seed}: shared plane's half-widths {', '.join(f'{x:.4g}' for x in summary['span'])} (own Hessian planes: {own})"


def spearman(x: Any, y: Any) -> tuple[float, float]:
    """Spearman rank correlation and its two-sided p-value (ties share ranks; NaN when a series is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(np.asarray(y, dtype=float)) > 0 and np.all(np.isfinite(np.asarray(y, dtype=float))):
        res = spearmanr(x, y)
        return float(res.statistic), float(res.pvalue)
    return float("nan"), float("nan")


def verdict(smad: tuple[float, float], trace: tuple[float, float], alpha: float = 0.05) -> str:
    """'yes' only when SMAD falls and the trace rises, both at two-sided level ``alpha``; 'no' when either moves
    significantly the other way; otherwise 'undecided' (with 6 checkpoints |rho| must exceed about 0.89)."""
    (rs, ps), (rt, pt) = smad, trace
    if not (np.isfinite(rs) and np.isfinite(rt)):
        return "undecided (a constant series)"
    if rs < 0 and ps < alpha and rt > 0 and pt < alpha:
        return "yes"
    if (rs > 0 and ps < alpha) or (rt < 0 and pt < alpha):
        return "no"
    return f"undecided (not significant at {alpha:g})"
