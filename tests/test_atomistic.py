"""The QM9 recipe's pure-torch graph operations against brute force, and the models built on them against
torch-geometric's own forward passes run on brute-force graphs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from recipes.qm9 import PaddedMolecules, RadiusGraph, radius_graph, triplets

from landform.errors import InputError


def brute_radius(pos, batch, cutoff, k=None, loop=False):
    """Edges (j, i) by a double loop over atoms; each target keeps its k nearest sources (ties by index)."""
    pos = pos.double().numpy()
    n = len(pos)
    edges = []
    for i in range(n):
        cand = []
        for j in range(n):
            if batch[i] != batch[j] or (i == j and not loop):
                continue
            d = float(np.linalg.norm(pos[i] - pos[j]))
            if d < cutoff:
                cand.append((d, j))
        cand.sort()
        edges += [(j, i) for _, j in (cand if k is None else cand[:k])]
    return sorted(edges, key=lambda e: (e[1], e[0]))


def brute_triplets(edge_index):
    row, col = edge_index.tolist()
    out = []
    for ji, (j, i) in enumerate(zip(row, col, strict=True)):
        for kj, (k, j2) in enumerate(zip(row, col, strict=True)):
            if j2 == j and k != i:
                out.append((i, j, k, kj, ji))
    return sorted(out)


def random_molecules(seed, sizes, box=3.0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g) * box
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return pos, batch


@pytest.mark.parametrize("seed, sizes, cutoff, k", [(0, [5, 1, 7], 1.5, None), (1, [9, 4], 2.0, 3), (2, [12], 1.0, None),
                                                    (3, [6, 6, 6], 5.0, 2)])  # fmt: skip
def test_radius_graph_matches_brute_force(seed, sizes, cutoff, k):
    pos, batch = random_molecules(seed, sizes)
    got = radius_graph(pos, cutoff, batch, max_num_neighbors=k)
    assert got.dtype == torch.long
    assert [tuple(e) for e in got.T.tolist()] == brute_radius(pos, batch, cutoff, k)


def test_radius_graph_unsorted_batch_and_loops():
    pos, batch = random_molecules(4, [4, 5, 3])
    perm = torch.randperm(len(batch), generator=torch.Generator().manual_seed(0))
    pos, batch = pos[perm], batch[perm]
    for loop in (False, True):
        got = radius_graph(pos, 2.0, batch, max_num_neighbors=None, loop=loop)
        assert [tuple(e) for e in got.T.tolist()] == brute_radius(pos, batch, 2.0, None, loop=loop)


def test_radius_graph_bad_input():
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        radius_graph(torch.zeros(4, 2), 1.0)
    with pytest.raises(InputError, match="batch must have shape"):
        radius_graph(torch.zeros(4, 3), 1.0, torch.zeros(3, dtype=torch.long))
    assert radius_graph(torch.zeros(0, 3), 1.0).shape == (2, 0)


@pytest.mark.parametrize("seed, sizes, cutoff", [(0, [5, 1, 7], 1.5), (1, [9, 4], 2.0), (5, [8, 8], 5.0)])
def test_triplets_match_brute_force(seed, sizes, cutoff):
    pos, batch = random_molecules(seed, sizes)
    ei = radius_graph(pos, cutoff, batch)
    i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(ei, len(pos))
    assert torch.equal(i, ei[1]) and torch.equal(j, ei[0])
    got = sorted(zip(idx_i.tolist(), idx_j.tolist(), idx_k.tolist(), idx_kj.tolist(), idx_ji.tolist(), strict=True))
    assert got == brute_triplets(ei)
    assert len(got) > 0
    # every triplet's two edges really are k->j and j->i
    assert torch.equal(ei[0, idx_kj], idx_k) and torch.equal(ei[1, idx_kj], idx_j)
    assert torch.equal(ei[0, idx_ji], idx_j) and torch.equal(ei[1, idx_ji], idx_i)


# --------------------------------------------------------------------------- models (need torch-geometric)
def _brute_graph_tensor(pos, batch, cutoff, k):
    e = brute_radius(pos.detach(), batch.tolist(), cutoff, k)
    return torch.tensor(e, dtype=torch.long).T.reshape(2, -1)


def _molecules(seed=0, sizes=(5, 3, 6)):
    g = torch.Generator().manual_seed(seed)
    b, a = len(sizes), max(sizes)
    z = torch.zeros(b, a, dtype=torch.long)
    pos = torch.zeros(b, a, 3)
    for m, n in enumerate(sizes):
        z[m, :n] = torch.tensor([6, 1, 7, 8, 9, 1, 1, 6])[torch.randint(0, 8, (n,), generator=g)]
        pos[m, :n] = torch.rand(n, 3, generator=g) * 2.5
    return z, pos


def test_schnet_with_pure_torch_graph_equals_brute_force_graph():
    models = pytest.importorskip("torch_geometric.nn.models")
    from recipes.qm9 import schnet

    torch.manual_seed(0)
    ours = schnet(hidden=16, interactions=2, gaussians=10, cutoff=2.0)
    ref = models.SchNet(hidden_channels=16, num_filters=16, num_interactions=2, num_gaussians=10, cutoff=2.0,
                        interaction_graph=lambda p, b: (lambda ei: (ei, (p[ei[0]] - p[ei[1]]).norm(dim=-1)))(
                            _brute_graph_tensor(p, b, 2.0, 32)))  # fmt: skip
    ref.load_state_dict(ours.state_dict())
    z, pos = _molecules()
    mask = z > 0
    batch = torch.repeat_interleave(torch.arange(z.shape[0]), mask.sum(1))
    a = ours.eval()(z[mask], pos[mask], batch)
    b = ref.eval()(z[mask], pos[mask], batch)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_dimenet_forward_equals_pyg_forward_on_brute_force_graph(monkeypatch):
    pytest.importorskip("torch_geometric.nn.models")
    import torch_geometric.nn.models.dimenet as pyg_dimenet
    from recipes.qm9 import dimenet_pp

    torch.manual_seed(0)
    ours = dimenet_pp(hidden=16, blocks=2, cutoff=2.5).eval()
    for p in ours.parameters():  # DimeNet++ initialises its output layers to zero; make them count
        torch.nn.init.normal_(p, std=0.3) if p.dim() > 1 else None

    def fake_radius_graph(pos, r, batch=None, max_num_neighbors=32, **_):
        return _brute_graph_tensor(pos, batch, r, max_num_neighbors)

    def fake_triplets(edge_index, num_nodes):
        row, col = edge_index
        t = brute_triplets(edge_index)
        cols = torch.tensor(t, dtype=torch.long).T
        return col, row, cols[0], cols[1], cols[2], cols[3], cols[4]

    monkeypatch.setattr(pyg_dimenet, "radius_graph", fake_radius_graph)
    monkeypatch.setattr(pyg_dimenet, "triplets", fake_triplets)
    z, pos = _molecules(1)
    mask = z > 0
    batch = torch.repeat_interleave(torch.arange(z.shape[0]), mask.sum(1))
    with torch.no_grad():
        a = ours(z[mask], pos[mask], batch)
        b = pyg_dimenet.DimeNetPlusPlus.forward(ours, z[mask], pos[mask], batch)
    assert a.abs().max() > 1e-3  # a non-trivial output
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["schnet", "dimenet++"])
def test_padded_molecules_invariances(arch):
    pytest.importorskip("torch_geometric.nn.models")
    from recipes.qm9 import dimenet_pp, schnet

    torch.manual_seed(1)
    net = schnet(hidden=16, interactions=2, gaussians=10) if arch == "schnet" else dimenet_pp(hidden=16, blocks=1)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2) if p.dim() > 1 else None
    ref = torch.zeros(10)
    ref[[1, 6, 7, 8, 9]] = torch.tensor([-1.0, -5.0, -6.0, -7.0, -8.0])
    model = PaddedMolecules(net, shift=0.5, scale=2.0, element_ref=ref).eval()
    z, pos = _molecules(2)
    with torch.no_grad():
        out = model(z, pos)
        # a molecule alone == the same molecule in the batch
        alone = model(z[1:2, :3], pos[1:2, :3])
        # rotated and translated
        q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3)))
        moved = model(z, pos @ q.T + torch.tensor([1.0, -2.0, 0.5]))
        # atoms of each molecule permuted (padding stays at the end)
        perm = torch.tensor([2, 0, 4, 1, 3, 5])
        zp, pp = z.clone(), pos.clone()
        zp[0, :5], pp[0, :5] = z[0, perm[:5]], pos[0, perm[:5]]
        permuted = model(zp, pp)
    assert out.shape == (3,)
    torch.testing.assert_close(alone[0], out[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(moved, out, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(permuted, out, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="no atoms"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, 3))


@pytest.mark.slow
def test_schnet_hessian_matches_dense_hessian():
    """Curvature through the pure-torch graph: landform's top eigenvalues vs a dense autograd Hessian."""
    pytest.importorskip("torch_geometric.nn.models")
    from recipes.qm9 import schnet
    from torch.func import functional_call

    from landform import Objective, hessian_eigenpairs

    torch.manual_seed(0)
    model = PaddedMolecules(schnet(hidden=4, interactions=1, gaussians=4, cutoff=2.0)).eval()
    z, pos = _molecules(3, sizes=(4, 3, 5, 2))
    y = torch.randn(4)
    loss = torch.nn.functional.mse_loss
    obj = Objective(model, ((z, pos), y), loss)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()

    def f(theta):
        parts, k = {}, 0
        for n, s in zip(names, shapes, strict=True):
            parts[n] = theta[k : k + math.prod(s)].reshape(s).float()
            k += math.prod(s)
        return loss(functional_call(model, parts, (z, pos)), y).double()

    dense = torch.autograd.functional.hessian(f, theta0)
    evals = torch.linalg.eigvalsh(dense)
    got = hessian_eigenpairs(obj, 2, which="LA", tol=1e-6, seed=0)
    np.testing.assert_allclose(np.asarray(got.values), evals.flip(0)[:2].numpy(), rtol=1e-3, atol=1e-5)


def test_radius_graph_module_lengths():
    pos, batch = random_molecules(7, [6, 4])
    ei, w = RadiusGraph(1.8)(pos, batch)
    for (j, i), d in zip(ei.T.tolist(), w.tolist(), strict=True):
        assert d == pytest.approx(float((pos[i] - pos[j]).norm()), abs=1e-6) and d < 1.8
    assert len(list(itertools.chain(ei.T.tolist()))) == len(brute_radius(pos, batch, 1.8, 32))


def test_molecule_batches_keep_the_loss():
    pytest.importorskip("torch_geometric.nn.models")
    from recipes.qm9 import molecule_batches, scaled_l1, schnet

    from landform import Objective

    torch.manual_seed(0)
    model = PaddedMolecules(schnet(hidden=8, interactions=1, gaussians=6, cutoff=2.0)).eval()
    z, pos = _molecules(4, sizes=(4, 3, 5, 2, 6, 3, 4))
    y = torch.randn(7)
    pair = ((z, pos), y)
    batches = molecule_batches(pair, 3)
    assert [len(b[1]) for b in batches] == [3, 3, 1]
    loss = scaled_l1(2.0)
    assert Objective(model, batches, loss).loss() == pytest.approx(Objective(model, pair, loss).loss(), rel=1e-6)
