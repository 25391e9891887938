"""0-dimensional persistence of sublevel sets (elder rule), barcodes and diagrams."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .merge_tree import MergeTree, merge_tree

__all__ = ["persistence", "pairs_from_tree", "barcode", "persistence_range"]


def _tree(values: Any, **kwargs: Any) -> MergeTree:
    return values if isinstance(values, MergeTree) else merge_tree(values, **kwargs)


def persistence(
    values: Any,
    *,
    points: np.ndarray | None = None,
    k: int | None = None,
    connectivity: str = "axis",
    min_persistence: float = 0.0,
) -> np.ndarray:
    """0-dimensional persistence diagram of the sublevel-set filtration.

    Parameters
    ----------
    values : array_like or MergeTree
        Grid values (any n >= 1), scattered values with ``points``, or an already computed tree.
    points, k, connectivity
        As in :func:`landform.topology.merge_tree`.
    min_persistence : float
        Keep only pairs with ``death - birth >= min_persistence`` (the essential class is always kept).

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        ``(birth, death)`` rows in increasing birth, ``death = np.inf`` for the global minimum's class;
        (0, 2) only for an empty selection.

    Examples
    --------
    >>> persistence([3.0, 1.0, 2.0, 0.0, 4.0]).tolist()
    [[0.0, inf], [1.0, 2.0]]
    """
    if min_persistence < 0 or not np.isfinite(min_persistence):
        raise InputError(f"min_persistence: expected a finite number >= 0, got {min_persistence}.")
    tree = _tree(values, points=points, k=k, connectivity=connectivity)
    flat = tree.values.ravel()
    birth = flat[tree.minima]
    death = np.where(tree.death >= 0, flat[np.maximum(tree.death, 0)], np.inf)
    pairs = np.stack([birth, death], axis=1).reshape(-1, 2)
    keep = (pairs[:, 1] - pairs[:, 0]) >= min_persistence
    return pairs[keep]


def pairs_from_tree(tree: MergeTree) -> np.ndarray:
    """The persistence pairs of a computed merge tree: an alias of ``persistence(tree)``.

    Rows follow ``tree.minima`` (increasing birth), so the essential class is the first row.

    Examples
    --------
    >>> pairs_from_tree(merge_tree([3.0, 1.0, 2.0, 0.0, 4.0])).tolist()
    [[0.0, inf], [1.0, 2.0]]
    """
    if not isinstance(tree, MergeTree):
        raise InputError(f"tree: expected a MergeTree (landform.topology.merge_tree), got {type(tree).__name__}; "
                         "for values call persistence(values).")
    return persistence(tree)


def barcode(pairs: np.ndarray, max_value: float) -> np.ndarray:
    """Bars to draw: the pairs with the essential class's infinite death replaced by ``max_value``.

    Examples
    --------
    >>> barcode(np.array([[0.0, np.inf], [1.0, 2.0]]), 4.0).tolist()
    [[0.0, 4.0], [1.0, 2.0]]
    """
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    out = pairs.copy()
    out[np.isinf(out[:, 1]), 1] = max_value
    return out


def persistence_range(pairs: np.ndarray) -> float:
    """Largest finite persistence ``death - birth`` (0.0 when every class is essential).

    This is the "persistence range" summary reported beside SMAD: how deep the deepest non-global basin is.

    Examples
    --------
    >>> persistence_range(np.array([[0.0, np.inf], [1.0, 2.0], [0.5, 3.0]]))
    2.5
    """
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(pairs[:, 1])
    if not finite.any():
        return 0.0
    return float((pairs[finite, 1] - pairs[finite, 0]).max())
