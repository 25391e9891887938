"""The HTML report: built from saved results, self-contained, rendered in a real browser (Debian chromium
driven by Playwright), checked for console errors and for every figure, with a screenshot saved."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from landform import Landscape, load_landscape
from landform.report import build_report

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _run_dir(tmp_path: Path, *, complete: bool = True, ndim: int = 2) -> Path:
    shape = {1: (31,), 2: (25, 19), 3: (9, 9, 9)}[ndim]
    axes = tuple(np.linspace(-1, 1, s) for s in shape)
    grids = np.meshgrid(*axes, indexing="ij")
    # asymmetric along every axis, so a mirrored or transposed drawing shows (see the orientation tests)
    v = sum(g**2 for g in grids) + 0.2 * np.sin(6 * grids[0]) + 0.3 * grids[-1] + 1.0
    ev = None
    if not complete:
        ev = np.ones(shape, bool)
        ev.ravel()[200:] = False
        v = np.where(ev, v, np.nan)
    ls = Landscape(
        v, axes, {"kind": "hessian", "eigenvalues": [4.0, 2.0], "seed": 0}, 1.0, {"command": "landform analyze"}, ev
    )
    run = tmp_path / ("run" if complete else "partial")
    ls.save(run / "landscape")
    if complete:
        summary = {
            "topology": {"smad": 0.01, "n_minima": 2, "n_saddles": 1, "persistence_range": 0.3},
            "hessian": {"trace": 12.0, "trace_stderr": 0.5, "trace_n_hvp": 30, "top_eigenvalues": [4.0, 2.0]},
            "timings": {"total_s": 1.0},
        }
        (run / "summary.json").write_text(json.dumps(summary))
        g = np.linspace(-1, 5, 200)
        np.savez(run / "density.npz", grid=g, density=np.exp(-((g - 1) ** 2)))
    return run


class _Refs(HTMLParser):
    """Every URL-valued attribute of every tag (any quoting), and url(...) in style attributes and blocks."""

    ATTRS = {"src", "href", "action", "data", "poster", "srcset", "formaction", "xlink:href", "background"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.ATTRS and value:
                self.urls.append(value.strip())
            if name == "style" and value:
                self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", value)

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)
            self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", data)


def external_refs(text: str) -> list[str]:
    parser = _Refs()
    parser.feed(text)
    return [u for u in parser.urls if re.match(r"(?i)^(https?:|ftp:|//)", u)]


def test_external_refs_finds_every_quoting_style():
    page = (
        "<img src='https://a.example/x.png'><script src=http://b.example/p.js></script>"
        '<link href="//c.example/s.css"><div style="background: url(\'https://d.example/i.png\')"></div>'
        "<style>@import 'https://e.example/f.css';</style><a href='#top'>ok</a><img src='data:image/png;base64,AA'>"
    )
    assert len(external_refs(page)) == 5


def test_report_is_self_contained(tmp_path):
    run = _run_dir(tmp_path)
    path = build_report(run)
    text = path.read_text()
    assert external_refs(text) == []
    assert not re.search(r"(?i)<script[^>]*\bsrc\s*=", text)  # plotly.js is inlined, not loaded
    for fid in ("contour", "surface", "merge_tree", "barcode", "diagram", "profile", "eigenvalues", "density"):
        assert f"id='fig-{fid}'" in text, fid
        assert (run / "figures" / f"{fid}.png").stat().st_size > 1000
    assert "0.01" in text and "12 ± 0.5" in text


def _asym(x, y):
    return (x - 0.7) ** 2 + 1.5 * (y + 0.4) ** 2 + 0.4 * x


def _plot_box(img: np.ndarray, lut: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns (r0, r1, c0, c1) of the widest block of colour-map pixels: the contour's axes (the
    colour bar is a narrow block of its own)."""
    d = np.min(((img[:, :, None, :] - lut[None, None]) ** 2).sum(-1), axis=2)
    on = d < 0.004
    cols = on.mean(0) > 0.3
    runs, start = [], None
    for c, flag in enumerate([*cols, False]):
        if flag and start is None:
            start = c
        elif not flag and start is not None:
            runs.append((c - start, start, c))
            start = None
    _, c0, c1 = max(runs)
    rows = np.flatnonzero(on[:, c0:c1].mean(1) > 0.3)
    return int(rows[0]), int(rows[-1]) + 1, c0, c1


def test_report_contour_image_is_not_mirrored(tmp_path):
    from matplotlib import colormaps
    from matplotlib.image import imread

    x, y = np.linspace(-2.0, 1.5, 31), np.linspace(-1.0, 2.0, 21)
    X, Y = np.meshgrid(x, y, indexing="ij")
    v = _asym(X, Y)
    run = tmp_path / "asym"
    Landscape(v, (x, y), {"kind": "random"}, float(_asym(0.0, 0.0))).save(run / "landscape")
    build_report(run)
    img = imread(run / "figures" / "contour.png")[..., :3].astype(float)
    lut = colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    r0, r1, c0, c1 = _plot_box(img, lut)
    for px, py in [(-1.6, 1.2), (-1.6, -0.8), (1.2, -0.8), (-0.5, 0.6), (0.6, 1.0), (-1.0, -0.4)]:
        c = int(round(c0 + (px - x[0]) / (x[-1] - x[0]) * (c1 - c0 - 1)))
        r = int(round(r1 - 1 - (py - y[0]) / (y[-1] - y[0]) * (r1 - r0 - 1)))
        patch = img[r - 2 : r + 3, c - 2 : c + 3].reshape(-1, 3)
        got = np.median(np.argmin(((patch[:, None] - lut[None]) ** 2).sum(-1), axis=1)) / 255
        want = (_asym(px, py) - v.min()) / (v.max() - v.min())
        assert got == pytest.approx(want, abs=0.07), (px, py)


def test_report_of_interrupted_run_says_what_is_missing(tmp_path):
    run = _run_dir(tmp_path, complete=False)
    text = build_report(run).read_text()
    assert "This run is incomplete" in text and "275 of 475 grid points" in text


def _browser():
    from conftest import require_chromium

    return require_chromium()


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_report_renders_in_chromium(tmp_path, ndim):
    sync_api = _browser()
    run = _run_dir(tmp_path, ndim=ndim)
    path = build_report(run)
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            fetched = []

            def route(r):
                fetched.append(r.request.url)
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    r.abort()

            page.route("**/*", route)
            page.goto(path.resolve().as_uri(), timeout=120_000)  # plotly.js alone parses in 10 s on a loaded machine
            page.wait_for_load_state("load")
            # views out of sight are drawn lazily, one per idle period after the load event, with no scrolling
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('[data-lf-view]')).every(e => e._fullLayout)",
                timeout=60_000,
            )
            imgs = page.eval_on_selector_all(
                "figure.static img", "els => els.map(e => [e.alt, e.naturalWidth, e.naturalHeight])"
            )
            assert len(imgs) >= 6
            for alt, w, h in imgs:
                assert w > 100 and h > 100, alt
            plots = page.eval_on_selector_all(
                ".js-plotly-plot",
                "els => els.map(e => [e.id, e.querySelectorAll('svg, canvas').length, e.getBoundingClientRect().height])",
            )
            # one landscape profile (the viewer's basin-coloured one; the loss-coloured duplicate is gone)
            viewer = {"lf-slices-plot", "basin_tree", "basin_barcode", "basin_profile"}  # landform.report.viewer
            expected = {
                1: {"basin_tree", "basin_barcode", "basin_profile"},
                2: {"surface3d", "contour_interactive"} | viewer,
                3: {"lf-volume-plot"} | viewer,
            }[ndim]
            assert sorted(p[0] for p in plots) == sorted(expected)
            for pid, n_children, height in plots:
                assert n_children > 0 and height > 200, pid
            assert page.inner_text("#summary").count("SMAD") == 1
            if ndim == 2:  # what plotly drew: z[j][i] is the loss at (x[i], y[j])
                ls = load_landscape(run / "landscape")
                for pid in ("contour_interactive", "surface3d"):
                    x, y, z = page.eval_on_selector(
                        f"#{pid}",
                        "el => { const d = el._fullData[0]; const a = v => Array.from(v, r => "
                        "(r && r.length !== undefined) ? Array.from(r) : r); return [a(d.x), a(d.y), a(d.z)]; }",
                    )
                    np.testing.assert_allclose(x, ls.axes[0])
                    np.testing.assert_allclose(y, ls.axes[1])
                    np.testing.assert_allclose(np.asarray(z), ls.values.T, rtol=1e-12)
            external = [u for u in fetched if not u.startswith(("file:", "data:"))]
            assert external == [], f"the report fetched {external}"
            shots = Path(os.environ.get("LANDFORM_SCREENSHOTS", tmp_path))
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"report-{ndim}d.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [], errors


def test_cli_report_command(tmp_path, capsys):
    from landform.cli import main

    run = _run_dir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    shutil.rmtree(run / "landscape")
    assert main(["report", str(run)]) == 1
