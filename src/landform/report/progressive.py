"""The report's section for a progressive landscape: data fraction, the standard-error map, and which
significant minima and saddles are certain. Reads the saved landscape only (``stderr`` and
``provenance["progressive"]``); recomputes nothing."""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from ..landscape import Landscape

__all__ = ["progressive_section"]


def _coords(ls: Landscape, flat: int) -> str:
    idx = np.unravel_index(int(flat), ls.shape)
    return "(" + ", ".join(f"{ls.axes[a][i]:.3g}" for a, i in enumerate(idx)) + ")"


def _stderr_png(ls: Landscape) -> str:
    import io

    from matplotlib.figure import Figure

    se = ls.stderr
    if se.ndim > 2:  # the largest error over the other axes
        se = se.max(axis=tuple(range(2, se.ndim)))
    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    ax = fig.add_subplot()
    if se.ndim == 1:
        ax.plot(ls.axes[0], se)
        ax.set_xlabel("axis 0")
        ax.set_ylabel("standard error")
    else:
        a0, a1 = ls.axes[0], ls.axes[1]
        im = ax.pcolormesh(a0, a1, se.T, shading="nearest", cmap="magma")
        fig.colorbar(im, ax=ax, label="standard error of the loss")
        ax.set_xlabel("axis 0")
        ax.set_ylabel("axis 1")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def progressive_section(ls: Landscape) -> str:
    """HTML of the progressive estimate's section ('' for a full-data landscape without standard errors)."""
    info: dict[str, Any] = ls.provenance.get("progressive") or {}
    if ls.stderr is None or not info:
        return ""
    top = info.get("summary") or {}
    rows = [
        ("data used", f"{100 * ls.data_fraction:.1f} % ({info.get('shards_used')} of {info.get('shards')} shards, "
                      f"seed {info.get('seed')})"),
        ("stopped", html.escape(f"{info.get('stopped')} (rtol {info.get('rtol')})")),
        ("sample-forwards", f"{info.get('sample_forwards', 0):,} of {info.get('full_data_sample_forwards', 0):,} "
                            "for the full data"),
        ("largest standard error", f"{float(np.nanmax(ls.stderr)):.3g} "
                                   f"(95 % interval: ± t95 × SE, t95 = {info.get('t95', float('nan')):.3g})"),
    ]
    if top:
        rows.append(("SMAD", f"{top['smad']:.6g} ± {top['smad_se']:.2g} (jackknife)"))
        if "smad_significant" in top:  # stores written before it existed lack it
            rows.append(("SMAD of the significant minima",
                         f"{top['smad_significant']:.6g} ± {top['smad_significant_se']:.2g} (jackknife; the stopping "
                         "rule reads this one)"))
    table = "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    items = []
    for kind, key in (("minimum", "minima"), ("saddle", "saddles")):
        for flat, cert in zip(top.get(key, []), top.get(f"{key}_certainty", []), strict=True):
            label = "certain" if cert == 1.0 else f"uncertain ({100 * cert:.0f} % of jackknife replicates)"
            items.append(f"<li>{kind} at {_coords(ls, flat)}: {label}</li>")
    listing = (
        f"<p>Significant minima (persistence ≥ {100 * info.get('min_persistence', 0):.0f} % of the loss range) and "
        "their saddles; certain = found within one grid step in every leave-one-shard-out landscape:</p>"
        f"<ul id='progressive-topology'>{''.join(items)}</ul>"
        if items else "<p>No topology summary (the landscape has non-finite values).</p>"
    )
    img = (
        f"<figure class='static' id='fig-stderr'><img alt='stderr' src='data:image/png;base64,{_stderr_png(ls)}'>"
        "<figcaption>Standard error of the loss at every grid point (between-shard spread, finite-population "
        "corrected).</figcaption></figure>"
    )
    return f"<h2>Progressive estimate</h2><div id='progressive'>{table}{listing}{img}</div>"
