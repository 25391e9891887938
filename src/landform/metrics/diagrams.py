"""Distances between persistence diagrams: bottleneck and 1-Wasserstein (numpy and scipy only).

Diagrams are (n, 2) arrays of (birth, death) with ``np.inf`` deaths for essential classes. The ground
metric is L-infinity; a finite point may be matched to the diagonal at cost (death - birth) / 2; essential
classes are matched to essential classes by birth (an unequal number of them gives an infinite distance).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from ..errors import InputError, NonFiniteInputError

__all__ = ["bottleneck_distance", "wasserstein_distance"]


def _split(d: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = np.asarray(d, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected an (n, 2) array of (birth, death) pairs, got {type(d).__name__}.") from exc
    if d.size == 0:
        d = d.reshape(0, 2)
    if d.ndim != 2 or d.shape[1] != 2:
        raise InputError(
            f"{name}: expected an (n, 2) array of (birth, death) pairs, got shape {d.shape}; pass the output of "
            "landform.topology.persistence (or pairs_from_tree)."
        )
    if np.isnan(d).any():
        raise NonFiniteInputError(f"{name}: the diagram contains NaN; recompute it from a finite landscape.")
    if np.isinf(d[:, 0]).any():
        raise InputError(f"{name}: a birth value is infinite; births must be finite (deaths may be +inf).")
    if (d[:, 1] < d[:, 0]).any():
        i = int(np.flatnonzero(d[:, 1] < d[:, 0])[0])
        raise InputError(f"{name}: pair {i} dies before it is born ({d[i, 0]}, {d[i, 1]}); expected death >= birth.")
    ess = np.isinf(d[:, 1])
    return d[~ess], np.sort(d[ess, 0])


def _cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Augmented (n+m, n+m) cost matrix: point-point, point-diagonal, diagonal-diagonal (0)."""
    n, m = len(a), len(b)
    C = np.zeros((n + m, n + m))
    if n and m:
        C[:n, :m] = np.maximum(np.abs(a[:, None, 0] - b[None, :, 0]), np.abs(a[:, None, 1] - b[None, :, 1]))
    da = (a[:, 1] - a[:, 0]) / 2
    db = (b[:, 1] - b[:, 0]) / 2
    C[:n, m:] = np.inf
    C[n:, :m] = np.inf
    if n:
        C[np.arange(n), m + np.arange(n)] = da
    if m:
        C[n + np.arange(m), np.arange(m)] = db
    return C


def _essential(ea: np.ndarray, eb: np.ndarray, q: float | None) -> float:
    if len(ea) != len(eb):
        return np.inf
    diff = np.abs(ea - eb)
    if not len(diff):
        return 0.0
    return float(diff.max()) if q is None else float(diff.sum())


def wasserstein_distance(d1: np.ndarray, d2: np.ndarray) -> float:
    """1-Wasserstein distance (sum of L-infinity matching costs, optimal matching by linear assignment).

    Examples
    --------
    >>> wasserstein_distance(np.array([[0.0, np.inf], [1.0, 3.0]]), np.array([[0.5, np.inf]]))
    1.5
    """
    a, ea = _split(d1, "d1")
    b, eb = _split(d2, "d2")
    ess = _essential(ea, eb, q=1)
    if not np.isfinite(ess):
        return np.inf
    if len(a) + len(b) == 0:
        return ess
    C = _cost(a, b)
    big = np.where(np.isinf(C), 0, C).sum() + 1.0
    r, c = linear_sum_assignment(np.where(np.isinf(C), big, C))
    return float(C[r, c].sum() + ess)


def bottleneck_distance(d1: np.ndarray, d2: np.ndarray) -> float:
    """Bottleneck distance (the smallest largest matching cost), by bisection over candidate costs with a
    bipartite perfect-matching test.

    Examples
    --------
    >>> bottleneck_distance(np.array([[0.0, np.inf], [1.0, 3.0]]), np.array([[0.5, np.inf]]))
    1.0
    """
    a, ea = _split(d1, "d1")
    b, eb = _split(d2, "d2")
    ess = _essential(ea, eb, q=None)
    if not np.isfinite(ess):
        return np.inf
    if len(a) + len(b) == 0:
        return ess
    C = _cost(a, b)
    cand = np.unique(C[np.isfinite(C)])
    size = C.shape[0]

    def feasible(eps: float) -> bool:
        rows, cols = np.nonzero(C <= eps)
        g = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=C.shape)
        match = maximum_bipartite_matching(g, perm_type="column")
        return bool(np.all(match >= 0)) and len(match) == size

    lo, hi = 0, len(cand) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(cand[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(max(cand[lo], ess))
