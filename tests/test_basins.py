"""basin_statistics against an independent, pure-Python steepest-descent labelling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from landform.errors import InputError
from landform.topology import basin_statistics, merge_tree


def _neighbours(idx, shape, connectivity):
    steps = (
        [tuple(s if a == d else 0 for a in range(len(shape))) for d in range(len(shape)) for s in (-1, 1)]
        if connectivity == "axis"
        else [o for o in itertools.product((-1, 0, 1), repeat=len(shape)) if any(o)]
    )
    for o in steps:
        c = tuple(i + s for i, s in zip(idx, o, strict=True))
        if all(0 <= ci < n for ci, n in zip(c, shape, strict=True)):
            yield c


def brute_basins(values, field, connectivity="axis"):
    """{minimum flat index: (size, mean, min, max)} by walking downhill from every point, one at a time."""
    shape = values.shape
    key = {idx: (float(values[idx]), int(np.ravel_multi_index(idx, shape))) for idx in np.ndindex(shape)}
    groups: dict[int, list[float]] = {}
    for start in np.ndindex(shape):
        cur = start
        while True:
            low = min(_neighbours(cur, shape, connectivity), key=lambda c: key[c], default=None)
            if low is None or key[low] >= key[cur]:
                break
            cur = low
        groups.setdefault(key[cur][1], []).append(float(field[start]))
    return {m: (len(v), float(np.mean(v)), min(v), max(v)) for m, v in groups.items()}


CASES = [((7,), "axis"), ((6, 5), "axis"), ((6, 5), "full"), ((4, 3, 5), "axis"), ((3, 4, 3), "full")]


@pytest.mark.parametrize(("shape", "connectivity"), CASES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_steepest_descent(shape, connectivity, ties, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape)
    if ties:
        values = np.round(values * 1.5)  # many equal values: ties broken by flat index
    field = rng.uniform(size=shape)
    st = basin_statistics(values, field, connectivity=connectivity)
    ref = brute_basins(values, field, connectivity)
    assert sorted(st.minima.tolist()) == sorted(ref)
    assert len(ref) >= 2 or shape == (7,)  # the cases have several basins
    for i, m in enumerate(st.minima.tolist()):
        size, mean, lo, hi = ref[m]
        assert st.size[i] == size
        assert st.mean[i] == pytest.approx(mean, rel=1e-12)
        assert (st.min[i], st.max[i]) == (lo, hi)
        assert st.value[i] == values.ravel()[m]
    assert st.size.sum() == values.size
    # the rows follow the merge tree's minima, global minimum first
    assert st.minima.tolist() == merge_tree(values, connectivity=connectivity).minima.tolist()


def test_scattered_points_use_the_knn_graph():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, size=(60, 2))
    vals = np.sin(3 * pts[:, 0]) * np.cos(3 * pts[:, 1])
    field = rng.uniform(size=60)
    st = basin_statistics(vals, field, points=pts, k=5)
    tree = merge_tree(vals, points=pts, k=5)
    lab = tree.basin_label
    for i, m in enumerate(st.minima):
        sel = field[lab == m]
        assert st.size[i] == sel.size and st.mean[i] == pytest.approx(sel.mean()) and st.max[i] == sel.max()


def test_bad_field():
    v = np.arange(6.0).reshape(2, 3)
    with pytest.raises(InputError, match=r"field: expected one value per point, of shape \(2, 3\)"):
        basin_statistics(v, np.zeros((3, 2, 1)))
    with pytest.raises(InputError, match="field: 1 of 6 entries are NaN or inf"):
        basin_statistics(v, np.array([[0, 1, np.nan], [0, 0, 0]]))
