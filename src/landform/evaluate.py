"""Evaluate an objective on an n-dimensional grid in a subspace: :func:`grid_landscape`."""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._dist import on_rank0, rank_world
from ._provenance import peak_rss_mb, versions
from ._validation import per_axis
from .directions import as_directions
from .errors import InputError
from .fingerprint import fingerprint
from .geometry import resolve_span, span_number
from .landscape import Landscape
from .objective import Objective
from .store import GridStore, load_landscape

__all__ = ["grid_axes", "grid_landscape", "COMPILE_SECONDS", "COMPILE_SPEEDUP"]

#: Seconds torch.compile takes on the loss of a small CNN, and its compiled forward's time as a fraction of
#: eager (benchmarks/compile.py on the digits CNN); compile="auto" uses them to decide whether a grid pays it back.
COMPILE_SECONDS = 20.0
COMPILE_SPEEDUP = 0.74


def grid_axes(span: Any, resolution: Any, n: int) -> tuple[np.ndarray, ...]:
    """Coordinates of a regular grid, one array per axis.

    Parameters
    ----------
    span : float, sequence of float, or sequence of (lo, hi)
        A number ``s`` gives the axis ``[-s, s]``; a pair gives ``[lo, hi]``. Per axis when a sequence.
    resolution : int or sequence of int
        Points per axis (>= 2). With an odd resolution and a symmetric span the centre ``0.0`` is a grid
        point exactly.
    n : int
        Number of axes.

    Examples
    --------
    >>> [a.tolist() for a in grid_axes([1.0, (0.0, 2.0)], [3, 2], 2)]
    [[-1.0, 0.0, 1.0], [0.0, 2.0]]
    """
    spans = per_axis(span, n, "span")
    ress = per_axis(resolution, n, "resolution")
    axes = []
    for i, (s, r) in enumerate(zip(spans, ress, strict=True)):
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 2:
            raise InputError(
                f"resolution: axis {i} has {r!r}; every axis needs an integer resolution >= 2 (a 1-point axis "
                "is no landscape; drop that direction instead)."
            )
        if isinstance(s, (tuple, list, np.ndarray)):
            if len(s) != 2:
                raise InputError(f"span: axis {i} has {s!r}; expected a number or a (lo, hi) pair.")
            lo, hi = span_number(s[0], i, s), span_number(s[1], i, s)
            if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
                raise InputError(f"span: axis {i} has (lo, hi) = ({lo}, {hi}); expected finite lo < hi.")
        else:
            s = span_number(s, i, s)
            if not math.isfinite(s) or s <= 0:
                raise InputError(f"span: axis {i} has {s}; expected a finite number > 0 (the half-width).")
            lo, hi = -s, s
        with np.errstate(over="ignore", invalid="ignore"):
            ax = np.linspace(lo, hi, int(r))
        if not np.all(np.isfinite(ax)):  # hi - lo overflows float64 (e.g. span=1e308)
            raise InputError(
                f"span: axis {i} runs from {lo:g} to {hi:g}, a width that overflows float64, so its grid points are "
                "not numbers; pass a smaller span."
            )
        if np.any(np.diff(ax) <= 0):  # float64 cannot tell the points apart (a tiny width, or far from 0)
            raise InputError(
                f"span: axis {i} from {lo!r} to {hi!r} does not hold {int(r)} distinct float64 points (some would "
                "coincide); widen the span, move it nearer 0, or lower the resolution."
            )
        # Snap the grid point that should be the centre to exactly 0.0.
        pos = -lo / (hi - lo) * (int(r) - 1)
        k = round(pos)
        if lo <= 0 <= hi and abs(pos - k) < 1e-9:
            ax[k] = 0.0
        axes.append(ax)
    return tuple(axes)


def _check_ranks_agree(fp: dict[str, str], world: int) -> None:
    """Refuse to evaluate when the ranks of a distributed run do not hold the same objective and grid."""
    import torch.distributed as dist

    from .store import describe_changes, fingerprint_changes

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, fp)
    for r, other in enumerate(parts):
        changed = fingerprint_changes(parts[0], other)
        if changed:
            raise InputError(
                f"objective: rank {r} differs from rank 0 in {describe_changes(changed)}; every rank must evaluate "
                "the same objective, or the landscape would mix several. Build the model, data and loss the same "
                "way on every rank (seed them), or call landform.distributed.broadcast_model(model) before "
                "building the Objective."
            )


def _pin_stored_batch_mode(objective: Objective, out: str | None) -> None:
    """A resumed run evaluates the way its stored chunks were (batch_mode="auto" times loop and vmap on an
    accelerator and could pick the other one, whose values differ in the last bits)."""
    if out is None or objective.batch_mode != "auto" or objective.resolved_batch_mode is not None:
        return
    try:
        meta = json.loads((Path(out) / "landscape.json").read_text())
        mode = meta["provenance"]["batch_mode"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if mode in ("loop", "vmap"):
        objective.pin_batch_mode(mode)


def grid_landscape(
    objective: Objective,
    directions: Any,
    *,
    span: Any = 1.0,
    resolution: Any = 21,
    span_units: str = "absolute",
    out: str | None = None,
    chunk_points: int = 256,
    progress: bool | None = None,
    provenance: dict[str, Any] | None = None,
    compile: bool | str = False,
    metrics: dict[str, Any] | None = None,
) -> Landscape:
    """Loss of ``objective`` on a regular grid in the span of ``directions``.

    The point with grid index ``(i, j, ...)`` is ``theta0 + axes[0][i] * d_0 + axes[1][j] * d_1 + ...``
    and its loss is ``values[i, j, ...]`` of the result.

    Parameters
    ----------
    objective : Objective
    directions : Directions, (n, P) tensor, or list of per-parameter dicts
        n = 1..5 directions (more are allowed with a warning: the grid has prod(resolution) points).
    span : float, sequence of float, sequence of (lo, hi), "auto" or AutoSpan
        Half-width of each axis, or its (lo, hi) range (see :func:`grid_axes`), in ``span_units``.
        ``"auto"`` or :func:`landform.auto_span`'s result: chosen from the curvature (see there).
    resolution : int or sequence of int
        Points per axis, >= 2 (odd puts the centre on the grid).
    span_units : {"absolute", "relative"}
        ``"absolute"``: coefficients of the directions (distances for unit directions). ``"relative"``:
        fractions of ``||theta0||``; axis i ends exactly at distance ``span * ||theta0||`` (see
        :mod:`landform.geometry`). ``axes`` always hold the true coefficients; the conversion is recorded in
        ``provenance["geometry"]``.
    out : str, optional
        Directory of a landscape store. Values are written there chunk by chunk, atomically; calling again
        with the same arguments after an interruption resumes where it stopped, and a finished store is
        loaded instead of recomputed. A store of a different run is refused, naming what changed: its
        fingerprint (:func:`landform.fingerprint.fingerprint`) covers the full data, the loss function's code and
        closure, the weights, buffers, model code, directions and axes; and the loss at the centre, recomputed,
        must equal the stored one bitwise.
    chunk_points : int
        Points per stored chunk (the most a kill can lose).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    provenance : dict, optional
        Extra entries for the result's provenance (e.g. the command line).
    compile : bool or "auto"
        Evaluate the losses through :func:`torch.compile` (:meth:`Objective.compiled`; values equal to eager
        to float32 rounding). ``"auto"`` compiles only when the grid is large enough to pay back the compile
        time: when ``points x t_loss x (1 - COMPILE_SPEEDUP) > 2 x COMPILE_SECONDS``, with ``t_loss`` the time
        of the centre's loss (constants measured by ``benchmarks/compile.py``; never under torch.distributed).
    metrics : dict of str to callable, optional
        Extra functions ``fn(outputs, targets)`` returning a batch mean (such as
        :func:`landform.pointmetrics.accuracy`), evaluated in the same forward pass as the loss at every point
        and stored as ``ls.metrics[name]`` (batch-size weighted like the loss). Points are then evaluated one
        at a time (the loop path, not compiled). Their names and code are part of a store's fingerprint.

    Returns
    -------
    Landscape

    Examples
    --------
    >>> import torch
    >>> from landform import Objective, random_directions
    >>> torch.manual_seed(0) and None
    >>> obj = Objective(torch.nn.Linear(3, 1), (torch.randn(16, 3), torch.randn(16, 1)), torch.nn.functional.mse_loss)
    >>> ls = grid_landscape(obj, random_directions(obj, 2, seed=0), span=0.5, resolution=(5, 3), progress=False)
    >>> ls.values.shape
    (5, 3)
    >>> bool(abs(ls.values[2, 1] - obj.loss()) < 1e-6)
    True
    """
    from ._validation import check_int, check_objective
    from .pointmetrics import check_metrics, loss_and_metrics, metrics_fingerprint

    check_objective("objective", objective)
    metrics = check_metrics(metrics)
    d = as_directions(objective, directions)
    n = d.n
    span, geometry = resolve_span(objective, d, span, span_units)
    axes = grid_axes(span, resolution, n)
    shape = tuple(len(a) for a in axes)
    total = int(np.prod(shape))
    if n > 5:
        warnings.warn(
            f"grid_landscape: {n} directions give a grid of {total:,} points (resolution^n); consider scattered "
            "sampling for n > 5.",
            stacklevel=2,
        )
    for i, r in enumerate(shape):
        if r % 2 == 0 and axes[i][0] < 0 < axes[i][-1] and not np.any(axes[i] == 0.0):
            warnings.warn(
                f"grid_landscape: axis {i} has an even resolution ({r}), so the centre (the model's own "
                "parameters) is not a grid point; use an odd resolution to include it.",
                stacklevel=2,
            )
            break
    chunk_points = check_int("chunk_points", chunk_points, minimum=1)
    if compile not in (False, True, "auto"):
        raise InputError(f"compile: expected False, True or 'auto', got {compile!r}.")
    t_start = time.perf_counter()
    _pin_stored_batch_mode(objective, out)
    if metrics:
        c_loss, _ = loss_and_metrics(objective, objective.theta0[None], metrics)  # checks them early
        center = float(c_loss[0])
    else:
        center = float(objective.loss_batch(objective.theta0[None])[0])  # NaN kept: the grid flags it
    t_loss = time.perf_counter() - t_start
    use_compile = not metrics and (
        compile is True
        or (
            compile == "auto"
            and rank_world()[1] == 1
            and objective.private_model is not None
            and total * t_loss * (1 - COMPILE_SPEEDUP) > 2 * COMPILE_SECONDS
        )
    )
    if use_compile and not objective.is_compiled:
        objective = objective.compiled()
    prov = {
        "num_params": objective.num_params,
        "num_samples": objective.num_samples,
        "device": str(objective.device),
        "dtype": str(objective.dtype).replace("torch.", ""),
        "seed": d.seed,
        "batch_mode": objective.resolved_batch_mode,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "geometry": geometry,
        **(provenance or {}),
    }
    template = Landscape(
        np.full(shape, np.nan), axes, d.metadata(), center, prov, np.zeros(shape, bool),
        metrics={k: np.full(shape, np.nan) for k in metrics},
    )
    rank, world = rank_world()
    data_parallel = objective.data_parallel
    store = None
    done: set[int] = set()
    fp = fingerprint(objective, d, axes) if (out is not None or world > 1) else None
    if fp is not None and metrics:
        fp = {**fp, "metrics": metrics_fingerprint(metrics)}  # names and code of the per-point metrics
    if world > 1:
        _check_ranks_agree(fp, world)
    if out is not None:
        meta = on_rank0(
            lambda: GridStore.open(out, template, fingerprint=fp, chunk_points=int(chunk_points)).meta, world
        )
        store = GridStore(out, meta=meta)
        if store.complete:
            return load_landscape(out)
        chunk = store.chunk_points
        done = on_rank0(store.done_chunks, world)
    else:
        chunk = int(chunk_points)
    n_chunks = -(-total // chunk)
    flat = np.full(total, np.nan)
    mflat = np.full((total, len(metrics)), np.nan)
    if store is not None and done:
        prev, ev = store.assemble()
        flat[ev.ravel()] = prev.ravel()[ev.ravel()]
        if metrics:
            mflat[ev.ravel()] = store.assemble_metrics(len(metrics)).reshape(len(metrics), -1).T[ev.ravel()]
    todo = [i for i in range(n_chunks) if i not in done]
    done_points = total - sum(min(total, (i + 1) * chunk) - i * chunk for i in todo)
    # grid-parallel: ranks take disjoint chunks; data-parallel: every rank evaluates every point on its data shard
    mine = todo if (world == 1 or data_parallel) else todo[rank::world]
    writer = store is not None and (rank == 0 or not data_parallel)
    D = d.vectors
    theta0 = objective.theta0
    group = max(1, objective.point_batch_size)
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total, initial=done_points, unit="pt", desc="landscape", disable=not progress or rank != 0, leave=False
    )
    t_eval = time.perf_counter()
    try:
        for ci in mine:
            lo, hi = ci * chunk, min(total, (ci + 1) * chunk)
            idx = np.unravel_index(np.arange(lo, hi), shape)
            coords = np.stack([axes[k][idx[k]] for k in range(n)], axis=1)
            vals = np.empty(hi - lo)
            for g0 in range(0, hi - lo, group):
                A = torch.as_tensor(coords[g0 : g0 + group], dtype=objective.dtype, device=objective.device)
                thetas = theta0[None, :] + A @ D
                if metrics:
                    lv, mv = loss_and_metrics(objective, thetas, metrics)
                    vals[g0 : g0 + A.shape[0]] = lv
                    mflat[lo + g0 : lo + g0 + A.shape[0]] = np.stack([mv[k] for k in metrics], axis=1)
                else:
                    vals[g0 : g0 + A.shape[0]] = objective.loss_batch(thetas).numpy()
                bar.update(A.shape[0] * (world if not data_parallel else 1))
            flat[lo:hi] = vals
            if writer:
                if metrics:
                    store.write_chunk(ci, vals, mflat[lo:hi])
                else:
                    store.write_chunk(ci, vals)
    finally:
        bar.close()
    if world > 1 and not data_parallel:
        import torch.distributed as dist

        parts: list[Any] = [None] * world
        dist.all_gather_object(
            parts, {ci: (flat[ci * chunk : min(total, (ci + 1) * chunk)], mflat[ci * chunk : min(total, (ci + 1) * chunk)])
                    for ci in mine}
        )
        for part in parts:
            for ci, (vals, mvals) in part.items():
                flat[ci * chunk : ci * chunk + len(vals)] = vals
                mflat[ci * chunk : ci * chunk + len(vals)] = mvals
    values = flat.reshape(shape)
    prov["timings"] = {
        "evaluate_s": time.perf_counter() - t_eval,
        "total_s": time.perf_counter() - t_start,
        "points_evaluated": sum(min(total, (i + 1) * chunk) - i * chunk for i in todo),
        "ranks": world,
        "peak_rss_mb": peak_rss_mb(),
        "parallel": "data" if data_parallel else ("grid" if world > 1 else None),
    }
    prov["batch_mode"] = "loop" if metrics else objective.resolved_batch_mode
    prov["compiled"] = objective.is_compiled
    ms = {k: mflat[:, j].reshape(shape) for j, k in enumerate(metrics)}
    ls = Landscape(values, axes, d.metadata(), center, prov, metrics=ms)
    n_bad = ls.n_nonfinite
    if n_bad:
        warnings.warn(
            f"grid_landscape: {n_bad} of {total} points have NaN or inf loss; they are kept as they are "
            "(Landscape.n_nonfinite). Topological analysis needs a finite landscape: shrink the span.",
            stacklevel=2,
        )
    if store is not None:
        on_rank0(lambda: store.finalize(ls), world)
    return ls
