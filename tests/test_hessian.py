"""Curvature against a dense Hessian from torch.autograd.functional.hessian on small models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landform import (
    InputError,
    NonFiniteError,
    Objective,
    grid_landscape,
    hessian_density,
    hessian_directions,
    hessian_eigenpairs,
    hessian_trace,
)


def dense_hessian(model, x, y, loss_fn) -> torch.Tensor:
    """Reference Hessian of the full-data loss, built independently of landform."""
    model = model.eval()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(theta):
        params, i = {}, 0
        for n, p in named:
            params[n] = theta[i : i + p.numel()].view_as(p)
            i += p.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(f, theta0)


class TwoTower(nn.Module):
    """Several parameter tensors that share nothing: two separate towers summed."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2, bias=False))
        self.scale = nn.Parameter(torch.tensor([0.7]))

    def forward(self, x):
        return self.a(x) * self.scale + self.b(x)


def _problem(name: str):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
        x, y = torch.randn(50, 4, generator=g), torch.randint(0, 3, (50,), generator=g)
        loss = nn.functional.cross_entropy
    elif name == "cnn_bn":
        from conftest import make_cnn

        model = make_cnn()
        x, y = torch.randn(24, 1, 4, 4, generator=g), torch.randint(0, 4, (24,), generator=g)
        loss = nn.functional.cross_entropy
    elif name == "indefinite":  # far from a minimum: negative eigenvalues
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        x, y = torch.randn(40, 3, generator=g), torch.randn(40, 1, generator=g)
        loss = nn.functional.mse_loss
    else:
        model = TwoTower()
        x, y = torch.randn(30, 3, generator=g), torch.randn(30, 2, generator=g)
        loss = nn.functional.mse_loss
    model = model.double()
    x = x.double()
    if y.is_floating_point():
        y = y.double()
    return model, x, y, loss


MODELS = ["mlp", "cnn_bn", "indefinite", "twotower"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("which", ["LA", "LM", "SA"])
def test_eigenpairs_match_dense_hessian(name, which):
    model, x, y, loss = _problem(name)
    H = dense_hessian(model, x, y, loss)
    evals, evecs = torch.linalg.eigh(H)
    k = 3
    ep = hessian_eigenpairs(Objective(model, (x, y), loss, batch_size=7), k, which=which, tol=1e-8)
    if which == "LA":
        ref = evals.flip(0)[:k]
    elif which == "SA":
        ref = evals[:k]
    else:
        ref = evals[torch.argsort(evals.abs(), descending=True)[:k]]
    np.testing.assert_allclose(ep.values, ref.numpy(), rtol=1e-5, atol=1e-9 * float(evals.abs().max()))
    assert ep.vectors.shape == (k, H.shape[0])
    for i in range(k):
        v = ep.vectors[i]
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-10)
        res = float((H @ v - ep.values[i] * v).norm()) / abs(ep.values[i])
        assert res <= 1e-4
        assert ep.residuals[i] == pytest.approx(res, rel=1e-3, abs=1e-12)
    assert ep.converged.all() and ep.n_hvp <= H.shape[0]
    if name == "indefinite":
        assert float(evals[0]) < 0  # the case really has negative curvature


def test_lm_sees_negative_curvature():
    model, x, y, loss = _problem("indefinite")
    H = dense_hessian(model, x, y, loss)
    evals = torch.linalg.eigvalsh(H)
    assert float(evals[0]) < 0
    k = int(torch.sum(evals.abs() >= abs(float(evals[0]))))  # enough pairs by magnitude to reach it
    ep = hessian_eigenpairs(Objective(model, (x, y), loss), k, which="LM", tol=1e-8)
    assert ep.values.min() == pytest.approx(float(evals[0]), rel=1e-6)
    la = hessian_eigenpairs(Objective(model, (x, y), loss), k, which="LA", tol=1e-8)
    assert la.values.min() > 0  # "LA" would have missed it


def test_float32_model_reaches_residual_1e4():
    from conftest import make_cnn

    model = make_cnn()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 1, 4, 4, generator=g), torch.randint(0, 4, (24,), generator=g)
    ep = hessian_eigenpairs(Objective(model, (x, y), nn.functional.cross_entropy), 3, tol=1e-5)
    assert np.all(ep.residuals <= 1e-4)
    H = dense_hessian(model.double(), x.double(), y, nn.functional.cross_entropy)
    np.testing.assert_allclose(ep.values, torch.linalg.eigvalsh(H).flip(0)[:3].numpy(), rtol=1e-4)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_hvp_over_batches_equals_concatenated(mode):
    model, x, y, loss = _problem("cnn_bn")
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    whole = Objective(model, (x, y), loss).hvp(v, mode=mode)
    split = Objective(model, [(x[:5], y[:5]), (x[5:17], y[5:17]), (x[17:], y[17:])], loss).hvp(v, mode=mode)
    torch.testing.assert_close(split, whole, rtol=1e-10, atol=1e-12)
    H = dense_hessian(model, x, y, loss)
    torch.testing.assert_close(whole, H @ v, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "loss_fn",
    [nn.functional.mse_loss, nn.functional.huber_loss, nn.functional.smooth_l1_loss, nn.functional.cross_entropy],
)
def test_common_losses_in_both_modes(loss_fn):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x = torch.randn(12, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (12,)) if loss_fn is nn.functional.cross_entropy else torch.randn(12, 2).double()
    obj = Objective(model, (x, y), loss_fn)
    v = torch.randn(obj.num_params, dtype=torch.float64)
    ref = dense_hessian(model, x, y, loss_fn) @ v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fwd may fall back to rev with a warning (mse_loss, huber_loss)
        for mode in ("rev", "fwd"):
            torch.testing.assert_close(obj.hvp(v, mode=mode), ref, rtol=1e-8, atol=1e-10)


def test_attention_model_hvp_both_modes():
    class Att(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Linear(4, 8)
            self.att = nn.MultiheadAttention(8, 2, batch_first=True)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            h = self.emb(x)
            a, _ = self.att(h, h, h, need_weights=False)
            return self.out(a.mean(1))

    torch.manual_seed(0)
    model = Att().double()
    x, y = torch.randn(6, 5, 4, dtype=torch.float64), torch.randint(0, 2, (6,))
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    v = torch.randn(obj.num_params, dtype=torch.float64)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.MATH]):
        ref = dense_hessian(model, x, y, nn.functional.cross_entropy) @ v
    for mode in ("rev", "fwd"):
        torch.testing.assert_close(obj.hvp(v, mode=mode), ref, rtol=1e-8, atol=1e-10)


def test_trace_within_three_standard_errors_and_stderr_is_honest():
    model, x, y, loss = _problem("mlp")
    exact = float(torch.trace(dense_hessian(model, x, y, loss)))
    obj = Objective(model, (x, y), loss)
    for method in ("hutchinson", "hutch++"):
        ests = [hessian_trace(obj, method=method, n_hvp=18, seed=s) for s in range(30)]
        values = np.array([e.value for e in ests])
        stderrs = np.array([e.stderr for e in ests])
        within = np.abs(values - exact) <= 3 * stderrs
        assert within.mean() >= 0.9, method
        # the reported standard error matches the spread across seeds (within sampling noise)
        ratio = values.std(ddof=1) / np.sqrt(np.mean(stderrs**2))
        assert 0.5 < ratio < 1.6, (method, ratio)
        assert ests[0].n_hvp == 18


def test_hutchpp_is_exact_when_the_sketch_spans_everything():
    model, x, y, loss = _problem("twotower")
    exact = float(torch.trace(dense_hessian(model, x, y, loss)))
    obj = Objective(model, (x, y), loss)
    est = hessian_trace(obj, method="hutch++", n_hvp=3 * obj.num_params + 3)
    assert est.value == pytest.approx(exact, rel=1e-8)


def _probe_mean_sd(A: np.ndarray, n: int) -> float:
    """Standard deviation of (1/n) sum_k q_k^T A q_k over n normalised Rademacher probes q = z / sqrt(P):
    Var(z^T A z) = 2 sum_{i != j} A_ij^2 for symmetric A."""
    off = A - np.diag(np.diag(A))
    return float(np.sqrt(2.0 * np.sum(off**2) / n) / A.shape[0])


def test_density_moments_match_exact_spectrum():
    """SLQ's p-th moment is, per probe, exactly q^T H^p q (Gauss quadrature, p <= 2 n_steps - 1), so what is left
    is the probes' sampling error, whose standard deviation follows from the dense H. The tolerance is 4 of those
    standard deviations (a pass for all but ~1 in 16,000 seeds) and that is under 30 % of the moment, so a
    quadrature that gets weights or nodes wrong fails."""
    model, x, y, loss = _problem("mlp")
    H = dense_hessian(model, x, y, loss).numpy()
    n = 100
    dens = hessian_density(Objective(model, (x, y), loss), n_probes=n, n_steps=3, seed=0)
    assert dens.weights.sum() == pytest.approx(1.0)
    assert np.trapezoid(dens.density, dens.grid) == pytest.approx(1.0, abs=1e-6)
    for p, A in ((1, H), (2, H @ H)):
        exact = np.trace(A) / H.shape[0]
        sd = _probe_mean_sd(A, n)
        assert 4 * sd < 0.3 * abs(exact)  # the tolerance has teeth
        assert abs(dens.moment(p) - exact) <= 4 * sd, (p, dens.moment(p), exact, sd)


def test_density_finds_the_extreme_eigenvalues():
    model, x, y, loss = _problem("cnn_bn")
    evals = torch.linalg.eigvalsh(dense_hessian(model, x, y, loss)).numpy()
    dens = hessian_density(Objective(model, (x, y), loss), n_probes=2, n_steps=30, seed=0)
    assert dens.nodes.max() == pytest.approx(evals.max(), rel=1e-6)  # Lanczos finds the extreme eigenvalue
    assert dens.grid[0] < evals.min() + 1e-9 and dens.grid[-1] > evals.max()


def test_hessian_directions_are_the_eigenvectors():
    model, x, y, loss = _problem("mlp")
    obj = Objective(model, (x, y), loss)
    d = hessian_directions(obj, 2, tol=1e-8)
    gram = d.vectors @ d.vectors.T
    torch.testing.assert_close(gram, torch.eye(2, dtype=gram.dtype), atol=1e-10, rtol=0)
    assert d.kind == "hessian" and d.eigenvalues[0] >= d.eigenvalues[1]
    ls = grid_landscape(obj, d, span=0.01, resolution=5, progress=False)
    assert ls.directions["eigenvalues"] == pytest.approx(list(d.eigenvalues))
    # quadratic model: curvature of the landscape along axis 0 is lambda_1
    v = ls.values[:, 2]
    h = ls.axes[0][1] - ls.axes[0][0]
    second = (v[3] - 2 * v[2] + v[1]) / h**2
    assert second == pytest.approx(d.eigenvalues[0], rel=1e-3)
    layer = hessian_directions(obj, 2, tol=1e-8, normalization="layer")
    cos = float(torch.nn.functional.cosine_similarity(layer.vectors[0], d.vectors[0], dim=0))
    assert cos < 0.9999  # the reference's convention tilts the direction


def test_bad_input():
    model, x, y, loss = _problem("mlp")
    obj = Objective(model, (x, y), loss)
    with pytest.raises(InputError, match="1 <= k"):
        hessian_eigenpairs(obj, 0)
    with pytest.raises(InputError, match="1 <= k"):
        hessian_eigenpairs(obj, obj.num_params)
    with pytest.raises(InputError, match="which"):
        hessian_eigenpairs(obj, 1, which="BE")
    with pytest.raises(InputError, match="n_probes"):
        hessian_density(obj, n_probes=0)
    with pytest.raises(InputError, match="n_hvp"):
        hessian_trace(obj, n_hvp=0)
    detached = Objective(model, (x, y), lambda o, t: loss(o.detach(), t))
    with pytest.raises(InputError, match="no gradient path"):
        detached.hvp(torch.ones(obj.num_params, dtype=torch.float64))

    def nan_loss(o, t):
        return loss(o, t) + torch.sqrt(o.sum() - o.sum() - 1.0)  # NaN, with a gradient path

    with pytest.raises(NonFiniteError, match="NaN"):
        Objective(model, (x, y), nan_loss).hvp(torch.ones(obj.num_params, dtype=torch.float64))


@pytest.mark.filterwarnings("ignore:hessian_eigenpairs.*did not reach")
def test_float32_basis_and_memory_guard(monkeypatch, mlp_problem):
    """A float32 Lanczos basis (used for millions of parameters) gives the same pairs; a budget whose basis
    cannot fit in free memory is refused with the largest that fits, and the default budget shrinks."""
    import landform.hessian as H

    model, data, loss_fn = mlp_problem
    obj = Objective(model, data, loss_fn)
    ref = hessian_eigenpairs(obj, 2, tol=1e-6)
    monkeypatch.setattr(H, "_FLOAT64_BASIS_LIMIT", 0)
    assert H._basis_dtype(obj.num_params, 10, obj.device) == torch.float32
    got = hessian_eigenpairs(obj, 2, tol=1e-6)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-5)
    assert np.all(got.residuals < 1e-4)
    monkeypatch.setattr(H, "_available_memory", lambda device: 4 * obj.num_params * 10)  # room for 8 float32 rows
    with pytest.raises(InputError, match=r"max_hvp=8 or fewer"):
        hessian_eigenpairs(obj, 2, max_hvp=20)
    with pytest.warns(UserWarning, match="so the budget is 8"):
        hessian_eigenpairs(obj, 2, tol=1e-12)
