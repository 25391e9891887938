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
from landform.topology import persistence, persistence_range, smad


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


def test_linear_cka_is_the_same_at_any_scale_float64_holds():
    """Linear CKA is scale-invariant, so representations of size 1e-170 or 1e160 (whose products underflow or
    overflow float64) give the value of the same representations at size 1, biased and unbiased."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 4))
    for unbiased in (False, True):
        ref = cka(X, Y, unbiased=unbiased)
        for sx, sy in ((1e-170, 1.0), (1e160, 1e160), (1e-300, 1e150)):
            assert cka(sx * X, sy * Y, unbiased=unbiased) == pytest.approx(ref, rel=1e-12)


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
    s = sharpness(obj, rho=0.2, kind="worst", n_steps=0).value
    assert sharpness(obj, rho=0.2, kind="worst", n_steps=20).value > s
    with pytest.raises(InputError, match="rho"):
        sharpness(obj, rho=-0.1)


def _quadratic(fit: bool):
    """A float64 linear least-squares problem: L(theta + delta) - L(theta) = g.delta + delta^T H delta / 2 exactly,
    with the exact H by torch.autograd.functional.hessian. ``fit``: theta at the least-squares optimum (g = 0)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.3], dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3 * torch.randn(40, 1, generator=g, dtype=torch.float64)
    if fit:
        A = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], 1)
        sol = torch.linalg.lstsq(A, y).solution
        with torch.no_grad():
            model.weight.copy_(sol[:3].T)
            model.bias.copy_(sol[3])
    obj = Objective(model, (x, y), nn.functional.mse_loss)
    H = torch.autograd.functional.hessian(lambda t: obj._batch_loss_theta(t, obj._batches[0]), obj.theta0)
    return obj, H.numpy(), obj.gradient().numpy(), obj.theta0.numpy()


def _trust_region_max(g: np.ndarray, H: np.ndarray, rho: float) -> float:
    """max over ||d|| = rho of g.d + d^T H d / 2 (H PSD, so the boundary holds the maximum): d = (lam I - H)^-1 g
    with lam > lambda_max chosen by bisection so that ||d|| = rho (the secular equation)."""
    w, V = np.linalg.eigh(H)
    c = V.T @ g
    lo, hi = w[-1] + 1e-12, w[-1] + np.linalg.norm(g) / rho + 1.0
    for _ in range(200):
        lam = (lo + hi) / 2
        if np.linalg.norm(c / (lam - w)) > rho:
            lo = lam
        else:
            hi = lam
    d = V @ (c / (lam - w))
    return float(g @ d + 0.5 * d @ H @ d)


@pytest.mark.parametrize("norm, adaptive", [("l2", False), ("linf", False), ("l2", True)])
def test_average_sharpness_is_the_mean_increase_over_the_ball(norm, adaptive):
    """For a quadratic, E[L(theta + delta) - L(theta)] = tr(H E[delta delta^T]) / 2 with E[delta delta^T] =
    rho^2/P I (uniform direction on the L2 sphere), rho^2 I (random signs) or rho^2/P diag(theta^2) (adaptive).
    The estimate must sit within 4.5 of its own standard errors of that value: a max instead of the mean, or a
    radius off by sqrt(2), lands tens of standard errors away."""
    obj, H, _, theta = _quadratic(fit=True)
    P, rho = obj.num_params, 0.3
    if norm == "linf":
        want = 0.5 * rho**2 * np.trace(H)
    elif adaptive:
        want = 0.5 * rho**2 / P * float(np.sum(theta**2 * np.diag(H)))
    else:
        want = 0.5 * rho**2 / P * np.trace(H)
    s = sharpness(obj, rho=rho, kind="average", norm=norm, adaptive=adaptive, n_samples=3000, seed=1)
    assert s.n_evals == 3000 and s.base_loss == pytest.approx(obj.loss())
    assert 0 < s.stderr < 0.05 * want
    assert abs(s.value - want) < 4.5 * s.stderr, (s.value, want, s.stderr)


def test_worst_sharpness_reaches_the_exact_maximum_on_the_ball():
    obj, H, g, _ = _quadratic(fit=False)
    assert np.linalg.norm(g) > 0.1  # a real linear term: the maximiser is not an eigenvector
    for rho in (0.05, 0.3):
        exact = _trust_region_max(g, H, rho)
        got = sharpness(obj, rho=rho, kind="worst", n_steps=60).value
        assert got <= exact * (1 + 1e-9)  # never above the true maximum (a larger radius would be)
        assert got >= 0.98 * exact  # and the ascent finds it
    lin = sharpness(obj, rho=0.05, kind="worst", norm="linf", n_steps=60).value
    # L-infinity: the maximum over the cube's corners, by brute force over all 2^P sign patterns
    corners = np.array(list(itertools.product((-0.05, 0.05), repeat=obj.num_params)))
    exact_inf = max(float(g @ d + 0.5 * d @ H @ d) for d in corners)
    assert exact_inf * 0.98 <= lin <= exact_inf * (1 + 1e-9)


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
    with pytest.raises(InputError, match="at least 2"):
        robust_smad(obj, seeds=(0,))


def test_robust_smad_subsamples_the_data_per_seed(trained):
    """With data_fraction, seed s uses the seeded subsample obj.subset(f, seed=s) and directions of seed s: the
    persistence range and SMAD are those of that subsample's landscape, and differ from the full data's."""
    model, (x, y) = trained
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    kw = {"span": 30.0, "resolution": 9}  # wide enough for several minima on both data sets
    sub = robust_smad(obj, seeds=(0, 1), data_fraction=0.3, directions="random", **kw)
    full = robust_smad(obj, seeds=(0, 1), directions="random", **kw)
    assert sub.summary()["data_fraction"] == 0.3
    for i, s in enumerate((0, 1)):
        idx = torch.randperm(120, generator=torch.Generator().manual_seed(s))[:36]
        part = Objective(model, (x[idx], y[idx]), nn.functional.cross_entropy)
        ls = grid_landscape(part, random_directions(part, 2, seed=s), progress=False, **kw)
        assert sub.smad[i] == pytest.approx(smad(ls.values), rel=1e-9, abs=1e-15)
        assert sub.persistence_range[i] == pytest.approx(persistence_range(persistence(ls.values)), rel=1e-9)
    assert sub.n_minima.min() >= 2  # a landscape with something to measure
    assert not np.allclose(sub.persistence_range, full.persistence_range, rtol=1e-3)
    assert not np.allclose(sub.smad, full.smad, rtol=1e-3)


def test_objective_subset(trained):
    model, (x, y) = trained
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    half = obj.subset(0.5, seed=0)
    assert half.num_samples == 60 and obj.num_samples == 120
    idx = torch.randperm(120, generator=torch.Generator().manual_seed(0))[:60]
    with torch.no_grad():
        assert half.loss() == pytest.approx(float(nn.functional.cross_entropy(model(x[idx]), y[idx])), rel=1e-6)
