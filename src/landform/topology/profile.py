"""Topological landscape profiles (Geniesse et al. 2024): nested basin polygons from a merge tree.

Every merge-tree node owns the points of its subtree. A node's outline at loss level ``y`` is as wide as
the number of its points with value <= y, centred on the node's slot. The top node's slot spans
``[0, N]``; a node's children get slots side by side, as wide as their point counts, largest first, the
group centred in the parent's slot. A node's polygon spans the levels from its own value (the minimum's
value, or the saddle's) up to its parent's value (the global maximum for the top node), so a saddle's
children fill its slot exactly where it begins: the picture is a 2D drawing of an n-D landscape.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .merge_tree import MergeTree, merge_tree, simplify

__all__ = ["ProfilePolygon", "LandscapeProfile", "landscape_profile"]


@dataclass(frozen=True, eq=False)
class ProfilePolygon:
    """One node's outline.

    Attributes
    ----------
    node : int
        Flat index of the node (a minimum or a saddle).
    kind : str
        ``"minimum"`` or ``"saddle"``.
    x, y : numpy.ndarray
        Closed outline (first point repeated last): left edge bottom to top, then right edge top to bottom.
    depth : int
        0 for the top node, parent's depth + 1 otherwise.
    size : int
        Points in the node's subtree.
    center : float
        Horizontal centre of the node's slot.
    y_low, y_high : float
        The levels the polygon spans.
    """

    node: int
    kind: str
    x: np.ndarray
    y: np.ndarray
    depth: int
    size: int
    center: float
    y_low: float
    y_high: float


@dataclass(frozen=True, eq=False)
class LandscapeProfile:
    """Polygons of a landscape profile, parents before children."""

    polygons: tuple[ProfilePolygon, ...]
    width: int
    y_min: float
    y_max: float
    tree: MergeTree

    def minima_xy(self) -> np.ndarray:
        """(x, y) of every minimum's tip, shape (m, 2)."""
        return np.asarray([(p.center, p.y_low) for p in self.polygons if p.kind == "minimum"]).reshape(-1, 2)

    def saddles_xy(self) -> np.ndarray:
        """(x, y) of every saddle's base centre, shape (s, 2)."""
        return np.asarray([(p.center, p.y_low) for p in self.polygons if p.kind == "saddle"]).reshape(-1, 2)


def landscape_profile(
    values: Any,
    *,
    points: np.ndarray | None = None,
    k: int | None = None,
    connectivity: str = "axis",
    persistence_threshold: float = 0.0,
    max_levels: int = 256,
    max_nodes: int = 2000,
) -> LandscapeProfile:
    """Compute the profile polygons of a landscape.

    Parameters
    ----------
    values : array_like or MergeTree
    points, k, connectivity
        As in :func:`landform.topology.merge_tree`.
    persistence_threshold : float
        Simplify the tree first (:func:`landform.topology.simplify`): a noisy landscape has thousands of
        tiny basins that no picture can show.
    max_levels : int
        Most vertical levels per polygon (the outline is exact at those levels).
    max_nodes : int
        Warn when the (simplified) tree has more nodes than this.

    Examples
    --------
    >>> prof = landscape_profile([3.0, 1.0, 2.0, 0.0, 4.0])
    >>> [(p.kind, p.size) for p in prof.polygons]
    [('saddle', 5), ('minimum', 1), ('minimum', 1)]
    """
    tree = (
        values if isinstance(values, MergeTree) else merge_tree(values, points=points, k=k, connectivity=connectivity)
    )
    if persistence_threshold > 0:
        tree = simplify(tree, persistence_threshold)
    if tree.nodes.size > max_nodes:
        warnings.warn(
            f"landscape_profile: {tree.nodes.size} nodes; pass persistence_threshold to simplify the tree first.",
            stacklevel=2,
        )
    flat = tree.values.ravel()
    N = flat.size
    fmax = float(flat.max())
    nodes = [int(v) for v in tree.nodes]
    parent = {int(n): int(p) for n, p in zip(tree.nodes, tree.parent, strict=True)}
    children: dict[int, list[int]] = {n: [] for n in nodes}
    for n, p in parent.items():
        if p >= 0:
            children[p].append(n)
    # points of each arc, sorted by value
    labels = tree.arc_label.ravel()
    by_arc = np.lexsort((flat, labels))
    sorted_labels = labels[by_arc]
    starts = np.searchsorted(sorted_labels, nodes, side="left")
    ends = np.searchsorted(sorted_labels, nodes, side="right")
    arc_vals = {n: flat[by_arc[s:e]] for n, s, e in zip(nodes, starts, ends, strict=True)}
    # subtree sizes, children before parents (increasing value order)
    size: dict[int, int] = {}
    for n in sorted(nodes, key=lambda v: (flat[v], v)):
        size[n] = arc_vals[n].size + sum(size[c] for c in children[n])
    top = [n for n in nodes if parent[n] < 0]
    minima = set(int(v) for v in tree.minima)
    polys: list[ProfilePolygon] = []

    def subtree_arcs(n: int) -> list[int]:
        out, stack = [], [n]
        while stack:
            u = stack.pop()
            out.append(u)
            stack.extend(children[u])
        return out

    # breadth-first from the top so parents come first
    queue: list[tuple[int, float, int]] = []
    offset = 0.0
    for t in top:
        queue.append((t, offset + size[t] / 2.0, 0))
        offset += size[t]
    qi = 0
    while qi < len(queue):
        n, center, depth = queue[qi]
        qi += 1
        y_low = float(flat[n])
        y_high = float(flat[parent[n]]) if parent[n] >= 0 else fmax
        vals = np.sort(np.concatenate([arc_vals[a] for a in subtree_arcs(n)]))
        levels = vals[(vals >= y_low) & (vals <= y_high)]
        if levels.size > max_levels:
            levels = levels[np.linspace(0, levels.size - 1, max_levels).round().astype(int)]
        levels = np.unique(np.concatenate([[y_low], levels, [y_high]]))
        width = np.searchsorted(vals, levels, side="right").astype(np.float64)
        # staircase: width w_i holds on [level_i, level_{i+1})
        ys = np.repeat(levels, 2)[1:]
        ws = np.repeat(width, 2)[:-1]
        left = center - ws / 2.0
        right = center + ws / 2.0
        x = np.concatenate([left, right[::-1], left[:1]])
        y = np.concatenate([ys, ys[::-1], ys[:1]])
        kind = "minimum" if n in minima else "saddle"
        polys.append(ProfilePolygon(n, kind, x, y, depth, size[n], center, y_low, y_high))
        kids = sorted(children[n], key=lambda c: (-size[c], flat[c], c))
        block = float(sum(size[c] for c in kids))
        x0 = center - block / 2.0
        for c in kids:
            queue.append((c, x0 + size[c] / 2.0, depth + 1))
            x0 += size[c]
    return LandscapeProfile(tuple(polys), N, float(flat.min()), fmax, tree)
