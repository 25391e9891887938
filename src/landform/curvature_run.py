"""Run stages and report sections for per-layer curvature, per-point metrics and the eigenvalue map
(``landform analyze --per-layer``, ``--metric accuracy``, ``--eigenvalue-map``). Registered in
:data:`landform.run.STAGES`; their report section is :mod:`landform.report.curvature` (which reads what these
stages saved and recomputes nothing)."""

from __future__ import annotations

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


def taxonomy_stage(models: Any, data: Any, loss_fn: Any, **kwargs: Any) -> Any:
    """A run stage that attaches the taxonomy (:func:`landform.metrics.taxonomy`) of ``models`` (the seeds of the
    run's configuration) to the run's summary, for ``landform compare`` to show its mc and phase::

        landform.run.analyze(objective, config, out, extra_stages=[taxonomy_stage(seeds, train_data, loss_fn)])
    """
    from .metrics import taxonomy
    from .run import Stage

    return Stage("taxonomy", lambda ctx: {"taxonomy": taxonomy(models, data, loss_fn, **kwargs).as_dict()})


def __getattr__(name: str) -> Any:
    if name == "curvature_section":  # moved to the report layer; kept importable from here
        from .report.curvature import curvature_section

        return curvature_section
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
