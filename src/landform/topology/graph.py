"""Neighbourhood graphs: the implicit n-D grid stencil and the symmetric k-nearest-neighbour graph."""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import InputError

__all__ = ["grid_offsets", "knn_graph", "check_values"]


def grid_offsets(ndim: int, connectivity: str = "axis") -> np.ndarray:
    """Neighbour offsets of a grid vertex, shape (K, ndim).

    ``"axis"``: the 2n vertices one step along one axis. ``"full"``: all 3^n - 1 vertices of the
    surrounding cube (diagonals included).

    Examples
    --------
    >>> grid_offsets(2).tolist()
    [[-1, 0], [1, 0], [0, -1], [0, 1]]
    >>> len(grid_offsets(3, "full"))
    26
    """
    if connectivity == "axis":
        out = []
        for d in range(ndim):
            for step in (-1, 1):
                o = [0] * ndim
                o[d] = step
                out.append(o)
        return np.asarray(out, dtype=np.int64).reshape(-1, ndim)
    if connectivity == "full":
        out = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
        return np.asarray(out, dtype=np.int64).reshape(-1, ndim)
    raise InputError(f"connectivity: expected 'axis' or 'full', got {connectivity!r}.")


def knn_graph(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric k-nearest-neighbour graph of ``points`` (N, d) in CSR form ``(indptr, indices)``.

    Two points are adjacent when either is among the other's ``k`` nearest neighbours. Raises
    :class:`~landform.errors.InputError` when the graph is not connected (a merge tree needs one component).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise InputError(f"points: expected shape (N, d), got {points.shape}.")
    N = points.shape[0]
    if not np.isfinite(points).all():
        raise InputError("points: they contain NaN or inf coordinates.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k: expected a positive integer, got {k!r}.")
    if N == 1:
        return np.zeros(2, np.int64), np.zeros(0, np.int64)
    kk = min(int(k), N - 1)
    _, nbr = cKDTree(points).query(points, kk + 1)
    nbr = np.asarray(nbr).reshape(N, kk + 1)
    rows = np.repeat(np.arange(N), kk + 1)
    cols = nbr.ravel()
    keep = rows != cols
    a = coo_matrix((np.ones(int(keep.sum()), np.int8), (rows[keep], cols[keep])), shape=(N, N)).tocsr()
    a = (a + a.T).tocsr()
    a.sum_duplicates()
    n_comp, _ = connected_components(a, directed=False)
    if n_comp > 1:
        raise InputError(
            f"k: the symmetric {k}-nearest-neighbour graph of the {N} points has {n_comp} components; a merge "
            f"tree needs a connected graph. Increase k (try k={2 * int(k)}) or sample more densely."
        )
    return a.indptr.astype(np.int64), a.indices.astype(np.int64)


def check_values(values: np.ndarray, name: str = "values") -> np.ndarray:
    """Validate a landscape's values: a non-empty, at least 1-D, finite float array."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise InputError(f"{name}: expected an array with at least one dimension, got a 0-d scalar.")
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty (shape {arr.shape}).")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}.")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[:5]
        where_s = ", ".join(str(tuple(int(i) for i in w)) for w in where)
        n_nan = int(np.isnan(arr).sum())
        raise InputError(
            f"{name}: {int(bad.sum())} of {arr.size} entries are not finite ({n_nan} NaN, {int(bad.sum()) - n_nan} "
            f"inf), first at {where_s}. Topology needs finite values: shrink the span, or analyse a finite "
            "sub-array; landform does not replace them silently."
        )
    return arr
