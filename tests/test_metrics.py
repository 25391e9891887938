"""CKA, sharpness, mode connectivity, diagram distances and robust SMAD."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from landform import InputError, Objective, grid_landscape, random_directions
from landform.metrics import (
    bottleneck_distance,
    cka,
    layer_cka,
    mode_connectivity,
    robust_smad,
    sharpness,
    wasserstein_distance,
)
from landform.topology import smad


# ---------------------------------------------------------------- CKA
def _direct_cka(X, Y):
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T
    return np.trace(K @ H @ L @ H) / np.sqrt(np.trace(K @ H @ K @ H) * np.trace(L @ H @ L @ H))


def _direct_unbiased_hsic(K, L):
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * one @ Kt @ Lt @ one
    ) / (n * (n - 3))


def test_cka_properties_and_direct_formula():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 9))
    Y = Y + X @ rng.normal(size=(6, 9))  # related, not identical
    assert cka(X, X) == pytest.approx(1.0)
    assert cka(X, X, kernel="rbf") == pytest.approx(1.0)
    assert cka(X, X, unbiased=True) == pytest.approx(1.0)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert cka(X @ Q * 5.0, Y) == pytest.approx(cka(X, Y), rel=1e-12)
    assert cka(X, Y) == pytest.approx(_direct_cka(X, Y), rel=1e-12)
    K, L = X @ X.T, Y @ Y.T
    ref_u = _direct_unbiased_hsic(K, L) / np.sqrt(_direct_unbiased_hsic(K, K) * _direct_unbiased_hsic(L, L))
    assert cka(X, Y, unbiased=True) == pytest.approx(ref_u, rel=1e-10)
    assert 0.0 < cka(X, Y) < 1.0
    assert cka(torch.tensor(X), torch.tensor(Y)) == pytest.approx(cka(X, Y))


@pytest.mark.parametrize(
    "X, Y, kwargs, match",
    [
        (np.ones((10, 3)), np.random.default_rng(0).normal(size=(10, 2)), {}, "zero variance"),
        (np.zeros((1, 3)), np.zeros((1, 3)), {}, "at least 2"),
        (np.zeros((5, 3)), np.zeros((6, 3)), {}, "same number of samples"),
        (
            np.random.default_rng(0).normal(size=(3, 2)),
            np.random.default_rng(1).normal(size=(3, 2)),
            {"unbiased": True},
            "at least 4",
        ),
        (np.full((4, 2), np.nan), np.zeros((4, 2)), {}, "NaN"),
    ],
)
def test_cka_guards(X, Y, kwargs, match):
    with pytest.raises(InputError, match=match):
        cka(X, Y, **kwargs)


def test_layer_cka_minibatched():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    torch.manual_seed(1)
    b = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(60, 5)
    batches = [(x[i : i + 20], None) for i in range(0, 60, 20)]
    same = layer_cka(a, a, batches, ["0", "2"])
    np.testing.assert_allclose(np.diag(same), 1.0, rtol=1e-10)
    cross = layer_cka(a, b, batches, ["0", "2"])
    assert cross.shape == (2, 2) and np.all(cross < 0.999)
    with pytest.raises(InputError, match="no module"):
        layer_cka(a, b, batches, ["nope"])


# ---------------------------------------------------------------- sharpness
@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, (x, y)


def test_sharpness_zero_monotone_and_ordered(trained):
    model, data = trained
    obj = Objective(model, data, nn.functional.cross_entropy)
    for kind in ("average", "worst"):
        assert sharpness(obj, rho=0.0, kind=kind).value == 0.0
    rhos = [0.05, 0.1, 0.2, 0.4]
    for norm, adaptive in (("l2", False), ("linf", False), ("l2", True)):
        scale = 0.1 if norm == "linf" else 1.0
        avg = [sharpness(obj, rho=r * scale, kind="average", norm=norm, adaptive=adaptive).value for r in rhos]
        worst = [sharpness(obj, rho=r * scale, kind="worst", norm=norm, adaptive=adaptive).value for r in rhos]
        assert np.all(np.diff(avg) > 0), (norm, avg)
        assert np.all(np.diff(worst) > 0), (norm, worst)
        assert all(w >= a for w, a in zip(worst, avg, strict=True))
    # the worst case really ascends beyond the random start
    s = sharpness(obj, rho=0.2, kind="worst", steps=0).value
    assert sharpness(obj, rho=0.2, kind="worst", steps=20).value > s
    with pytest.raises(InputError, match="rho"):
        sharpness(obj, rho=-0.1)


# ---------------------------------------------------------------- mode connectivity
def _train(seed, x, y, steps=400):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return m


@pytest.fixture(scope="module")
def two_models():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 2, generator=g)
    y = ((x[:, 0] * x[:, 1]) > 0).long()  # XOR-like: separately trained solutions differ
    return _train(0, x, y), _train(1, x, y), (x, y)


def test_linear_path_equals_direct_evaluation(two_models):
    a, b, (x, y) = two_models
    before = [p.clone() for p in a.parameters()]
    res = mode_connectivity(a, b, (x, y), nn.functional.cross_entropy, n_points=5)
    for t, lval in zip(res.t, res.loss, strict=True):
        m = copy.deepcopy(a)
        with torch.no_grad():
            for pm, pa, pb in zip(m.parameters(), a.parameters(), b.parameters(), strict=True):
                pm.copy_((1 - t) * pa + t * pb)
            assert lval == pytest.approx(float(nn.functional.cross_entropy(m(x), y)), rel=1e-5)
    with torch.no_grad():
        assert res.loss[0] == pytest.approx(float(nn.functional.cross_entropy(a(x), y)), rel=1e-6)
        assert res.loss[-1] == pytest.approx(float(nn.functional.cross_entropy(b(x), y)), rel=1e-6)
    assert res.barrier == pytest.approx(res.loss.max() - max(res.loss[0], res.loss[-1]))
    assert all(torch.equal(p, q) for p, q in zip(before, a.parameters(), strict=True))


def test_bezier_not_above_linear(two_models):
    a, b, data = two_models
    acc = lambda out, t: (out.argmax(1) == t).float().mean()  # noqa: E731
    lin = mode_connectivity(a, b, data, nn.functional.cross_entropy, metric=acc)
    bez = mode_connectivity(a, b, data, nn.functional.cross_entropy, curve="bezier", train_steps=300, metric=acc)
    assert lin.barrier > 0.05  # the two solutions really are separated on the straight line
    assert bez.barrier <= lin.barrier
    assert bez.loss[0] == pytest.approx(lin.loss[0]) and bez.loss[-1] == pytest.approx(lin.loss[-1])
    assert bez.metric is not None and bez.metric.shape == bez.t.shape
    assert lin.connectivity < 0  # Yang et al.: negative over a barrier


def test_batchnorm_statistics_recomputed_on_the_path():
    torch.manual_seed(0)
    mk = lambda: nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))  # noqa: E731
    a, b = mk(), mk()
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    res = mode_connectivity(a, b, (x, y), nn.functional.cross_entropy, n_points=3)
    # reference: the interpolated model with statistics recomputed by hand over the whole data
    m = copy.deepcopy(a)
    with torch.no_grad():
        for pm, pa, pb in zip(m.parameters(), a.parameters(), b.parameters(), strict=True):
            pm.copy_(0.5 * pa + 0.5 * pb)
        m[1].reset_running_stats()
        m[1].momentum = None
        m.train()
        m(x)
        m.eval()
        assert res.loss[1] == pytest.approx(float(nn.functional.cross_entropy(m(x), y)), rel=1e-5)
    assert a[1].momentum == 0.1  # the user's model is untouched


def test_different_architectures_refused(two_models):
    a, _, data = two_models
    other = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    with pytest.raises(InputError, match="same architecture"):
        mode_connectivity(a, other, data, nn.functional.cross_entropy)


# ---------------------------------------------------------------- diagram distances
def _brute_w1(a, b):
    """Enumerate every matching of tiny diagrams (finite parts) plus the essential difference."""
    fa, fb = a[np.isfinite(a[:, 1])], b[np.isfinite(b[:, 1])]
    ess = np.abs(np.sort(a[np.isinf(a[:, 1]), 0]) - np.sort(b[np.isinf(b[:, 1]), 0])).sum()
    pts = list(fa) + [None] * len(fb)
    qts = list(fb) + [None] * len(fa)
    best = np.inf
    for perm in itertools.permutations(range(len(qts))):
        cost = 0.0
        for i, j in enumerate(perm):
            p, q = pts[i], qts[j]
            if p is not None and q is not None:
                cost += max(abs(p[0] - q[0]), abs(p[1] - q[1]))
            elif p is not None:
                cost += (p[1] - p[0]) / 2
            elif q is not None:
                cost += (q[1] - q[0]) / 2
        best = min(best, cost)
    return best + ess


def _random_diagram(rng, n):
    b = rng.random(n)
    d = b + rng.random(n)
    out = np.stack([b, d], 1)
    return np.vstack([[[rng.random() * 0.1, np.inf]], out])


def test_wasserstein_against_brute_force_and_bottleneck_against_gudhi():
    gudhi = pytest.importorskip("gudhi")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = _random_diagram(rng, rng.integers(0, 4)), _random_diagram(rng, rng.integers(0, 4))
        assert wasserstein_distance(a, b) == pytest.approx(_brute_w1(a, b), abs=1e-12)
        assert bottleneck_distance(a, b) == pytest.approx(gudhi.bottleneck_distance(a, b, 0), abs=1e-12)
    assert bottleneck_distance(a, a) == 0.0 and wasserstein_distance(a, a) == 0.0
    assert np.isinf(bottleneck_distance(a, a[1:]))  # different numbers of essential classes


# ---------------------------------------------------------------- robust SMAD
def test_robust_smad_equals_individual_runs(trained):
    model, data = trained
    obj = Objective(model, data, nn.functional.cross_entropy)
    res = robust_smad(obj, seeds=(0, 1, 2), directions="random", span=3.0, resolution=9)
    for s, v in zip((0, 1, 2), res.smad, strict=True):
        ls = grid_landscape(obj, random_directions(obj, 2, seed=s), span=3.0, resolution=9, progress=False)
        assert v == pytest.approx(smad(ls.values))
    assert res.std == pytest.approx(np.std(res.smad, ddof=1))
    sub = robust_smad(obj, seeds=(0, 1), data_fraction=0.5, directions="filter", span=1.0, resolution=7)
    assert sub.smad.shape == (2,) and sub.summary()["data_fraction"] == 0.5
    with pytest.raises(InputError, match="at least 2"):
        robust_smad(obj, seeds=(0,))


def test_objective_subset(trained):
    model, (x, y) = trained
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    half = obj.subset(0.5, seed=0)
    assert half.num_samples == 60 and obj.num_samples == 120
    idx = torch.randperm(120, generator=torch.Generator().manual_seed(0))[:60]
    with torch.no_grad():
        assert half.loss() == pytest.approx(float(nn.functional.cross_entropy(model(x[idx]), y[idx])), rel=1e-6)
