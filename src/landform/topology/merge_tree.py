"""Sublevel-set merge trees of grid landscapes and scattered samples (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .graph import check_values, grid_offsets, knn_graph

__all__ = ["MergeTree", "merge_tree", "simplify"]


@dataclass(frozen=True, eq=False)
class MergeTree:
    """The merge tree of a sampled function, with per-point labels.

    Vertices are identified by their flat index into ``values.ravel()`` (C order). Ties in value are broken
    by index (simulation of simplicity).

    Attributes
    ----------
    values : numpy.ndarray
        The function values, in their original shape (grid) or (N,) (scattered).
    minima : numpy.ndarray of int64, shape (m,)
        Flat indices of the minima, in increasing (value, index) order; ``minima[0]`` is the global minimum.
    saddles : numpy.ndarray of int64, shape (s,)
        Flat indices of the join saddles, in increasing (value, index) order.
    nodes : numpy.ndarray of int64
        Minima then saddles.
    parent : numpy.ndarray of int64
        ``parent[i]`` is the flat index of the parent node of ``nodes[i]`` (-1 for the top node). The top
        node's arc runs up to the global maximum, ``root``.
    death : numpy.ndarray of int64, shape (m,)
        The saddle where each minimum's component dies by the elder rule (-1 for the global minimum).
    arc_label : numpy.ndarray of int64, shape = values.shape
        For every point, the node (flat index) at the lower end of the arc it lies on.
    basin_label : numpy.ndarray of int64, shape = values.shape
        For every point, the minimum (flat index) reached by steepest descent.
    root : int
        Flat index of the global maximum (the upper end of the top arc).
    graph : str
        ``"grid-axis"``, ``"grid-full"`` or ``"knn-<k>"``.
    """

    values: np.ndarray
    minima: np.ndarray
    saddles: np.ndarray
    nodes: np.ndarray
    parent: np.ndarray
    death: np.ndarray
    arc_label: np.ndarray
    basin_label: np.ndarray
    root: int
    graph: str

    @property
    def n_minima(self) -> int:
        return int(self.minima.size)

    @property
    def n_points(self) -> int:
        return int(self.values.size)

    @property
    def value_range(self) -> float:
        """``R = max f - min f``."""
        v = self.values
        return float(v.max() - v.min())

    def parent_of(self, node: int) -> int:
        """Parent node (flat index) of ``node``; -1 for the top node."""
        i = np.searchsorted(self._node_sorter_keys, node)
        if i >= self.nodes.size or self._node_sorter_keys[i] != node:
            raise InputError(f"node: {node} is not a node of this merge tree.")
        return int(self.parent[self._node_sorter[i]])

    @property
    def _node_sorter(self) -> np.ndarray:
        return np.argsort(self.nodes, kind="stable")

    @property
    def _node_sorter_keys(self) -> np.ndarray:
        return self.nodes[self._node_sorter]

    @property
    def minimum_saddle(self) -> np.ndarray:
        """``s(m)`` for every minimum: the parent saddle ending its leaf arc (-1 when there is none)."""
        return self.parent[: self.n_minima].copy()

    def basin_sizes(self) -> np.ndarray:
        """Number of points in the steepest-descent basin of each minimum (aligned with ``minima``)."""
        counts = np.bincount(self.basin_label.ravel(), minlength=self.values.size)
        return counts[self.minima]

    def arcs(self) -> np.ndarray:
        """The tree's arcs as (lower node, upper node) flat-index pairs, shape (a, 2); the top arc ends at ``root``."""
        up = np.where(self.parent >= 0, self.parent, self.root)
        return np.stack([self.nodes, up], axis=1)

    def coordinates(self, flat: np.ndarray | int) -> np.ndarray:
        """Grid indices of flat vertex ids (for grid trees)."""
        return np.stack(np.unravel_index(np.asarray(flat), self.values.shape), axis=-1)

    def __repr__(self) -> str:
        return (
            f"MergeTree(points={self.n_points}, minima={self.n_minima}, saddles={self.saddles.size}, "
            f"graph={self.graph!r})"
        )


def _run(values: np.ndarray, points: np.ndarray | None, k: int | None, connectivity: str):
    from ._sweep import sweep

    flat = values.ravel()
    order = np.argsort(flat, kind="stable").astype(np.int64, copy=False)
    if points is None:
        shape = np.asarray(values.shape, dtype=np.int64)
        offsets = grid_offsets(values.ndim, connectivity)
        empty = np.zeros(1, np.int64)
        arc, basin, parent, death, ncomp = sweep(order, shape, offsets, empty, empty, False)
        graph = f"grid-{connectivity}"
    else:
        indptr, indices = knn_graph(points, k)
        shape = np.ones(1, np.int64)
        offsets = np.zeros((0, 1), np.int64)
        arc, basin, parent, death, ncomp = sweep(order, shape, offsets, indptr, indices, True)
        graph = f"knn-{k}"
    return order, arc, basin, parent, death, ncomp, graph


def merge_tree(
    values: np.ndarray,
    *,
    points: np.ndarray | None = None,
    k: int | None = None,
    connectivity: str = "axis",
) -> MergeTree:
    """Sublevel-set merge tree of a grid landscape or of scattered samples.

    Parameters
    ----------
    values : array_like
        An n-D grid of values (any n >= 1), or, with ``points``, one value per sample (N,).
    points : array_like, shape (N, d), optional
        Sample coordinates; the graph is then the symmetric k-nearest-neighbour graph.
    k : int, optional
        Neighbours per sample for scattered data (default ``max(2 d, 6)``).
    connectivity : {"axis", "full"}
        Grid adjacency: one step along one axis (2n neighbours), or the full 3^n - 1 stencil.

    Returns
    -------
    MergeTree

    Examples
    --------
    A 1-D double well has two minima joined at the barrier:

    >>> t = merge_tree([3.0, 1.0, 2.0, 0.0, 4.0])
    >>> t.minima.tolist(), t.saddles.tolist(), t.minimum_saddle.tolist()
    ([3, 1], [2], [2, 2])
    """
    if points is None:
        values = check_values(values)
        if k is not None:
            raise InputError("k: only meaningful with points (scattered samples); grids use their stencil.")
    else:
        values = check_values(values)
        if values.ndim != 1:
            values = values.ravel()
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1:
            points = points[:, None]
        if points.ndim != 2 or points.shape[0] != values.shape[0]:
            raise InputError(
                f"points: expected shape (N, d) with N = {values.shape[0]} (one row per value), got {points.shape}."
            )
        k = max(2 * points.shape[1], 6) if k is None else k
    order, arc, basin, parent, death, ncomp, graph = _run(values, points, k, connectivity)
    if ncomp != 1:  # pragma: no cover - grids are connected and knn_graph checks connectivity
        raise InputError(f"the neighbourhood graph has {ncomp} components; a merge tree needs one.")
    N = values.size
    idx = np.arange(N)
    is_min = basin == idx
    is_node = arc == idx
    rank = np.empty(N, np.int64)
    rank[order] = idx
    minima = np.flatnonzero(is_min)
    minima = minima[np.argsort(rank[minima], kind="stable")]
    saddles = np.flatnonzero(is_node & ~is_min)
    saddles = saddles[np.argsort(rank[saddles], kind="stable")]
    nodes = np.concatenate([minima, saddles])
    return MergeTree(
        values=values,
        minima=minima,
        saddles=saddles,
        nodes=nodes,
        parent=parent[nodes].copy(),
        death=death[minima].copy(),
        arc_label=arc.reshape(values.shape),
        basin_label=basin.reshape(values.shape),
        root=int(order[-1]),
        graph=graph,
    )


def simplify(tree: MergeTree, threshold: float) -> MergeTree:
    """Remove every minimum whose persistence (elder rule) is below ``threshold``.

    Pairs are cancelled in increasing persistence; a cancelled minimum's arc joins the branch of the
    elder minimum that killed it, its basin joins that minimum's basin, and a saddle left with one child
    stops being a node (its arc merges with the child's).

    Examples
    --------
    >>> t = merge_tree([3.0, 1.0, 2.0, 0.0, 4.0])
    >>> simplify(t, 1.5).n_minima, simplify(t, 0.5).n_minima
    (1, 2)
    """
    threshold = float(threshold)
    if not np.isfinite(threshold) or threshold < 0:
        raise InputError(f"threshold: expected a finite number >= 0, got {threshold}.")
    flat = tree.values.ravel()
    pers = np.where(tree.death >= 0, flat[np.maximum(tree.death, 0)] - flat[tree.minima], np.inf)
    drop = np.flatnonzero(pers < threshold)
    if drop.size == 0:
        return tree
    parent = {int(n): int(p) for n, p in zip(tree.nodes, tree.parent, strict=True)}
    children: dict[int, list[int]] = {int(n): [] for n in tree.nodes}
    for n, p in parent.items():
        if p >= 0:
            children[p].append(n)
    # the branch minimum passing up through each node: the elder of its children's
    branch: dict[int, int] = {}
    order_nodes = sorted(children, key=lambda v: (flat[v], v))
    for v in order_nodes:
        if not children[v]:
            branch[v] = v
        else:
            branch[v] = min((branch[c] for c in children[v]), key=lambda u: (flat[u], u))
    arc_map: dict[int, int] = {}
    basin_map: dict[int, int] = {}
    removed: set[int] = set()
    # increasing persistence; among equal persistence the younger minimum first (higher index in minima)
    for i in drop[np.lexsort((-drop, pers[drop]))]:
        mn = int(tree.minima[i])
        s = int(tree.death[i])
        # after cancelling everything less persistent, mn is a leaf hanging from s
        p = parent[mn]
        assert p == s, "simplify: inconsistent tree"  # noqa: S101 - invariant of the elder rule
        kids = children[s]
        kids.remove(mn)
        elder_child = min(kids, key=lambda c: (flat[branch[c]], branch[c]))
        arc_map[mn] = elder_child
        basin_map[mn] = branch[s]
        removed.add(mn)
        del parent[mn]
        if len(kids) == 1:  # s is now regular: its arc merges into the remaining child's
            c = kids[0]
            arc_map[s] = c
            parent[c] = parent[s]
            ps = parent.pop(s)
            if ps >= 0:
                children[ps][children[ps].index(s)] = c
            removed.add(s)

    def resolve(mp: dict[int, int], v: int) -> int:
        while v in mp:
            v = mp[v]
        return v

    N = flat.size
    lut_arc = np.arange(N)
    for v in arc_map:
        lut_arc[v] = resolve(arc_map, v)
    lut_basin = np.arange(N)
    for v in basin_map:
        lut_basin[v] = resolve(basin_map, v)
    minima = np.asarray([v for v in tree.minima if int(v) not in removed], dtype=np.int64)
    saddles = np.asarray([v for v in tree.saddles if int(v) not in removed], dtype=np.int64)
    nodes = np.concatenate([minima, saddles])
    keep_min = np.isin(tree.minima, minima)
    return MergeTree(
        values=tree.values,
        minima=minima,
        saddles=saddles,
        nodes=nodes,
        parent=np.asarray([parent[int(v)] for v in nodes], dtype=np.int64),
        death=tree.death[keep_min].copy(),
        arc_label=lut_arc[tree.arc_label],
        basin_label=lut_basin[tree.basin_label],
        root=tree.root,
        graph=tree.graph,
    )
