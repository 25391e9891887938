"""Statistics of a per-point field over the steepest-descent basins of a landscape's minima."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .merge_tree import MergeTree, merge_tree

__all__ = ["BasinStatistics", "basin_statistics"]


@dataclass(frozen=True, eq=False)
class BasinStatistics:
    """One row per minimum of the merge tree, in increasing (value, index) order (the global minimum first).

    Attributes
    ----------
    minima : numpy.ndarray of int64, shape (m,)
        Flat indices (C order of ``values.ravel()``) of the minima.
    value : numpy.ndarray, shape (m,)
        The landscape's value at each minimum.
    size : numpy.ndarray of int64, shape (m,)
        Number of points in each minimum's steepest-descent basin (the basin SMAD weights by); they sum to N.
    mean, min, max : numpy.ndarray, shape (m,)
        Mean, minimum and maximum of ``field`` over each basin.
    """

    minima: np.ndarray
    value: np.ndarray
    size: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray

    def __len__(self) -> int:
        return int(self.minima.size)


def basin_statistics(
    values: Any,
    field: Any,
    *,
    points: np.ndarray | None = None,
    k: int | None = None,
    connectivity: str = "axis",
) -> BasinStatistics:
    """Size of each minimum's basin and the mean, min and max of ``field`` over it.

    The basin of a minimum m is its steepest-descent basin (DESIGN.md): every point follows its lowest
    neighbour while that neighbour is lower (ties broken by flat index), and the points that end at m form
    basin(m). The neighbourhood graph is the merge tree's, so the sizes are the ones SMAD weights by.

    Parameters
    ----------
    values : array_like or MergeTree
        The landscape (an n-D grid, or (N,) values with ``points``), or its merge tree.
    field : array_like
        A per-point quantity of the same shape as ``values`` (e.g. ``ls.metrics["accuracy"]``); finite.
    points, k, connectivity
        As in :func:`landform.topology.merge_tree`.

    Returns
    -------
    BasinStatistics

    Examples
    --------
    Two wells of a 1-D landscape: the minimum at index 3 owns points 2, 3, 4; the one at index 1 owns 0, 1.

    >>> st = basin_statistics([3.0, 1.0, 2.0, 0.0, 4.0], [0.5, 0.6, 0.9, 1.0, 0.8])
    >>> st.minima.tolist(), st.size.tolist(), st.mean.round(3).tolist(), st.max.tolist()
    ([3, 1], [3, 2], [0.9, 0.55], [1.0, 0.6])
    """
    tree = (
        values if isinstance(values, MergeTree) else merge_tree(values, points=points, k=k, connectivity=connectivity)
    )
    f = np.asarray(field)
    if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
        raise InputError(f"field: expected real numbers, got dtype {f.dtype}.")
    f = f.astype(np.float64, copy=False)
    if f.size != tree.values.size or (f.shape != tree.values.shape and f.ndim != 1):
        raise InputError(
            f"field: expected one value per point, of shape {tree.values.shape} like the landscape, got {f.shape}."
        )
    f = f.ravel()
    if not np.isfinite(f).all():
        raise InputError(
            f"field: {int((~np.isfinite(f)).sum())} of {f.size} entries are NaN or inf; pass a finite field (or "
            "restrict the landscape and the field to the points where it is finite)."
        )
    label = tree.basin_label.ravel()
    N = label.size
    size = np.bincount(label, minlength=N)
    total = np.bincount(label, weights=f, minlength=N)
    lo = np.full(N, np.inf)
    hi = np.full(N, -np.inf)
    np.minimum.at(lo, label, f)
    np.maximum.at(hi, label, f)
    m = tree.minima
    return BasinStatistics(
        minima=m.copy(),
        value=tree.values.ravel()[m].copy(),
        size=size[m].astype(np.int64),
        mean=total[m] / size[m],
        min=lo[m],
        max=hi[m],
    )
