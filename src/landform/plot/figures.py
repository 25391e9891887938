"""The figures (see :mod:`landform.plot`). numpy and matplotlib only: no torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..landscape import Landscape
from ..topology import LandscapeProfile, MergeTree, barcode, landscape_profile, merge_tree

__all__ = [
    "plot_curve",
    "plot_contour",
    "plot_surface",
    "plot_landscape",
    "plot_merge_tree",
    "plot_barcode",
    "plot_diagram",
    "plot_profile",
    "plot_eigenvalues",
    "plot_density",
    "plot_comparison",
]


def _axes(ax: Any = None, projection: str | None = None, figsize: tuple[float, float] = (5.5, 4.2)):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot(projection=projection)


def _relative(ls: Landscape) -> dict[str, Any] | None:
    geo = (ls.provenance or {}).get("geometry") or {}
    return geo if geo.get("span_units") == "relative" and geo.get("theta0_norm") else None


def _coords(ls: Landscape, i: int) -> np.ndarray:
    """Axis i as plotted: the coefficients, or for relative spans the distance over ||θ0|| (α_i ||d_i|| / ||θ0||)."""
    geo = _relative(ls)
    if geo is None:
        return ls.axes[i]
    return ls.axes[i] * (geo["direction_norms"][i] / geo["theta0_norm"])


def _axis_label(ls: Landscape, i: int) -> str:
    ev = ls.directions.get("eigenvalues")
    kind = ls.directions.get("kind", "direction")
    unit = " · distance / ‖θ₀‖" if _relative(ls) is not None else ""
    if ev is not None and i < len(ev):
        return f"{kind} direction {i + 1} (λ = {ev[i]:.3g}){unit}"
    return f"{kind} direction {i + 1}{unit}"


def _need(ls: Any, ndim: int, name: str) -> Landscape:
    if not isinstance(ls, Landscape):
        raise InputError(f"{name}: expected a Landscape, got {type(ls).__name__}.")
    if ls.ndim != ndim:
        raise InputError(f"{name}: needs a {ndim}-D landscape, got {ls.ndim}-D; use plot_profile for any dimension.")
    return ls


def plot_curve(ls: Landscape, ax: Any = None, *, log: bool = False):
    """1-D landscape: loss against the displacement; the centre and the minimum are marked."""
    ls = _need(ls, 1, "plot_curve")
    ax = _axes(ax)
    x, v = _coords(ls, 0), ls.values
    ax.plot(x, v, color="C0", lw=1.8)
    ax.scatter([0.0], [ls.center_value], color="k", marker="+", s=80, zorder=3, label="centre (θ₀)")
    i = int(np.nanargmin(np.where(np.isfinite(v), v, np.nan)))
    ax.scatter([x[i]], [v[i]], color="C3", marker="v", s=40, zorder=3, label="minimum")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(_axis_label(ls, 0))
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_contour(
    ls: Landscape,
    ax: Any = None,
    *,
    log: bool = False,
    levels: int = 30,
    mark_minima: bool = True,
    cmap: str = "viridis",
    colorbar: bool = True,
    tree: MergeTree | None = None,
):
    """2-D landscape as filled contours: ``values[i, j]`` at ``(axes[0][i], axes[1][j])``.

    The centre (θ₀) is marked with a cross and the merge-tree minima with triangles (of ``tree`` when given,
    the landscape's saved merge tree, else computed). ``log=True`` uses a logarithmic colour scale (values must
    be positive).
    """
    from matplotlib import colors

    ls = _need(ls, 2, "plot_contour")
    ax = _axes(ax)
    v = np.ma.masked_invalid(ls.values)
    x0, x1 = _coords(ls, 0), _coords(ls, 1)
    norm = None
    if log:
        if np.nanmin(ls.values) <= 0:
            raise InputError("plot_contour: log=True needs positive losses; use log=False.")
        lv = np.geomspace(v.min(), v.max(), levels)
        norm = colors.LogNorm(vmin=v.min(), vmax=v.max())
        cs = ax.contourf(x0, x1, v.T, levels=lv, norm=norm, cmap=cmap)
    else:
        cs = ax.contourf(x0, x1, v.T, levels=levels, cmap=cmap)
    ax.contour(x0, x1, v.T, levels=cs.levels[::3], colors="k", linewidths=0.4, alpha=0.5, norm=norm)
    ax.scatter([0.0], [0.0], marker="x", color="white", s=60, lw=2, zorder=4, label="centre (θ₀)")
    if mark_minima and ls.complete and ls.n_nonfinite == 0:
        tree = tree if tree is not None else merge_tree(ls.values)
        ij = tree.coordinates(tree.minima)
        ax.scatter(
            x0[ij[:, 0]],
            x1[ij[:, 1]],
            marker="v",
            color="C3",
            edgecolor="white",
            s=40,
            zorder=5,
            label=f"minima ({tree.n_minima})",
        )
    ax.set_xlabel(_axis_label(ls, 0))
    ax.set_ylabel(_axis_label(ls, 1))
    ax.set_aspect("auto")
    if colorbar:
        from matplotlib.ticker import FormatStrFormatter

        cb = ax.figure.colorbar(cs, ax=ax, label="loss")
        cb.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        cb.ax.yaxis.set_minor_formatter(FormatStrFormatter(""))
    ax.legend(loc="upper right", fontsize="small", framealpha=0.7)
    return ax


def plot_surface(ls: Landscape, ax: Any = None, *, log: bool = False, cmap: str = "viridis"):
    """2-D landscape as a 3-D surface (x = axis 0, y = axis 1, z = loss)."""
    ls = _need(ls, 2, "plot_surface")
    ax = _axes(ax, projection="3d", figsize=(6, 5))
    X, Y = np.meshgrid(_coords(ls, 0), _coords(ls, 1), indexing="ij")
    Z = np.log10(ls.values) if log else ls.values
    ax.plot_surface(X, Y, Z, cmap=cmap, linewidth=0, antialiased=True, rcount=80, ccount=80)
    unit = " (distance / ‖θ₀‖)" if _relative(ls) is not None else ""
    ax.set_xlabel(f"direction 1{unit}")
    ax.set_ylabel(f"direction 2{unit}")
    ax.set_zlabel("log10 loss" if log else "loss")
    return ax


def plot_landscape(ls: Landscape, ax: Any = None, **kwargs: Any):
    """The natural picture of a landscape: a curve (1-D), a contour (2-D) or a profile (3-D and up)."""
    if ls.ndim == 1:
        return plot_curve(ls, ax, **kwargs)
    if ls.ndim == 2:
        return plot_contour(ls, ax, **kwargs)
    return plot_profile(landscape_profile(ls.values), ax, **kwargs)


def _tree_layout(tree: MergeTree) -> dict[int, float]:
    """x position of every node: leaves in depth-first order (larger subtrees first), parents centred."""
    flat = tree.values.ravel()
    parent = {int(n): int(p) for n, p in zip(tree.nodes, tree.parent, strict=True)}
    children: dict[int, list[int]] = {n: [] for n in parent}
    for n, p in parent.items():
        if p >= 0:
            children[p].append(n)
    size: dict[int, int] = {}
    for n in sorted(parent, key=lambda v: (flat[v], v)):
        size[n] = 1 + sum(size[c] for c in children[n])
    xs: dict[int, float] = {}
    counter = [0.0]

    def place(n: int) -> None:
        stack = [(n, False)]
        while stack:
            u, done = stack.pop()
            if done:
                xs[u] = float(np.mean([xs[c] for c in children[u]]))
                continue
            if not children[u]:
                xs[u] = counter[0]
                counter[0] += 1.0
                continue
            stack.append((u, True))
            for c in sorted(children[u], key=lambda c: (size[c], -flat[c]))[::1]:
                stack.append((c, False))

    for top in [n for n, p in parent.items() if p < 0]:
        place(top)
    return xs


def plot_merge_tree(tree: MergeTree, ax: Any = None, *, max_nodes: int = 400):
    """Merge tree against loss: minima (triangles) joined at saddles (dots), the top arc to max f."""
    if not isinstance(tree, MergeTree):
        raise InputError(f"plot_merge_tree: expected a MergeTree, got {type(tree).__name__}.")
    ax = _axes(ax)
    flat = tree.values.ravel()
    if tree.nodes.size > max_nodes:
        raise InputError(
            f"plot_merge_tree: {tree.nodes.size} nodes are too many to read; simplify first "
            "(landform.topology.simplify(tree, threshold))."
        )
    xs = _tree_layout(tree)
    segs = []
    for n, p in zip(tree.nodes, tree.parent, strict=True):
        n, p = int(n), int(p)
        top = flat[p] if p >= 0 else flat.max()
        px = xs[p] if p >= 0 else xs[n]
        segs.append([(xs[n], flat[n]), (xs[n], top), (px, top)])
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segs, colors="0.25", linewidths=1.2))
    mx = [xs[int(m)] for m in tree.minima]
    ax.scatter(mx, flat[tree.minima], marker="v", color="C3", s=36, zorder=3, label=f"minima ({tree.n_minima})")
    if tree.saddles.size:
        sx = [xs[int(s)] for s in tree.saddles]
        ax.scatter(
            sx, flat[tree.saddles], marker="o", color="C0", s=22, zorder=3, label=f"saddles ({tree.saddles.size})"
        )
    top_nodes = tree.nodes[tree.parent < 0]
    ax.scatter([xs[int(top_nodes[0])]], [flat.max()], marker="^", color="k", s=30, zorder=3, label="root (max f)")
    ax.set_xlim(-0.8, max(xs.values()) + 0.8)
    span = flat.max() - flat.min()
    ax.set_ylim(flat.min() - 0.04 * span - 1e-12, flat.max() + 0.04 * span + 1e-12)
    ax.set_xticks([])
    ax.set_ylabel("loss")
    ax.set_title("merge tree")
    ax.legend(loc="upper left", fontsize="small", framealpha=0.8)
    return ax


def plot_barcode(pairs: np.ndarray, ax: Any = None, *, max_value: float | None = None, max_bars: int = 60):
    """Persistence barcode: one bar per class from birth to death; the essential bar is drawn to
    ``max_value`` (default: the largest finite death, or its birth + 1) and marked with an arrow."""
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    ax = _axes(ax)
    if pairs.shape[0] == 0:
        raise InputError("plot_barcode: no persistence pairs to draw.")
    finite = pairs[np.isfinite(pairs[:, 1])]
    if max_value is None:
        max_value = float(finite[:, 1].max()) if finite.size else float(pairs[:, 0].max() + 1.0)
    order = np.argsort(-(np.where(np.isinf(pairs[:, 1]), np.inf, pairs[:, 1] - pairs[:, 0])), kind="stable")
    shown = order[:max_bars]
    bars = barcode(pairs[shown], max_value)
    ys = np.arange(len(shown))[::-1]
    for y, (b, d), src in zip(ys, bars, pairs[shown], strict=True):
        essential = np.isinf(src[1])
        ax.plot([b, d], [y, y], color="C3" if essential else "C0", lw=3, solid_capstyle="butt")
        if essential:
            ax.annotate("", xy=(d, y), xytext=(d - 1e-9, y), arrowprops={"arrowstyle": "->", "color": "C3"})
            ax.text(d, y, "  ∞", va="center", color="C3")
    ax.set_yticks([])
    ax.set_ylim(-0.8, len(shown) - 0.2)
    ax.set_xlabel("loss")
    extra = f" (longest {len(shown)} of {pairs.shape[0]})" if pairs.shape[0] > len(shown) else ""
    ax.set_title(f"persistence barcode{extra}")
    return ax


def plot_diagram(pairs: np.ndarray, ax: Any = None):
    """Persistence diagram: (birth, death) points above the diagonal; the essential class on a top line."""
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    ax = _axes(ax, figsize=(4.6, 4.4))
    if pairs.shape[0] == 0:
        raise InputError("plot_diagram: no persistence pairs to draw.")
    fin = pairs[np.isfinite(pairs[:, 1])]
    lo = float(pairs[:, 0].min())
    hi = float(fin[:, 1].max()) if fin.size else lo + 1.0
    pad = 0.05 * (hi - lo or 1.0)
    top = hi + 2 * pad
    ax.plot([lo - pad, top], [lo - pad, top], color="0.6", lw=1)
    if fin.size:
        ax.scatter(fin[:, 0], fin[:, 1], s=18, color="C0", label="finite pairs", zorder=3)
    ess = pairs[np.isinf(pairs[:, 1])]
    ax.axhline(top, color="0.8", lw=0.8, ls="--")
    ax.scatter(ess[:, 0], np.full(len(ess), top), marker="^", color="C3", s=36, label="essential (∞)", zorder=3)
    ax.set_xlim(lo - pad, top + pad)
    ax.set_ylim(lo - pad, top + pad)
    ax.set_xlabel("birth (minimum)")
    ax.set_ylabel("death (saddle)")
    ax.set_title("persistence diagram")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_profile(profile: LandscapeProfile, ax: Any = None, *, cmap: str = "viridis", log: bool = False):
    """Topological landscape profile: nested basin polygons coloured by loss, minima and saddles marked."""
    from matplotlib import colormaps, colors
    from matplotlib.patches import Polygon

    if not isinstance(profile, LandscapeProfile):
        raise InputError(f"plot_profile: expected a LandscapeProfile, got {type(profile).__name__}.")
    ax = _axes(ax, figsize=(6.2, 4.2))
    cm = colormaps[cmap]
    lo, hi = profile.y_min, profile.y_max
    norm = colors.LogNorm(lo, hi) if log and lo > 0 else colors.Normalize(lo, hi if hi > lo else lo + 1)
    for poly in profile.polygons:
        xy = np.column_stack([poly.x, poly.y])
        ax.add_patch(Polygon(xy, closed=True, facecolor=cm(norm(poly.y_low)), edgecolor="k", lw=0.4))
    m = profile.minima_xy()
    ax.scatter(m[:, 0], m[:, 1], marker="v", color="C3", s=30, zorder=3, label=f"minima ({len(m)})")
    s = profile.saddles_xy()
    if len(s):
        ax.scatter(
            s[:, 0], s[:, 1], marker="o", color="white", edgecolor="k", s=22, zorder=3, label=f"saddles ({len(s)})"
        )
    ax.set_xlim(-0.02 * profile.width, 1.02 * profile.width)
    span = hi - lo or 1.0
    if log and lo > 0:
        ax.set_yscale("log")
        ax.set_ylim(lo * 0.9, hi * 1.1)
    else:
        ax.set_ylim(lo - 0.03 * span, hi + 0.03 * span)
    ax.set_xlabel("points below the level (basin volume)")
    ax.set_ylabel("loss")
    ax.set_title(f"landscape profile ({profile.tree.values.ndim}-D, {profile.width:,} points)")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    from matplotlib.cm import ScalarMappable

    ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, label="loss at the basin floor")
    return ax


def plot_eigenvalues(values: Sequence[float], ax: Any = None):
    """Top Hessian eigenvalues as a stem plot (negative curvature shows below the zero line)."""
    vals = np.asarray(values, dtype=np.float64).ravel()
    if vals.size == 0:
        raise InputError("plot_eigenvalues: no eigenvalues.")
    ax = _axes(ax, figsize=(4.8, 3.6))
    idx = np.arange(1, vals.size + 1)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.vlines(idx, 0, vals, color="C0", lw=2)
    ax.scatter(idx, vals, color="C0", zorder=3)
    for i, v in zip(idx, vals, strict=True):
        ax.annotate(
            f"{v:.3g}",
            (i, v),
            textcoords="offset points",
            xytext=(0, 5 if v >= 0 else -12),
            ha="center",
            fontsize="small",
        )
    ax.set_xticks(idx)
    ax.set_xlim(0.4, vals.size + 0.6)
    top = max(vals.max(), 0)
    bot = min(vals.min(), 0)
    ax.set_ylim(bot - 0.12 * (top - bot or 1), top + 0.15 * (top - bot or 1))
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue")
    ax.set_title("top Hessian eigenvalues")
    return ax


def plot_density(density: Any, ax: Any = None, *, log: bool = True):
    """Spectral density (a SpectralDensity or anything with ``grid`` and ``density``), log scale by default."""
    grid = np.asarray(getattr(density, "grid", None) if not isinstance(density, dict) else density["grid"])
    dens = np.asarray(getattr(density, "density", None) if not isinstance(density, dict) else density["density"])
    if grid.ndim != 1 or grid.shape != dens.shape:
        raise InputError("plot_density: expected a SpectralDensity (grid and density of equal length).")
    ax = _axes(ax, figsize=(5.2, 3.6))
    ax.plot(grid, np.maximum(dens, 1e-12) if log else dens, color="C0")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(dens.max() * 1e-8, 1e-12), dens.max() * 2)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title("Hessian spectral density (SLQ)")
    return ax


def plot_comparison(runs: dict[str, Any], ax: Any = None, *, metrics: Sequence[str] | None = None):
    """Several runs side by side: one group of bars per run, one bar per metric (each metric scaled to its
    largest magnitude across runs; the raw values are written on the bars).

    ``runs`` maps a name to a :class:`~landform.results.RunResult` (see :func:`landform.run.load_run`) or to a
    ``summary.json`` document."""
    from pathlib import Path

    from ..results.summary import HessianSummary, RunResult, TopologySummary, typed_section

    if not runs:
        raise InputError("plot_comparison: no runs given.")

    def as_run(s: Any) -> RunResult:
        if isinstance(s, RunResult):
            return s
        if not isinstance(s, dict):
            raise InputError(f"plot_comparison: expected RunResult or summary dicts, got {type(s).__name__}.")
        topo = typed_section(TopologySummary, s.get("topology"), "plot_comparison topology")
        return RunResult(Path("."), topology=topo, hessian=typed_section(HessianSummary, s.get("hessian") or {}, "hessian"))

    summaries = {n: as_run(s) for n, s in runs.items()}

    def get(r: RunResult, m: str) -> float | None:
        topo, h = r.topology, r.hessian
        return {
            "SMAD": topo.smad if topo else None,
            "persistence range": topo.persistence_range if topo else None,
            "λmax": h.top_eigenvalues[0] if h.top_eigenvalues else None,
            "trace": h.trace,
        }.get(m)

    metrics = list(metrics or ["SMAD", "persistence range", "λmax", "trace"])
    names = list(summaries)
    ax = _axes(ax, figsize=(1.6 + 1.4 * len(names) * len(metrics) / 2, 3.8))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        raw = np.array([np.nan if get(summaries[n], m) is None else float(get(summaries[n], m)) for n in names])
        scale = np.nanmax(np.abs(raw)) if np.any(np.isfinite(raw)) and np.nanmax(np.abs(raw)) > 0 else 1.0
        xs = np.arange(len(names)) + (j - (len(metrics) - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(raw / scale), width=width * 0.95, label=m, color=f"C{j}")
        for x, r in zip(xs, raw, strict=True):
            if np.isfinite(r):
                ax.text(x, 0.02, f"{r:.3g}", rotation=90, ha="center", va="bottom", fontsize="x-small", color="white")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("value / largest across runs")
    ax.set_title("runs compared")
    ax.legend(fontsize="small", ncol=len(metrics), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return ax
