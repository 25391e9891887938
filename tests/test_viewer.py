"""The n-D viewer: slices, volume and basins in the report (landform.report.viewer, landform.plot.slices).

Reports are built from synthetic landscapes saved with the store; the browser tests drive Debian chromium,
read the plotted data back from the page and compare it with slices cut here by plain indexing."""

from __future__ import annotations

import base64
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from landform import Landscape
from landform.errors import InputError
from landform.plot.slices import axis_pairs, basin_colors, choose_log, in_slice, plot_corner, slice_2d
from landform.report import build_report
from landform.report import viewer as V
from landform.topology import merge_tree

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
# non-cubic grids, global minimum off centre at a known index, a second well elsewhere
CASES = {
    3: ((13, 9, 11), (9, 2, 7), (2, 6, 3)),
    4: ((9, 11, 8, 7), (6, 2, 5, 1), (2, 7, 4, 2)),
}


def asym_field(shape, at, second, depth=3.0, width=0.05):
    """An anisotropic bowl with its minimum (0.2) exactly at grid index ``at`` and a second well at ``second``."""
    axes = [np.linspace(-1, 1, s) for s in shape]
    g = np.meshgrid(*axes, indexing="ij")
    r2 = sum((k + 1) * (gk - a[i]) ** 2 for k, (gk, a, i) in enumerate(zip(g, axes, at, strict=True)))
    r2b = sum((gk - a[i]) ** 2 for gk, a, i in zip(g, axes, second, strict=True))
    return 1.0 + r2 - 0.8 * np.exp(-r2 / 0.05) - depth * np.exp(-r2b / width), axes


def steepest_descent_labels(values):
    """Brute force: every point follows its lowest axis neighbour (ties by flat index) while it is lower."""
    flat = values.ravel()
    shape = values.shape
    target = np.arange(flat.size)
    for p in range(flat.size):
        idx = np.unravel_index(p, shape)
        best = p
        for k in range(values.ndim):
            for d in (-1, 1):
                q = list(idx)
                q[k] += d
                if 0 <= q[k] < shape[k]:
                    qf = int(np.ravel_multi_index(q, shape))
                    if (flat[qf], qf) < (flat[best], best):
                        best = qf
        target[p] = best
    out = target.copy()
    for _ in range(flat.size):
        nxt = target[out]
        if np.array_equal(nxt, out):
            break
        out = nxt
    return out.reshape(shape)


def _save(tmp_path: Path, values, axes, name="run") -> Path:
    run = tmp_path / name
    Landscape(values, axes, {"kind": "hessian", "seed": 0}, float(values.ravel()[values.size // 2]), {}).save(
        run / "landscape"
    )
    return run


# ------------------------------------------------------------------------------------------ numpy side


def test_slice_2d_and_in_slice_match_indexing():
    rng = np.random.default_rng(0)
    v = rng.random((4, 5, 6, 3))
    anchor = (2, 1, 4, 0)
    for i, j in axis_pairs(4):
        s = slice_2d(v, anchor, i, j)
        assert s.shape == (v.shape[i], v.shape[j])
        for a in range(v.shape[i]):
            for b in range(v.shape[j]):
                idx = list(anchor)
                idx[i], idx[j] = a, b
                assert s[a, b] == v[tuple(idx)]
        flat = np.arange(v.size)
        want = np.array([all(q[k] == anchor[k] for k in range(4) if k not in (i, j)) for q in np.ndindex(v.shape)])
        assert np.array_equal(in_slice(flat, v.shape, anchor, i, j), want)


def test_choose_log_threshold():
    assert choose_log(np.array([0.02, 2.0])) and not choose_log(np.array([0.021, 2.0]))
    assert not choose_log(np.array([0.0, 5.0])) and not choose_log(np.array([np.nan, 1.0, 50.0]))


def test_basin_colors_are_steepest_descent_basins():
    rng = np.random.default_rng(3)
    v = rng.random((7, 6)) + np.linspace(0, 0.3, 6)[None, :]
    tree = merge_tree(v)
    bc = basin_colors(tree, max_basins=tree.n_minima)
    ref = steepest_descent_labels(v)
    assert np.array_equal(bc.minima[bc.labels], ref)
    flat = v.ravel()
    pers = [np.inf if d < 0 else flat[d] - flat[m] for m, d in zip(tree.minima, tree.death, strict=True)]
    assert bc.minima[0] == tree.minima[0] and list(bc.persistence) == sorted(pers, reverse=True)
    # fewer colours: each cancelled minimum's basin joins the one of the elder minimum that absorbed it
    few = basin_colors(tree, max_basins=2)
    assert few.minima.size == 2 and set(few.minima) <= set(bc.minima[:2].tolist())
    assert few.sizes().sum() == v.size
    for m in bc.minima:
        region = ref == m
        assert len(np.unique(few.labels[region])) == 1, "a steepest-descent basin was split"
        if m in few.minima:
            assert few.minima[few.labels[region][0]] == m


def test_slice_data_decimates_through_the_anchor():
    v, axes = asym_field((41, 41, 41, 41), (17, 3, 30, 9), (5, 30, 10, 30))
    d = V.slice_data(v, axes, max_values=V.DEFAULT_MAX_VALUES)
    assert d.stride == 2 and np.prod(d.spec["shape"]) <= V.DEFAULT_MAX_VALUES
    assert 41**4 > V.DEFAULT_MAX_VALUES and 14**4 <= V.DEFAULT_MAX_VALUES  # stride 3 would also fit: 2 is the least
    for k, a in enumerate((17, 3, 30, 9)):
        assert d.index[k][d.spec["anchor"][k]] == a
    emb = np.frombuffer(base64.b64decode(d.spec["values"]), np.float32).reshape(d.spec["shape"])
    assert np.array_equal(emb, v[np.ix_(*d.index)].astype(np.float32))
    assert "every 2nd grid point" in d.note and "20 × 20 × 21 × 20 = 168,000 of 41 × 41 × 41 × 41" in d.note
    with pytest.raises(InputError, match="axes"):
        V.slice_data(v[:3], axes)
    # a marker is drawn in the slices within half the kept spacing of it (stride 3, anchor off every kept 0)
    small, sax = asym_field((10, 11, 12), (5, 4, 8), (1, 9, 2))
    pts = [(a, b, c) for a in range(10) for b in range(11) for c in range(12)]
    mk = [{"at": [sax[k][p[k]] for k in range(3)], "index": list(p)} for p in pts]
    d3 = V.slice_data(small, sax, anchor=(5, 4, 8), markers=mk, max_values=100)
    assert d3.stride == 3
    for p, m in zip(pts, d3.spec["markers"], strict=True):
        for k in range(3):
            kept = d3.index[k]
            nearest = kept[np.argmin(np.abs(kept - p[k]))]  # the edge one beyond the outermost kept points
            assert abs(kept[m["idx"][k]] - p[k]) == abs(nearest - p[k]) and abs(nearest - p[k]) <= 2, (p, k)


def test_plot_corner_puts_the_minimum_where_it_is():
    shape, at, second = CASES[4]
    v, axes = asym_field(shape, at, second)
    tree = merge_tree(v)
    fig = plot_corner(v, axes, minima=tree.minima, saddles=tree.saddles, basins=basin_colors(tree))
    grid = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    m = len(shape) - 1
    for i, j in axis_pairs(len(shape)):
        ax = grid[(j - 1) * m + i]
        mesh = ax.collections[0]
        arr = np.asarray(mesh.get_array()).reshape(len(axes[j]), len(axes[i]))
        b, a = np.unravel_index(int(np.argmin(arr)), arr.shape)
        assert (a, b) == (at[i], at[j]), (i, j)
        corners = mesh.get_coordinates()[b : b + 2, a : a + 2].reshape(-1, 2)  # the drawn cell of the minimum
        assert np.allclose(np.asarray(corners).mean(axis=0), [axes[i][at[i]], axes[j][at[j]]]), (i, j)
        tri = [c for c in ax.collections[1:] if c.get_offsets().shape[0] and c.get_paths()]
        pts = np.concatenate([c.get_offsets() for c in tri])
        assert np.any(np.all(np.isclose(pts, [axes[i][at[i]], axes[j][at[j]]]), axis=1))


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser():
    from conftest import require_chromium

    sync_api = require_chromium()  # skips loudly, or fails when the environment variable CI is set
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@contextmanager
def page_of(browser, path: Path):
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
    page.wait_for_function(
        "() => document.getElementById('lf-slices-plot') && document.getElementById('lf-slices-plot').data"
    )
    try:
        yield page
    finally:
        page.close()
    assert errors == [], errors


def _traces(page, plot_id):
    return page.evaluate(
        "id => document.getElementById(id).data.map(t => ({type: t.type, x: t.x, y: t.y, z: t.z, c: t.customdata, text: t.text, "
        "xaxis: t.xaxis, value: t.value ? Array.from(t.value) : null, mc: t.marker ? t.marker.color : null, "
        "lc: t.line ? t.line.color : null, name: t.name}))",
        plot_id,
    )


def _move(page, slider_id, value):
    page.evaluate(
        "([id, v]) => { const s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event('input')); }",
        [slider_id, value],
    )


def _panels(page, n):
    tr = _traces(page, "lf-slices-plot")
    return {p: (tr[3 * k], tr[3 * k + 1], tr[3 * k + 2]) for k, p in enumerate(axis_pairs(n))}


def _wait_drawn(page, timeout=60_000):
    """Until every view of the page is drawn (the lazy ones follow the load event, one per idle period)."""
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-lf-view]')).every(e => e._fullLayout)", timeout=timeout
    )


def _state(page):
    return [int(x) for x in page.get_attribute("#lf-slices", "data-state").split(",")]


@pytest.mark.parametrize("ndim", [3, 4])
def test_report_slices_volume_and_basins_in_chromium(tmp_path, browser, ndim):
    shape, at, second = CASES[ndim]
    v, axes = asym_field(shape, at, second)
    run = _save(tmp_path, v, axes)
    path = build_report(run)
    assert path.stat().st_size < 10e6
    assert (run / "figures" / "slices.png").stat().st_size > 5000
    tree = merge_tree(v)
    bc = basin_colors(tree)
    with page_of(browser, path) as page:
        # orientation: the global minimum sits at its known index in every panel, and so does its marker
        assert _state(page) == list(at)
        log = choose_log(v)
        assert log == (ndim == 4)  # 4-D: max / min > 100
        title = page.evaluate("() => document.getElementById('lf-slices-plot').layout.coloraxis.colorbar.title.text")
        assert title == ("loss (log scale)" if log else "loss")
        panels = _panels(page, ndim)
        for (i, j), (heat, marks, _cross) in panels.items():
            z = np.asarray(heat["z"], float)
            assert z.shape == (shape[j], shape[i])
            assert np.allclose(np.asarray(heat["c"], float), slice_2d(v, at, i, j).T, rtol=1e-6)
            assert np.allclose(z, np.log10(slice_2d(v, at, i, j).T) if log else slice_2d(v, at, i, j).T, rtol=1e-6)
            b, a = np.unravel_index(int(np.argmin(z)), z.shape)
            assert (heat["x"][a], heat["y"][b]) == pytest.approx((axes[i][at[i]], axes[j][at[j]]))
            k = [t.startswith("<b>min 1</b>") for t in marks["text"]].index(True)
            assert (marks["x"][k], marks["y"][k]) == pytest.approx((axes[i][at[i]], axes[j][at[j]]))
            assert marks["mc"][k] == bc.colors[0]
        # every slider moves the slices of the panels it is off-plane for, and only those
        for k in range(ndim):
            before = _panels(page, ndim)
            new = (at[k] + 3) % shape[k]
            _move(page, f"lf-slices-s{k}", new)
            state = list(at)
            state[k] = new
            assert _state(page) == state
            after = _panels(page, ndim)
            for (i, j), (heat, marks, cross) in after.items():
                # the global minimum lies in a slice only while the slice passes through it
                assert any(t.startswith("<b>min 1</b>") for t in marks["text"]) == (k in (i, j)), (k, i, j)
                z = np.asarray(heat["c"], float)
                assert np.allclose(z, slice_2d(v, state, i, j).T, rtol=1e-6), (k, i, j)
                changed = not np.allclose(z, np.asarray(before[(i, j)][0]["c"], float))
                assert changed == (k not in (i, j)), (k, i, j)
                assert (cross["x"][0], cross["y"][0]) == pytest.approx((axes[i][state[i]], axes[j][state[j]]))
            assert f"d{k + 1} = {axes[k][new]:.4g}".replace("-0.", "-0.") in page.inner_text("#lf-slices .lf-coords")
            _move(page, f"lf-slices-s{k}", at[k])
        # basin colouring: the panels show the basins of brute-force steepest descent
        page.check("#lf-slices input.lf-mode[value='basin']")
        ref = steepest_descent_labels(v)
        for (i, j), (heat, _, _) in _panels(page, ndim).items():
            z = np.asarray(heat["z"], int) - 1
            assert np.array_equal(bc.minima[z], slice_2d(ref, at, i, j).T), (i, j)
        # volume view: drawn lazily, once the page is idle, with no scrolling; isosurfaces of the 3-D slice,
        # minimum where it is; its slider moves the rest
        _wait_drawn(page)
        vol = _traces(page, "lf-volume-plot")
        iso = [t for t in vol if t["type"] == "isosurface"]
        assert len(iso) == 1
        val = np.asarray(iso[0]["value"], float)
        q = int(np.argmin(val))
        xyz = (iso[0]["x"][q], iso[0]["y"][q], iso[0]["z"][q]) if isinstance(iso[0]["x"], list) else None
        if xyz is None:
            xyz = tuple(
                page.evaluate(
                    f"() => ['x','y','z'].map(c => document.getElementById('lf-volume-plot').data[0][c][{q}])"
                )
            )
        assert xyz == pytest.approx(tuple(axes[k][at[k]] for k in range(3)))
        sliders = page.eval_on_selector_all("#lf-volume input.lf-slider", "els => els.map(e => e.id)")
        assert sliders == [f"lf-volume-s{k}" for k in range(3, ndim)]
        if ndim == 4:
            _move(page, "lf-volume-s3", 4)
            moved = np.asarray(_traces(page, "lf-volume-plot")[0]["value"], float)
            ref = np.log10(v[:, :, :, 4].ravel()) if log else v[:, :, :, 4].ravel()
            assert np.allclose(np.sort(moved), np.sort(ref), rtol=1e-6)
            assert not np.allclose(np.sort(moved), np.sort(val))
        # merge tree and barcode: hover text names minimum, saddle, persistence, basin size; colours agree
        flat = v.ravel()
        sizes = dict(zip(tree.minima.tolist(), tree.basin_sizes().tolist(), strict=True))
        m2, s2 = int(tree.minima[1]), int(tree.death[1])
        for fid in ("basin_tree", "basin_barcode"):
            tr = [t for t in _traces(page, fid) if t["name"] == "min 2"]
            assert len(tr) == 1, fid
            text = tr[0]["text"][0]
            assert f"loss {flat[m2]:.4g}" in text and f"saddle: loss {flat[s2]:.4g}" in text
            assert f"persistence {flat[s2] - flat[m2]:.4g}" in text and f"basin: {sizes[m2]:,} points" in text
            assert tr[0]["lc"] == bc.color_of(m2) == bc.colors[1]


def test_decimated_report_slices_follow_the_sub_grid(tmp_path, browser, monkeypatch):
    shape, at, second = CASES[4]
    v, axes = asym_field(shape, at, second)
    monkeypatch.setattr(V, "DEFAULT_MAX_VALUES", 1200)
    path = build_report(_save(tmp_path, v, axes))
    text = path.read_text()
    assert "Decimated for the slice and volume views: every 2nd grid point" in text
    d = V.slice_data(v, axes, max_values=1200)
    sub = v[np.ix_(*d.index)]
    with page_of(browser, path) as page:
        st = _state(page)
        assert [int(d.index[k][st[k]]) for k in range(4)] == list(at)
        maxes = page.eval_on_selector_all("#lf-slices input.lf-slider", "els => els.map(e => +e.max)")
        assert maxes == [len(ix) - 1 for ix in d.index]
        _move(page, "lf-slices-s3", 0)
        st[3] = 0
        for (i, j), (heat, _, _) in _panels(page, 4).items():
            assert np.allclose(np.asarray(heat["c"], float), slice_2d(sub, st, i, j).T, rtol=1e-6)
            assert heat["x"] == pytest.approx(axes[i][d.index[i]].tolist())


def test_size_budget_of_a_large_5d_report(tmp_path, browser):
    """1.05 M values (16^5; 5.6 MB as base64 float32 and labels) stay under 10 MB: every 2nd point is embedded."""
    shape = (16,) * 5
    v, axes = asym_field(shape, (11, 4, 9, 13, 6), (3, 12, 4, 5, 10))
    path = build_report(_save(tmp_path, v, axes))
    size = path.stat().st_size
    assert size < 10e6, size
    assert "8 × 8 × 8 × 8 × 8 = 32,768 of 16 × 16 × 16 × 16 × 16" in path.read_text()
    with page_of(browser, path) as page:
        assert page.evaluate("() => document.getElementById('lf-volume-plot').data[0].type") == "isosurface"


def test_frame_viewer_moves_through_frames(tmp_path, browser):
    from plotly.offline import get_plotlyjs

    rng = np.random.default_rng(1)
    frames = rng.random((5, 7, 4)) + 1.0
    x, y = np.linspace(0, 1, 7), np.linspace(-2, 2, 4)
    markers = [[{"x": 0.1 * f, "y": -1.0 + f * 0.5, "text": f"checkpoint {f}"}] for f in range(5)]
    for f in range(5):  # the trajectory relative to checkpoint f, one line per frame
        markers[f] += [{"x": 0.2 * (g - f), "y": 0.3 * g, "text": f"path {g}", "group": "path"} for g in range(3)]
    div = V.frame_viewer_html(frames, x, y, "lf-slices", labels=[f"epoch {f}" for f in range(5)], markers=markers)
    page_html = f"<html><head><script>{get_plotlyjs()}</script></head><body>{V.viewer_script()}{div}</body></html>"
    path = tmp_path / "frames.html"
    path.write_text(page_html)
    with page_of(browser, path) as page:
        for f in (0, 3, 4):
            _move(page, "lf-slices-s0", f)
            heat, marks, _, path = _traces(page, "lf-slices-plot")
            assert np.allclose(np.asarray(heat["c"], float), frames[f].T, rtol=1e-6)
            assert marks["text"][0] == f"checkpoint {f}" and marks["x"][0] == pytest.approx(0.1 * f)
            assert path["name"] == "path" and path["x"] == pytest.approx([0.2 * (g - f) for g in range(3)])
            assert f"frame = epoch {f}" in page.inner_text("#lf-slices .lf-coords")
    with pytest.raises(InputError, match="labels"):
        V.frame_viewer_html(frames, x, y, "v", labels=["a"])


def test_out_of_sight_views_are_drawn_on_scroll_slider_or_idle(tmp_path, browser):
    """Slices at load; the volume and the basin figures later: when scrolled into view, when a volume slider
    moves, or (with neither) one per idle period after the load event."""
    shape, at, second = CASES[4]
    v, axes = asym_field(shape, at, second)
    path = build_report(_save(tmp_path, v, axes))
    lazy = ["lf-volume-plot", "basin_tree", "basin_barcode", "basin_profile"]
    drawn = "ids => ids.map(id => !!document.getElementById(id)._fullLayout)"
    # with idle callbacks switched off, nothing out of sight is drawn
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_init_script("window.requestIdleCallback = function () { return 0; };")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
    page.wait_for_timeout(1500)
    assert page.evaluate("() => document.getElementById('lf-slices-plot').data.length") > 0
    assert page.evaluate(drawn, lazy) == [False] * 4
    assert page.get_attribute("#lf-volume", "data-drawn") == "0" and page.locator("#lf-volume .lf-wait").count() == 1
    # a volume slider moved before the draw draws the volume at the slider's position
    _move(page, "lf-volume-s3", 5)
    assert page.get_attribute("#lf-volume", "data-drawn") == "1" and page.locator("#lf-volume .lf-wait").count() == 0
    val = np.asarray(_traces(page, "lf-volume-plot")[0]["value"], float)
    ref = np.log10(v[:, :, :, 5].ravel()) if choose_log(v) else v[:, :, :, 5].ravel()
    assert np.allclose(np.sort(val), np.sort(ref), rtol=1e-6)
    assert page.evaluate(drawn, lazy[1:]) == [False] * 3
    # scrolling a figure into view draws it (and not the ones still out of sight)
    page.evaluate("() => document.getElementById('basin_barcode').scrollIntoView()")
    page.wait_for_function("() => !!document.getElementById('basin_barcode')._fullLayout", timeout=10_000)
    tr = [t for t in _traces(page, "basin_barcode") if t["name"] == "min 1"]
    assert len(tr) == 1
    ctx.close()
    # printing draws every view still waiting (the browser fires beforeprint before it lays the page out)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_init_script("window.requestIdleCallback = function () { return 0; };")
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
    page.wait_for_timeout(1000)
    assert page.evaluate(drawn, lazy) == [False] * 4
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    assert page.evaluate(drawn, lazy) == [True] * 4
    ctx.close()
    assert errors == [], errors
    # unhindered: the slices are drawn before the load event, the rest after it without scrolling
    with page_of(browser, path) as page:
        _wait_drawn(page)
        marks, load = page.evaluate(
            "() => [Object.fromEntries(performance.getEntriesByType('mark').filter(m => m.name.startsWith('lf-drawn '))"
            ".map(m => [m.name.slice(9), m.startTime])), performance.getEntriesByType('navigation')[0].loadEventStart]"
        )
        assert sorted(marks) == sorted(["lf-slices-plot", *lazy])
        assert marks["lf-slices-plot"] < load
        assert all(marks[k] >= load for k in lazy), (marks, load)
        assert page.evaluate("() => document.getElementById('lf-volume-plot').data[0].type") == "isosurface"
