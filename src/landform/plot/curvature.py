"""Figures of curvature results: eigenvalue maps and per-layer curvature. numpy and matplotlib only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..eigenmap import EigenvalueMap
from ..errors import InputError
from .figures import _axes

__all__ = ["plot_eigenvalue_map", "plot_layer_curvature"]


def plot_eigenvalue_map(
    emap: EigenvalueMap,
    ax: Any = None,
    *,
    which: str = "LA",
    levels: int = 20,
    cmap: str = "magma",
    colorbar: bool = True,
    landscape: Any = None,
):
    """Contour of a 2-D :class:`~landform.eigenmap.EigenvalueMap` (axis 0 along x, as for landscapes).

    ``which="LA"`` draws the top eigenvalue, ``"SA"`` the smallest (negative curvature in blue when a
    diverging map is used; the zero level is drawn as a dashed line when the map changes sign). With
    ``landscape`` (a 2-D :class:`~landform.Landscape` of the same directions), the loss's contour lines are drawn
    over the map and the axes span the landscape's coordinates.
    """
    if not isinstance(emap, EigenvalueMap):
        raise InputError(f"emap: expected an EigenvalueMap, got {type(emap).__name__}.")
    if len(emap.axes) != 2:
        raise InputError(f"plot_eigenvalue_map: needs a 2-D map, got {len(emap.axes)}-D; slice it first.")
    if which not in emap.values:
        raise InputError(f"which: this map holds {sorted(emap.values)}, not {which!r}.")
    ax = _axes(ax)
    z = emap.values[which]
    x, y = emap.axes
    cs = ax.contourf(x, y, z.T, levels=levels, cmap=cmap)
    if np.nanmin(z) < 0 < np.nanmax(z):
        ax.contour(x, y, z.T, levels=[0.0], colors="w", linestyles="--", linewidths=1.0)
    ax.scatter(*np.meshgrid(x, y), s=10, color="k", alpha=0.5, label="Lanczos points", zorder=3, clip_on=False)
    ax.scatter([0.0], [0.0], color="w", marker="+", s=80, zorder=3)
    if landscape is not None:
        if landscape.ndim != 2:
            raise InputError(f"landscape: expected a 2-D landscape to draw over the map, got {landscape.ndim}-D.")
        lx, ly = landscape.axes
        ax.contour(lx, ly, landscape.values.T, levels=12, colors="0.85", linewidths=0.6, alpha=0.8)
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, label=("top" if which == "LA" else "smallest") + f" {emap.curvature} eigenvalue")
    kind = emap.directions.get("kind", "direction")
    ax.set_xlabel(f"{kind} direction 1")
    ax.set_ylabel(f"{kind} direction 2")
    ax.set_title(f"λ_{'max' if which == 'LA' else 'min'} over the plane ({emap.n_hvp:,} HVPs)")
    return ax


def plot_layer_curvature(rows: Sequence[dict[str, Any]], ax: Any = None):
    """Top eigenvalue and trace of each layer (rows of ``{"layer", "top_eigenvalue", "trace"}``), as bars on a
    log scale (absolute values; a negative number is hatched)."""
    rows = list(rows)
    if not rows:
        raise InputError("plot_layer_curvature: no layers.")
    ax = _axes(ax, figsize=(max(4.8, 0.6 * len(rows) + 2), 3.8))
    names = [str(r["layer"]) for r in rows]
    idx = np.arange(len(rows))
    for off, key, color in ((-0.2, "top_eigenvalue", "C0"), (0.2, "trace", "C1")):
        v = np.asarray([float(r[key]) for r in rows])
        bars = ax.bar(idx + off, np.abs(v), width=0.4, color=color, label=key.replace("_", " "))
        for b, val in zip(bars, v, strict=True):
            if val < 0:
                b.set_hatch("//")
    ax.set_yscale("log")
    ax.set_xticks(idx)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("curvature")
    ax.legend(fontsize="small")
    ax.set_title("curvature per layer")
    return ax
