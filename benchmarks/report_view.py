"""Size and opening time of the HTML report of large n-D runs (the slice and volume viewer's budget).

For 41^4 and 21^5 grids of the seeded rough multi-well field of benchmarks/topology.py (thousands of minima),
saved as a landscape store: build the report, print its size with a breakdown (plotly.js, the embedded
slice/volume dataset, static PNGs, the rest) and what the viewer decimated, then open it in headless Debian
chromium and time, over --rounds loads (median and spread), from navigation start until every plotly view
on the page (slices, volume, trees, profile) has drawn.

    python benchmarks/report_view.py [--rounds 3] [--shapes 41^4,21^5]
"""

from __future__ import annotations

import argparse
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


def open_times(path: Path, rounds: int) -> tuple[list[float], int, list[str]]:
    from playwright.sync_api import sync_playwright

    times, errors = [], []
    n_plots = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            for _ in range(rounds):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                t0 = time.perf_counter()
                page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
                page.wait_for_function(DRAWN, timeout=120_000, polling=20)
                times.append(time.perf_counter() - t0)
                n_plots = page.eval_on_selector_all(".js-plotly-plot", "els => els.length")
                page.close()
        finally:
            browser.close()
    return times, n_plots, errors


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
            times, n_plots, errors = open_times(path, args.rounds)
            print(f"\n{spec} ({v.size:,} points): report {size / 1e6:.2f} MB, built in {t_build:.1f} s")
            print(
                f"  plotly.js {plotly_js / 1e6:.2f} MB, viewer dataset {data / 1e6:.2f} MB, PNGs {pngs / 1e6:.2f} MB, "
                f"rest {(size - plotly_js - data - pngs) / 1e6:.2f} MB"
            )
            print(f"  viewer: {note.group(1) if note else 'n/a'}")
            print(
                f"  open in chromium until {n_plots} plotly views drew: median {statistics.median(times):.2f} s "
                f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} loads); console errors: {len(errors)}"
            )
            for e in errors[:5]:
                print("   ", e)


if __name__ == "__main__":
    main()
