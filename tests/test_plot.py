"""Figures: orientation (no transposition), content present, no global state touched."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from landform import InputError, Landscape  # noqa: E402
from landform import plot as P  # noqa: E402
from landform.topology import landscape_profile, merge_tree, persistence  # noqa: E402


def two_well(nx=31, ny=21):
    x = np.linspace(-2, 2, nx)
    y = np.linspace(-1, 1, ny)
    X, Y = np.meshgrid(x, y, indexing="ij")
    v = (X**2 - 1) ** 2 + 2 * Y**2 + 0.3 * (X + 1) + 0.1
    return Landscape(v, (x, y), {"kind": "hessian", "eigenvalues": [3.0, 1.0]}, center_value=float(v[nx // 2, ny // 2]))


def test_contour_puts_axis0_on_x_and_marks_minima_where_they_are():
    ls = two_well()
    rc_before = dict(matplotlib.rcParams)
    ax = P.plot_contour(ls)
    assert dict(matplotlib.rcParams) == rc_before
    minima_artist = [c for c in ax.collections if c.get_label().startswith("minima")][0]
    pts = minima_artist.get_offsets()
    tree = merge_tree(ls.values)
    ij = tree.coordinates(tree.minima)
    expected = np.column_stack([ls.axes[0][ij[:, 0]], ls.axes[1][ij[:, 1]]])
    np.testing.assert_allclose(np.asarray(pts), expected)
    # the deeper well is at x = -1 (axis 0), y = 0
    assert expected[0, 0] == pytest.approx(-1.0, abs=0.15) and expected[0, 1] == pytest.approx(0.0, abs=0.06)
    assert ax.get_xlim() == pytest.approx((-2, 2)) and ax.get_ylim() == pytest.approx((-1, 1))
    assert "λ = 3" in ax.get_xlabel()


def test_every_figure_draws_something():
    ls = two_well()
    tree = merge_tree(ls.values)
    pairs = persistence(tree)
    prof = landscape_profile(tree)
    axes = [
        P.plot_contour(ls, log=True),
        P.plot_surface(ls),
        P.plot_merge_tree(tree),
        P.plot_barcode(pairs, max_value=float(ls.values.max())),
        P.plot_diagram(pairs),
        P.plot_profile(prof),
        P.plot_eigenvalues([3.0, 1.0, -0.5]),
        P.plot_density({"grid": np.linspace(-1, 4, 50), "density": np.exp(-(np.linspace(-1, 4, 50) ** 2))}),
        P.plot_curve(Landscape(np.array([3.0, 1.0, 2.0, 0.0, 4.0]), (np.linspace(-1, 1, 5),), center_value=2.0)),
        P.plot_comparison(
            {
                "a": {"topology": {"smad": 0.1, "persistence_range": 1.0}, "hessian": {"trace": 5.0}},
                "b": {"topology": {"smad": 0.2}},
            }
        ),
    ]
    for ax in axes:
        assert ax.has_data() or len(ax.patches) or len(ax.collections)
        ax.figure.canvas.draw()  # renders without error


def test_barcode_essential_bar_reaches_max_value():
    pairs = np.array([[0.0, np.inf], [1.0, 2.0]])
    ax = P.plot_barcode(pairs, max_value=5.0)
    lines = [line.get_xdata() for line in ax.get_lines()]
    assert any(np.allclose(x, [0.0, 5.0]) for x in lines)
    assert any(np.allclose(x, [1.0, 2.0]) for x in lines)


def test_profile_polygons_nested_in_x():
    ls = two_well()
    prof = landscape_profile(ls.values)
    ax = P.plot_profile(prof)
    assert len(ax.patches) == len(prof.polygons)
    top = prof.polygons[0]
    for p in prof.polygons[1:]:
        assert p.x.min() >= top.x.min() - 1e-9 and p.x.max() <= top.x.max() + 1e-9


def test_profile_of_3d_and_5d_landscapes():
    rng = np.random.default_rng(0)
    for shape in [(9, 9, 9), (5, 5, 5, 5, 5)]:
        v = rng.random(shape)
        prof = landscape_profile(v, persistence_threshold=0.3)
        ax = P.plot_profile(prof)
        ax.figure.canvas.draw()
        assert prof.width == v.size
        assert f"{len(shape)}-D" in ax.get_title()


def test_bad_input_messages():
    with pytest.raises(InputError, match="2-D landscape"):
        P.plot_contour(Landscape(np.zeros(5), (np.arange(5.0),)))
    with pytest.raises(InputError, match="simplify"):
        P.plot_merge_tree(merge_tree(np.random.default_rng(0).random((40, 40))), max_nodes=10)
    with pytest.raises(InputError, match="log=True"):
        P.plot_contour(Landscape(np.zeros((3, 3)), (np.arange(3.0), np.arange(3.0))), log=True)


# ---------------------------------------------------------------- orientation, read back from what is drawn
def _asym(x, y):
    """One minimum at (0.7, -0.4), steeper along axis 1: no mirror or transposition leaves it in place."""
    return (x - 0.7) ** 2 + 1.5 * (y + 0.4) ** 2 + 0.4 * x


def asymmetric(nx=31, ny=21):
    x = np.linspace(-2.0, 1.5, nx)
    y = np.linspace(-1.0, 2.0, ny)
    X, Y = np.meshgrid(x, y, indexing="ij")
    v = _asym(X, Y)
    return Landscape(v, (x, y), {"kind": "random"}, center_value=float(_asym(0.0, 0.0)))


# sample points away from the centre cross (0, 0) and the minimum marker (0.5, -0.4)
PROBES = [(-1.6, 1.7), (1.2, 1.2), (-1.6, -0.8), (1.2, -0.8), (-0.5, 0.6), (0.6, 1.0), (-1.0, -0.4)]


def _colour_fraction(ax, x, y, cmap="viridis"):
    """Where on the colour map the pixels drawn around data point (x, y) lie (0 = low, 1 = high)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255
    px, py = ax.transData.transform((x, y))
    r, c = int(round(img.shape[0] - py)), int(round(px))
    patch = img[r - 2 : r + 3, c - 2 : c + 3].reshape(-1, 3)
    lut = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    idx = np.argmin(((patch[:, None, :] - lut[None]) ** 2).sum(-1), axis=1)
    return float(np.median(idx)) / 255


def test_contour_pixels_show_each_value_where_its_coordinates_are():
    ls = asymmetric()
    ax = P.plot_contour(ls, levels=40)
    lo, hi = ls.values.min(), ls.values.max()
    for x, y in PROBES:
        want = (_asym(x, y) - lo) / (hi - lo)
        assert _colour_fraction(ax, x, y) == pytest.approx(want, abs=0.06), (x, y)


def test_surface_and_curve_plot_values_at_their_coordinates():
    import matplotlib.pyplot as plt

    ls = asymmetric()
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    seen = {}
    original = ax.plot_surface

    def spy(X, Y, Z, *args, **kwargs):
        seen["xyz"] = (np.asarray(X), np.asarray(Y), np.asarray(Z))
        return original(X, Y, Z, *args, **kwargs)

    ax.plot_surface = spy
    P.plot_surface(ls, ax)
    X, Y, Z = seen["xyz"]
    np.testing.assert_allclose(Z, _asym(X, Y), atol=1e-12)  # every drawn height sits over its own (x, y)
    assert X.min() == -2.0 and X.max() == 1.5 and Y.min() == -1.0 and Y.max() == 2.0
    plt.close(fig)
    x = np.linspace(-1.0, 2.0, 9)
    ax = P.plot_curve(Landscape(_asym(x, 0.3), (x,), center_value=float(_asym(0.0, 0.3))))
    lx, ly = ax.get_lines()[0].get_data()
    np.testing.assert_allclose(ly, _asym(np.asarray(lx), 0.3))
    np.testing.assert_allclose(lx, x)
