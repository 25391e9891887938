"""The report of a ``landform track`` run, built from its saved results only (no torch).

``build_track_report(run_dir)`` reads ``summary.json``, ``trajectory.npz`` and each checkpoint's shared
landscape store, and writes ``report.html`` (self-contained: PNGs as data URIs, plotly.js embedded once) and
``figures/*.png``: metrics against step, a slider over the checkpoints' contours with the trajectory drawn on
them, and the trajectory's true loss beside the loss at its projection.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..projection import load_trajectory
from ..store import atomic_write_bytes, load_landscape

__all__ = ["build_track_report", "slider_figure"]


def _landscapes(run_dir: Path, rows: list[dict[str, Any]]):
    out = []
    for r in rows:
        matches = sorted((run_dir / "checkpoints").glob(f"{int(r['index']):03d}-*/shared"))
        out.append(load_landscape(matches[0]) if matches and (matches[0] / "landscape.json").exists() else None)
    return out


def slider_figure(landscapes: list[Any], traj: Any, names: list[str]):
    """A plotly figure with one frame per checkpoint: its 2-D contour along the shared directions and the
    whole trajectory drawn relative to that checkpoint (which sits at the origin)."""
    import plotly.graph_objects as go

    frames, steps = [], []
    for k, (ls, name) in enumerate(zip(landscapes, names, strict=True)):
        if ls is None or ls.ndim < 2:
            continue
        v = ls.values if ls.ndim == 2 else ls.values[(slice(None), slice(None)) + tuple(s // 2 for s in ls.shape[2:])]
        rel = traj.coords[:, :2] - traj.coords[k, :2]
        data = [
            go.Contour(x=ls.axes[0], y=ls.axes[1], z=v.T, colorscale="Viridis", colorbar={"title": "loss"}, ncontours=30),
            go.Scatter(
                x=rel[:, 0],
                y=rel[:, 1],
                mode="lines+markers",
                line={"color": "white", "width": 2},
                marker={"size": 6, "color": "orange", "line": {"color": "black", "width": 0.5}},
                text=list(traj.names),
                name="trajectory",
            ),
            go.Scatter(x=[0.0], y=[0.0], mode="markers", marker={"symbol": "x", "size": 12, "color": "red"}, name=name),
        ]
        frames.append(go.Frame(data=data, name=str(k)))
        steps.append(
            {
                "args": [[str(k)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
                "label": name,
                "method": "animate",
            }
        )
    if not frames:
        return None
    fig = go.Figure(data=frames[-1].data, frames=frames)
    fig.update_layout(
        sliders=[{"active": len(frames) - 1, "steps": steps, "currentvalue": {"prefix": "checkpoint: "}}],
        xaxis_title="PCA direction 1" if traj.directions.get("kind") == "pca" else "direction 1",
        yaxis_title="PCA direction 2" if traj.directions.get("kind") == "pca" else "direction 2",
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        height=560,
    )
    return fig


def build_track_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for a folder written by :func:`landform.track.track_checkpoints`.

    Returns
    -------
    Path of the report.
    """
    from matplotlib.figure import Figure
    from plotly.offline import get_plotlyjs

    from .. import plot as P
    from . import _CSS, _fmt, _png

    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").exists() or not (run_dir / "trajectory.npz").exists():
        raise StoreError(f"{run_dir}: no summary.json/trajectory.npz; is it a finished 'landform track' run folder?")
    summary = json.loads((run_dir / "summary.json").read_text())
    traj = load_trajectory(run_dir / "trajectory.npz")
    rows = summary["rows"]
    figdir = run_dir / "figures"
    figdir.mkdir(exist_ok=True)
    pngs: list[tuple[str, str]] = []

    def add(fid: str, caption: str, fig) -> None:
        data = _png(fig)
        atomic_write_bytes(figdir / f"{fid}.png", base64.b64decode(data))
        pngs.append((caption, data))

    metrics = [m for m in ("loss", "smad", "trace", "lambda_max", "n_minima", "persistence_range", "bottleneck_prev", "own_smad") if any(r.get(m) is not None for r in rows)]
    cols = 3
    fig = Figure(figsize=(4.0 * cols, 3.0 * (-(-len(metrics) // cols))), layout="constrained")
    for i, m in enumerate(metrics):
        P.plot_track_metric(summary, m, fig.add_subplot(-(-len(metrics) // cols), cols, i + 1))
    add("metrics", "Metrics against step. SMAD: full data, with the standard deviation over data subsamples; trace: "
        "with its Hutch++ standard error.", fig)
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    P.plot_trajectory_loss(traj, fig.add_subplot())
    add("trajectory_loss", "The true loss of each checkpoint beside the loss at its projection onto the shared "
        "plane (the value the surface shows); dotted: the fraction of its distance from the final weights that "
        "the plane does not show.", fig)
    lss = _landscapes(run_dir, rows)
    if lss and lss[-1] is not None and lss[-1].ndim == 2:
        fig = Figure(figsize=(6.0, 4.6), layout="constrained")
        ax = P.plot_contour(lss[-1], fig.add_subplot())
        P.plot_trajectory(traj, ax, landscape=lss[-1], origin=traj.coords[-1])
        add("trajectory_contour", "The trajectory projected onto the shared plane, over the final checkpoint's "
            "landscape.", fig)
    slider = slider_figure(lss, traj, [r["name"] for r in rows])
    keys = ["loss", "smad", "smad_std", "n_minima", "persistence_range", "trace", "lambda_max", "bottleneck_prev"]
    head = "".join(f"<th>{k}</th>" for k in ["checkpoint", "step", *keys])
    body = "".join(
        "<tr>" + f"<td>{html.escape(r['name'])}</td><td>{_fmt(r.get('step'))}</td>"
        + "".join(f"<td>{_fmt(r.get(k), '.4g')}</td>" for k in keys) + "</tr>"
        for r in rows
    )
    ev = summary.get("directions", {}).get("explained_variance_ratio")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>landform track</title>",
        f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        "<h1>landform track</h1>",
        f"<p class='sub'>{len(rows)} checkpoints; shared directions: {html.escape(str(summary['directions'].get('kind')))}"
        + (f", explained variance {', '.join(f'{x:.3f}' for x in ev)}" if ev else "")
        + f"; span {html.escape(str(summary.get('span')))}, resolution {summary.get('resolution')}</p>",
        f"<table><tr>{head}</tr>{body}</table>",
        "<h2>Metrics over training</h2>",
    ]
    for caption, data in pngs:
        parts.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    if slider is not None:
        parts.append("<h2>Landscapes over training</h2><p>Each frame: one checkpoint's landscape along the shared "
                     "directions, centred at that checkpoint (red cross), with the whole trajectory drawn on it.</p>")
        parts.append(slider.to_html(full_html=False, include_plotlyjs=False, div_id="track-slider"))
    parts.append("</body></html>")
    path = run_dir / "report.html"
    atomic_write_bytes(path, "\n".join(parts).encode())
    return path
