"""The report of a ``landform track`` run, built from its saved results only (no torch).

``build_track_report(run_dir)`` reads ``summary.json``, ``trajectory.npz`` and each checkpoint's shared
landscape store, and writes ``report.html`` (self-contained: PNGs as data URIs, plotly.js embedded once) and
``figures/*.png``: metrics against step, a slider over the checkpoints' landscapes with the trajectory drawn on
them (the report's slice viewer: :func:`landform.report.viewer.frame_viewer_html`), and the trajectory's true
loss beside the loss at its projection.
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

__all__ = ["build_track_report", "checkpoint_viewer_html"]


def _landscapes(run_dir: Path, rows: list[dict[str, Any]]):
    out = []
    for r in rows:
        matches = sorted((run_dir / "checkpoints").glob(f"{int(r['index']):03d}-*/shared"))
        out.append(load_landscape(matches[0]) if matches and (matches[0] / "landscape.json").exists() else None)
    return out


def checkpoint_viewer_html(landscapes: list[Any], traj: Any, names: list[str], div_id: str = "track-slider") -> str:
    """The checkpoint slider: the viewer's frame component (:func:`landform.report.viewer.frame_viewer_html`)
    with one frame per checkpoint, its 2-D landscape along the shared directions (the centre slice of an n-D
    one) and the whole trajectory drawn relative to that checkpoint (which sits at the origin, a red cross).

    Checkpoints without a landscape, or whose axes differ from the last one's, are left out. Every frame is
    embedded (float32), on one colour scale. Returns "" when no checkpoint has a 2-D or larger landscape.
    """
    import numpy as np

    from .viewer import frame_viewer_html

    keep = [k for k, ls in enumerate(landscapes) if ls is not None and ls.ndim >= 2]
    if not keep:
        return ""
    ref = landscapes[keep[-1]]
    keep = [
        k
        for k in keep
        if landscapes[k].shape[:2] == ref.shape[:2]
        and all(np.allclose(landscapes[k].axes[i], ref.axes[i]) for i in range(2))
    ]
    frames = []
    for k in keep:
        ls = landscapes[k]
        frames.append(ls.values if ls.ndim == 2 else ls.values[(slice(None), slice(None)) + tuple(n // 2 for n in ls.shape[2:])])
    markers = []
    for k in keep:
        rel = traj.coords[:, :2] - traj.coords[k, :2]
        path = [
            {"x": float(x), "y": float(y), "text": str(t), "color": "orange", "symbol": "circle", "group": "trajectory"}
            for (x, y), t in zip(rel, traj.names, strict=True)
        ]
        markers.append([*path, {"x": 0.0, "y": 0.0, "text": names[k], "color": "red", "symbol": "x"}])
    pca = traj.directions.get("kind") == "pca"
    stack = np.stack(frames)
    return frame_viewer_html(
        stack,
        ref.axes[0],
        ref.axes[1],
        div_id,
        labels=[names[k] for k in keep],
        markers=markers,
        names=("PCA direction 1", "PCA direction 2") if pca else ("direction 1", "direction 2"),
        frame_name="checkpoint",
        start=len(keep) - 1,
        max_values=max(stack.size, 8),
    )


def _span_text(summary: dict) -> str:
    """The shared grid's half-widths, and in relative units the fraction of ||theta|| they stand for."""
    span = summary.get("span")
    text = ", ".join(f"{x:.4g}" for x in span) if isinstance(span, list) else str(span)
    geo = summary.get("geometry")
    if summary.get("span_units") == "relative" and geo:
        rel = ", ".join(f"{x:.4g}" for x in geo.get("relative_span", []))
        text += f" (= {rel} x ||theta|| of the last checkpoint, ||theta|| = {geo.get('theta0_norm', float('nan')):.4g})"
    return text


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
    from .viewer import viewer_script

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
    slider = checkpoint_viewer_html(lss, traj, [r["name"] for r in rows])
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
        + f"; span {html.escape(_span_text(summary))}, resolution {summary.get('resolution')}</p>",
        f"<table><tr>{head}</tr>{body}</table>",
        "<h2>Metrics over training</h2>",
    ]
    for caption, data in pngs:
        parts.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    if slider:
        parts.append("<h2>Landscapes over training</h2><p>Each frame: one checkpoint's landscape along the shared "
                     "directions, centred at that checkpoint (red cross), with the whole trajectory drawn on it; "
                     "the slider moves through the checkpoints (the report's slice viewer, one panel).</p>")
        parts.append(viewer_script() + slider)
    parts.append("</body></html>")
    path = run_dir / "report.html"
    atomic_write_bytes(path, "\n".join(parts).encode())
    return path
