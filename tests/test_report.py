"""The HTML report: built from saved results, self-contained, rendered in a real browser (Debian chromium
driven by Playwright), checked for console errors and for every figure, with a screenshot saved."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from landform import Landscape
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
    shape = (25, 19) if ndim == 2 else (9, 9, 9)
    axes = tuple(np.linspace(-1, 1, s) for s in shape)
    grids = np.meshgrid(*axes, indexing="ij")
    v = sum(g**2 for g in grids) + 0.2 * np.sin(6 * grids[0]) + 1.0
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


def test_report_is_self_contained(tmp_path):
    run = _run_dir(tmp_path)
    path = build_report(run)
    text = path.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") or 'src="http' not in text
    assert "<script src=" not in text and "cdn.plot.ly" not in text.split("</script>", 1)[1]
    for fid in ("contour", "surface", "merge_tree", "barcode", "diagram", "profile", "eigenvalues", "density"):
        assert f"id='fig-{fid}'" in text, fid
        assert (run / "figures" / f"{fid}.png").stat().st_size > 1000
    assert "0.01" in text and "12 ± 0.5" in text


def test_report_of_interrupted_run_says_what_is_missing(tmp_path):
    run = _run_dir(tmp_path, complete=False)
    text = build_report(run).read_text()
    assert "This run is incomplete" in text and "275 of 475 grid points" in text


def _browser():
    if not os.path.exists(CHROMIUM):
        msg = f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (apt-get install chromium)"
        print("\n" + "!" * 80 + "\n" + msg + "\n" + "!" * 80)
        pytest.skip(msg)
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api


@pytest.mark.parametrize("ndim", [2, 3])
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
            page.wait_for_timeout(800)
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
            viewer = {"lf-slices-plot", "basin_tree", "basin_barcode", "basin_profile"}  # landform.report.viewer
            expected = (
                {"surface3d", "contour_interactive", "profile_interactive"} | viewer
                if ndim == 2
                else {"profile_interactive", "lf-volume-plot"} | viewer
            )
            assert {p[0] for p in plots} == expected
            for pid, n_children, height in plots:
                assert n_children > 0 and height > 200, pid
            assert page.inner_text("#summary").count("SMAD") == 1
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
