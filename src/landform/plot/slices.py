"""2-D slices of n-D landscapes, basin colours shared by every view, and the static corner plot.

An n-D landscape is looked at through its 2-D slices: for a point ``anchor`` of the grid (by default the
global minimum) and a pair of axes ``(i, j)``, the slice holds ``values`` with every other index fixed at the
anchor's. A *corner plot* draws the slice of every pair ``i < j`` in a lower-triangular grid of panels:
column ``i`` shares axis ``i`` along x, row ``j - 1`` shares axis ``j`` along y. Nothing is transposed:
``slice_2d(values, anchor, i, j)[a, b]`` is the loss at ``(axes[i][a], axes[j][b])``.

The functions here read arrays that were saved (values, axes, a merge tree and its basin labels); they
recompute no topology beyond cancelling low-persistence pairs for the colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..topology import MergeTree, simplify

__all__ = [
    "BASIN_COLORS",
    "OTHER_COLOR",
    "BasinColors",
    "basin_colors",
    "choose_log",
    "slice_anchor",
    "axis_pairs",
    "slice_2d",
    "in_slice",
    "plot_corner",
]

#: Colours of the significant basins, most persistent first (matplotlib's tab10, as hex so plotly agrees).
BASIN_COLORS: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
#: Colour of minima beyond the palette and of branches that are not significant.
OTHER_COLOR = "#b0b0b0"


def choose_log(values: np.ndarray) -> bool:
    """Whether a colour scale for ``values`` should be logarithmic: all finite values positive and spanning
    at least two decades (max / min >= 100).

    Examples
    --------
    >>> choose_log(np.array([0.01, 0.5, 3.0])), choose_log(np.array([1.0, 2.0])), choose_log(np.array([-1.0, 5.0]))
    (True, False, False)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() <= 0:
        return False
    return bool(v.max() / v.min() >= 100.0)


def slice_anchor(values: np.ndarray, point: Sequence[int] | None = None) -> tuple[int, ...]:
    """The grid index the slices pass through: ``point`` when given (checked), else the lowest finite value.

    Examples
    --------
    >>> v = np.zeros((3, 4)); v[2, 1] = -1.0
    >>> slice_anchor(v), slice_anchor(v, (0, 3))
    ((2, 1), (0, 3))
    """
    values = np.asarray(values)
    if point is None:
        finite = np.where(np.isfinite(values), values, np.inf)
        if not np.isfinite(finite).any():
            raise InputError("values: no finite value to centre the slices on; pass point= (a grid index).")
        return tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), values.shape))
    p = tuple(int(i) for i in point)
    if len(p) != values.ndim or any(not 0 <= i < s for i, s in zip(p, values.shape, strict=True)):
        raise InputError(
            f"point: expected a grid index of {values.ndim} integers within the shape {values.shape}, got {tuple(point)}."
        )
    return p


def axis_pairs(ndim: int) -> list[tuple[int, int]]:
    """The pairs ``(i, j)``, ``i < j``, in corner-plot order (row by row).

    Examples
    --------
    >>> axis_pairs(3)
    [(0, 1), (0, 2), (1, 2)]
    """
    return [(i, j) for j in range(1, ndim) for i in range(j)]


def slice_2d(values: np.ndarray, anchor: Sequence[int], i: int, j: int) -> np.ndarray:
    """The 2-D slice of ``values`` along axes ``i < j`` through ``anchor``: ``out[a, b]`` is the value at
    index ``a`` along axis ``i`` and ``b`` along axis ``j``, every other index at the anchor's.

    Examples
    --------
    >>> v = np.arange(24).reshape(2, 3, 4)
    >>> slice_2d(v, (1, 2, 3), 0, 2).tolist()
    [[8, 9, 10, 11], [20, 21, 22, 23]]
    """
    values = np.asarray(values)
    if not (0 <= i < j < values.ndim):
        raise InputError(f"i, j: expected 0 <= i < j < {values.ndim}, got ({i}, {j}).")
    index = tuple(slice(None) if k in (i, j) else int(anchor[k]) for k in range(values.ndim))
    return values[index]


def in_slice(flat: np.ndarray, shape: Sequence[int], anchor: Sequence[int], i: int, j: int) -> np.ndarray:
    """Which flat grid indices lie in the slice along ``(i, j)`` through ``anchor`` (boolean mask).

    Examples
    --------
    >>> in_slice(np.array([0, 5, 23]), (2, 3, 4), (1, 0, 3), 1, 2).tolist()
    [False, False, True]
    """
    idx = np.unravel_index(np.asarray(flat, dtype=np.int64), tuple(shape))
    ok = np.ones(np.asarray(flat).shape, dtype=bool)
    for k in range(len(shape)):
        if k not in (i, j):
            ok &= idx[k] == int(anchor[k])
    return ok


@dataclass(frozen=True, eq=False)
class BasinColors:
    """The significant minima of a merge tree, their colours and the basin each grid point belongs to.

    Attributes
    ----------
    minima : numpy.ndarray of int64, shape (k,)
        Flat indices of the significant minima, most persistent first (``minima[0]`` is the global minimum).
    persistence : numpy.ndarray, shape (k,)
        Their persistence (``inf`` for the global minimum).
    colors : tuple of str
        Hex colour of each (``OTHER_COLOR`` beyond the palette).
    labels : numpy.ndarray of int, shape = values.shape
        For every point, the position in ``minima`` of its basin: the steepest-descent basins of the tree
        with every pair less persistent than ``threshold`` cancelled (a cancelled minimum's basin joins the
        basin of the elder minimum that absorbed it).
    threshold : float
        The persistence threshold of the cancellation (0 when nothing was cancelled).
    """

    minima: np.ndarray
    persistence: np.ndarray
    colors: tuple[str, ...]
    labels: np.ndarray
    threshold: float

    def color_of(self, minimum: int) -> str:
        """Colour of a minimum (flat index): its own when significant, else ``OTHER_COLOR``."""
        hit = np.flatnonzero(self.minima == int(minimum))
        return self.colors[int(hit[0])] if hit.size else OTHER_COLOR

    def sizes(self) -> np.ndarray:
        """Points in each coloured basin, aligned with ``minima``."""
        return np.bincount(self.labels.ravel(), minlength=self.minima.size)[: self.minima.size]


def _persistence(tree: MergeTree) -> np.ndarray:
    flat = tree.values.ravel()
    return np.where(tree.death >= 0, flat[np.maximum(tree.death, 0)] - flat[tree.minima], np.inf)


def basin_colors(tree: MergeTree, max_basins: int = 8) -> BasinColors:
    """Colour the ``max_basins`` most persistent minima of ``tree`` and label every point with its basin.

    Parameters
    ----------
    tree : MergeTree
        The merge tree (its ``basin_label`` holds the steepest-descent basins).
    max_basins : int
        How many minima get a colour (ties in persistence may add a few, drawn in ``OTHER_COLOR``).

    Examples
    --------
    >>> from landform.topology import merge_tree
    >>> bc = basin_colors(merge_tree([3.0, 1.0, 2.0, 0.0, 4.0]))
    >>> bc.minima.tolist(), bc.labels.tolist(), bc.sizes().tolist()
    ([3, 1], [1, 1, 0, 0, 0], [3, 2])
    """
    if not isinstance(tree, MergeTree):
        raise InputError(f"tree: expected a landform.topology.MergeTree, got {type(tree).__name__}.")
    if int(max_basins) < 1:
        raise InputError(f"max_basins: expected an integer >= 1, got {max_basins}.")
    pers = _persistence(tree)
    ranked = np.sort(pers)[::-1]
    threshold = 0.0
    if ranked.size > max_basins:
        threshold = float(ranked[int(max_basins) - 1])
        tree = simplify(tree, threshold)
        pers = _persistence(tree)
    order = np.lexsort((tree.minima, -pers))  # most persistent first, ties by index
    minima = tree.minima[order]
    lut = np.full(tree.values.size, -1, dtype=np.int64)
    lut[minima] = np.arange(minima.size)
    labels = lut[tree.basin_label]
    colors = tuple(BASIN_COLORS[k] if k < len(BASIN_COLORS) else OTHER_COLOR for k in range(minima.size))
    return BasinColors(minima, pers[order], colors, labels, threshold)


def plot_corner(
    values: np.ndarray,
    axes: Sequence[np.ndarray],
    *,
    anchor: Sequence[int] | None = None,
    minima: np.ndarray | None = None,
    saddles: np.ndarray | None = None,
    basins: BasinColors | None = None,
    log: bool | None = None,
    names: Sequence[str] | None = None,
    cmap: str = "viridis",
    fig: Any = None,
):
    """Static corner plot: the slice of every pair of axes through ``anchor`` on one shared colour scale.

    Parameters
    ----------
    values : numpy.ndarray, n-D (n >= 2)
        Loss on the grid, ``values[a, b, ...]`` at ``(axes[0][a], axes[1][b], ...)``.
    axes : sequence of 1-D arrays
        Coordinates of each axis.
    anchor : grid index, optional
        The point the slices pass through (default: the global minimum).
    minima, saddles : flat indices, optional
        Critical points; each is drawn in the panels whose slice contains it (minima as triangles in their
        basin's colour, saddles as white dots).
    basins : BasinColors, optional
        Outlines every coloured basin in its colour.
    log : bool, optional
        Logarithmic colour scale (default: :func:`choose_log`).
    names : axis names, optional
    fig : matplotlib Figure, optional
        Drawn into (a new one when None).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ax = [np.linspace(-1, 1, 5)] * 3
    >>> v = sum(g**2 for g in np.meshgrid(*ax, indexing="ij")) + 1.0
    >>> f = plot_corner(v, ax)
    >>> len([a for a in f.axes if a.get_visible() and a.get_label() != "<colorbar>"])
    3
    """
    from matplotlib import colormaps, colors
    from matplotlib.figure import Figure

    values = np.asarray(values, dtype=np.float64)
    n = values.ndim
    if n < 2:
        raise InputError(f"values: plot_corner needs a landscape of 2 or more dimensions, got {n}-D; use plot_curve.")
    axes = [np.asarray(a, dtype=np.float64) for a in axes]
    if len(axes) != n or tuple(len(a) for a in axes) != values.shape:
        raise InputError(
            f"axes: expected {n} coordinate arrays of lengths {values.shape}, got lengths {[len(a) for a in axes]}."
        )
    anchor = slice_anchor(values, anchor)
    names = list(names) if names is not None else [f"axis {k + 1}" for k in range(n)]
    if log is None:
        log = choose_log(values)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = colors.LogNorm(lo, hi) if log else colors.Normalize(lo, hi if hi > lo else lo + 1.0)
    cm = colormaps[cmap]
    m = n - 1
    if fig is None:
        fig = Figure(figsize=(2.4 * m + 1.6, 2.3 * m + 0.9))
    # a fixed layout: constrained layout costs seconds on a 4 x 4 grid
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.9 / w, right=1 - 1.3 / w, bottom=0.6 / h, top=1 - 0.45 / h, wspace=0.1, hspace=0.1)
    grid = fig.subplots(m, m, squeeze=False)
    minima = np.asarray([] if minima is None else minima, dtype=np.int64).ravel()
    saddles = np.asarray([] if saddles is None else saddles, dtype=np.int64).ravel()
    mesh = None
    for r in range(m):
        for c in range(m):
            if c > r:
                grid[r][c].set_visible(False)
    for i, j in axis_pairs(n):
        ax = grid[j - 1][i]
        s = slice_2d(values, anchor, i, j)
        mesh = ax.pcolormesh(axes[i], axes[j], np.ma.masked_invalid(s).T, norm=norm, cmap=cm, shading="nearest")
        if basins is not None:
            lab = slice_2d(basins.labels, anchor, i, j)
            for k in np.unique(lab):
                if len(axes[i]) > 1 and len(axes[j]) > 1 and (lab != k).any():
                    ax.contour(
                        axes[i],
                        axes[j],
                        (lab == k).T.astype(float),
                        levels=[0.5],
                        colors=[basins.colors[k]],
                        linewidths=1.3,
                    )
        for pts, style in (
            (minima, {"marker": "v", "s": 34, "edgecolor": "white", "linewidths": 0.7}),
            (saddles, {"marker": "o", "s": 20, "color": "white", "edgecolor": "k", "linewidths": 0.7}),
        ):
            hit = pts[in_slice(pts, values.shape, anchor, i, j)]
            if hit.size:
                idx = np.unravel_index(hit, values.shape)
                kw = dict(style)
                if style["marker"] == "v":
                    kw["color"] = [basins.color_of(p) if basins is not None else "C3" for p in hit]
                ax.scatter(axes[i][idx[i]], axes[j][idx[j]], zorder=4, **kw)
        ax.scatter([axes[i][anchor[i]]], [axes[j][anchor[j]]], marker="+", color="white", s=70, lw=1.2, zorder=5)
        if j == n - 1:
            ax.set_xlabel(names[i])
        else:
            ax.tick_params(labelbottom=False)
        if i == 0:
            ax.set_ylabel(names[j])
        else:
            ax.tick_params(labelleft=False)
    at = ", ".join(f"{names[k]} = {axes[k][anchor[k]]:.3g}" for k in range(n))
    fig.suptitle(f"slices through ({at})", fontsize="medium")
    if mesh is not None:
        cax = fig.add_axes((1 - 1.0 / w, 0.6 / h, 0.18 / w, 1 - 1.05 / h), label="<colorbar>")
        fig.colorbar(mesh, cax=cax, label="loss" + (" (log scale)" if log else ""))
    return fig
