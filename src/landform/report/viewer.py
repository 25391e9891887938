"""Interactive views of n-D landscapes for the HTML report: slices, volumes, basins.

Everything here is a function of saved arrays (values, axes, a merge tree with its basin labels); nothing is
recomputed but the cancellation of low-persistence pairs that picks the coloured basins.

* :func:`slice_data` embeds a (decimated) n-D array, its basin labels and overlay markers once per page;
* :func:`slice_viewer_html` draws 2-D slices of it in a grid of panels (a corner plot for a landscape) with a
  slider per axis that moves the slices, a shared colour scale, the markers that lie in each slice, the
  current coordinates, and a loss/basin colour switch;
* :func:`volume_viewer_html` draws isosurfaces of a 3-D slice, with sliders for the other axes;
* :func:`frame_viewer_html` is the same slice component for a stack of 2-D frames (e.g. checkpoints) with one
  slider over the frames and markers per frame;
* :func:`basin_figures` draws the merge tree, the barcode and the profile in the basins' colours with hover
  text naming each minimum, its saddle, persistence and basin size;
* :func:`report_section` puts them together for :func:`landform.report.build_report`.

The page needs plotly.js (the report embeds it once) and :func:`viewer_script` once.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..plot.slices import OTHER_COLOR, BasinColors, axis_pairs, basin_colors, choose_log, plot_corner, slice_anchor
from ..topology import MergeTree, simplify
from ._viewer_js import VIEWER_JS

__all__ = [
    "SliceData",
    "slice_data",
    "viewer_script",
    "slice_viewer_html",
    "volume_viewer_html",
    "frame_viewer_html",
    "figure_html",
    "basin_figures",
    "minimum_names",
    "report_section",
    "DEFAULT_MAX_VALUES",
]

#: Most values embedded for the slice and volume views of one report (float32: 4 bytes each, base64 4/3).
DEFAULT_MAX_VALUES = 250_000


@dataclass(frozen=True, eq=False)
class SliceData:
    """What a page embeds for the slice and volume views.

    Attributes
    ----------
    spec : dict
        The JSON payload (decimated values as base64 float32, basin labels, axes, markers, colour scale).
    index : tuple of numpy.ndarray
        For each axis, the full-grid indices that were kept.
    stride : int
        Every ``stride``-th grid point was kept along each axis (1: nothing decimated).
    full_shape : tuple of int
    note : str
        One sentence saying what was embedded and what was decimated.
    """

    spec: dict[str, Any]
    index: tuple[np.ndarray, ...]
    stride: int
    full_shape: tuple[int, ...]
    note: str


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def _stride(shape: Sequence[int], anchor: Sequence[int], max_values: int) -> int:
    s = 1
    while True:
        count = int(np.prod([len(range(a % s, n, s)) for a, n in zip(anchor, shape, strict=True)]))
        if count <= max_values or all(n <= 2 for n in shape):
            return s
        s += 1


def _f(x: float) -> str:
    return f"{x:.4g}"


def slice_data(
    values: np.ndarray,
    axes: Sequence[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    anchor: Sequence[int] | None = None,
    markers: Sequence[dict[str, Any]] = (),
    basins: BasinColors | None = None,
    basin_names: Sequence[str] | None = None,
    ticks: Sequence[Sequence[str] | None] | None = None,
    log: bool | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> SliceData:
    """Prepare an n-D array for the slice and volume views, decimated to at most ``max_values`` points.

    Parameters
    ----------
    values : numpy.ndarray, n-D (n >= 2)
        ``values[a, b, ...]`` at ``(axes[0][a], axes[1][b], ...)``; NaN is kept (drawn as a gap).
    axes : sequence of 1-D arrays
    names : axis names (default ``"axis 1"``, ...)
    anchor : grid index, optional
        Where the slices start (default: the lowest value). The decimated grid always passes through it.
    markers : sequence of dict
        Points to overlay: ``{"at": coordinates (n floats), "kind": "minimum" | "saddle" | "point",
        "color": str, "text": str}`` with optionally ``"index"`` (n grid indices, an entry None for "every
        slice"), ``"symbol"`` (a plotly marker symbol) and ``"group"`` (markers of one group that lie in a slice
        are joined by a line, in their order, e.g. a training trajectory); without ``index`` a marker belongs
        to the grid point nearest to ``at``. A marker is drawn in
        a slice when its index along every off-plane axis is the slider's (after decimation: the nearest kept
        index, ties to the higher one).
    basins : BasinColors, optional
        Basin labels (same shape as ``values``) for the basin colouring.
    basin_names : names of the coloured basins (default ``"basin 1"``, ...)
    ticks : per-axis tick labels (None per axis for numbers), e.g. checkpoint names along a frame axis
    log : bool, optional
        Logarithmic colour scale (default :func:`landform.plot.slices.choose_log`).
    max_values : int
        Most values to embed: every ``s``-th point is kept along each axis, the smallest ``s`` that fits.

    Returns
    -------
    SliceData

    Examples
    --------
    >>> v = np.arange(27.0).reshape(3, 3, 3) + 1
    >>> d = slice_data(v, [np.arange(3.0)] * 3, max_values=8)
    >>> d.stride, d.spec["shape"], d.spec["anchor"]
    (2, [2, 2, 2], [0, 0, 0])
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.ndim
    if n < 2:
        raise InputError(f"values: the slice viewer needs 2 or more dimensions, got {n}-D.")
    axes = [np.asarray(a, dtype=np.float64).ravel() for a in axes]
    if len(axes) != n or tuple(len(a) for a in axes) != values.shape:
        raise InputError(
            f"axes: expected {n} coordinate arrays of lengths {values.shape}, got lengths {[len(a) for a in axes]}."
        )
    if int(max_values) < 2**n:
        raise InputError(f"max_values: expected at least 2**n = {2**n}, got {max_values}.")
    names = [str(x) for x in names] if names is not None else [f"axis {k + 1}" for k in range(n)]
    if len(names) != n:
        raise InputError(f"names: expected {n} axis names, got {len(names)}.")
    anchor = slice_anchor(values, anchor)
    s = _stride(values.shape, anchor, int(max_values))
    index = tuple(np.arange(a % s, m, s) for a, m in zip(anchor, values.shape, strict=True))
    sub = values[np.ix_(*index)]
    finite = sub[np.isfinite(sub)]
    if log is None:
        log = choose_log(values)
    full_finite = values[np.isfinite(values)]
    vmin, vmax = (float(full_finite.min()), float(full_finite.max())) if full_finite.size else (0.0, 1.0)
    if log and vmin <= 0:
        raise InputError("log: a logarithmic colour scale needs positive values; pass log=False.")
    labels = None
    dtype = "u1"
    if basins is not None:
        if basins.labels.shape != values.shape:
            raise InputError(f"basins: labels of shape {basins.labels.shape} do not match values {values.shape}.")
        lab = basins.labels[np.ix_(*index)]
        dtype = "u1" if basins.minima.size < 255 else "u2"
        labels = _b64(lab.astype(np.uint8 if dtype == "u1" else np.uint16))
    bnames = list(basin_names) if basin_names is not None else None
    if basins is not None and bnames is None:
        bnames = [f"basin {k + 1}" for k in range(basins.minima.size)]

    def dec(k: int, full_idx: int) -> int:
        return int(np.clip(np.floor((full_idx - index[k][0]) / s + 0.5), 0, len(index[k]) - 1))

    out_markers = []
    for m in markers:
        at = [float(x) for x in m["at"]]
        if len(at) != n:
            raise InputError(f"markers: every marker needs {n} coordinates in 'at', got {len(at)}.")
        full = m.get("index")
        if full is None:
            full = [int(np.argmin(np.abs(axes[k] - at[k]))) for k in range(n)]
        idx = [None if q is None else dec(k, int(q)) for k, q in enumerate(full)]
        out_markers.append(
            {
                "at": at,
                "idx": idx,
                "kind": str(m.get("kind", "point")),
                "color": str(m.get("color", "#d62728")),
                "text": str(m.get("text", "")),
                **({"symbol": str(m["symbol"])} if "symbol" in m else {}),
                **({"group": str(m["group"])} if m.get("group") else {}),
            }
        )
    tick_lists = None
    if ticks is not None:
        tick_lists = [None if t is None else [str(t[i]) for i in index[k]] for k, t in enumerate(ticks)]
    spec = {
        "shape": [len(ix) for ix in index],
        "axes": [axes[k][index[k]].tolist() for k in range(n)],
        "names": names,
        "ticks": tick_lists,
        "values": _b64(sub.astype(np.float32)),
        "basins": labels,
        "basins_dtype": dtype,
        "basin_colors": list(basins.colors) if basins is not None else [],
        "basin_names": bnames or [],
        "log": bool(log),
        "vmin": vmin,
        "vmax": vmax,
        "anchor": [dec(k, anchor[k]) for k in range(n)],
        "markers": out_markers,
    }
    full = " × ".join(map(str, values.shape))
    if s == 1:
        note = f"All {values.size:,} values ({full}) are embedded for the slice and volume views (float32)."
    else:
        kept = " × ".join(str(len(ix)) for ix in index)
        note = (
            f"Decimated for the slice and volume views: every {s}{'nd' if s == 2 else 'th'} grid point along each "
            f"axis is embedded ({kept} = {sub.size:,} of {full} = {values.size:,} values, float32, on the sub-grid "
            "through the starting point); a critical point is drawn in the slices through the embedded grid point "
            "nearest to it. The merge tree, basins and every number are computed on the full grid."
        )
    del finite
    return SliceData(spec, index, s, tuple(values.shape), note)


def viewer_script() -> str:
    """The viewer's JavaScript as a ``<script>`` element (include once per page, after plotly.js)."""
    return f"<script type='text/javascript'>{VIEWER_JS}</script>"


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _data_script(data: SliceData, data_id: str) -> str:
    return f"<script type='application/json' id='{html.escape(data_id)}'>{_json(data.spec)}</script>"


def _slider_rows(spec: dict[str, Any], axes_with_sliders: Sequence[int], div_id: str) -> str:
    rows = []
    for k in axes_with_sliders:
        name = html.escape(spec["names"][k])
        rows.append(
            f"<label class='lf-row'><span class='lf-name'>{name}</span>"
            f"<input type='range' class='lf-slider' id='{div_id}-s{k}' data-axis='{k}' min='0' "
            f"max='{spec['shape'][k] - 1}' step='1' value='{spec['anchor'][k]}' aria-label='{name}'>"
            f"<span class='lf-val' data-axis='{k}'></span></label>"
        )
    return "<div class='lf-sliders'>" + "".join(rows) + "</div>"


_STYLE = (
    "<style>.lf-viewer{background:white;border:1px solid #e5e5e5;border-radius:6px;padding:.5em;margin:.6em 0}"
    ".lf-sliders{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.2em 1.2em}"
    ".lf-row{display:flex;align-items:center;gap:.5em;font-size:.9em}.lf-name{min-width:9em;color:#444}"
    ".lf-row input{flex:1}.lf-val{min-width:5em;font-variant-numeric:tabular-nums}"
    ".lf-coords{font-size:.85em;color:#333;margin:.3em 0;font-variant-numeric:tabular-nums}"
    ".lf-wait{color:#999;font-size:.85em;padding:1em}.lf-modes{font-size:.9em;margin:.2em 0}.lf-swatch{display:inline-block;width:.9em;height:.9em;"
    "border-radius:2px;margin:0 .3em -.1em .9em}</style>"
)


def _mount(div_id: str, lazy: bool = False) -> str:
    args = json.dumps(div_id) + (", true" if lazy else "")
    return f"<script type='text/javascript'>LFViewer.mount({args});</script>"


_WAIT = "<div class='lf-wait'>drawn when scrolled into view (or once the page is idle)</div>"


def figure_html(fig: Any, div_id: str, *, height: int = 440, lazy: bool = True) -> str:
    """HTML of a plotly figure embedded as JSON and drawn by the viewer's script, lazily by default.

    A lazy figure is drawn when it comes near the viewport or, after the page's load event, when the page is
    idle (one view per idle period, in page order), so a page of many figures opens with only those in sight
    drawn. Needs plotly.js and :func:`viewer_script` on the page, before it.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    div_id : str
        Id of the figure's element (plotly's graph div once drawn; ``data-drawn`` is ``"1"`` then).
    height : int
        Height in pixels.
    lazy : bool
        False to draw it while the page loads.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> page = figure_html(go.Figure(go.Scatter(y=[1, 3, 2])), "f")
    >>> "LFViewer.figure" in page, "id='f-fig'" in page
    (True, True)
    """
    body = fig.to_json().replace("</", "<\\/")
    did = html.escape(div_id)
    call = f"LFViewer.figure({json.dumps(div_id)});" + ("" if lazy else f"LFViewer.drawOne({json.dumps(div_id)});")
    return (
        f"<script type='application/json' id='{did}-fig'>{body}</script>"
        f"<div class='lf-fig' id='{did}' data-lf-view='1' style='width:100%;height:{int(height)}px'>{_WAIT}</div>"
        f"<script type='text/javascript'>{call}</script>"
    )


def slice_viewer_html(
    data: SliceData,
    div_id: str,
    *,
    panels: Sequence[tuple[int, int]] | None = None,
    embed_data: bool = True,
    data_id: str | None = None,
    height: int | None = None,
) -> str:
    """HTML of the slice viewer: 2-D slices of ``data`` in a grid of panels with a slider per axis.

    Parameters
    ----------
    data : SliceData
    div_id : str
        Id of the component's element (the plot is ``#{div_id} .lf-plot``; its state, the current grid
        index on the embedded grid, is in ``data-state``).
    panels : pairs (i, j), optional
        Default: every pair ``i < j`` as a corner plot (pair ``(i, j)`` in row ``j - 1``, column ``i``);
        otherwise the given pairs in one row.
    embed_data : bool
        Write ``data`` into the page (False when another component already did, under ``data_id``).
    data_id : str, optional
        Id of the embedded dataset (default ``"{div_id}-data"``).
    height : int, optional
        Plot height in pixels.

    Examples
    --------
    >>> d = slice_data(np.random.default_rng(0).random((4, 5, 6)) + 1, [np.arange(4.0), np.arange(5.0), np.arange(6.0)])
    >>> page = slice_viewer_html(d, "v")
    >>> page.count("class='lf-slider'")
    3
    """
    n = len(data.spec["shape"])
    data_id = data_id or f"{div_id}-data"
    if panels is None:
        panels = axis_pairs(n)
        cells = [(j - 1, i) for i, j in panels]
        grid = (max(n - 1, 1), max(n - 1, 1))
    else:
        panels = [(int(i), int(j)) for i, j in panels]
        for i, j in panels:
            if not (0 <= i < n and 0 <= j < n and i != j):
                raise InputError(f"panels: expected pairs of distinct axes in [0, {n}), got ({i}, {j}).")
        cells = [(0, c) for c in range(len(panels))]
        grid = (1, len(panels))
    slider_axes = [k for k in range(n) if any(k not in p for p in panels)]
    spec = {"type": "slices", "data": data_id, "panels": [list(p) for p in panels], "cells": cells, "grid": grid}
    h = height or int(min(260 * grid[0], 900) if grid[1] > 1 else 440)
    modes = ""
    if data.spec["basins"] is not None:
        sw = "".join(
            f"<span class='lf-swatch' style='background:{c}'></span>{html.escape(nm)}"
            for c, nm in zip(data.spec["basin_colors"], data.spec["basin_names"], strict=True)
        )
        modes = (
            f"<div class='lf-modes'>colour by <label><input type='radio' class='lf-mode' name='{div_id}-mode' "
            f"value='loss' checked> loss</label> <label><input type='radio' class='lf-mode' name='{div_id}-mode' "
            f"value='basin'> basin</label> {sw}</div>"
        )
    parts = [
        _STYLE,
        _data_script(data, data_id) if embed_data else "",
        f"<div class='lf-viewer lf-slices' id='{html.escape(div_id)}' data-spec='{html.escape(_json(spec))}'>",
        modes,
        f"<div class='lf-coords'></div><div class='lf-plot' id='{html.escape(div_id)}-plot' data-lf-view='1' "
        f"style='width:100%;height:{h}px'></div>",
        _slider_rows(data.spec, slider_axes, div_id),
        "</div>",
        _mount(div_id),
    ]
    return "".join(parts)


def _iso_levels(data: SliceData, count: int) -> tuple[float, float]:
    v = np.frombuffer(base64.b64decode(data.spec["values"]), dtype=np.float32).astype(np.float64)
    v = v[np.isfinite(v)]
    if data.spec["log"]:
        v = np.log10(v)
    lo, hi = (float(np.quantile(v, 0.05)), float(np.quantile(v, 0.5))) if v.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1e-9
    return lo, hi


def volume_viewer_html(
    data: SliceData,
    div_id: str,
    *,
    vaxes: tuple[int, int, int] = (0, 1, 2),
    count: int = 3,
    embed_data: bool = True,
    data_id: str | None = None,
    height: int = 520,
    lazy: bool = True,
) -> tuple[str, list[float]]:
    """HTML of the volume view: isosurfaces of the 3-D slice along ``vaxes``, a slider per other axis.

    The isosurfaces sit at ``count`` loss levels evenly spaced (in the colour scale's units, log10 for a log
    scale) from the 5 % to the 50 % quantile of the embedded values; minima (diamonds, in their basin's
    colour) and saddles (dots) that lie in the slice are marked. A 3-D scene costs a WebGL context and about
    a second of a slow machine's CPU to draw, so by default (``lazy``) the view is drawn when it comes near the
    viewport, when one of its sliders moves, or once the page is idle after its load event (see
    :func:`figure_html`); ``data-drawn`` on ``#{div_id}`` says whether it was.

    Returns
    -------
    (html, levels)
        The component and its loss levels.

    Examples
    --------
    >>> g = np.meshgrid(*[np.linspace(-1, 1, 6)] * 3, indexing="ij")
    >>> d = slice_data(sum(x**2 for x in g) + 1, [np.linspace(-1, 1, 6)] * 3)
    >>> page, levels = volume_viewer_html(d, "vol")
    >>> len(levels), "input type='range'" in page
    (3, False)
    """
    n = len(data.spec["shape"])
    vaxes = tuple(int(k) for k in vaxes)
    if n < 3 or len(set(vaxes)) != 3 or not all(0 <= k < n for k in vaxes):
        raise InputError(
            f"vaxes: expected three distinct axes of a landscape with 3 or more axes, got {vaxes} ({n}-D)."
        )
    data_id = data_id or f"{div_id}-data"
    lo, hi = _iso_levels(data, count)
    spec = {"type": "volume", "data": data_id, "vaxes": list(vaxes), "isomin": lo, "isomax": hi, "count": int(count)}
    levels = list(np.linspace(lo, hi, count))
    if data.spec["log"]:
        levels = [float(10**x) for x in levels]
    sliders = [k for k in range(n) if k not in vaxes]
    parts = [
        _STYLE,
        _data_script(data, data_id) if embed_data else "",
        f"<div class='lf-viewer lf-volume' id='{html.escape(div_id)}' data-spec='{html.escape(_json(spec))}'>",
        f"<div class='lf-coords'></div><div class='lf-plot' id='{html.escape(div_id)}-plot' data-lf-view='1' "
        f"style='width:100%;height:{height}px'>{_WAIT if lazy else ''}</div>",
        _slider_rows(data.spec, sliders, div_id) if sliders else "",
        "</div>",
        _mount(div_id, lazy),
    ]
    return "".join(parts), [float(x) for x in levels]


def frame_viewer_html(
    frames: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    div_id: str,
    *,
    labels: Sequence[str] | None = None,
    markers: Sequence[Sequence[dict[str, Any]]] | None = None,
    names: tuple[str, str] = ("axis 1", "axis 2"),
    frame_name: str = "frame",
    log: bool | None = None,
    start: int = 0,
    max_values: int = DEFAULT_MAX_VALUES,
) -> str:
    """A stack of 2-D arrays with one slider over the frames (e.g. the landscape at each checkpoint).

    The same component as :func:`slice_viewer_html`: the frames are a 3-D array whose first axis is the
    slider and whose panel shows axes 1 (x) and 2 (y). One colour scale serves every frame.

    Parameters
    ----------
    frames : numpy.ndarray, shape (F, len(x), len(y))
        ``frames[f, a, b]`` at ``(x[a], y[b])`` in frame ``f``.
    x, y : 1-D arrays
    div_id : str
    labels : F frame names (default ``"0"``, ``"1"``, ...)
    markers : for each frame, markers ``{"x", "y", "text", "color", "symbol", "group"}`` drawn in that frame
        only; a frame's markers of one ``group`` are joined by a line (a trajectory)
    names : x and y axis names
    frame_name : the slider's name
    log : bool, optional
    start : the frame shown first
    max_values : as in :func:`slice_data`

    Examples
    --------
    >>> f = np.random.default_rng(0).random((4, 5, 6)) + 1
    >>> page = frame_viewer_html(f, np.arange(5.0), np.arange(6.0), "ckpt", labels=["e1", "e2", "e3", "e4"])
    >>> page.count("class='lf-slider'")
    1
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3:
        raise InputError(f"frames: expected a (frames, nx, ny) array, got shape {frames.shape}.")
    nf = frames.shape[0]
    labels = [str(s) for s in labels] if labels is not None else [str(i) for i in range(nf)]
    if len(labels) != nf:
        raise InputError(f"labels: expected {nf} frame labels, got {len(labels)}.")
    if not 0 <= int(start) < nf:
        raise InputError(f"start: expected a frame index in [0, {nf}), got {start}.")
    out = []
    for f, ms in enumerate(markers or []):
        for m in ms:
            out.append(
                {
                    "at": [float(f), float(m["x"]), float(m["y"])],
                    "index": [f, None, None],
                    "kind": m.get("kind", "point"),
                    "color": m.get("color", "#d62728"),
                    "text": m.get("text", ""),
                    "symbol": m.get("symbol", "x"),
                    "group": m.get("group"),
                }
            )
    anchor = (int(start), *np.unravel_index(int(np.nanargmin(frames[int(start)])), frames.shape[1:]))
    data = slice_data(
        frames,
        [np.arange(nf, dtype=np.float64), np.asarray(x, float), np.asarray(y, float)],
        names=[frame_name, *names],
        anchor=anchor,
        markers=out,
        ticks=[labels, None, None],
        log=log,
        max_values=max_values,
    )
    if data.stride > 1:
        raise InputError(
            f"frames: {frames.size:,} values exceed max_values={max_values:,}; pass fewer frames or raise it."
        )
    return slice_viewer_html(data, div_id, panels=[(1, 2)], height=460)


# ---------------------------------------------------------------------------------------------- basins


def minimum_names(tree: MergeTree) -> dict[int, str]:
    """``"min k"`` for each minimum of ``tree`` (flat index), numbered by increasing loss from 1.

    Examples
    --------
    >>> from landform.topology import merge_tree
    >>> minimum_names(merge_tree([3.0, 1.0, 2.0, 0.0, 4.0]))
    {3: 'min 1', 1: 'min 2'}
    """
    return {int(m): f"min {k + 1}" for k, m in enumerate(tree.minima)}


def _coords(tree: MergeTree, axes: Sequence[np.ndarray], flat: int) -> str:
    idx = np.unravel_index(int(flat), tree.values.shape)
    return "(" + ", ".join(_f(float(a[i])) for a, i in zip(axes, idx, strict=True)) + ")"


def _branches(tree: MergeTree) -> dict[int, int]:
    """The branch minimum (elder minimum of its subtree) of every node."""
    flat = tree.values.ravel()
    children: dict[int, list[int]] = {int(n): [] for n in tree.nodes}
    for nd, p in zip(tree.nodes, tree.parent, strict=True):
        if p >= 0:
            children[int(p)].append(int(nd))
    branch: dict[int, int] = {}
    for v in sorted(children, key=lambda u: (flat[u], u)):
        branch[v] = v if not children[v] else min((branch[c] for c in children[v]), key=lambda u: (flat[u], u))
    return branch


def _minimum_text(
    tree: MergeTree, axes: Sequence[np.ndarray], names: dict[int, str], sizes: dict[int, int]
) -> dict[int, str]:
    flat = tree.values.ravel()
    out = {}
    N = flat.size
    for m, d in zip(tree.minima, tree.death, strict=True):
        m, d = int(m), int(d)
        head = f"<b>{names[m]}</b>: loss {_f(flat[m])} at {_coords(tree, axes, m)}"
        if d >= 0:
            sad = f"saddle: loss {_f(flat[d])} at {_coords(tree, axes, d)}<br>persistence {_f(flat[d] - flat[m])}"
        else:
            sad = "no saddle (the global minimum)<br>persistence ∞"
        out[m] = f"{head}<br>{sad}<br>basin: {sizes[m]:,} points ({100.0 * sizes[m] / N:.1f} %)"
    return out


def basin_figures(
    tree: MergeTree,
    basins: BasinColors,
    axes: Sequence[np.ndarray],
    *,
    max_levels: int = 48,
) -> list[tuple[str, str, Any]]:
    """Merge tree, barcode and profile (plotly) in the basins' colours, with hover text per minimum.

    Parameters
    ----------
    tree : MergeTree
        The tree to draw (simplify a noisy one first); its basin labels give the basin sizes.
    basins : BasinColors
        The coloured basins (their minima must be minima of ``tree``; others are drawn grey).
    axes : the grid's coordinate arrays (to name where the minima and saddles are)
    max_levels : levels per profile polygon

    Returns
    -------
    list of (id, caption, plotly Figure)

    Examples
    --------
    >>> from landform.topology import merge_tree
    >>> t = merge_tree([3.0, 1.0, 2.0, 0.0, 4.0])
    >>> [fid for fid, _, _ in basin_figures(t, basin_colors(t), [np.arange(5.0)])]
    ['basin_tree', 'basin_barcode', 'basin_profile']
    """
    import plotly.graph_objects as go

    from ..plot.figures import _tree_layout
    from ..topology import landscape_profile

    flat = tree.values.ravel()
    names = minimum_names(tree)
    sizes = {int(m): int(s) for m, s in zip(tree.minima, tree.basin_sizes(), strict=True)}
    text = _minimum_text(tree, axes, names, sizes)
    color = {int(m): basins.color_of(int(m)) for m in tree.minima}
    branch = _branches(tree)
    parent = {int(nd): int(p) for nd, p in zip(tree.nodes, tree.parent, strict=True)}
    xs = _tree_layout(tree)
    fmax = float(flat.max())

    # merge tree: one trace per branch (a minimum's arcs up to its death saddle), points every few % for hover
    tree_fig = go.Figure()
    segs: dict[int, tuple[list[float | None], list[float | None]]] = {int(m): ([], []) for m in tree.minima}
    for nd, p in parent.items():
        top = float(flat[p]) if p >= 0 else fmax
        ys = np.linspace(float(flat[nd]), top, 12)
        bx, by = segs[branch[nd]]
        bx.extend([xs[nd]] * len(ys) + [None])
        by.extend(list(ys) + [None])
        if p >= 0:  # the horizontal join drawn in the colour of the branch that dies there
            hx = np.linspace(xs[nd], xs[p], 6)
            bx.extend(list(hx) + [None])
            by.extend([top] * len(hx) + [None])
    for m in tree.minima[::-1]:
        m = int(m)
        bx, by = segs[m]
        tree_fig.add_trace(
            go.Scatter(
                x=bx,
                y=by,
                mode="lines",
                line={"color": color[m], "width": 3 if color[m] != OTHER_COLOR else 1.5},
                name=names[m],
                text=[text[m]] * len(bx),
                hovertemplate="%{text}<extra></extra>",
                showlegend=False,
            )
        )
    tree_fig.add_trace(
        go.Scatter(
            x=[xs[int(m)] for m in tree.minima],
            y=flat[tree.minima],
            mode="markers",
            marker={"symbol": "triangle-down", "size": 10, "color": [color[int(m)] for m in tree.minima]},
            text=[text[int(m)] for m in tree.minima],
            hovertemplate="%{text}<extra></extra>",
            name="minima",
            showlegend=False,
        )
    )
    if tree.saddles.size:
        tree_fig.add_trace(
            go.Scatter(
                x=[xs[int(s)] for s in tree.saddles],
                y=flat[tree.saddles],
                mode="markers",
                marker={"size": 7, "color": "white", "line": {"color": "black", "width": 1}},
                text=[f"saddle: loss {_f(flat[int(s)])} at {_coords(tree, axes, int(s))}" for s in tree.saddles],
                hovertemplate="%{text}<extra></extra>",
                name="saddles",
                showlegend=False,
            )
        )
    tree_fig.update_layout(
        title="merge tree (hover a branch)",
        yaxis_title="loss",
        xaxis={"showticklabels": False, "zeroline": False, "showgrid": False},
        margin={"t": 36},
        hovermode="closest",
    )

    # barcode: one bar per minimum, longest first
    pers = np.where(tree.death >= 0, flat[np.maximum(tree.death, 0)] - flat[tree.minima], np.inf)
    order = np.argsort(-pers, kind="stable")
    bar_fig = go.Figure()
    for row, k in enumerate(order):
        m = int(tree.minima[k])
        d = int(tree.death[k])
        end = float(flat[d]) if d >= 0 else fmax
        bx = list(np.linspace(float(flat[m]), end, 16))
        bar_fig.add_trace(
            go.Scatter(
                x=bx,
                y=[-row] * len(bx),
                mode="lines",
                line={"color": color[m], "width": 7},
                name=names[m],
                text=[text[m]] * len(bx),
                hovertemplate="%{text}<extra></extra>",
                showlegend=False,
            )
        )
    bar_fig.update_layout(
        title="persistence barcode (the essential bar drawn to max f)",
        xaxis_title="loss",
        yaxis={"showticklabels": False, "zeroline": False},
        margin={"t": 36},
        hovermode="closest",
    )

    # profile: polygons in the colour of their branch minimum
    prof = landscape_profile(tree, max_levels=max_levels)
    prof_fig = go.Figure()
    for poly in prof.polygons:
        b = branch[int(poly.node)]
        if poly.kind == "minimum":
            hover = text[b]
        else:
            hover = f"saddle: loss {_f(poly.y_low)} at {_coords(tree, axes, poly.node)}<br>{poly.size:,} points below its parent's level, on the branch of {names[b]}"
        prof_fig.add_trace(
            go.Scatter(
                x=poly.x,
                y=poly.y,
                fill="toself",
                mode="lines",
                line={"color": "black", "width": 0.5},
                fillcolor=color[b],
                opacity=0.9 if poly.kind == "minimum" else 0.55,
                name=names[b] if poly.kind == "minimum" else "saddle",
                text=hover,
                hoveron="fills",
                hoverinfo="text",
                showlegend=False,
            )
        )
    prof_fig.update_layout(
        title="landscape profile (basins coloured)",
        xaxis_title="points below the level",
        yaxis_title="loss",
        margin={"t": 36},
    )
    return [
        (
            "basin_tree",
            "Merge tree; each branch (a minimum up to the saddle where it dies) in its basin's colour.",
            tree_fig,
        ),
        ("basin_barcode", "Persistence barcode; bar colours are the basins' colours.", bar_fig),
        ("basin_profile", "Landscape profile; every polygon in the colour of the branch it belongs to.", prof_fig),
    ]


# ---------------------------------------------------------------------------------------------- report


def _shown_tree(tree: MergeTree, max_minima: int) -> tuple[MergeTree, float]:
    flat = tree.values.ravel()
    pers = np.where(tree.death >= 0, flat[np.maximum(tree.death, 0)] - flat[tree.minima], np.inf)
    if pers.size <= max_minima:
        return tree, 0.0
    thr = float(np.sort(pers)[::-1][max_minima - 1])
    return simplify(tree, thr), thr


def viewer_section(data: Any) -> str:
    """The report section (an entry of :data:`landform.report.SECTIONS`) for a complete grid landscape.

    Reads the run's landscape, its saved merge tree and the tree as the report draws it; writes the static
    corner plot to ``figures/slices.png``. Uses :data:`DEFAULT_MAX_VALUES` as the embedding budget.
    """
    import base64 as b64

    from ..results import atomic_write_bytes
    from . import _png

    ls = data.landscape
    if data.tree is None or not data.finite or not hasattr(ls, "axes"):
        return ""
    names = [f"d{k + 1}" for k in range(ls.ndim)]
    section, static = report_section(
        ls.values, ls.axes, data.tree, shown=data.shown, names=names, max_values=DEFAULT_MAX_VALUES, script=False
    )
    parts = [section]
    if static:
        parts.append("<div class='grid'>")
        figdir = data.run_dir / "figures"
        figdir.mkdir(exist_ok=True)
        for fid, caption, fig in static:
            png = _png(fig)
            atomic_write_bytes(figdir / f"{fid}.png", b64.b64decode(png))
            parts.append(
                f"<figure class='static' id='fig-{fid}'><img alt='{html.escape(fid)}' "
                f"src='data:image/png;base64,{png}'><figcaption>{html.escape(caption)} "
                f"(figures/{fid}.png)</figcaption></figure>"
            )
        parts.append("</div>")
    return "".join(parts)


def report_section(
    values: np.ndarray,
    axes: Sequence[np.ndarray],
    tree: MergeTree,
    *,
    shown: MergeTree | None = None,
    names: Sequence[str] | None = None,
    anchor: Sequence[int] | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
    max_basins: int = 8,
    max_minima: int = 60,
    script: bool = True,
) -> tuple[str, list[tuple[str, str, Any]]]:
    """The report's "slices, volume and basins" section and its static corner figure.

    The slices are drawn while the page loads; the volume, merge tree, barcode and profile lazily (when they
    come near the viewport, or one per idle period after the load event: :func:`figure_html`). A 1-D
    landscape gets the basin figures only.

    Parameters
    ----------
    values, axes : the landscape (complete and finite)
    tree : MergeTree of ``values`` (the saved one)
    shown : the tree as the report draws it (default: ``tree`` with its pairs beyond the ``max_minima`` most
        persistent cancelled)
    names : axis names
    anchor : where the slices start (default: the global minimum)
    max_values : values embedded for the slice and volume views (decimated beyond)
    max_basins : basins coloured
    max_minima : minima drawn (the less persistent pairs are cancelled first)
    script : bool
        Start with :func:`viewer_script` (False when the page already has it).

    Returns
    -------
    (html, static)
        The section's HTML (needs plotly.js on the page) and ``(id, caption, matplotlib Figure)`` of the
        static corner plot (None for a 2-D landscape).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.ndim
    if shown is None:
        shown, thr = _shown_tree(tree, max_minima)
    else:
        thr = -1.0 if shown.n_minima < tree.n_minima else 0.0
    basins = basin_colors(shown, max_basins=max_basins)
    mnames = minimum_names(shown)
    flat = values.ravel()
    names = list(names) if names is not None else [f"axis {k + 1}" for k in range(n)]
    axes = [np.asarray(a, dtype=np.float64) for a in axes]
    sizes = {int(m): int(s) for m, s in zip(shown.minima, shown.basin_sizes(), strict=True)}
    text = _minimum_text(shown, axes, mnames, sizes)
    markers = []
    for m in shown.minima:
        idx = [int(i) for i in np.unravel_index(int(m), values.shape)]
        markers.append(
            {
                "at": [float(axes[k][idx[k]]) for k in range(n)],
                "index": idx,
                "kind": "minimum",
                "color": basins.color_of(int(m)),
                "text": text[int(m)],
            }
        )
    for s in shown.saddles:
        idx = [int(i) for i in np.unravel_index(int(s), values.shape)]
        markers.append(
            {
                "at": [float(axes[k][idx[k]]) for k in range(n)],
                "index": idx,
                "kind": "saddle",
                "color": "#ffffff",
                "text": f"saddle: loss {_f(flat[int(s)])} at {_coords(shown, axes, int(s))}",
            }
        )
    bnames = [mnames[int(m)] + (" (global)" if k == 0 else "") for k, m in enumerate(basins.minima)]
    simp = ""
    if thr > 0:
        simp = f" Pairs with persistence below {thr:.3g} are cancelled first ({shown.n_minima} of {tree.n_minima} minima drawn)."
    elif thr < 0:
        simp = f" The least persistent pairs are cancelled first ({shown.n_minima} of {tree.n_minima} minima drawn)."
    bsizes = basins.sizes()
    colour_note = (
        f"The {basins.minima.size} most persistent minima have a colour; the basin of each is the set of points "
        "whose steepest descent ends at it once the less persistent pairs are cancelled (a cancelled minimum's basin "
        f"joins the elder one that absorbed it): {', '.join(f'{nm} {100.0 * b / values.size:.1f} %' for nm, b in zip(bnames, bsizes, strict=True))} of the grid."
    )
    static: list[tuple[str, str, Any]] = []
    if n == 1:
        parts = ["<h2 id='viewer'>Basins</h2>", f"<p class='sub' id='viewer-note'>{html.escape(simp.strip())}</p>"]
    else:
        data = slice_data(
            values,
            axes,
            names=names,
            anchor=anchor,
            markers=markers,
            basins=basins,
            basin_names=bnames,
            max_values=max_values,
        )
        parts = ["<h2 id='viewer'>Slices, volume and basins</h2>"]
        parts.append(f"<p class='sub' id='viewer-note'>{html.escape(data.note)}{html.escape(simp)}</p>")
    if n >= 3:
        at = "the global minimum" if anchor is None else "the chosen point"
        parts.append(
            f"<h3>Slices through {at}</h3><p class='sub'>Every pair of axes (column = x axis, row = y axis), one "
            f"colour scale ({'logarithmic' if data.spec['log'] else 'linear'}) for all panels; a slider per axis moves "
            "the point the slices pass through (or click a panel). Minima (triangles, in their basin's colour) and "
            "saddles (white dots) are drawn in the slices they lie in; the cross is the current point.</p>"
        )
        parts.append(slice_viewer_html(data, "lf-slices", data_id="lf-data"))
        vol, levels = volume_viewer_html(data, "lf-volume", embed_data=False, data_id="lf-data")
        rest = f"; the sliders move the other {n - 3} axes" if n > 3 else ""
        parts.append(
            f"<h3>Volume</h3><p class='sub'>Isosurfaces of the loss at {', '.join(_f(x) for x in levels)} over "
            f"{names[0]}, {names[1]}, {names[2]}{rest}; drag to rotate. Minima are diamonds in their basin's colour, "
            "saddles dots. Drawn when scrolled into view, or once the page is idle.</p>"
        )
        parts.append(vol)
        fig = plot_corner(
            values, axes, anchor=anchor, minima=shown.minima, saddles=shown.saddles, basins=basins, names=names
        )
        static.append(("slices", f"Slices through {at} on one colour scale; basin outlines in their colours.", fig))
    elif n == 2:
        parts.append(slice_viewer_html(data, "lf-slices", data_id="lf-data"))
    parts.append(f"<h3>Basins</h3><p class='sub'>{html.escape(colour_note)}</p><div class='grid'>")
    for fid, caption, fig in basin_figures(shown, basins, axes):
        div = figure_html(fig, fid, height=440)
        parts.append(f"<figure class='interactive'>{div}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div>")
    return (viewer_script() if script else "") + "\n".join(parts), static
