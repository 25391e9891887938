"""Report section of the per-layer curvature, the per-point metrics, the eigenvalue map and the basins' metrics
(written by the stages of :mod:`landform.curvature_run`); it reads the saved run and recomputes nothing."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

__all__ = ["curvature_section"]


def _eigenvalue_map_part(data: Any, add: Any) -> str:
    """The eigenvalue map's table row and figures (read from the saved file; nothing recomputed)."""
    from ..curvature_run import EIGENVALUE_MAP_FILE
    from ..eigenmap import load_eigenvalue_map
    from ..errors import StoreError
    from ..plot import plot_eigenvalue_map

    info = (data.result.extras or {}).get("eigenvalue_map")
    path = data.run_dir / EIGENVALUE_MAP_FILE
    if not info or not path.exists():
        return ""
    try:
        em = load_eigenvalue_map(path)
    except StoreError:
        return ""
    ls = data.landscape
    cost = (
        f"{em.n_hvp:,} HVPs spent (Lanczos budget {info['max_hvp']} per eigenvalue and point: at most "
        f"{info['hvp_budget']:,} + residual checks), largest relative residual {info['max_residual']:.2g} "
        f"(tol {info['tol']:g}), {info['elapsed_s']:.1f} s"
    )
    rows = "".join(
        f"<tr><td>{'largest (λmax)' if w == 'LA' else 'smallest (λmin)'}</td><td>{info[w]['min']:.4g}</td>"
        f"<td>{info[w]['max']:.4g}</td></tr>"
        for w in em.values
    )
    grid = " × ".join(map(str, em.shape))
    for w in em.values:
        if len(em.axes) == 2:
            finite = ls.complete and ls.n_nonfinite == 0
            add(
                f"eigenvalue_map_{w}",
                f"{'Top' if w == 'LA' else 'Smallest'} Hessian eigenvalue on a {grid} sub-grid of the landscape's "
                f"points (dots), over the loss's coordinates{' with its contour lines' if finite else ''}; "
                f"{em.n_hvp:,} HVPs for the whole map.",
                lambda ax, w=w, finite=finite: plot_eigenvalue_map(em, ax, which=w, landscape=ls if finite else None),
            )
        elif len(em.axes) == 1:

            def line(ax: Any, w: str = w) -> None:
                ax.plot(em.axes[0], em.values[w], "o-")
                ax.set_xlabel("axis 0")
                ax.set_ylabel(("top" if w == "LA" else "smallest") + " Hessian eigenvalue")
                ax.set_xlim(ls.axes[0][0], ls.axes[0][-1])

            add(f"eigenvalue_map_{w}", f"Hessian eigenvalue along the direction ({em.n_hvp:,} HVPs).", line)
    return (
        f"<h3>Eigenvalue map</h3><p id='eigenvalue-map-cost'>{grid} points of the landscape's grid; "
        f"{html.escape(cost)}.</p><table id='eigenvalue-map'><tr><th>eigenvalue</th><th>min over the map</th>"
        f"<th>max over the map</th></tr>{rows}</table>"
    )


def curvature_section(data: Any) -> str:
    """Report section: the per-layer curvature table and figure, each metric's contour, the basins' metrics."""
    from matplotlib.figure import Figure

    from ..plot import plot_contour, plot_layer_curvature
    from ..results import Landscape, atomic_write_bytes
    from . import _figure_grid, _png

    extras = data.result.extras or {}
    ls = data.landscape
    parts: list[str] = []
    figs: list[tuple[str, str, str]] = []
    figdir = data.run_dir / "figures"
    figdir.mkdir(exist_ok=True)

    def add(fid: str, caption: str, draw: Any, size: tuple[float, float] = (6.0, 4.4)) -> None:
        import base64

        fig = Figure(figsize=size, layout="constrained")
        draw(fig.add_subplot())
        png = _png(fig)
        atomic_write_bytes(figdir / f"{fid}.png", base64.b64decode(png))
        figs.append((fid, caption, png))

    rows = extras.get("per_layer")
    if rows:
        head = "<tr><th>layer</th><th>parameters</th><th>λmax</th><th>trace</th><th>HVPs</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(r['layer'])}</td><td>{r['size']:,}</td><td>{r['top_eigenvalue']:.4g}</td>"
            f"<td>{r['trace']:.4g} ± {r['trace_stderr']:.2g}</td><td>{r['n_hvp']}</td></tr>"
            for r in rows
        )
        parts.append(f"<h3>Curvature per layer</h3><table id='per-layer'>{head}{body}</table>")
        add(
            "per_layer",
            "Top Hessian eigenvalue and trace of each layer's block.",
            lambda ax: plot_layer_curvature(rows, ax),
        )
    if ls.ndim == 2 and ls.metrics:
        for name, field in ls.metrics.items():
            if np.isfinite(field).all():
                view = Landscape(field, ls.axes, ls.directions, float("nan"), {})
                se = ls.metrics_stderr.get(name)
                how = (
                    f"estimated from {100 * ls.data_fraction:.1f} % of the data with the loss; largest standard "
                    f"error {float(np.nanmax(se)):.3g}"
                    if se is not None
                    else "recorded with the loss"
                )
                add(
                    f"metric_{name}",
                    f"{name} over the same grid ({how}).",
                    lambda ax, view=view: plot_contour(view, ax, mark_minima=False),
                )
    emap = _eigenvalue_map_part(data, add)
    if emap:
        parts.append(emap)
    basins = extras.get("basins") or {}
    for name, brows in basins.items():
        head = "<tr><th>minimum at</th><th>loss</th><th>basin size</th><th>mean</th><th>min</th><th>max</th></tr>"
        body = "".join(
            f"<tr><td>({', '.join(f'{c:.3g}' for c in b['minimum'])})</td><td>{b['loss']:.5g}</td><td>{b['size']}</td>"
            f"<td>{b['mean']:.4g}</td><td>{b['min']:.4g}</td><td>{b['max']:.4g}</td></tr>"
            for b in brows
        )
        parts.append(
            f"<h3>Basins and their {html.escape(name)}</h3><table id='basins-{html.escape(name)}'>{head}{body}</table>"
        )
    if not parts and not figs:
        return ""
    return "<h2>Curvature and metrics</h2>" + "".join(parts) + _figure_grid(figs)
