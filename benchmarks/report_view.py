"""Size and opening time of the HTML report of large n-D runs (the slice and volume viewer's budget).

For 41^4 and 21^5 grids of the seeded rough multi-well field of benchmarks/topology.py (thousands of minima),
saved as a landscape store: build the report, print its size with a breakdown (plotly.js, the embedded
slice/volume dataset, embedded figure JSON, static PNGs, the rest) and what the viewer decimated, then open it
in headless Debian chromium (a fresh browser per load, viewport 1280 x 900) and time, from navigation start:

* load: the load event (the end of its handlers);
* open: the load event and every plotly view that is in the viewport at the load event drawn (the views
  below it are drawn lazily: when scrolled near, or one per idle period after the load event);
* all: every view on the page drawn, without scrolling;
* the CPU time chromium spent until then (a figure that load on the machine inflates far less than wall time).

A view's drawing time is the page's ``performance.mark("lf-drawn <id>")`` written by the viewer's script; a
plotly plot without one (a page built by another version) counts from the first poll that found it drawn.
The reports are loaded interleaved with a floor page (plotly.js and one small plot) and with any ``--compare``
pages (e.g. a report built by an earlier landform), --rounds times each; medians with min and max.

    python benchmarks/report_view.py [--rounds 5] [--shapes 41^4,21^5] [--compare old-41^4.html ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import machine  # noqa: E402
from topology import field  # noqa: E402

from landform import Landscape  # noqa: E402
from landform.report import build_report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VIEWS = "Array.from(document.querySelectorAll('[data-lf-view], .js-plotly-plot'))"
# ids of the views that intersect the viewport now
VISIBLE = f"""() => {VIEWS}.filter(e => {{ const r = e.getBoundingClientRect();
  return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; }}).map(e => e.id)"""
# true once every view is drawn; records when a poll first saw a view drawn that has no mark of its own
ALL_DRAWN = f"""() => {{ window.__seen = window.__seen || {{}};
  return {VIEWS}.every(e => {{ const ok = !!(e._fullLayout && e.querySelector('svg.main-svg'));
    if (ok && !(e.id in window.__seen)) window.__seen[e.id] = performance.now(); return ok; }}); }}"""
TIMES = """() => { const out = {}; const seen = window.__seen || {};
  for (const id in seen) out[id] = seen[id];
  for (const m of performance.getEntriesByType('mark'))
    if (m.name.startsWith('lf-drawn ')) { const id = m.name.slice(9); if (!(id in out) || m.startTime < out[id]) out[id] = m.startTime; }
  return [out, performance.getEntriesByType('navigation')[0].loadEventEnd]; }"""


def _chromium_cpu() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each chromium process below this one (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                raw = (d / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2 :].split()
            stats[int(d.name)] = [name, *rest]
            children.setdefault(int(rest[1]), []).append(int(d.name))
    out, stack = {}, [os.getpid()]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        st = stats.get(pid)
        if st and "chrom" in st[0].lower():
            out[pid] = (int(st[12]) + int(st[13])) / tick  # utime, stime
    return out


def load_once(sync_api, path: Path, errors: list[str]) -> dict[str, float]:
    """One load of ``path`` in a fresh headless chromium: seconds to load, open and all (see the module doc)."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            c0 = _chromium_cpu()
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=300_000)
            visible = page.evaluate(VISIBLE)
            page.wait_for_function(ALL_DRAWN, timeout=300_000, polling=20)
            cpu = sum(t - c0.get(pid, 0.0) for pid, t in _chromium_cpu().items())
            drawn, load = page.evaluate(TIMES)
            n_views = page.evaluate(f"() => {VIEWS}.length")
        finally:
            browser.close()
    missing = [v for v in visible if v not in drawn]
    if missing:
        raise RuntimeError(f"{path}: no drawing time for the visible views {missing}")
    return {
        "load": load / 1e3,
        "open": max([load, *(drawn[v] for v in visible)]) / 1e3,
        "all": max([load, *drawn.values()]) / 1e3,
        "cpu": cpu,
        "views": float(n_views),
        "visible": float(len(visible)),
    }


def _summary(xs: list[dict[str, float]], key: str) -> str:
    v = [x[key] for x in xs]
    return f"{statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})"


def _floor_page(folder: Path) -> Path:
    """plotly.js and one small plot: what any report with interactive views costs to open."""
    from plotly.offline import get_plotlyjs

    path = folder / "floor.html"
    path.write_text(
        f"<html><head><script>{get_plotlyjs()}</script></head><body><div id='a'></div>"
        "<script>Plotly.newPlot('a', [{y: [1, 3, 2]}]);</script></body></html>"
    )
    return path


def _breakdown(text: str) -> str:
    size = len(text.encode())
    scripts = re.findall(r"<script type='text/javascript'>(.*?)</script>", text, re.S)
    plotly_js = max((len(m) for m in scripts), default=0)
    jsons = re.findall(r"<script type='application/json' id='([^']*)'>(.*?)</script>", text, re.S)
    data = sum(len(m) for i, m in jsons if not i.endswith("-fig"))
    figs = sum(len(m) for i, m in jsons if i.endswith("-fig"))
    pngs = sum(len(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]*)", text))
    rest = size - plotly_js - data - figs - pngs
    return (
        f"plotly.js {plotly_js / 1e6:.2f} MB, viewer dataset {data / 1e6:.2f} MB, figures' JSON {figs / 1e6:.2f} MB, "
        f"PNGs {pngs / 1e6:.2f} MB, rest {rest / 1e6:.2f} MB"
    )


def main() -> None:
    from playwright import sync_api

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="41^4,21^5")
    ap.add_argument("--compare", nargs="*", default=[], help="other report.html files to load interleaved")
    ap.add_argument("--keep", help="copy the built reports into this folder")
    args = ap.parse_args()
    print(f"machine: {machine()}; field: benchmarks/topology.py field(shape, seed=0)")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        pages: dict[str, Path] = {}
        for spec in args.shapes.split(","):
            side, dims = (int(x) for x in spec.split("^"))
            shape = (side,) * dims
            run = Path(tmp) / spec.replace("^", "_")
            v = field(shape)
            axes = [np.linspace(-1, 1, s) for s in shape]
            Landscape(v, axes, {"kind": "random", "seed": 0}, float(v[(side // 2,) * dims]), {}).save(run / "landscape")
            t0 = time.perf_counter()
            path = build_report(run)
            t_build = time.perf_counter() - t0
            text = path.read_text()
            note = re.search(r"<p class='sub' id='viewer-note'>(.*?)</p>", text, re.S)
            print(f"\n{spec} ({v.size:,} points): report {len(text.encode()) / 1e6:.2f} MB, built in {t_build:.1f} s")
            print(f"  {_breakdown(text)}")
            print(f"  viewer: {note.group(1) if note else 'n/a'}")
            pages[spec] = path
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(args.keep) / f"report-{spec.replace('^', '_')}.html")
        for other in args.compare:
            pages[other] = Path(other)
            print(f"\n{other}: {len(Path(other).read_bytes()) / 1e6:.2f} MB; {_breakdown(Path(other).read_text())}")
        pages["floor"] = _floor_page(Path(tmp))
        times: dict[str, list[dict[str, float]]] = {k: [] for k in pages}
        errors: dict[str, list[str]] = {k: [] for k in pages}
        for _ in range(args.rounds):
            for name, path in pages.items():  # interleaved: one load of each page per round
                times[name].append(load_once(sync_api, path, errors[name]))
        print(f"\nopened {args.rounds} times each, interleaved; median (min-max) from navigation start:")
        for name, xs in times.items():
            views = f"{int(xs[0]['visible'])} of {int(xs[0]['views'])} views in sight at load"
            print(
                f"  {name}: load {_summary(xs, 'load')}, open {_summary(xs, 'open')}, all drawn {_summary(xs, 'all')}, "
                f"chromium CPU {_summary(xs, 'cpu')}; {views}; console errors {len(errors[name])}"
            )
            for e in errors[name][:3]:
                print("   ", e)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
