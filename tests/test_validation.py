"""Bad input is refused with a LandformError naming the argument; every scalar result follows one NaN policy."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import landform
from landform import (
    InputError,
    LandformError,
    NonFiniteError,
    Objective,
    grid_landscape,
    hessian_density,
    hessian_eigenpairs,
    hessian_trace,
    random_directions,
)
from landform._validation import check_choice, check_float, check_int
from landform.metrics import cka, layer_cka, mode_connectivity, robust_smad, sharpness

ce = nn.functional.cross_entropy


def _problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 3, generator=g)
    y = torch.randint(0, 2, (10,), generator=g)
    return model, x, y


@pytest.fixture(scope="module")
def prob():
    model, x, y = _problem()
    return model, x, y, Objective(model, (x, y), ce)


# ---------------------------------------------------------------- the shared checks
def test_check_helpers():
    assert check_int("n", np.int64(3), minimum=1) == 3
    for bad in (2.5, 2.0, True, "3", None):
        with pytest.raises(InputError, match=r"^n: expected an integer >= 1"):
            check_int("n", bad, minimum=1)
    with pytest.raises(InputError, match=r"n: expected an integer in \[1, 4\], got 5"):
        check_int("n", 5, minimum=1, maximum=4)
    assert check_float("x", 1) == 1.0 and check_float("x", torch.tensor(0.5)) == 0.5
    for bad in ("a", True, float("nan"), float("inf"), None, [1.0]):
        with pytest.raises(InputError, match=r"^x: expected a finite real number"):
            check_float("x", bad, minimum=0.0)
    with pytest.raises(InputError, match="> 0.0"):
        check_float("x", 0.0, minimum=0.0, strict_minimum=True)
    assert check_choice("k", np.str_("a"), ("a", "b")) == "a"
    with pytest.raises(InputError, match=r"k: expected one of 'a', 'b', got 'c'"):
        check_choice("k", "c", ("a", "b"))
    with pytest.raises(InputError, match="expected one of None"):
        check_choice("k", False, (None, "a"))


# ---------------------------------------------------------------- Objective
def test_empty_data_is_refused(prob):
    model, x, y, _ = prob
    with pytest.raises(InputError, match=r"^data: .*0 rows"):
        Objective(model, (x[:0], y[:0]), ce)
    with pytest.raises(InputError, match=r"^data: .*no samples"):
        Objective(model, [], ce)
    with pytest.raises(InputError, match=r"^data: .*no samples"):
        Objective(model, [(x[:0], y[:0])], ce)


def test_a_loss_that_is_a_vector_only_on_a_later_batch_is_named(prob):
    model, x, y, _ = prob

    def loss(out, t):  # mean on the first batch (6 rows), per-sample on the second (4 rows)
        return ce(out, t) if out.shape[0] == 6 else ce(out, t, reduction="none")

    data = [(x[:6], y[:6]), (x[6:], y[6:])]
    for private_copy in (True, False):
        obj = Objective(model, data, loss, private_copy=private_copy, batch_mode="loop")  # batch 0 is fine
        for call in (obj.loss, obj.gradient, lambda o=obj: o.hvp(torch.ones(o.num_params))):
            with pytest.raises(InputError, match=r"^loss_fn: on batch 1 \(4 samples\) it returned a tensor of shape"):
                call()
    obj = Objective(model, data, loss, batch_mode="vmap")
    with pytest.raises(InputError, match=r"^loss_fn: on batch 1"):
        obj.loss_batch(obj.theta0[None])
    with pytest.raises(InputError, match=r"^loss_fn: on batch 1"):
        grid_landscape(obj, random_directions(obj, 1), resolution=3, progress=False)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"point_batch_size": 0}, "point_batch_size"),
        ({"point_batch_size": 1.5}, "point_batch_size"),
        ({"batch_mode": "fast"}, "batch_mode"),
        ({"private_copy": "yes"}, "private_copy"),
        ({"data_parallel": 1}, "data_parallel"),
        ({"loss_fn": "ce"}, "loss_fn"),
        ({"model": "net"}, "model"),
        ({"data": 3}, "data"),
        ({"loss_fn": lambda o, t: ce(o, t, reduction="none")}, "loss_fn"),
        ({"loss_fn": lambda o, t: float(ce(o, t))}, "loss_fn"),
    ],
)
def test_objective_arguments(prob, kwargs, name):
    model, x, y, _ = prob
    args = {"model": model, "data": (x, y), "loss_fn": ce, **kwargs}
    with pytest.raises(InputError, match=rf"^{name}"):
        Objective(args.pop("model"), args.pop("data"), args.pop("loss_fn"), **args)


def test_theta_arguments(prob):
    *_, obj = prob
    P = obj.num_params
    with pytest.raises(InputError, match=r"^theta: expected shape"):
        obj.loss(torch.zeros(P + 1))
    with pytest.raises(InputError, match=r"^theta: expected a floating dtype"):
        obj.loss(torch.zeros(P, dtype=torch.int64))
    with pytest.raises(InputError, match=r"^theta: expected a \("):
        obj.loss("theta")
    with pytest.raises(InputError, match=r"^thetas: expected a"):
        obj.loss_batch(np.zeros((1, P)))
    with pytest.raises(InputError, match=r"^thetas: expected shape"):
        obj.loss_batch(torch.zeros(P))
    with pytest.raises(InputError, match=r"^v: expected shape"):
        obj.hvp(torch.zeros(P - 1))
    with pytest.raises(InputError, match=r"^mode"):
        obj.hvp(torch.zeros(P), mode="forward")


# ---------------------------------------------------------------- the rest of the public API
def _two(prob):
    model, x, y, obj = prob
    return model, copy.deepcopy(model), (x, y), obj


BAD_CALLS = [
    # (label, call(prob), argument named first in the message)
    ("sharpness n_samples float", lambda p: sharpness(p[3], rho=0.1, n_samples=2.5), "n_samples"),
    ("sharpness n_samples bool", lambda p: sharpness(p[3], rho=0.1, n_samples=True), "n_samples"),
    ("sharpness n_samples 0", lambda p: sharpness(p[3], rho=0.1, n_samples=0), "n_samples"),
    ("sharpness rho str", lambda p: sharpness(p[3], rho="a"), "rho"),
    ("sharpness rho nan", lambda p: sharpness(p[3], rho=float("nan")), "rho"),
    ("sharpness rho negative", lambda p: sharpness(p[3], rho=-0.1), "rho"),
    ("sharpness steps", lambda p: sharpness(p[3], rho=0.1, kind="worst", n_steps=-1), "n_steps"),
    ("sharpness kind", lambda p: sharpness(p[3], rho=0.1, kind="max"), "kind"),
    ("sharpness norm", lambda p: sharpness(p[3], rho=0.1, norm="l1"), "norm"),
    ("sharpness adaptive", lambda p: sharpness(p[3], rho=0.1, adaptive="yes"), "adaptive"),
    ("sharpness seed", lambda p: sharpness(p[3], rho=0.1, seed=1.5), "seed"),
    ("sharpness objective", lambda p: sharpness(p[0], rho=0.1), "objective"),
    ("connectivity non-module a", lambda p: mode_connectivity("a", p[0], (p[1], p[2]), ce), "model_a"),
    ("connectivity non-module b", lambda p: mode_connectivity(p[0], p[0].state_dict(), (p[1], p[2]), ce), "model_b"),
    (
        "connectivity vector loss",
        lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), lambda o, t: ce(o, t, reduction="none")),
        "loss_fn",
    ),
    (
        "connectivity vector loss bezier",
        lambda p: mode_connectivity(
            p[0], p[0], (p[1], p[2]), lambda o, t: ce(o, t, reduction="none"), curve="bezier", train_steps=2
        ),
        "loss_fn",
    ),
    (
        "connectivity vector metric",
        lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, metric=lambda o, t: o.argmax(1) == t),
        "metric",
    ),
    ("connectivity loss not callable", lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), "ce"), "loss_fn"),
    ("connectivity n_points", lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, n_points=2.5), "n_points"),
    ("connectivity n_points 1", lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, n_points=1), "n_points"),
    ("connectivity curve", lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, curve="cubic"), "curve"),
    ("connectivity lr", lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, curve="bezier", lr=0), "lr"),
    (
        "connectivity train_steps",
        lambda p: mode_connectivity(p[0], p[0], (p[1], p[2]), ce, curve="bezier", train_steps=-3),
        "train_steps",
    ),
    ("connectivity empty data", lambda p: mode_connectivity(p[0], p[0], (p[1][:0], p[2][:0]), ce), "data"),
    (
        "connectivity dtype",
        lambda p: mode_connectivity(p[0], copy.deepcopy(p[0]).double(), (p[1], p[2]), ce),
        "model_a and model_b",
    ),
    ("trace n_hvp float", lambda p: hessian_trace(p[3], n_hvp=9.0), "n_hvp"),
    ("trace n_hvp bool", lambda p: hessian_trace(p[3], n_hvp=True), "n_hvp"),
    ("trace method", lambda p: hessian_trace(p[3], method="exact"), "method"),
    ("trace objective", lambda p: hessian_trace(p[0]), "objective"),
    ("trace mode", lambda p: hessian_trace(p[3], mode="both"), "mode"),
    ("eigenpairs k > P", lambda p: hessian_eigenpairs(p[3], p[3].num_params + 5), "k"),
    ("eigenpairs k bool", lambda p: hessian_eigenpairs(p[3], True), "k"),
    ("eigenpairs k 0", lambda p: hessian_eigenpairs(p[3], 0), "k"),
    ("eigenpairs which", lambda p: hessian_eigenpairs(p[3], 1, which="largest"), "which"),
    ("eigenpairs tol", lambda p: hessian_eigenpairs(p[3], 1, tol="small"), "tol"),
    ("eigenpairs max_hvp", lambda p: hessian_eigenpairs(p[3], 1, max_hvp=10.5), "max_hvp"),
    ("density n_probes", lambda p: hessian_density(p[3], n_probes=0), "n_probes"),
    ("density n_steps float", lambda p: hessian_density(p[3], n_steps=4.5), "n_steps"),
    ("density sigma", lambda p: hessian_density(p[3], sigma=-1.0), "sigma"),
    ("density n_grid", lambda p: hessian_density(p[3], n_grid=1), "n_grid"),
    ("directions n bool", lambda p: random_directions(p[3], True), "dims"),
    ("directions n float", lambda p: random_directions(p[3], 2.0), "dims"),
    ("directions n > P", lambda p: random_directions(p[3], 10_000), "dims"),
    ("directions seed", lambda p: random_directions(p[3], 1, seed="x"), "seed"),
    ("directions normalization", lambda p: random_directions(p[3], 1, normalization="unit"), "normalization"),
    ("directions objective", lambda p: random_directions(p[0], 1), "objective"),
    ("grid resolution bool", lambda p: grid_landscape(p[3], random_directions(p[3], 1), resolution=True), "resolution"),
    ("grid span str", lambda p: grid_landscape(p[3], random_directions(p[3], 1), span="big"), "span"),
    (
        "grid chunk_points",
        lambda p: grid_landscape(p[3], random_directions(p[3], 1), resolution=3, chunk_points=2.5),
        "chunk_points",
    ),
    ("grid objective", lambda p: grid_landscape(p[0], None), "objective"),
    ("grid directions device", lambda p: grid_landscape(p[3], torch.ones(1, p[3].num_params, device="meta")), "directions"),
    ("grid directions dtype", lambda p: grid_landscape(p[3], torch.ones(1, p[3].num_params, dtype=torch.int64)), "directions"),
    ("robust seeds", lambda p: robust_smad(p[3], seeds=(0, 1.5)), "seeds"),
    ("robust seeds int", lambda p: robust_smad(p[3], seeds=3), "seeds"),
    ("robust data_fraction", lambda p: robust_smad(p[3], data_fraction=1.5), "data_fraction"),
    ("robust data_fraction str", lambda p: robust_smad(p[3], data_fraction="half"), "data_fraction"),
    ("robust dims", lambda p: robust_smad(p[3], dims=0), "dims"),
    ("robust resolution", lambda p: robust_smad(p[3], resolution=1), "resolution"),
    ("robust directions", lambda p: robust_smad(p[3], directions="pca"), "directions"),
    ("cka kernel", lambda p: cka(np.eye(4), np.eye(4), kernel="poly"), "kernel"),
    ("cka rows", lambda p: cka(np.eye(4), np.eye(5)), "X and Y"),
    ("cka sigma", lambda p: cka(np.eye(4), np.eye(4), kernel="rbf", sigma=0), "sigma"),
    ("cka empty", lambda p: cka(np.zeros((0, 3)), np.zeros((0, 3))), "X"),
    ("layer_cka model", lambda p: layer_cka("a", p[0], [(p[1], p[2])], ["0"]), "model_a"),
    ("layer_cka layers str", lambda p: layer_cka(p[0], p[0], [(p[1], p[2])], "0"), "layers_a"),
    ("layer_cka layer name", lambda p: layer_cka(p[0], p[0], [(p[1], p[2])], ["fc9"]), "layers_a"),
    ("layer_cka small batch", lambda p: layer_cka(p[0], p[0], [(p[1][:3], p[2][:3])], ["0"]), "data"),
    ("layer_cka max_batches", lambda p: layer_cka(p[0], p[0], [(p[1], p[2])], ["0"], max_batches=0), "max_batches"),
    ("sample_points n", lambda p: landform.sample_points(2.5, 2), "n_points"),
    ("sample_points dims bool", lambda p: landform.sample_points(8, True), "dims"),
    ("sample_points method", lambda p: landform.sample_points(8, 2, method="grid"), "method"),
    ("scattered points nan", lambda p: landform.scattered_landscape(p[3], random_directions(p[3], 1), [[np.nan]]), "points"),
    ("adaptive n_initial", lambda p: landform.adaptive_landscape(p[3], random_directions(p[3], 1), n_initial=1.5), "n_initial"),
    (
        "adaptive max_rounds",
        lambda p: landform.adaptive_landscape(p[3], random_directions(p[3], 1), max_rounds=-1),
        "max_rounds",
    ),
    ("sweep dims", lambda p: landform.dimension_sweep(p[3], dims=(2, 2.5)), "dims"),
    ("bottleneck shape", lambda p: landform.bottleneck_distance(np.zeros((2, 3)), np.zeros((1, 2))), "d1"),
    ("wasserstein nan", lambda p: landform.wasserstein_distance(np.zeros((1, 2)), [[np.nan, 1.0]]), "d2"),
    ("bottleneck death < birth", lambda p: landform.bottleneck_distance([[1.0, 0.0]], [[0.0, 1.0]]), "d1"),
]


@pytest.mark.parametrize("label, call, name", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_the_argument(prob, label, call, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(LandformError) as info:
            call(prob)
    assert isinstance(info.value, InputError), (label, type(info.value))
    assert str(info.value).startswith(name), (label, str(info.value))


# ---------------------------------------------------------------- one NaN policy
@pytest.fixture(scope="module")
def nan_prob():
    model, x, y = _problem(1)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    return model, x, y, Objective(model, (x, y), ce)


@pytest.mark.parametrize(
    "label, call",
    [
        ("loss", lambda p: p[3].loss()),
        ("gradient", lambda p: p[3].gradient()),
        ("hvp", lambda p: p[3].hvp(torch.ones(p[3].num_params))),
        ("trace", lambda p: hessian_trace(p[3], n_hvp=6)),
        ("eigenpairs", lambda p: hessian_eigenpairs(p[3], 1)),
        ("density", lambda p: hessian_density(p[3], n_probes=1, n_steps=3)),
        ("sharpness average", lambda p: sharpness(p[3], rho=0.1)),
        ("sharpness worst", lambda p: sharpness(p[3], rho=0.1, kind="worst")),
        ("connectivity", lambda p: mode_connectivity(p[0], _problem(2)[0], (p[1], p[2]), ce, n_points=3)),
        ("connectivity bezier", lambda p: mode_connectivity(_problem(2)[0], p[0], (p[1], p[2]), ce, curve="bezier", train_steps=3, n_points=3)),
        ("robust_smad", lambda p: robust_smad(p[3], seeds=(0, 1), resolution=3)),
        ("cka", lambda p: cka(p[0](p[1]).detach(), p[1])),
        ("layer_cka", lambda p: layer_cka(p[0], p[0], [(p[1], p[2])], ["0"])),
    ],
)
def test_nonfinite_scalar_results_raise(nan_prob, label, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NonFiniteError, match="NaN|nan|inf"):
            call(nan_prob)


def test_sharpness_at_a_perturbation_that_overflows_raises():
    model = nn.Linear(2, 1)
    x, y = torch.randn(8, 2), torch.randn(8, 1)
    obj = Objective(model, (x, y), lambda o, t: torch.exp(((o - t) ** 2).mean() * 50))
    assert np.isfinite(obj.loss())
    with pytest.raises(NonFiniteError, match="rho"):
        sharpness(obj, rho=100.0)


def test_grids_keep_nan_and_flag_it(nan_prob):
    *_, obj = nan_prob
    with pytest.warns(UserWarning, match="NaN or inf"):
        ls = grid_landscape(obj, random_directions(obj, 2), resolution=3, progress=False)
    assert np.isnan(ls.values).all() and ls.n_nonfinite == 9 and np.isnan(ls.center_value)
    assert np.isnan(obj.loss_batch(obj.theta0[None]).numpy()).all()  # the landscape path never raises
    sc = landform.scattered_landscape(obj, random_directions(obj, 1), np.array([[0.0], [0.5]]))
    assert np.isnan(sc.values).all() and np.isnan(sc.center_value)


# ---------------------------------------------------------------- mode connectivity: BatchNorm only, seeded
class _DropBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(self.bn(self.drop(torch.relu(self.fc1(x)))))  # dropout feeds BatchNorm's statistics


def test_connectivity_recomputes_batchnorm_without_dropout_and_ignores_the_global_seed():
    torch.manual_seed(0)
    a, b = _DropBN(), _DropBN()
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        lin = mode_connectivity(a, b, (x, y), ce, n_points=3)
        bez = mode_connectivity(a, b, (x, y), ce, curve="bezier", train_steps=20, n_points=3)
        assert torch.equal(torch.get_rng_state(), state)  # the global state is left alone
        runs.append((lin.loss, bez.loss, bez.bend))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert torch.equal(runs[0][2], runs[1][2])
    # reference at t = 1/2: statistics from one pass with BatchNorm (only) in train mode, dropout off
    m = copy.deepcopy(a).eval()
    with torch.no_grad():
        for pm, pa, pb in zip(m.parameters(), a.parameters(), b.parameters(), strict=True):
            pm.copy_(0.5 * pa + 0.5 * pb)
        m.bn.reset_running_stats()
        m.bn.momentum = None
        m.bn.train()
        m(x)
        m.eval()
        assert runs[0][0][1] == pytest.approx(float(ce(m(x), y)), rel=1e-6)
    assert a.training and a.drop.training  # the user's model keeps its flags
