"""Scattered sampling beyond grids: random, ball, Sobol and Latin-hypercube points, adaptive refinement near
saddles and shallow minima, and a dimension sweep over the top Hessian directions."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .directions import Directions, as_directions
from .errors import InputError
from .objective import Objective
from .results import Landscape, ScatteredLandscape

__all__ = [
    "sample_points",
    "ScatteredLandscape",
    "scattered_landscape",
    "adaptive_landscape",
    "DimensionSweep",
    "dimension_sweep",
]


def _bounds(span: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    from ._validation import per_axis

    lo, hi = np.empty(n), np.empty(n)
    for i, s in enumerate(per_axis(span, n, "span")):
        if isinstance(s, (tuple, list, np.ndarray)):
            lo[i], hi[i] = float(s[0]), float(s[1])
        else:
            lo[i], hi[i] = -float(s), float(s)
        if not (np.isfinite(lo[i]) and np.isfinite(hi[i]) and hi[i] > lo[i]):
            raise InputError(f"span: axis {i} gives the range ({lo[i]}, {hi[i]}); expected finite lo < hi.")
    return lo, hi


def sample_points(n_points: int, dims: int, *, method: str = "sobol", span: Any = 1.0, seed: int = 0) -> np.ndarray:
    """Sample coordinates for a scattered landscape; the centre (all zeros) is always the first point.

    Parameters
    ----------
    n_points : int
        Total number of points, centre included (>= 2).
    dims : int
    method : {"sobol", "random", "lhs", "ball"}
        Scrambled Sobol (scipy.stats.qmc), uniform in the box, Latin hypercube, or uniform in the ball
        (the ellipsoid inscribed in the box for anisotropic spans).
    span : float, sequence of float or of (lo, hi)
        The box, as in :func:`landform.grid_axes`.

    Examples
    --------
    >>> p = sample_points(64, 3, method="sobol", span=[1.0, 0.5, (0.0, 2.0)], seed=1)
    >>> p.shape, p[0].tolist()
    ((64, 3), [0.0, 0.0, 0.0])
    >>> bool(np.all(p[:, 1] <= 0.5) and np.all(p[:, 2] >= 0.0))
    True
    """
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise InputError(f"n_points: expected an integer >= 2, got {n_points!r}.")
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 1:
        raise InputError(f"dims: expected an integer >= 1, got {dims!r}.")
    lo, hi = _bounds(span, dims)
    m = n_points - 1
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}.")
    rng = np.random.default_rng(seed)
    if method == "random":
        u = rng.random((m, dims))
    elif method == "sobol":
        from scipy.stats import qmc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "balance properties need a power of 2": fine for our use
            u = qmc.Sobol(dims, scramble=True, seed=rng).random(m)
    elif method == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(dims, seed=rng).random(m)
    elif method == "ball":
        g = rng.normal(size=(m, dims))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        r = rng.random(m) ** (1.0 / dims)
        u = 0.5 + 0.5 * g * r[:, None]
    else:
        raise InputError(f"method: expected 'sobol', 'random', 'lhs' or 'ball', got {method!r}.")
    pts = lo + u * (hi - lo)
    centre = np.clip(np.zeros(dims), lo, hi)
    return np.vstack([centre, pts])


def _eval_coords(objective: Objective, D: torch.Tensor, coords: np.ndarray) -> np.ndarray:
    """Loss at ``theta0 + coords @ D`` for every row of ``coords``, in groups of point_batch_size."""
    out = np.empty(coords.shape[0])
    group = max(1, objective.point_batch_size)
    for g0 in range(0, coords.shape[0], group):
        A = torch.as_tensor(coords[g0 : g0 + group], dtype=objective.dtype, device=objective.device)
        out[g0 : g0 + A.shape[0]] = objective.loss_batch(objective.theta0[None, :] + A @ D).numpy()
    return out


def scattered_landscape(
    objective: Objective,
    directions: Any,
    points: np.ndarray,
    *,
    span_units: str = "absolute",
    metrics: dict[str, Any] | None = None,
) -> ScatteredLandscape:
    """Loss at scattered ``points`` (N, n) of the subspace spanned by ``directions`` (n of them).

    ``span_units="relative"`` reads the points as fractions of ``||theta0||`` (column i is multiplied by
    ``||theta0|| / ||d_i||``; see :mod:`landform.geometry`); the result's ``points`` are the coefficients.
    ``metrics`` records extra per-point functions of ``(outputs, targets)`` in the same forward passes, as in
    :func:`landform.grid_landscape`.
    """
    from .geometry import as_absolute, resolve_span
    from .pointmetrics import check_metrics, loss_and_metrics

    metrics = check_metrics(metrics)
    d = as_directions(objective, directions)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != d.n:
        raise InputError(f"points: expected shape (N, {d.n}) (one column per direction), got {points.shape}.")
    if not np.isfinite(points).all():
        raise InputError("points: they contain NaN or inf.")
    _, geometry = resolve_span(objective, d, 1.0, span_units)
    geometry["span"] = None
    points = as_absolute(points, objective, d, span_units)
    t0 = time.perf_counter()
    ms: dict[str, np.ndarray] = {}
    if metrics:
        loss_and_metrics(objective, objective.theta0[None], metrics)  # a bad metric fails before the run
        vals, ms = np.empty(len(points)), {k: np.empty(len(points)) for k in metrics}
        group = max(1, objective.point_batch_size)
        for g0 in range(0, len(points), group):
            A = torch.as_tensor(points[g0 : g0 + group], dtype=objective.dtype, device=objective.device)
            lv, mv = loss_and_metrics(objective, objective.theta0[None, :] + A @ d.vectors, metrics)
            vals[g0 : g0 + len(lv)] = lv
            for k in metrics:
                ms[k][g0 : g0 + len(lv)] = mv[k]
    else:
        vals = _eval_coords(objective, d.vectors, points)
    prov = {
        "num_params": objective.num_params,
        "num_samples": objective.num_samples,
        "timings": {"evaluate_s": time.perf_counter() - t0},
        "geometry": geometry,
    }
    return ScatteredLandscape(
        vals, points, d.metadata(), float(objective.loss_batch(objective.theta0[None])[0]), prov, ms
    )


def _persistence(pairs: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(pairs[:, 1]), np.inf, pairs[:, 1] - pairs[:, 0])


def _n_significant(pairs: np.ndarray, values: np.ndarray, frac: float) -> int:
    """Minima whose persistence is at least ``frac`` x the loss range (the global minimum included)."""
    R = float(values.max() - values.min()) or 1.0
    return int((_persistence(pairs) >= frac * R).sum())


def _signature(values: np.ndarray, points: np.ndarray, k: int | None, frac: float):
    from .topology import merge_tree, pairs_from_tree

    tree = merge_tree(values, points=points, k=k)
    pairs = pairs_from_tree(tree)
    return tree, _persistence(pairs), _n_significant(pairs, values, frac)


def adaptive_landscape(
    objective: Objective,
    directions: Any,
    *,
    span: Any = 1.0,
    span_units: str = "absolute",
    n_initial: int = 256,
    n_per_round: int = 128,
    max_rounds: int = 10,
    stable_rounds: int = 2,
    min_persistence: float = 0.02,
    k: int | None = None,
    seed: int = 0,
) -> ScatteredLandscape:
    """Scattered landscape refined where its merge tree is not yet stable.

    Starts from ``n_initial`` Sobol points; each round adds ``n_per_round`` points around the join saddles and
    the shallow minima (persistence below 10 % of the loss range), at the scale of their nearest-neighbour
    distance. It stops when the number of significant minima (persistence >= ``min_persistence`` x range)
    and of join saddles are unchanged for ``stable_rounds`` rounds, or after ``max_rounds``. The history
    (points and counts per round) is in ``provenance["adaptive"]``. ``span`` and ``span_units`` are read as
    by :func:`landform.grid_landscape` (``"relative"``: fractions of ``||theta0||``; ``"auto"``: from the
    curvature); the result's points are coefficients and the conversion is in ``provenance["geometry"]``.
    """
    from scipy.spatial import cKDTree

    from ._validation import check_float, check_int
    from .geometry import resolve_span

    d = as_directions(objective, directions)
    n_initial = check_int("n_initial", n_initial, minimum=2)
    n_per_round = check_int("n_per_round", n_per_round, minimum=1)
    max_rounds = check_int("max_rounds", max_rounds, minimum=0)
    stable_rounds = check_int("stable_rounds", stable_rounds, minimum=1)
    min_persistence = check_float("min_persistence", min_persistence, minimum=0.0)
    if k is not None:
        k = check_int("k", k, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    span, geometry = resolve_span(objective, d, span, span_units)
    lo, hi = _bounds(span, d.n)
    rng = np.random.default_rng(seed)
    pts = sample_points(n_initial, d.n, method="sobol", span=span, seed=seed)
    vals = _eval_coords(objective, d.vectors, pts)
    history = []
    last = None
    stable = 0
    for rnd in range(max_rounds + 1):
        tree, pers, n_sig = _signature(vals, pts, k, min_persistence)
        sig = (n_sig, int(tree.saddles.size))
        history.append({"round": rnd, "points": int(len(pts)), "significant_minima": sig[0], "saddles": sig[1]})
        stable = stable + 1 if sig == last else 0
        last = sig
        if stable >= stable_rounds or rnd == max_rounds:
            break
        R = float(vals.max() - vals.min()) or 1.0
        shallow = tree.minima[np.isfinite(pers) & (pers < 0.1 * R)]
        centres = np.concatenate([tree.saddles, shallow]).astype(int)
        if centres.size == 0:
            centres = tree.minima
        dist, _ = cKDTree(pts).query(pts[centres], k=2)
        scale = np.maximum(dist[:, 1], 1e-12)
        pick = rng.integers(0, centres.size, n_per_round)
        new = pts[centres[pick]] + rng.normal(size=(n_per_round, d.n)) * scale[pick, None]
        new = np.clip(new, lo, hi)
        vals = np.concatenate([vals, _eval_coords(objective, d.vectors, new)])
        pts = np.vstack([pts, new])
    prov = {
        "num_params": objective.num_params,
        "num_samples": objective.num_samples,
        "adaptive": {"history": history, "converged": stable >= stable_rounds, "points": int(len(pts))},
        "geometry": geometry,
    }
    return ScatteredLandscape(vals, pts, d.metadata(), float(objective.loss_batch(objective.theta0[None])[0]), prov)


@dataclass(frozen=True)
class DimensionSweep:
    """SMAD, minima and persistence for the top-2, 3, ... Hessian directions of one model; ``landscapes``
    holds the grid of each row (same order), to save (``Landscape.save``) or to analyse again."""

    rows: tuple[dict[str, Any], ...]
    eigenvalues: tuple[float, ...]
    landscapes: tuple[Landscape, ...] = ()

    def table(self) -> str:
        head = f"{'dims':>4} {'grid':>14} {'SMAD':>12} {'minima':>7} {'significant':>11} {'pairs':>6} {'pers. range':>12}"
        lines = [head]
        for r in self.rows:
            lines.append(
                f"{r['dims']:>4} {r['grid']:>14} {r['smad']:>12.6g} {r['n_minima']:>7} {r['n_significant']:>11} "
                f"{r['n_pairs']:>6} {r['persistence_range']:>12.6g}"
            )
        return "\n".join(lines)


_DEFAULT_RES = {1: 41, 2: 41, 3: 21, 4: 11, 5: 9}


def dimension_sweep(
    objective: Objective,
    dims: Sequence[int] = (2, 3, 4, 5),
    *,
    span: Any = 1.0,
    span_units: str = "absolute",
    resolution: dict[int, int] | None = None,
    directions: Directions | None = None,
    seed: int = 0,
    min_persistence: float = 0.02,
) -> DimensionSweep:
    """Landscapes along the top-n directions for each n in ``dims`` (Hessian eigenvectors by default, computed
    once for the largest n), with their SMAD, number of minima and persistence: basins that look separated in
    a low-dimensional slice may join through the extra dimensions (the paper's "phantom barriers").
    ``n_significant`` counts the minima whose persistence is at least ``min_persistence`` x the loss range
    (the global minimum included), the count :func:`adaptive_landscape` stabilises. ``span`` and
    ``span_units`` are read as by :func:`landform.grid_landscape` (a number is the same for every axis;
    ``"auto"`` chooses each axis' span from its curvature); each row records the coefficient spans used."""
    from ._chain import directions_of_kind, grid_topology
    from ._validation import check_float, check_int
    from .evaluate import grid_landscape

    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
        raise InputError(f"dims: expected a sequence of subspace dimensions such as (2, 3, 4), got {dims!r}.")
    dims = sorted({check_int("dims", x, minimum=1, maximum=objective.num_params - 1) for x in dims})
    if not dims:
        raise InputError("dims: the sequence is empty; pass dimensions such as (2, 3, 4).")
    check_float("min_persistence", min_persistence, minimum=0.0)
    res = {**_DEFAULT_RES, **(resolution or {})}
    if directions is None:
        directions = directions_of_kind(objective, "hessian", max(dims), seed=seed)
    d = as_directions(objective, directions)
    if d.n < max(dims):
        raise InputError(f"directions: {d.n} given, the sweep needs {max(dims)}.")
    rows, grids = [], []
    for n in dims:
        r = res.get(n, 7)
        sub = Directions(d.vectors[:n], d.kind, d.normalization, d.seed,
                         None if d.eigenvalues is None else d.eigenvalues[:n], dict(d.extra))  # fmt: skip
        sp = span if isinstance(span, str) or np.ndim(span) == 0 else list(span)[:n]
        ls = grid_landscape(objective, sub, span=sp, span_units=span_units, resolution=r, progress=False)
        topo = grid_topology(ls.values)
        grids.append(ls)
        rows.append(
            {
                "dims": n,
                "grid": "x".join([str(r)] * n),
                "smad": topo.smad,
                "n_minima": topo.tree.n_minima,
                "n_significant": _n_significant(topo.pairs, ls.values, min_persistence),
                "n_pairs": int(np.isfinite(topo.pairs[:, 1]).sum()),
                "persistence_range": topo.persistence_range,
                "span": ls.provenance["geometry"]["absolute_span"],
            }
        )
    ev = tuple(float(x) for x in d.eigenvalues) if d.eigenvalues is not None else ()
    return DimensionSweep(tuple(rows), ev, tuple(grids))
