"""A self-contained HTML report built from a run folder's saved results (no torch needed).

``build_report(run_dir)`` opens the run through :func:`landform.results.load_run`: the summary, the landscape,
the saved merge tree and persistence pairs and the optional density. It computes no topology of its own: the
one merge tree is the run's (computed once only for a folder of landform 0.1, which did not save it), and the
display simplification of a large tree is done once and shared by the static and interactive views. It writes
the static figures to ``run_dir/figures/*.png`` and one ``report.html`` that opens from disk with no network:
the PNGs are embedded as data URIs and plotly.js is embedded once for the interactive views. An interrupted
run (incomplete landscape, no summary) still gets a report that says which points are missing.

The page is the concatenation of :data:`SECTIONS`, each a function ``section(data: ReportData) -> str`` of
HTML; to add a view, write such a function (in its own module) and insert it into the list.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..landscape import Landscape
from ..results import RunResult, SavedDensity, atomic_write_bytes, load_run
from ..topology import LandscapeProfile, MergeTree

__all__ = ["build_report", "ReportData", "report_data", "SECTIONS"]

_MAX_TREE_NODES = 200  # larger trees are drawn simplified
_SHOWN_MINIMA = 60

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.2em 1.6em 3em; color: #1d1d1f; background: #fbfbfd; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 0.25em 0.9em; text-align: left;
  border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; } th { color: #555; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em; }
figure { margin: 0; background: white; border: 1px solid #e5e5e5; border-radius: 6px; padding: 0.5em; }
figure img { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.9em; padding: 0.3em 0.2em 0; }
.warn { background: #fff4e5; border: 1px solid #f0b35e; padding: 0.8em 1em; border-radius: 6px; }
.plot { width: 100%; height: 480px; }
pre { background: #f3f3f5; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
"""




def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(x: Any, spec: str = ".6g") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return format(x, spec)
    return html.escape(str(x))


@dataclass
class ReportData:
    """Everything a report section may show, read once from the run folder."""

    run_dir: Path
    result: RunResult
    landscape: Landscape
    tree: MergeTree | None
    pairs: np.ndarray | None
    shown: MergeTree | None  # the tree as drawn (simplified when large)
    note: str
    profile: LandscapeProfile | None
    density: SavedDensity | None
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @property
    def finite(self) -> bool:
        return self.landscape.complete and self.landscape.n_nonfinite == 0


def _display_tree(tree: MergeTree, pairs: np.ndarray) -> tuple[MergeTree, str]:
    """The tree to draw: large trees keep their most persistent minima (one simplification, shared)."""
    from ..topology import simplify

    if tree.nodes.size <= _MAX_TREE_NODES:
        return tree, ""
    fin = pairs[np.isfinite(pairs[:, 1])]
    pers = np.sort(fin[:, 1] - fin[:, 0])[::-1]
    if not len(pers):
        return tree, ""
    thr = float(pers[min(len(pers) - 1, _SHOWN_MINIMA)])
    shown = simplify(tree, np.nextafter(thr, np.inf))
    return shown, (
        f" (simplified: pairs with persistence ≤ {thr:.3g} cancelled, {shown.n_minima} of {tree.n_minima} minima shown)"
    )


def report_data(run_dir: str | Path, result: RunResult | None = None) -> ReportData:
    """Read what the report shows from ``run_dir`` (``result``: the run's result when it is not saved yet)."""
    from ..topology import landscape_profile, pairs_from_tree

    run_dir = Path(run_dir)
    if result is None:
        result = load_run(run_dir, allow_unfinished=True)
    ls = result.landscape()
    tree = result.merge_tree(ls)
    pairs = None
    if tree is not None:
        pairs = result.pairs()
        if pairs is None:
            pairs = pairs_from_tree(tree)
    shown, note, prof = None, "", None
    if tree is not None:
        shown, note = _display_tree(tree, pairs)
        prof = landscape_profile(shown)
    return ReportData(run_dir, result, ls, tree, pairs, shown, note, prof, result.density())


def _figures(data: ReportData) -> list[tuple[str, str, str]]:
    """(id, caption, base64 png) of every static figure that the saved results allow."""
    from matplotlib.figure import Figure

    from .. import plot as P

    ls, run_dir = data.landscape, data.run_dir
    out: list[tuple[str, str, str]] = []
    figdir = run_dir / "figures"
    figdir.mkdir(exist_ok=True)

    def add(fid: str, caption: str, draw, projection: str | None = None, size=(6.0, 4.4)) -> None:
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.add_subplot(projection=projection)
        draw(ax)
        png = _png(fig)
        atomic_write_bytes(figdir / f"{fid}.png", base64.b64decode(png))
        out.append((fid, caption, png))

    finite = ls.complete and ls.n_nonfinite == 0
    if ls.ndim == 1 and finite:
        add("curve", "Loss along the direction; the cross marks θ₀.", lambda ax: P.plot_curve(ls, ax))
    if ls.ndim == 2:
        if finite:
            add(
                "contour",
                "Loss contours; axis 0 along x, axis 1 along y, minima marked.",
                lambda ax: P.plot_contour(ls, ax, tree=data.tree),
            )
            if np.nanmin(ls.values) > 0:
                add("contour_log", "The same on a log colour scale.", lambda ax: P.plot_contour(ls, ax, log=True, tree=data.tree))
            add("surface", "The loss surface.", lambda ax: P.plot_surface(ls, ax), projection="3d", size=(6.0, 5.0))
    if data.tree is not None:
        shown, pairs, note, prof = data.shown, data.pairs, data.note, data.profile
        add("merge_tree", "Merge tree of the sublevel sets" + note + ".", lambda ax: P.plot_merge_tree(shown, ax))
        add(
            "barcode",
            "0-dimensional persistence barcode; the essential bar is drawn to max f.",
            lambda ax: P.plot_barcode(pairs, ax, max_value=float(ls.values.max())),
        )
        add("diagram", "Persistence diagram.", lambda ax: P.plot_diagram(pairs, ax), size=(5.0, 4.6))
        add(
            "profile",
            f"Topological landscape profile of the {ls.ndim}-D landscape{note}.",
            lambda ax: P.plot_profile(prof, ax),
        )
    ev = data.result.hessian.top_eigenvalues
    if ev:
        add(
            "eigenvalues",
            "Top Hessian eigenvalues (Lanczos).",
            lambda ax: P.plot_eigenvalues(list(ev), ax),
            size=(5.0, 3.8),
        )
    z = data.density
    if z is not None:
        add(
            "density",
            "Hessian spectral density by stochastic Lanczos quadrature.",
            lambda ax: P.plot_density({"grid": z.grid, "density": z.density}, ax),
            size=(5.4, 3.8),
        )
    return out


def _span_text(geo: dict[str, Any] | None) -> str:
    """The span as the run was asked for it, its units, and the coefficient span it became."""
    if not geo:
        return "n/a"

    def num(v: Any) -> str:
        return f"[{v[0]:.4g}, {v[1]:.4g}]" if isinstance(v, list) else f"{v:.4g}"

    abs_ = ", ".join(num(v) for v in geo.get("absolute_span") or [])
    rel = ", ".join(num(v) for v in geo.get("relative_span") or [])
    t0n = geo.get("theta0_norm")
    if geo.get("auto"):
        a = geo["auto"]
        text = (
            f"auto: quadratic-model rise {a['rise']:.4g} at each edge (curvature {', '.join(f'{c:.4g}' for c in a['curvatures'])}; "
            f"rules {', '.join(a['rules'])}); coefficient span {abs_}; {rel} of ‖θ₀‖"
        )
    elif geo.get("span_units") == "relative":
        text = f"relative: {rel} of ‖θ₀‖ = {t0n:.4g} (coefficient span {abs_})"
    else:
        text = f"absolute: coefficient span {abs_} ({rel} of ‖θ₀‖ = {t0n:.4g})"
    return html.escape(text)


def _interactive(data: ReportData) -> list[tuple[str, str, Any]]:
    """(id, caption, plotly figure) of the interactive views of a 2-D landscape: surface and contour.

    The landscape profile is drawn by the viewer's section (basin-coloured), not here."""
    import plotly.graph_objects as go

    ls = data.landscape
    if ls.ndim != 2 or not data.finite:
        return []
    from ..plot.figures import _coords, _relative

    x, y, z = _coords(ls, 0), _coords(ls, 1), ls.values.T  # plotly: z[row=j][col=i] at (x[i], y[j])
    unit = " (distance / ‖θ₀‖)" if _relative(ls) is not None else ""
    surf = go.Figure(go.Surface(x=x, y=y, z=z, colorscale="Viridis", colorbar={"title": "loss"}))
    surf.update_layout(
        scene={"xaxis_title": f"direction 1{unit}", "yaxis_title": f"direction 2{unit}", "zaxis_title": "loss"},
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="surface (drag to rotate)",
    )
    cont = go.Figure(
        go.Contour(
            x=x,
            y=y,
            z=z,
            colorscale="Viridis",
            colorbar={"title": "loss"},
            hovertemplate="d1=%{x:.4g}<br>d2=%{y:.4g}<br>loss=%{z:.6g}<extra></extra>",
        )
    )
    cont.update_layout(
        xaxis_title=f"direction 1{unit}",
        yaxis_title=f"direction 2{unit}",
        margin={"t": 30},
        title="contour (hover for values)",
    )
    return [("surface3d", "Rotatable surface.", surf), ("contour_interactive", "Hoverable contour.", cont)]


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _warning_section(data: ReportData) -> str:
    ls = data.landscape
    if not ls.complete:
        missing = np.argwhere(~ls.evaluated)
        first = ", ".join(str(tuple(int(i) for i in m)) for m in missing[:10])
        return (
            f"<p class='warn' id='incomplete'><b>This run is incomplete:</b> {ls.n_missing:,} of {ls.values.size:,} grid points "
            f"are missing (first: {first}{', …' if len(missing) > 10 else ''}). Topology needs every point; run the same "
            "command again to resume.</p>"
        )
    if ls.n_nonfinite:
        return f"<p class='warn' id='nonfinite'><b>{ls.n_nonfinite} points have NaN or inf loss</b> (kept as they are); topology was skipped. Shrink the span.</p>"
    return ""


def _summary_section(data: ReportData) -> str:
    ls, r = data.landscape, data.result
    topo, h = r.topology, r.hessian
    dirs = ls.directions
    ev = dirs.get("eigenvalues")
    trace = f"{h.trace:.6g} ± {h.trace_stderr:.2g} ({h.trace_n_hvp} HVPs, Hutch++)" if h.trace is not None else "n/a"
    rows = [
        ("SMAD", _fmt(topo.smad if topo else None)),
        ("persistence range", _fmt(topo.persistence_range if topo else None)),
        ("minima / saddles", f"{_fmt(topo.n_minima if topo else None)} / {_fmt(topo.n_saddles if topo else None)}"),
        ("λ (top eigenvalues)", ", ".join(f"{x:.6g}" for x in ev) if ev else "n/a"),
        ("Hessian trace", trace),
        ("loss at the centre θ₀", _fmt(ls.center_value)),
        (
            "loss range on the grid",
            f"[{_fmt(float(np.nanmin(ls.values)))}, {_fmt(float(np.nanmax(ls.values)))}]"
            if np.isfinite(ls.values).any()
            else "n/a",
        ),
        (
            "grid",
            " × ".join(map(str, ls.shape))
            + " = "
            + f"{int(np.prod(ls.shape)):,} points; axes "
            + "; ".join(f"[{a[0]:.4g}, {a[-1]:.4g}]" for a in ls.axes),
        ),
        ("span", _span_text(ls.provenance.get("geometry"))),
        (
            "directions",
            f"{html.escape(str(dirs.get('kind')))}, normalization {html.escape(str(dirs.get('normalization')))}, seed {html.escape(str(dirs.get('seed')))}",
        ),
    ]
    rec = r.recipe
    if "test_accuracy" in rec:
        rows.insert(
            0,
            (
                "model",
                f"{html.escape(str(rec.get('name')))}: train accuracy {rec['train_accuracy']:.3f}, test accuracy {rec['test_accuracy']:.3f}",
            ),
        )
    return f"<h2>Summary</h2><div id='summary'>{_table(rows)}</div>"


def _interactive_section(data: ReportData) -> str:
    views = _interactive(data)
    if not views:
        return ""
    from .viewer import figure_html

    parts = ["<h2>Interactive views</h2><div class='grid'>"]
    for vid, caption, fig in views:
        div = figure_html(fig, vid, height=480)
        parts.append(f"<figure class='interactive'>{div}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _figures_section(data: ReportData) -> str:
    figs = _figures(data)
    if not figs:
        return ""
    return "<h2>Figures</h2>" + _figure_grid(figs)


def _figure_grid(figs: list[tuple[str, str, str]]) -> str:
    """A grid of static figures, each ``(id, caption, base64 PNG)``."""
    cells = "".join(
        f"<figure class='static' id='fig-{fid}'><img alt='{html.escape(fid)}' src='data:image/png;base64,{png}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for fid, caption, png in figs
    )
    return f"<div class='grid'>{cells}</div>"


def _curvature_section(data: ReportData) -> str:
    from .curvature import curvature_section

    return curvature_section(data)


def _provenance_section(data: ReportData) -> str:
    import plotly

    prov = data.landscape.provenance
    prov_rows = [
        ("command", f"<code>{html.escape(str(prov.get('command', 'n/a')))}</code>"),
        ("recipe", html.escape(str(prov.get("recipe", "n/a")))),
        (
            "parameters / samples",
            f"{prov.get('num_params', 'n/a'):,} / {prov.get('num_samples', 'n/a'):,}"
            if isinstance(prov.get("num_params"), int)
            else "n/a",
        ),
        ("device / dtype / path", f"{prov.get('device')} / {prov.get('dtype')} / {prov.get('batch_mode')}"),
        ("versions", html.escape(", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items()))),
        ("created", html.escape(str(prov.get("created", "n/a")))),
        ("timings (s)", html.escape(", ".join(f"{k} {v:.2f}" for k, v in data.result.timings.items()))),
        ("report built with", f"plotly {plotly.__version__}, in {time.perf_counter() - data.t0:.1f} s"),
    ]
    return f"<h2>Provenance</h2><div id='provenance'>{_table(prov_rows)}</div>"


def _raw_summary_section(data: ReportData) -> str:
    doc = data.result.to_dict() if (data.run_dir / "summary.json").exists() or data.result.landform_version else {}
    return f"<details><summary>summary.json</summary><pre>{html.escape(json.dumps(doc, indent=1))}</pre></details>"


def _viewer_section(data: ReportData) -> str:
    from .viewer import viewer_section

    return viewer_section(data)


from .progressive import progressive_section  # noqa: E402

#: The report's sections, in page order; each maps the run's :class:`ReportData` to HTML ("" to omit).
SECTIONS: list[Callable[[ReportData], str]] = [
    _warning_section,
    _summary_section,
    lambda data: progressive_section(data.landscape),
    _interactive_section,
    _viewer_section,
    _figures_section,
    _curvature_section,
    _provenance_section,
    _raw_summary_section,
]


def build_report(run_dir: str | Path, *, result: RunResult | None = None) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/figures/``) from the run's saved results.

    Parameters
    ----------
    run_dir : path
        A folder written by ``landform analyze`` (or any folder holding a landscape store in
        ``landscape/`` and optionally ``summary.json``).
    result : RunResult, optional
        The run's result when its ``summary.json`` is not written yet (:func:`landform.run.analyze` builds
        the report before writing the summary once, complete).

    Returns
    -------
    Path of the report.
    """
    from plotly.offline import get_plotlyjs

    from ..errors import StoreError
    from .viewer import viewer_script

    run_dir = Path(run_dir)
    store = run_dir / "landscape"
    if not (store / "landscape.json").exists():
        raise StoreError(f"{run_dir}: no landscape store in {store}; is this a landform run folder?")
    data = report_data(run_dir, result)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>landform report: {html.escape(run_dir.name)}</title><style>{_CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>{viewer_script()}</head><body>",
        f"<h1>landform report</h1><p class='sub'>{html.escape(str(run_dir))}</p>",
    ]
    parts += [section(data) for section in SECTIONS]
    parts.append("</body></html>")
    path = run_dir / "report.html"
    atomic_write_bytes(path, "\n".join(parts).encode())
    return path
