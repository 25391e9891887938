"""How long a run will take and how much memory it needs, before running it: :func:`estimate_run`.

The cost of every stage of ``landform analyze`` is a count of full-data passes of three kinds (loss forwards,
gradients, Hessian-vector products) times the measured time of one of each. The counts follow from the
configuration alone (:func:`stage_counts`, exact except where marked as an upper bound); the unit times are
measured on the objective itself (a few repetitions, median).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._validation import check_int, check_objective
from .errors import InputError
from .objective import Objective

__all__ = ["StageCost", "RunEstimate", "stage_counts", "estimate_run", "LANCZOS_HVP_BUDGET"]

#: A fixed allowance for rendering the report's figures and HTML (seconds), on top of its topology.
REPORT_RENDER_S = 5.0


def LANCZOS_HVP_BUDGET(k: int, P: int) -> int:  # noqa: N802 - a documented constant-like rule
    """The HVP budget of :func:`landform.hessian_eigenpairs` for ``k`` pairs of a P-parameter model."""
    return min(P, max(30 * k, 60))


@dataclass(frozen=True)
class StageCost:
    """Counts of full-data passes of one stage, and its expected time.

    ``upper_bound`` marks a count that is a budget the stage may stop short of (Lanczos converging early).
    """

    name: str
    forwards: int
    gradients: int
    hvps: int
    upper_bound: bool = False
    seconds: float = float("nan")
    note: str = ""


@dataclass(frozen=True)
class RunEstimate:
    """Expected time of each stage and the memory a run needs.

    Attributes
    ----------
    stages : tuple of StageCost
    forward_s, gradient_s, hvp_s : float
        Measured seconds of one full-data loss, gradient and Hessian-vector product (median of ``repeats``).
    memory : dict of str to int
        Bytes: ``parameters``, ``data`` (cached on the device), ``hvp_peak`` (measured peak above the baseline
        during one HVP; CUDA: allocator peak, CPU: growth of the process's peak RSS, a lower bound),
        ``lanczos_basis`` (float64 Krylov basis of the directions stage), ``grid`` (values), ``total``.
    points : int
        Grid points.
    """

    stages: tuple[StageCost, ...]
    forward_s: float
    gradient_s: float
    hvp_s: float
    memory: dict[str, int] = field(default_factory=dict)
    points: int = 0
    device: str = "cpu"

    @property
    def total_s(self) -> float:
        return float(sum(s.seconds for s in self.stages))

    def table(self) -> str:
        """The estimate as printable lines."""
        lines = [
            f"estimate on {self.device}: one full-data loss {_fmt_s(self.forward_s)}, gradient {_fmt_s(self.gradient_s)}, "
            f"HVP {_fmt_s(self.hvp_s)}; {self.points:,} grid points",
            f"  {'stage':<11}{'forwards':>10}{'gradients':>10}{'HVPs':>8}{'time':>12}",
        ]
        for s in self.stages:
            bound = "<=" if s.upper_bound else "  "
            lines.append(
                f"  {s.name:<11}{s.forwards:>10,}{s.gradients:>10,}{s.hvps:>8,}{bound:>4}{_fmt_s(s.seconds):>8}"
                + (f"  ({s.note})" if s.note else "")
            )
        lines.append(f"  {'total':<11}{'':>28}{'':>4}{_fmt_s(self.total_s):>8}")
        mem = self.memory
        lines.append(
            "  memory      "
            + ", ".join(f"{k} {_fmt_b(v)}" for k, v in mem.items() if k != "total")
            + f"; total about {_fmt_b(mem.get('total', 0))}"
        )
        return "\n".join(lines)


def _fmt_s(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 1:
        return f"{s * 1e3:.0f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _fmt_b(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(b) < 1024 or unit == "TiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB"  # pragma: no cover


def stage_counts(
    *,
    num_params: int,
    dims: int,
    resolution: Any,
    directions: str = "hessian",
    trace_hvp: int = 30,
    density_probes: int = 2,
    density_steps: int = 40,
    sharpness_rho: float = 0.05,
    sharpness_samples: int = 16,
    sharpness_steps: int = 20,
    report: bool = True,
    eigenvalue_map: int = 0,
    eigenvalue_map_smallest: bool = False,
    progressive_shards: int = 0,
) -> tuple[StageCost, ...]:
    """Full-data passes of each stage of ``landform analyze`` for a configuration (its defaults are the CLI's).

    Directions: ``"hessian"`` runs Lanczos within the budget of :func:`LANCZOS_HVP_BUDGET` (an upper bound:
    it stops once converged, and spends ``dims`` more HVPs per residual check); random directions cost nothing.
    Grid: one loss per point plus the centre. Trace: the Hutch++ budget ``max(3, trace_hvp)``, or P
    HVPs (the exact trace) when the budget is at least P. Density:
    ``probes x min(steps, P)`` HVPs. Sharpness: average, ``1 + samples`` losses; worst case, ``1 + samples``
    losses and ``steps`` gradients and losses. Eigenvalue map (``eigenvalue_map`` points per axis, 0: none):
    one Lanczos run of at most ``min(P, 60)`` HVPs per map point and eigenvalue (an upper bound; each run also
    spends a residual check or a few). Progressive grid (``progressive_shards`` K > 0): all K shards at most (an
    upper bound, the same sample-forwards as the full grid), min(3, K)/K of them at the earliest stop.

    Examples
    --------
    >>> [(s.name, s.forwards, s.hvps) for s in stage_counts(num_params=1000, dims=2, resolution=11)][:3]
    [('directions', 0, 60), ('grid', 122, 0), ('trace', 0, 30)]
    """
    dims = check_int("dims", dims, minimum=1, maximum=int(num_params))
    res = _resolution_list(resolution, dims)
    if len(res) != dims or min(res) < 2:
        raise InputError(f"resolution: expected one value >= 2 or one per direction ({dims}), got {resolution!r}.")
    points = int(np.prod(res))
    hess = directions == "hessian"
    stages = [
        StageCost("directions", 0, 0, LANCZOS_HVP_BUDGET(dims, num_params) if hess else 0, upper_bound=hess,
                  note="Lanczos budget" if hess else "random: no passes"),
        StageCost("grid", points + 1, 0, 0, upper_bound=bool(progressive_shards),
                  note=f"{points:,} points + centre"
                  + (f"; progressive over {progressive_shards} shards: {min(3, progressive_shards)}/{progressive_shards} "
                     "of this at the earliest stop" if progressive_shards else "")),
        StageCost("trace", 0, 0, min(max(3, trace_hvp), num_params) if trace_hvp else 0),
        StageCost("density", 0, 0, density_probes * min(density_steps, num_params) if density_probes else 0),
    ]
    if sharpness_rho:
        stages.append(StageCost("sharpness", 2 * (1 + sharpness_samples) + sharpness_steps, sharpness_steps, 0,
                                note="average and worst case"))
    else:
        stages.append(StageCost("sharpness", 0, 0, 0))
    if eigenvalue_map:
        from .curvature_run import EIGENVALUE_MAP_HVP

        map_points = int(np.prod([min(int(eigenvalue_map), r) for r in res]))
        which = 2 if eigenvalue_map_smallest else 1
        budget = max(2, min(num_params, EIGENVALUE_MAP_HVP))
        stages.append(StageCost("eigen map", 0, 0, map_points * which * budget, upper_bound=True,
                                note=f"{map_points:,} points x {which} eigenvalue(s), Lanczos <= {budget} HVPs each"))
    if report:
        stages.append(StageCost("report", 0, 0, 0, note="topology of the grid + figures"))
    return tuple(stages)


def _median_time(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _report_seconds(shape: tuple[int, ...]) -> float:
    """Merge tree of a random array of the grid's shape (the report's topology), plus a fixed render time."""
    from .topology import merge_tree

    n = int(np.prod(shape))
    probe = shape if n <= 200_000 else (200_000,)
    vals = np.random.default_rng(0).random(probe)
    merge_tree(vals[:8] if vals.ndim == 1 else vals[(slice(0, 3),) * vals.ndim])  # compile outside the timing
    t = time.perf_counter()
    merge_tree(vals)
    return (time.perf_counter() - t) * n / vals.size + REPORT_RENDER_S


def estimate_run(
    objective: Objective,
    *,
    dims: int = 2,
    resolution: Any = 41,
    directions: str = "hessian",
    trace_hvp: int = 30,
    density_probes: int = 2,
    density_steps: int = 40,
    sharpness_rho: float = 0.05,
    sharpness_samples: int = 16,
    sharpness_steps: int = 20,
    report: bool = True,
    repeats: int = 3,
    eigenvalue_map: int = 0,
    eigenvalue_map_smallest: bool = False,
    progressive_shards: int = 0,
) -> RunEstimate:
    """Time a few full-data losses, gradients and HVPs, and estimate each stage of a run and its memory.

    Runs ``repeats`` (+1 warm-up) of each pass on the objective and nothing else; the stage counts are those
    of :func:`stage_counts`. Times scale linearly with the counts, which holds when one pass dominates (it
    ignores the Lanczos orthogonalisation, cheap below about 10^7 parameters x 100 vectors, and the
    vectorised grid path on accelerators, which can be faster per point than one loss).

    Examples
    --------
    >>> import torch
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(16, 3), torch.randn(16, 1)), torch.nn.functional.mse_loss)
    >>> est = estimate_run(obj, dims=2, resolution=5, report=False, repeats=1)
    >>> [s.name for s in est.stages]
    ['directions', 'grid', 'trace', 'density', 'sharpness']
    """
    check_objective("objective", objective)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InputError(f"repeats: expected a positive integer, got {repeats!r}.")
    stages = stage_counts(
        num_params=objective.num_params, dims=dims, resolution=resolution, directions=directions,
        trace_hvp=trace_hvp, density_probes=density_probes, density_steps=density_steps,
        sharpness_rho=sharpness_rho, sharpness_samples=sharpness_samples, sharpness_steps=sharpness_steps,
        report=report, eigenvalue_map=eigenvalue_map, eigenvalue_map_smallest=eigenvalue_map_smallest,
        progressive_shards=progressive_shards,
    )
    dev = objective.device
    theta = objective.theta0[None]
    v = torch.randn(objective.num_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = v.to(device=dev, dtype=objective.dtype)
    objective.loss_batch(theta)  # warm-up (and batch-mode choice)
    forward_s = _median_time(lambda: objective.loss_batch(theta), repeats, dev)
    objective.gradient()
    gradient_s = _median_time(objective.gradient, repeats, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = _peak_rss()
    objective.hvp(v)
    hvp_peak = (torch.cuda.max_memory_allocated(dev) - base) if dev.type == "cuda" else max(0, _peak_rss() - base)
    hvp_s = _median_time(lambda: objective.hvp(v), repeats, dev)
    points = int(next(s for s in stages if s.name == "grid").forwards) - 1
    shape = _shape(resolution, dims)
    timed = []
    for s in stages:
        secs = s.forwards * forward_s + s.gradients * gradient_s + s.hvps * hvp_s
        note = s.note
        if s.name == "report":
            secs = _report_seconds(shape)
        if s.name == "grid" and progressive_shards:
            note += f" ({_fmt_s(secs * min(3, progressive_shards) / progressive_shards)})"  # never before 3 shards
        timed.append(StageCost(s.name, s.forwards, s.gradients, s.hvps, s.upper_bound, secs, note))
    P = objective.num_params
    elem = objective.theta0.element_size()
    hess_budget = LANCZOS_HVP_BUDGET(dims, P) if directions == "hessian" else 0
    memory = {
        "parameters": P * elem * 3,  # the model, the objective's snapshot, the private copy
        "data": objective.data_nbytes,
        "hvp_peak": int(hvp_peak),
        "lanczos_basis": int(max(hess_budget, min(density_steps, P) if density_probes else 0) * P * 8),
        "grid": points * 8 * 2,
    }
    memory["total"] = int(sum(memory.values()))
    return RunEstimate(tuple(timed), forward_s, gradient_s, hvp_s, memory, points, str(dev))


def _resolution_list(resolution: Any, dims: int) -> list[int]:
    """Points per axis as a list (one value is repeated ``dims`` times); non-integers are an InputError."""
    values = [resolution] if isinstance(resolution, (int, np.integer, str, float)) else resolution
    try:
        res = [check_int("resolution", r, minimum=2) for r in values]
    except TypeError as exc:  # not iterable
        raise InputError(
            f"resolution: expected an integer >= 2 or one per direction ({dims}), got {resolution!r}."
        ) from exc
    return res * dims if len(res) == 1 else res


def _shape(resolution: Any, dims: int) -> tuple[int, ...]:
    if isinstance(resolution, (int, np.integer)):
        return (int(resolution),) * dims
    res = [int(r) for r in resolution]
    return tuple(res * dims if len(res) == 1 else res)
