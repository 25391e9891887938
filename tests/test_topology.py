"""Topology core against independent references: brute-force sublevel components (scipy.ndimage.label),
a brute-force merge tree and basins, gudhi's cubical persistence, and hand-worked SMAD."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from landform.errors import InputError
from landform.topology import (
    barcode,
    landscape_profile,
    merge_tree,
    persistence,
    persistence_range,
    simplify,
    smad,
)


def _structure(ndim: int, connectivity: str) -> np.ndarray:
    return ndimage.generate_binary_structure(ndim, 1 if connectivity == "axis" else ndim)


def brute_force_tree(values: np.ndarray, connectivity: str = "axis"):
    """Minima, saddles, s(m) and steepest-descent basins by relabelling every sublevel set from scratch."""
    flat = values.ravel()
    N = flat.size
    order = np.argsort(flat, kind="stable")
    rank = np.empty(N, int)
    rank[order] = np.arange(N)
    struct = _structure(values.ndim, connectivity)
    minima, saddles, s_of = [], [], {}
    prev_labels = None
    for r in range(N):
        mask = (rank <= r).reshape(values.shape)
        labels, _ = ndimage.label(mask, structure=struct)
        labels = labels.ravel()
        v = order[r]
        if prev_labels is not None:
            # components of the previous sublevel set that v touches
            mask_prev = (rank < r).reshape(values.shape)
            nb = np.zeros(values.shape, bool)
            nb.ravel()[v] = True
            nb = ndimage.binary_dilation(nb, structure=struct) & mask_prev
            touched = set(prev_labels[nb.ravel()]) - {0}
        else:
            touched = set()
        if not touched:
            minima.append(v)
        elif len(touched) >= 2:
            saddles.append(v)
        # s(m): first step where m's component holds another minimum
        for m in minima:
            if m not in s_of and sum(labels[u] == labels[m] for u in minima) > 1:
                s_of[m] = v
        prev_labels = labels
    # steepest descent by explicit walks
    offsets = np.argwhere(struct) - 1
    offsets = offsets[np.any(offsets != 0, axis=1)]
    basin = np.empty(N, int)
    for v in range(N):
        u = v
        while True:
            c = np.array(np.unravel_index(u, values.shape))
            best = u
            for o in offsets:
                w = c + o
                if np.all(w >= 0) and np.all(w < values.shape):
                    wi = np.ravel_multi_index(tuple(w), values.shape)
                    if rank[wi] < rank[best]:
                        best = wi
            if best == u:
                break
            u = best
        basin[v] = u
    return minima, saddles, s_of, basin


def brute_force_components(values: np.ndarray, t: float, connectivity: str) -> int:
    _, n = ndimage.label(values <= t, structure=_structure(values.ndim, connectivity))
    return n


def brute_force_smad(values, connectivity="axis"):
    minima, _, s_of, basin = brute_force_tree(values, connectivity)
    flat = values.ravel()
    R = flat.max() - flat.min()
    terms = [(flat[s_of[m]] - flat[m]) / R * np.sum(basin == m) / flat.size for m in minima if m in s_of]
    return float(np.mean(terms)) if terms else 0.0


SHAPES = [(17,), (6, 7), (4, 3, 5), (3, 3, 2, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("connectivity", ["axis", "full"])
@pytest.mark.parametrize("seed", [0, 1])
def test_tree_matches_brute_force(shape, connectivity, seed):
    rng = np.random.default_rng(seed)
    values = rng.random(shape)
    if seed == 1:
        values = np.round(values * 4) / 4  # plateaus and ties
    tree = merge_tree(values, connectivity=connectivity)
    minima, saddles, s_of, basin = brute_force_tree(values, connectivity)
    assert tree.minima.tolist() == minima
    assert tree.saddles.tolist() == saddles
    assert {int(m): int(s) for m, s in zip(tree.minima, tree.minimum_saddle, strict=True) if s >= 0} == s_of
    np.testing.assert_array_equal(tree.basin_label.ravel(), basin)
    assert smad(tree) == pytest.approx(brute_force_smad(values, connectivity), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("connectivity", ["axis", "full"])
def test_persistence_counts_components_at_every_level(shape, connectivity):
    values = np.random.default_rng(3).random(shape)
    pairs = persistence(values, connectivity=connectivity)
    for t in np.unique(values):
        alive = int(np.sum((pairs[:, 0] <= t) & (pairs[:, 1] > t)))
        assert alive == brute_force_components(values, t, connectivity), t


@pytest.mark.parametrize("shape", [(30,), (12, 9), (6, 5, 7), (4, 5, 3, 4)])
def test_finite_pairs_match_gudhi(shape):
    gudhi = pytest.importorskip("gudhi")
    values = np.random.default_rng(5).random(shape)
    cc = gudhi.CubicalComplex(vertices=values)
    cc.compute_persistence()
    ref = np.asarray(cc.persistence_intervals_in_dimension(0)).reshape(-1, 2)
    ours = persistence(values)
    fin = lambda p: np.sort(p[np.isfinite(p[:, 1]) & (p[:, 1] > p[:, 0])], axis=0)  # noqa: E731
    np.testing.assert_allclose(fin(ours), fin(ref))
    assert np.sum(np.isinf(ours[:, 1])) == np.sum(np.isinf(ref[:, 1])) == 1
    assert ours[np.isinf(ours[:, 1]), 0][0] == values.min()


def test_two_well_smad_worked_by_hand():
    # 1-D: wells at index 2 (value 0.0) and 6 (value 1.0), barrier at index 4 (value 3.0)
    f = np.array([5.0, 2.0, 0.0, 2.0, 3.0, 2.5, 1.0, 2.0, 4.0])
    tree = merge_tree(f)
    assert tree.minima.tolist() == [2, 6] and tree.saddles.tolist() == [4]
    # basins: the barrier 4 descends to its lower neighbour 3 (2.0 < 2.5), so 0..4 reach 2 and 5..8 reach 6
    assert tree.basin_sizes().tolist() == [5, 4]
    R, N = 5.0, 9
    expected = ((3.0 - 0.0) / R * 5 / N + (3.0 - 1.0) / R * 4 / N) / 2
    assert smad(f) == pytest.approx(expected)
    assert smad(f, normalize=False, weighted=False) == pytest.approx((3.0 + 2.0) / 2)
    assert smad(f, normalize=True, weighted=False) == pytest.approx((3.0 / R + 2.0 / R) / 2)
    assert persistence(f).tolist() == [[0.0, np.inf], [1.0, 3.0]]


def test_three_well_2d_smad_worked_by_hand():
    # row 1 holds three wells (0, 1, 2) behind barriers 6 and 8; rows 0 and 2 are a ridge at 11 above them
    f = np.full((3, 7), 11.0)
    f[1] = [10.0, 0.0, 6.0, 1.0, 8.0, 2.0, 10.0]
    tree = merge_tree(f)
    flat_idx = lambda i, j: i * 7 + j  # noqa: E731
    assert tree.minima.tolist() == [flat_idx(1, 1), flat_idx(1, 3), flat_idx(1, 5)]
    assert tree.saddles.tolist() == [flat_idx(1, 2), flat_idx(1, 4)]
    assert tree.minimum_saddle.tolist() == [flat_idx(1, 2), flat_idx(1, 2), flat_idx(1, 4)]
    # steepest descent: ridge cells drop into row 1; barrier 6 drops to 0, barrier 8 drops to 1
    assert tree.basin_sizes().tolist() == [9, 6, 6]  # columns 0-2, 3-4, 5-6
    R, N = 11.0, 21
    expected = (6 / R * 9 / N + 5 / R * 6 / N + 6 / R * 6 / N) / 3
    assert smad(f) == pytest.approx(expected)
    # 1-D three wells: f = [4, 0, 3, 1, 5, 2, 6]; s = (3, 3, 5); basins {0,1,2}, {3,4}, {5,6}; R = 6, N = 7
    g = np.array([4.0, 0.0, 3.0, 1.0, 5.0, 2.0, 6.0])
    assert smad(g) == pytest.approx((3 / 6 * 3 / 7 + 2 / 6 * 2 / 7 + 3 / 6 * 2 / 7) / 3)


def test_constant_and_single_point_landscapes():
    for f in (np.full((5, 4), 2.5), np.array([1.0]), np.full((3, 3, 3), -1.0)):
        tree = merge_tree(f)
        assert tree.n_minima == 1 and tree.saddles.size == 0
        assert smad(f) == 0.0
        assert persistence(f).tolist() == [[float(f.min()), np.inf]]


@pytest.mark.parametrize(
    "values, match",
    [
        (np.array([1.0, np.nan, 2.0, np.inf]), r"2 of 4 entries are not finite \(1 NaN, 1 inf\), first at \(1,\)"),
        (np.float64(1.0), "0-d"),
        (np.zeros((0, 3)), "empty"),
        (np.array(["a", "b"]), "real numbers"),
    ],
)
def test_bad_values(values, match):
    with pytest.raises(InputError, match=match):
        merge_tree(values)


def test_scattered_samples_knn():
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from landform.topology import knn_graph

    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (300, 2))
    f = np.minimum(((pts - [0.5, 0]) ** 2).sum(1), ((pts + [0.5, 0]) ** 2).sum(1) + 0.1)
    tree = merge_tree(f, points=pts, k=8)
    pairs = persistence(tree)
    # brute force on the same graph: components of every induced sublevel subgraph
    indptr, indices = knn_graph(pts, 8)
    A = csr_matrix((np.ones(indices.size), indices, indptr), shape=(300, 300))
    for t in np.unique(f)[::7]:
        keep = np.flatnonzero(f <= t)
        n_comp, _ = connected_components(A[keep][:, keep], directed=False)
        assert int(np.sum((pairs[:, 0] <= t) & (pairs[:, 1] > t))) == n_comp
    # the two most persistent classes are born in the two wells
    top2 = tree.minima[np.argsort(-(pairs[:, 1] - pairs[:, 0]))[:2]]
    assert sorted(np.sign(pts[top2, 0]).tolist()) == [-1.0, 1.0]
    assert tree.basin_label.shape == (300,)
    with pytest.raises(InputError, match="components"):
        merge_tree(np.concatenate([f, f]), points=np.concatenate([pts, pts + 100]), k=3)
    with pytest.raises(InputError, match="one row per value"):
        merge_tree(f, points=pts[:10])


def test_knn_graph_equals_brute_force_on_grid_points():
    """On the points of a grid with k = 2n the kNN tree equals the axis-grid tree (ties aside)."""
    values = np.random.default_rng(2).random((7, 6))
    g = np.stack(np.meshgrid(np.arange(7.0), np.arange(6.0), indexing="ij"), -1).reshape(-1, 2)
    g += np.random.default_rng(0).normal(0, 1e-6, g.shape)  # break distance ties only
    grid_tree = merge_tree(values)
    knn_tree = merge_tree(values.ravel(), points=g, k=4)
    assert knn_tree.minima.tolist() == grid_tree.minima.tolist()


def test_simplify_removes_low_persistence_pairs():
    rng = np.random.default_rng(1)
    x = np.linspace(-2, 2, 60)
    base = (x**2 - 1) ** 2  # two wells
    values = base + 0.3 * rng.random(60)
    tree = merge_tree(values)
    assert tree.n_minima > 2
    simple = simplify(tree, 0.5)
    assert simple.n_minima == 2
    assert simple.saddles.size == 1
    # the simplified basins are the two halves split at the barrier
    labels = simple.basin_label
    assert set(labels.tolist()) == set(simple.minima.tolist())
    assert np.all(labels[:25] == labels[0]) and np.all(labels[-25:] == labels[-1]) and labels[0] != labels[-1]
    # arcs of surviving nodes only
    assert set(simple.arc_label.tolist()) <= set(simple.nodes.tolist())
    # persistence pairs of the simplified tree are exactly the kept pairs
    kept = persistence(tree, min_persistence=0.5)
    np.testing.assert_array_equal(persistence(simple), kept)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.sampled_from([(9,), (4, 5), (3, 3, 4)]),
        elements=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]),
    )
)
def test_property_random_fields_with_ties(values):
    tree = merge_tree(values)
    pairs = persistence(tree)
    # Euler-type identity: minima - join saddles (counted with multiplicity) = 1 component
    assert tree.n_minima - (pairs.shape[0] - 1) == 1
    assert np.all(pairs[1:, 1] >= pairs[1:, 0])
    for t in np.unique(values):
        alive = int(np.sum((pairs[:, 0] <= t) & (pairs[:, 1] > t)))
        assert alive == brute_force_components(values, t, "axis")
    s = smad(tree)
    assert 0.0 <= s <= 1.0
    # every point's basin is a minimum; every arc label is a node
    assert set(np.unique(tree.basin_label)) <= set(tree.minima.tolist())
    assert set(np.unique(tree.arc_label)) <= set(tree.nodes.tolist())


def test_profile_geometry():
    f = np.array([5.0, 2.0, 0.0, 2.0, 3.0, 2.5, 1.0, 2.0, 4.0])
    prof = landscape_profile(f)
    kinds = [p.kind for p in prof.polygons]
    assert kinds[0] == "saddle" and sorted(kinds[1:]) == ["minimum", "minimum"]
    top = prof.polygons[0]
    assert top.size == 9 and top.y_low == 3.0 and top.y_high == 5.0
    # the top polygon is exactly N wide at max f and its children fill its base
    assert np.max(top.x) - np.min(top.x) == pytest.approx(9.0)
    kids = prof.polygons[1:]
    assert sum(p.size for p in kids) == top.size - int(np.sum(merge_tree(f).arc_label == 4))
    for p in kids:
        assert p.y_high == 3.0
        assert np.max(p.x) - np.min(p.x) == pytest.approx(p.size)  # full width at the saddle
        assert np.min(p.x) >= np.min(top.x) - 1e-9 and np.max(p.x) <= np.max(top.x) + 1e-9
    # largest child on the left
    assert kids[0].size >= kids[1].size and kids[0].center < kids[1].center
    assert prof.minima_xy().shape == (2, 2)


def test_barcode_and_range():
    pairs = persistence(np.array([5.0, 2.0, 0.0, 2.0, 3.0, 2.5, 1.0, 2.0, 4.0]))
    bars = barcode(pairs, 5.0)
    assert bars.tolist() == [[0.0, 5.0], [1.0, 3.0]]
    assert persistence_range(pairs) == 2.0


def test_topology_does_not_import_torch():
    code = (
        "import sys, numpy as np, landform.topology as t; t.smad(np.random.rand(5, 5)); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.sampled_from([(25,), (6, 7), (4, 4, 3)]), elements=st.floats(0, 1, width=32)),
    st.sampled_from([0.05, 0.2, 0.5]),
)
def test_property_simplify_keeps_exactly_the_persistent_pairs(values, eps):
    tree = merge_tree(values)
    simple = simplify(tree, eps)
    np.testing.assert_array_equal(persistence(simple), persistence(tree, min_persistence=eps))
    nodes = set(simple.nodes.tolist())
    assert set(np.unique(simple.arc_label)) <= nodes
    assert set(np.unique(simple.basin_label)) == set(simple.minima.tolist())
    assert all(p in nodes or p == -1 for p in simple.parent.tolist())
    assert int(np.sum(simple.parent == -1)) == 1
    # every saddle of the simplified tree still joins at least two subtrees
    for s in simple.saddles:
        assert int(np.sum(simple.parent == s)) >= 2
    # a simplified basin is a union of original basins
    for m in tree.minima:
        assert len(np.unique(simple.basin_label[tree.basin_label == m])) == 1
