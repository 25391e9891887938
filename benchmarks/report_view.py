"""Size and opening time of the HTML report of large n-D runs (the slice and volume viewer's budget).

For 41^4 and 21^5 grids of the seeded rough multi-well field of benchmarks/topology.py (thousands of minima),
saved as a landscape store: build the report, print its size with a breakdown (plotly.js, the embedded
slice/volume dataset, static PNGs, the rest) and what the viewer decimated, then open it in headless Debian
chromium and time, over --rounds loads (median and spread), from navigation start until every plotly view
on the page (slices, volume, trees, profile) has drawn, and the CPU time chromium spent (a figure that
load on the machine inflates far less than wall time), beside a floor page holding plotly.js and one small
plot, loaded interleaved with it.

    python benchmarks/report_view.py [--rounds 3] [--shapes 41^4,21^5]
"""

from __future__ import annotations

import argparse
import os
import re
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
DRAWN = """() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  if (plots.length === 0) return false;
  return plots.every(p => p._fullLayout && p.querySelector('svg.main-svg'));
}"""


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


def _cpu_since(before: dict[int, float]) -> float:
    """CPU seconds spent since ``before`` by the chromium processes alive now (a closed page's process that
    exits meanwhile would otherwise take its whole CPU time out of the sum)."""
    return sum(t - before.get(pid, 0.0) for pid, t in _chromium_cpu().items())


def open_times(paths: list[Path], rounds: int) -> tuple[dict[Path, list[tuple[float, float]]], int, list[str]]:
    """Per page: (wall seconds, chromium CPU seconds) of each load, loads of the pages interleaved."""
    from playwright.sync_api import sync_playwright

    out: dict[Path, list[tuple[float, float]]] = {p: [] for p in paths}
    errors: list[str] = []
    n_plots = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            for _ in range(rounds):
                for path in paths:
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    c0, t0 = _chromium_cpu(), time.perf_counter()
                    page.goto(path.resolve().as_uri(), wait_until="load", timeout=300_000)
                    page.wait_for_function(DRAWN, timeout=300_000, polling=20)
                    out[path].append((time.perf_counter() - t0, _cpu_since(c0)))
                    if path == paths[0]:
                        n_plots = page.eval_on_selector_all(".js-plotly-plot", "els => els.length")
                    page.close()
        finally:
            browser.close()
    return out, n_plots, errors


def _floor_page(folder: Path) -> Path:
    """plotly.js and one small plot: what any report with interactive views costs to open."""
    from plotly.offline import get_plotlyjs

    path = folder / "floor.html"
    path.write_text(
        f"<html><head><script>{get_plotlyjs()}</script></head><body><div id='a'></div>"
        "<script>Plotly.newPlot('a', [{y: [1, 3, 2]}]);</script></body></html>"
    )
    return path


def _summary(xs: list[tuple[float, float]]) -> str:
    wall = [w for w, _ in xs]
    cpu = [c for _, c in xs]
    return (
        f"wall median {statistics.median(wall):.2f} s (min {min(wall):.2f}, max {max(wall):.2f}), "
        f"chromium CPU median {statistics.median(cpu):.2f} s (min {min(cpu):.2f}, max {max(cpu):.2f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shapes", default="41^4,21^5")
    args = ap.parse_args()
    print(f"machine: {machine()}; field: benchmarks/topology.py field(shape, seed=0)")
    for spec in args.shapes.split(","):
        side, dims = (int(x) for x in spec.split("^"))
        shape = (side,) * dims
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            v = field(shape)
            axes = [np.linspace(-1, 1, s) for s in shape]
            Landscape(v, axes, {"kind": "random", "seed": 0}, float(v[(side // 2,) * dims]), {}).save(run / "landscape")
            t0 = time.perf_counter()
            path = build_report(run)
            t_build = time.perf_counter() - t0
            text = path.read_text()
            size = len(text.encode())
            plotly_js = max(
                (len(m) for m in re.findall(r"<script type='text/javascript'>(.*?)</script>", text, re.S)), default=0
            )
            data = sum(len(m) for m in re.findall(r"<script type='application/json'[^>]*>(.*?)</script>", text, re.S))
            pngs = sum(len(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]*)", text))
            note = re.search(r"<p class='sub' id='viewer-note'>(.*?)</p>", text, re.S)
            floor = _floor_page(Path(tmp))
            times, n_plots, errors = open_times([path, floor], args.rounds)
            print(f"\n{spec} ({v.size:,} points): report {size / 1e6:.2f} MB, built in {t_build:.1f} s")
            print(
                f"  plotly.js {plotly_js / 1e6:.2f} MB, viewer dataset {data / 1e6:.2f} MB, PNGs {pngs / 1e6:.2f} MB, "
                f"rest {(size - plotly_js - data - pngs) / 1e6:.2f} MB"
            )
            print(f"  viewer: {note.group(1) if note else 'n/a'}")
            print(
                f"  open in chromium until its {n_plots} plotly views drew ({args.rounds} loads): {_summary(times[path])}"
            )
            print(f"  floor (plotly.js + one small plot, interleaved): {_summary(times[floor])}")
            print(
                f"  console errors: {len(errors)}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            for e in errors[:5]:
                print("   ", e)


if __name__ == "__main__":
    main()
