"""Gauss-Newton, empirical Fisher and parameter blocks against dense matrices built independently of landform.

References: the Jacobian of the outputs from torch.autograd.functional.jacobian, the loss's Hessian in the
outputs from torch.autograd.functional.hessian, per-sample gradients from one autograd.grad call per sample,
the Hessian from torch.autograd.functional.hessian; eigenvalues from numpy.linalg.eigh.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landform import (
    InputError,
    LandformError,
    Objective,
    hessian_density,
    hessian_directions,
    hessian_eigenpairs,
    hessian_trace,
    random_directions,
)
from landform.curvature import CurvatureOperator, param_block


def _named(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _theta0(model):
    return torch.cat([p.detach().reshape(-1) for _, p in _named(model)])


def _params_of(model, theta):
    out, i = {}, 0
    for n, p in _named(model):
        out[n] = theta[i : i + p.numel()].view_as(p)
        i += p.numel()
    return out


def dense_ggn(model, x, y, loss_fn, batch_size):
    """sum_b (n_b / N) J_b^T H_out,b J_b with J_b, H_out,b dense."""
    model = model.eval()
    theta0 = _theta0(model)
    N = x.shape[0]
    G = torch.zeros(theta0.numel(), theta0.numel(), dtype=torch.float64)
    for s in range(0, N, batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        J = torch.autograd.functional.jacobian(
            lambda t, xb=xb: functional_call(model, _params_of(model, t), (xb,)), theta0
        )
        z = functional_call(model, _params_of(model, theta0), (xb,)).detach()
        Hout = torch.autograd.functional.hessian(lambda o, yb=yb: loss_fn(o, yb), z)
        J2 = J.reshape(z.numel(), -1)
        G += (xb.shape[0] / N) * J2.T @ Hout.reshape(z.numel(), z.numel()) @ J2
    return G


def dense_ef(model, x, y, loss_fn):
    """(1/N) sum_i g_i g_i^T with g_i from one autograd.grad per sample."""
    model = model.eval()
    rows = []
    for i in range(x.shape[0]):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [p for _, p in _named(model)])]))
    Gs = torch.stack(rows).double()
    return Gs.T @ Gs / x.shape[0]


def dense_hessian(model, x, y, loss_fn):
    model = model.eval()
    return torch.autograd.functional.hessian(
        lambda t: loss_fn(functional_call(model, _params_of(model, t), (x,)), y), _theta0(model)
    )


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.bn = nn.BatchNorm2d(1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.bn(self.conv(x))).flatten(1))


def _problem(name):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    if name == "mlp_ce":
        model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
        x, y = torch.randn(23, 4, generator=g), torch.randint(0, 3, (23,), generator=g)
        loss = nn.functional.cross_entropy
    elif name == "mlp_mse":
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(2.0)  # far from a fit: the Hessian's residual term is large, H != G
        x, y = torch.randn(23, 3, generator=g), torch.randn(23, 2, generator=g)
        loss = nn.functional.mse_loss
    else:
        model = TinyCNN()
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 2.0)
        x, y = torch.randn(17, 1, 4, 4, generator=g), torch.randint(0, 3, (17,), generator=g)
        loss = nn.functional.cross_entropy
    model = model.double()
    x = x.double()
    y = y.double() if y.is_floating_point() else y
    return model, x, y, loss


CASES = ["mlp_ce", "mlp_mse", "cnn_ce"]
BATCH = 10  # 23 and 17 samples: batches of unequal sizes, so batch weighting matters


def _dense(curvature, model, x, y, loss):
    if curvature == "ggn":
        return dense_ggn(model, x, y, loss, BATCH)
    if curvature == "ef":
        return dense_ef(model, x, y, loss)
    return dense_hessian(model, x, y, loss)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("curvature", ["ggn", "ef"])
def test_products_eigenvalues_and_trace_match_dense(name, curvature):
    model, x, y, loss = _problem(name)
    C = _dense(curvature, model, x, y, loss)
    H = dense_hessian(model, x, y, loss)
    assert float((C - H).norm()) > 1e-3 * float(H.norm())  # the case tells the operators apart
    obj = Objective(model, (x, y), loss, batch_size=BATCH)
    P = obj.num_params
    op = CurvatureOperator(obj, curvature)
    V = torch.randn(3, P, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for v in V:
        torch.testing.assert_close(op(v), C @ v, rtol=1e-9, atol=1e-11)
    evals = np.linalg.eigh(C.numpy())[0]
    ep = hessian_eigenpairs(obj, 3, tol=1e-8, curvature=curvature)
    np.testing.assert_allclose(ep.values, evals[::-1][:3], rtol=1e-6)
    for val, vec in zip(ep.values, ep.vectors, strict=True):
        assert float((C @ vec - val * vec).norm()) <= 1e-5 * abs(val)
    if name == "cnn_ce":
        return  # conv double backward is slow on CPU: the trace and density checks run on the MLPs
    tr = hessian_trace(obj, method="hutch++", n_hvp=3 * P, curvature=curvature)  # Q spans everything: exact
    assert tr.value == pytest.approx(float(C.trace()), rel=1e-8)
    if name == "mlp_mse":
        dens = hessian_density(obj, n_probes=1, n_steps=P, curvature=curvature)
        # a Krylov space as large as the problem: the extreme Ritz values are the extreme eigenvalues
        assert dens.nodes.max() == pytest.approx(evals[-1], rel=1e-6)


def test_ef_cached_and_streamed_products_agree_with_dense():
    model, x, y, loss = _problem("cnn_ce")
    C = dense_ef(model, x, y, loss)
    obj = Objective(model, (x, y), loss, batch_size=BATCH)
    cached, streamed = CurvatureOperator(obj, "ef"), CurvatureOperator(obj, "ef", cache_mb=0)
    assert cached._ef_cache is not None and streamed._ef_cache is None
    v = torch.randn(obj.num_params, dtype=torch.float64)
    torch.testing.assert_close(cached(v), C @ v, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(streamed(v), C @ v, rtol=1e-9, atol=1e-11)


class NoVmap(nn.Module):
    """A data-dependent branch (.item()) that torch.func.vmap cannot trace: the EF falls back to a loop."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        out = self.lin(x)
        return out * 2 if float(x.sum()) > 1e9 else out


def test_ef_falls_back_to_a_loop_when_vmap_fails():
    torch.manual_seed(0)
    model = NoVmap().double()
    x, y = torch.randn(9, 3, dtype=torch.float64), torch.randint(0, 2, (9,))
    loss = nn.functional.cross_entropy
    obj = Objective(model, (x, y), loss)
    for cache in (256.0, 0.0):
        op = CurvatureOperator(obj, "ef", cache_mb=cache)
        assert op._use_vmap is False
        v = torch.randn(obj.num_params, dtype=torch.float64)
        torch.testing.assert_close(op(v), dense_ef(model, x, y, loss) @ v, rtol=1e-9, atol=1e-11)


def test_ggn_equals_hessian_for_a_linear_model_under_mse():
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(3, 2).double()
    x, y = torch.randn(11, 3, generator=g, dtype=torch.float64), torch.randn(11, 2, generator=g, dtype=torch.float64)
    obj = Objective(model, (x, y), nn.functional.mse_loss, batch_size=4)
    H = dense_hessian(model, x, y, nn.functional.mse_loss)
    v = torch.randn(obj.num_params, dtype=torch.float64, generator=g)
    torch.testing.assert_close(CurvatureOperator(obj, "ggn")(v), H @ v, rtol=1e-9, atol=1e-12)


def test_ef_refuses_a_loss_that_is_not_a_mean_of_per_sample_losses():
    model, x, y, _ = _problem("mlp_ce")

    def summed(out, t):
        return nn.functional.cross_entropy(out, t, reduction="sum")

    def batch_coupled(out, t):  # a batch-level term: not a mean of per-sample losses
        return nn.functional.cross_entropy(out, t) + out.mean(0).pow(2).sum()

    for loss in (summed, batch_coupled):
        obj = Objective(model, (x, y), loss, batch_size=BATCH)
        with pytest.raises(LandformError, match=r"curvature='ef'.*not the mean of its per-sample losses.*ggn"):
            hessian_eigenpairs(obj, 2, curvature="ef")
        CurvatureOperator(obj, "ggn")  # the GGN is defined for these losses


def test_bad_curvature_name():
    model, x, y, loss = _problem("mlp_ce")
    with pytest.raises(InputError, match="curvature: expected 'hessian', 'ggn' or 'ef', got 'fisher'"):
        hessian_trace(Objective(model, (x, y), loss), curvature="fisher")


# ------------------------------------------------------------------------------------------- parameter blocks
def _block_index(model, names):
    idx, i = [], 0
    for n, p in _named(model):
        if n in names:
            idx.extend(range(i, i + p.numel()))
        i += p.numel()
    return torch.tensor(idx)


@pytest.mark.parametrize("curvature", ["hessian", "ggn", "ef"])
@pytest.mark.parametrize(
    ("params", "names"),
    [
        (["2.*"], {"2.weight", "2.bias"}),
        (["0.weight", "2.bias"], {"0.weight", "2.bias"}),
        ("module0", {"0.weight", "0.bias"}),
    ],
)
def test_block_eigenpairs_and_trace_match_the_dense_sub_block(curvature, params, names):
    model, x, y, loss = _problem("mlp_ce")
    if params == "module0":
        params = [model[0]]
    idx = _block_index(model, names)
    C = _dense(curvature, model, x, y, loss)
    sub = C[idx][:, idx]
    obj = Objective(model, (x, y), loss, batch_size=BATCH)
    block = param_block(obj, params)
    assert set(block.names) == names and torch.equal(block.index.cpu(), idx)
    ev = np.linalg.eigh(sub.numpy())[0][::-1]
    assert abs(ev[0] - np.linalg.eigh(C.numpy())[0][-1]) > 1e-6 * abs(ev[0])  # the block is not the whole
    ep = hessian_eigenpairs(obj, 2, tol=1e-8, curvature=curvature, params=params)
    np.testing.assert_allclose(ep.values, ev[:2], rtol=1e-6)
    outside = torch.ones(obj.num_params, dtype=torch.bool)
    outside[idx] = False
    assert float(ep.vectors[:, outside].abs().max()) == 0.0
    for val, vec in zip(ep.values, ep.vectors, strict=True):
        assert float((sub @ vec[idx] - val * vec[idx]).norm()) <= 1e-5 * abs(val)
    tr = hessian_trace(obj, n_hvp=3 * len(idx), curvature=curvature, params=params)
    assert tr.value == pytest.approx(float(sub.trace()), rel=1e-8)


def test_block_directions_are_zero_outside_and_recorded():
    model, x, y, loss = _problem("mlp_ce")
    obj = Objective(model, (x, y), loss)
    idx = _block_index(model, {"0.weight", "0.bias"})
    outside = torch.ones(obj.num_params, dtype=torch.bool)
    outside[idx] = False
    d = hessian_directions(obj, 2, params=["0.*"], curvature="ggn", tol=1e-8)
    assert float(d.vectors[:, outside].abs().max()) == 0.0
    assert d.extra["params"] == ["0.weight", "0.bias"] and d.extra["curvature"] == "ggn"
    r = random_directions(obj, 3, params=["0.*"], seed=4)
    assert float(r.vectors[:, outside].abs().max()) == 0.0
    torch.testing.assert_close(r.vectors @ r.vectors.T, torch.eye(3, dtype=r.vectors.dtype), rtol=0, atol=1e-12)
    # without params the directions are what they always were
    torch.testing.assert_close(
        random_directions(obj, 2, seed=4).vectors, random_directions(obj, 2, seed=4, params=None).vectors
    )


def test_params_that_match_nothing_name_the_available_parameters():
    model, x, y, loss = _problem("mlp_ce")
    obj = Objective(model, (x, y), loss)
    with pytest.raises(
        InputError,
        match=r"params: 'conv\*' matches no trainable parameter\. Available names: "
        r"'0\.weight', '0\.bias'",
    ):
        hessian_eigenpairs(obj, 1, params=["conv*"])
    with pytest.raises(InputError, match="params: the module Linear has no trainable parameter"):
        hessian_trace(obj, params=[nn.Linear(2, 2)])
    with pytest.raises(InputError, match="params: the list is empty"):
        random_directions(obj, 1, params=[])
    with pytest.raises(InputError, match=r"k: expected an integer with 1 <= k < P=3 \(parameters in the params block\)"):
        hessian_eigenpairs(obj, 3, params=["2.bias"])


def test_layer_curvature_matches_dense_diagonal_blocks():
    from landform.curvature import layer_curvature

    model, x, y, loss = _problem("cnn_ce")
    obj = Objective(model, (x, y), loss, batch_size=BATCH)
    H = dense_hessian(model, x, y, loss)
    rows = layer_curvature(obj, trace_hvp=60, tol=1e-8)
    assert [r["layer"] for r in rows] == ["conv", "bn", "fc"]
    for r in rows:
        idx = _block_index(model, set(r["params"]))
        sub = H[idx][:, idx]
        assert r["top_eigenvalue"] == pytest.approx(float(torch.linalg.eigvalsh(sub)[-1]), rel=1e-6)
        if r["trace_stderr"] == 0:  # small blocks: the exact trace from basis vectors
            assert r["trace"] == pytest.approx(float(sub.trace()), rel=1e-9, abs=1e-12)
        else:  # Hutch++ within its standard error
            assert abs(r["trace"] - float(sub.trace())) <= 4 * r["trace_stderr"]
    assert rows[0]["trace_stderr"] == 0.0 and rows[2]["trace_stderr"] > 0  # conv (10) exact, fc (51) estimated
    with pytest.raises(InputError, match=r"params: 'nope' matches no trainable parameter"):
        layer_curvature(obj, layers={"x": "nope"})
