"""Run stages and report sections for per-layer curvature, per-point metrics and the eigenvalue map
(``landform analyze --per-layer``, ``--metric accuracy``, ``--eigenvalue-map``). Registered in
:data:`landform.run.STAGES` and :data:`landform.report.SECTIONS`."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

__all__ = [
    "BUILTIN_METRICS",
    "builtin_metrics",
    "per_layer",
    "basins",
    "per_layer_settings",
    "eigenvalue_map_stage",
    "eigenvalue_map_settings",
    "eigenvalue_map_valid",
    "EIGENVALUE_MAP_FILE",
    "curvature_section",
    "taxonomy_stage",
]

#: Metrics ``landform analyze --metric NAME`` knows (functions of (outputs, targets) returning a batch mean).
BUILTIN_METRICS = ("accuracy",)

_BASIN_ROWS = 20
#: The eigenvalue map's file in a run folder (:class:`landform.eigenmap.EigenvalueMap`, numpy only).
EIGENVALUE_MAP_FILE = "eigenvalue_map.npz"
#: Lanczos budget (HVPs) per eigenvalue and point of the run's eigenvalue map, and the residual it aims at.
EIGENVALUE_MAP_HVP = 60
EIGENVALUE_MAP_TOL = 1e-3


def builtin_metrics(names: Any) -> dict[str, Any]:
    from .errors import InputError
    from .pointmetrics import accuracy

    table = {"accuracy": accuracy}
    out = {}
    for n in names or ():
        if n not in table:
            raise InputError(
                f"metrics: unknown metric {n!r}; built in: {', '.join(table)} (pass functions through the API)."
            )
        out[n] = table[n]
    return out


def per_layer(ctx: Any) -> dict[str, Any]:
    """Stage: each layer's top Hessian eigenvalue and trace (:func:`landform.curvature.layer_curvature`)."""
    from .curvature import layer_curvature

    s = per_layer_settings(ctx.config)
    rows = layer_curvature(ctx.objective, trace_hvp=s["trace_hvp"], tol=s["tol"], seed=s["seed"])
    return {"per_layer": rows}


def basins(ctx: Any) -> dict[str, Any]:
    """Stage: the basins of the landscape's minima with each recorded metric's mean, min and max."""
    from .topology import basin_statistics

    ls = ctx.landscape
    if not ls.metrics or not ls.complete or ls.n_nonfinite:
        return {}
    out = {}
    for name, field in ls.metrics.items():
        if not np.isfinite(field).all():
            continue
        st = basin_statistics(ls.values, field)
        out[name] = [
            {
                "minimum": [float(a[i]) for a, i in zip(ls.axes, np.unravel_index(int(m), ls.shape), strict=True)],
                "loss": float(st.value[j]),
                "size": int(st.size[j]),
                "mean": float(st.mean[j]),
                "min": float(st.min[j]),
                "max": float(st.max[j]),
            }
            for j, m in enumerate(st.minima[:_BASIN_ROWS])
        ]
    return {"basins": out} if out else {}


def per_layer_settings(c: Any) -> dict[str, Any]:
    return {"trace_hvp": max(3, c.trace_hvp or 30), "tol": 1e-3, "seed": c.seed}


def eigenvalue_map_settings(c: Any) -> dict[str, Any]:
    """The eigenvalue-map stage's cache settings (the grid and directions are checked by
    :func:`eigenvalue_map_valid` against the landscape itself)."""
    return {
        "points": int(c.eigenvalue_map),
        "which": ["LA", "SA"] if c.eigenvalue_map_smallest else ["LA"],
        "tol": EIGENVALUE_MAP_TOL,
        "max_hvp": EIGENVALUE_MAP_HVP,
        "seed": c.seed,
    }


def eigenvalue_map_valid(ctx: Any, key: str) -> bool:
    """A saved map is reused only when it carries this stage key and lies on this landscape's directions and
    coordinates."""
    from .curvature import eigenvalue_map_axes
    from .eigenmap import load_eigenvalue_map
    from .errors import StoreError

    try:
        em = load_eigenvalue_map(ctx.out / EIGENVALUE_MAP_FILE)
    except StoreError:
        return False
    ls = ctx.landscape
    axes = eigenvalue_map_axes(ls.axes, int(ctx.config.eigenvalue_map))
    return (
        em.provenance.get("key") == key
        and em.directions.get("fingerprint") == ls.directions.get("fingerprint")
        and len(em.axes) == len(axes)
        and all(np.array_equal(a, b) for a, b in zip(em.axes, axes, strict=True))
    )


def eigenvalue_map_stage(ctx: Any, key: str) -> dict[str, Any]:
    """Stage: the top (and with ``eigenvalue_map_smallest`` the smallest) Hessian eigenvalue at a coarse sub-grid
    of the landscape's own grid points (:func:`landform.curvature.eigenvalue_map_axes`), saved to
    ``eigenvalue_map.npz``; the summary section states its Lanczos cost."""
    from .curvature import eigenvalue_map, eigenvalue_map_axes

    s = eigenvalue_map_settings(ctx.config)
    ls = ctx.landscape
    axes = eigenvalue_map_axes(ls.axes, s["points"])
    P = ctx.objective.num_params
    max_hvp = max(2, min(P, s["max_hvp"]))
    em = eigenvalue_map(
        ctx.objective, ctx.directions, axes=axes, which=tuple(s["which"]), tol=s["tol"], max_hvp=max_hvp,
        seed=s["seed"], verbose=bool(ctx.config.progress) and ctx.rank == 0,
    )  # fmt: skip
    points = int(np.prod(em.shape))
    section: dict[str, Any] = {
        "file": EIGENVALUE_MAP_FILE,
        "shape": list(em.shape),
        "which": list(s["which"]),
        "n_hvp": int(em.n_hvp),
        "hvp_budget": points * len(s["which"]) * max_hvp,
        "max_hvp": max_hvp,
        "tol": s["tol"],
        "max_residual": float(max(np.nanmax(r) for r in em.residuals.values())),
        "elapsed_s": float(em.provenance.get("elapsed_s", 0.0)),
    }
    for w, v in em.values.items():
        section[w] = {"min": float(np.nanmin(v)), "max": float(np.nanmax(v))}
    if ctx.rank == 0:
        from dataclasses import replace

        replace(em, provenance={**em.provenance, "key": key}).save(ctx.out / EIGENVALUE_MAP_FILE)
    return {"eigenvalue_map": section}


def _eigenvalue_map_part(data: Any, add: Any) -> str:
    """The eigenvalue map's table row and figures (read from the saved file; nothing recomputed)."""
    from .eigenmap import load_eigenvalue_map
    from .errors import StoreError
    from .plot import plot_eigenvalue_map

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

    from .plot import plot_contour, plot_layer_curvature
    from .report import _png
    from .results import Landscape, atomic_write_bytes

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
    out = ["<h2>Curvature and metrics</h2>", *parts, "<div class='grid'>"]
    for fid, caption, png in figs:
        out.append(
            f"<figure class='static' id='fig-{fid}'><img alt='{html.escape(fid)}' src='data:image/png;base64,{png}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    out.append("</div>")
    return "".join(out)


def taxonomy_stage(models: Any, data: Any, loss_fn: Any, **kwargs: Any) -> Any:
    """A run stage that attaches the taxonomy (:func:`landform.metrics.taxonomy`) of ``models`` (the seeds of the
    run's configuration) to the run's summary, for ``landform compare`` to show its mc and phase::

        landform.run.analyze(objective, config, out, extra_stages=[taxonomy_stage(seeds, train_data, loss_fn)])
    """
    from .metrics import taxonomy
    from .run import Stage

    return Stage("taxonomy", lambda ctx: {"taxonomy": taxonomy(models, data, loss_fn, **kwargs).as_dict()})
