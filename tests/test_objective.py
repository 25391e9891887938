from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from landform import InputError, Objective


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def test_loss_equals_direct_evaluation_in_eval_mode(cnn_problem):
    model, (x, y), loss_fn = cnn_problem
    model.train()  # the user's model is in train mode; landform must evaluate in eval mode
    obj = Objective(model, (x, y), loss_fn)
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected = float(loss_fn(ref(x), y))
        train_mode_value = float(loss_fn(copy.deepcopy(model).train()(x), y))
    assert obj.loss() == pytest.approx(expected, rel=1e-6)
    assert abs(train_mode_value - expected) > 1e-4  # the check above could fail


def test_batches_are_weighted_by_size(mlp_problem):
    model, (x, y), loss_fn = mlp_problem
    full = Objective(model, (x, y), loss_fn).loss()
    loader = DataLoader(TensorDataset(x, y), batch_size=7)  # 40 = 5 * 7 + 5: uneven last batch
    assert Objective(model, loader, loss_fn).loss() == pytest.approx(full, rel=1e-6)
    batches = [(x[:3], y[:3]), (x[3:], y[3:])]
    assert Objective(model, batches, loss_fn).loss() == pytest.approx(full, rel=1e-6)
    assert Objective(model, (x, y), loss_fn, batch_size=11).loss() == pytest.approx(full, rel=1e-6)


def test_batched_points_match_a_plain_loop_and_vmap(cnn_problem):
    model, data, loss_fn = cnn_problem
    obj_loop = Objective(model, data, loss_fn, batch_mode="loop")
    obj_vmap = Objective(model, data, loss_fn, batch_mode="vmap", point_batch_size=3)
    g = torch.Generator().manual_seed(0)
    thetas = obj_loop.theta0 + 0.1 * torch.randn(7, obj_loop.num_params, generator=g)
    plain = torch.tensor([obj_loop.loss(t) for t in thetas], dtype=torch.float64)
    assert torch.allclose(obj_loop.loss_batch(thetas), plain, rtol=1e-6)
    assert torch.allclose(obj_vmap.loss_batch(thetas), plain, rtol=1e-5)
    assert obj_loop.resolved_batch_mode == "loop" and obj_vmap.resolved_batch_mode == "vmap"


def test_model_is_never_modified(cnn_problem):
    model, data, loss_fn = cnn_problem
    model.train()
    before, modes = _state(model)
    obj = Objective(model, data, loss_fn)
    obj.loss_batch(obj.theta0 + torch.randn(3, obj.num_params))
    obj.hvp(torch.randn(obj.num_params))
    obj.gradient()
    after, modes_after = _state(model)
    assert modes == modes_after and all(m for m in modes_after)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    for p in model.parameters():
        assert p.grad is None


def test_frozen_parameters_stay_fixed(mlp_problem):
    model, data, loss_fn = mlp_problem
    model[0].weight.requires_grad_(False)
    obj = Objective(model, data, loss_fn)
    assert obj.num_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert obj.layout.names == ("0.bias", "2.weight", "2.bias")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda m, d, f: Objective(m.requires_grad_(False), d, f), "no trainable parameters"),
        (lambda m, d, f: Objective(m, [], f), "no samples"),
        (
            lambda m, d, f: Objective(m, d, lambda o, t: nn.functional.cross_entropy(o, t, reduction="none")),
            "scalar",
        ),
        (lambda m, d, f: Objective(m, d, f, device="meta"), "device"),
        (lambda m, d, f: Objective(m, 3.0, f), "DataLoader"),
        (lambda m, d, f: Objective(m, [(d[0],)], f), r"\(inputs, targets\)"),
        (lambda m, d, f: Objective("not a model", d, f), "torch.nn.Module"),
        (lambda m, d, f: Objective(m, d, f, batch_mode="fast"), "batch_mode"),
        (lambda m, d, f: Objective(m, (d[0][:, :3], d[1]), f), "first batch failed"),
        (lambda m, d, f: Objective(m, (d[0][:-2], d[1]), f), "targets have 40 rows and the inputs 38"),
        (lambda m, d, f: Objective(m, ((d[0], d[0][:5]), d[1]), f), "targets have 40 rows and the inputs 5, 40"),
    ],
)
def test_bad_input_is_named(mlp_problem, build, match):
    model, data, loss_fn = mlp_problem
    with pytest.raises(InputError, match=match):
        build(model, data, loss_fn)


def test_mixed_dtypes_are_refused(mlp_problem):
    model, data, loss_fn = mlp_problem
    model[2].double()
    with pytest.raises(InputError, match="mixed dtypes"):
        Objective(model, data, loss_fn)


def test_theta_of_wrong_shape(mlp_problem):
    obj = Objective(*mlp_problem)
    with pytest.raises(InputError, match="expected shape"):
        obj.loss(torch.zeros(3))
    with pytest.raises(InputError, match=r"\(B, "):
        obj.loss_batch(torch.zeros(obj.num_params))


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(2, 3)

    def forward(self, x, w):
        return self.a(x) * torch.tanh(self.b(w))


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_a_single_pair_with_several_inputs(as_dict, batch_size):
    """((x, w), y) and ({"x": x, "w": w}, y) are one data set, not two batches, and split by batch_size."""
    torch.manual_seed(0)
    model = _TwoInputs()
    x, w, y = torch.randn(20, 4), torch.randn(20, 2), torch.randint(0, 3, (20,))
    inputs = {"x": x, "w": w} if as_dict else (x, w)
    obj = Objective(model, (inputs, y), nn.functional.cross_entropy, batch_size=batch_size)
    assert obj.num_samples == 20
    with torch.no_grad():
        want = float(nn.functional.cross_entropy(model(x, w), y))
    assert obj.loss() == pytest.approx(want, rel=1e-6)


class _Tied(nn.Module):
    """One Linear registered under two names, as torch-geometric's SchNet shares its filter networks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 3)
        self.b = nn.Sequential(self.a, nn.Tanh())

    def forward(self, x):
        return self.b(x) + self.a(x)


@pytest.mark.parametrize("private_copy", [False, True])
def test_a_module_registered_twice_is_left_untouched(private_copy):
    """torch.func.functional_call leaves a shared module holding the tensors it was given; landform must not."""
    torch.manual_seed(0)
    model = _Tied()
    x, y = torch.randn(8, 2), torch.randint(0, 3, (8,))
    before = _state(model)
    weight = model.a.weight
    obj = Objective(model, (x, y), nn.functional.cross_entropy, private_copy=private_copy)
    obj.gradient(obj.theta0 + 1.0)
    obj.hvp(torch.randn(obj.num_params))
    obj.loss_batch(torch.stack([obj.theta0 + 0.5, obj.theta0]))
    assert model.a.weight is weight and model.b[0].weight is weight and weight.requires_grad
    after = _state(model)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0]) and before[1] == after[1]
    with torch.no_grad():
        assert obj.loss() == pytest.approx(float(nn.functional.cross_entropy(model(x), y)), rel=1e-6)
