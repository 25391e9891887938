from __future__ import annotations

import pytest
import torch

from landform import InputError, Objective, random_directions


def test_random_directions_orthonormal_and_reproducible(cnn_problem):
    obj = Objective(*cnn_problem)
    a = random_directions(obj, 3, seed=7)
    b = random_directions(obj, 3, seed=7)
    c = random_directions(obj, 3, seed=8)
    assert a.vectors.shape == (3, obj.num_params)
    assert torch.equal(a.vectors, b.vectors) and not torch.equal(a.vectors, c.vectors)
    assert torch.allclose(a.vectors.double() @ a.vectors.double().T, torch.eye(3, dtype=torch.float64), atol=1e-6)


def test_filter_normalisation_follows_li_et_al(cnn_problem):
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 2, seed=1, normalization="filter")
    for v in d.vectors:
        parts = obj.layout.unflatten(v)
        for name, p in model.named_parameters():
            dv = parts[name]
            if p.dim() <= 1:
                assert torch.count_nonzero(dv) == 0, name  # biases and BN weights are not perturbed
            else:
                want = p.detach().reshape(p.shape[0], -1).norm(dim=1)
                got = dv.reshape(p.shape[0], -1).norm(dim=1)
                assert torch.allclose(got, want, rtol=1e-5), name


def test_layer_normalisation_matches_tensor_norms(cnn_problem):
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn)
    d = random_directions(obj, 1, seed=1, normalization="layer")
    parts = obj.layout.unflatten(d.vectors[0])
    for name, p in model.named_parameters():
        assert float(parts[name].norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5)


def test_bad_counts(mlp_problem):
    obj = Objective(*mlp_problem)
    with pytest.raises(InputError, match="1 <= dims"):
        random_directions(obj, 0)
    with pytest.raises(InputError, match="1 <= dims"):
        random_directions(obj, obj.num_params)
    with pytest.raises(InputError, match="normalization"):
        random_directions(obj, 1, normalization="unit")
