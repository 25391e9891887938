"""Checkpoints, trajectory PCA, projections, planes and linear paths, against numpy and direct evaluation.

The model is defined here (not in the repository): a small MLP with a LayerNorm, a frozen embedding-like
matrix and a buffer, so "trainable parameters only" and "the objective's buffers" are exercised.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from landform import (
    InputError,
    Objective,
    StoreError,
    linear_path,
    load_checkpoints,
    load_trajectory,
    pca_directions,
    plane_directions,
    project_trajectory,
)
from landform.checkpoints import checkpoint_paths


class Wobbly(nn.Module):
    """Frozen projection, LayerNorm, two linear layers, a scale buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Parameter(torch.randn(5, 5), requires_grad=False)
        self.inp = nn.Linear(5, 7)
        self.norm = nn.LayerNorm(7)
        self.out = nn.Linear(7, 3)
        self.register_buffer("scale", torch.tensor(1.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.norm(self.inp(x @ self.frozen)))) * self.scale


def _train(seed: int = 0, steps: int = 12, every: int = 3):
    torch.manual_seed(seed)
    model = Wobbly()
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(64, 5, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.3, momentum=0.5)
    states = [copy.deepcopy(model.state_dict())]
    for s in range(1, steps + 1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if s % every == 0:
            states.append(copy.deepcopy(model.state_dict()))
    return model, (x, y), states


def _flat_np(state: dict, model: nn.Module) -> np.ndarray:
    """Reference flattening: trainable parameters in named_parameters order, float64."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return np.concatenate([state[n].detach().double().numpy().ravel() for n in names])


def _direct_loss(model: nn.Module, state: dict, data) -> float:
    m = copy.deepcopy(model)
    m.load_state_dict(state)
    m.eval()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(m(data[0]), data[1]))


@pytest.fixture(scope="module")
def run():
    model, data, states = _train()
    return model, data, states, Objective(model, data, nn.functional.cross_entropy)


# ----------------------------------------------------------------------------- checkpoints as input
def test_modules_state_dicts_and_files_give_the_same_weights(run, tmp_path):
    model, data, states, obj = run
    from safetensors.torch import save_file

    paths = []
    for i, st in enumerate(states[:3]):
        p = tmp_path / f"ck-{i}.pt"
        torch.save(st, p)
        paths.append(p)
    st_path = tmp_path / "ck-9.safetensors"
    save_file({k: v.contiguous() for k, v in states[1].items()}, str(st_path))
    mods = []
    for st in states[:3]:
        m = Wobbly()
        m.load_state_dict(st)
        mods.append(m)
    want = np.stack([_flat_np(s, model) for s in states[:3]])
    for given in (states[:3], paths, mods):
        d = pca_directions(obj, given, dims=2)
        # the same input as flat vectors: the PCA reproduces from every form
        ref = pca_directions(obj, states[:3], dims=2)
        assert torch.equal(d.vectors, ref.vectors)
    t = project_trajectory(obj, ref, [paths[1], st_path])
    assert t.coords[0] == pytest.approx(t.coords[1], abs=1e-6)  # .pt and .safetensors of one state
    assert t.distance[0] == pytest.approx(np.linalg.norm(want[1] - _flat_np(model.state_dict(), model)), rel=1e-5)


def test_folder_and_glob_are_sorted_by_step_number(tmp_path, run):
    model, data, states, obj = run
    for step in (10, 2, 1, 33):
        torch.save(states[0], tmp_path / f"step-{step}.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    names = [p.name for p in checkpoint_paths(tmp_path)]
    assert names == ["step-1.pt", "step-2.pt", "step-10.pt", "step-33.pt"]
    assert [p.name for p in checkpoint_paths(str(tmp_path / "step-*.pt"))] == names
    cks = load_checkpoints(tmp_path, model)
    assert [c.step for c in cks] == [1, 2, 10, 33]
    with pytest.raises(InputError, match="matches no file"):
        checkpoint_paths(str(tmp_path / "nothing-*.pt"))


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda s: s.pop("norm.weight"), "norm.weight"),  # missing key
        (lambda s: s.__setitem__("out.weight", torch.zeros(4, 7)), "out.weight"),  # other shape
        (lambda s: s.__setitem__("extra.bias", torch.zeros(2)), "extra.bias"),  # unexpected key
    ],
)
def test_mismatched_architecture_names_the_first_differing_key(run, edit, key):
    model, data, states, obj = run
    bad = dict(states[1])
    edit(bad)
    with pytest.raises(InputError, match=f"first differing key is '{key}'"):
        pca_directions(obj, [states[0], bad, states[2]], dims=1)


def test_files_that_are_not_state_dicts_are_refused(run, tmp_path):
    model, data, states, obj = run
    wrapped = tmp_path / "train-state.pt"
    torch.save({"model": states[0], "optimizer": {"lr": 0.1}}, wrapped)
    with pytest.raises(InputError, match=r"not a state dict.*ckpt\['model'\]"):
        project_trajectory(obj, pca_directions(obj, states, dims=1), [wrapped])
    whole = tmp_path / "whole-model.pt"
    torch.save(Wobbly(), whole)  # a pickled module: weights_only=True refuses to run its code
    with pytest.raises(InputError, match="weights_only=True"):
        load_checkpoints([whole], model)
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    with pytest.raises(InputError, match="junk.pt"):
        load_checkpoints([junk], model)
    with pytest.raises(InputError, match="not a state dict"):
        load_checkpoints([[1, 2, 3]], model)


def test_too_few_checkpoints_and_too_many_directions(run):
    model, data, states, obj = run
    with pytest.raises(InputError, match="at least 2 checkpoints"):
        pca_directions(obj, states[:1], dims=1)
    with pytest.raises(InputError, match=r"dims <= \(number of checkpoints - 1\) = 2"):
        pca_directions(obj, states[:3], dims=3)
    with pytest.raises(InputError, match="spans only 1 dimension"):
        pca_directions(obj, [states[0], states[0], states[0]], dims=2)


def test_other_dtype_is_moved_with_a_note(run):
    model, data, states, obj = run
    doubled = [{k: v.double() if v.is_floating_point() else v for k, v in s.items()} for s in states]
    with pytest.warns(UserWarning, match="moved to cpu, float32"):
        d64 = pca_directions(obj, doubled, dims=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d32 = pca_directions(obj, states, dims=2)
    assert d64.vectors.dtype == torch.float32
    with pytest.warns(UserWarning, match="moved"):
        (ck,) = load_checkpoints(doubled[:1], model)
    assert ck.state["inp.weight"].dtype == torch.float32 and ck.state["scale"].dtype == torch.float32
    assert torch.allclose(d64.vectors, d32.vectors, atol=1e-5)


# ----------------------------------------------------------------------------- PCA vs numpy SVD
@pytest.mark.parametrize("n", [1, 2, 3])
def test_pca_matches_numpy_svd(run, n):
    model, data, states, obj = run
    final = _flat_np(model.state_dict(), model)
    M = np.stack([_flat_np(s, model) for s in states]) - final[None, :]
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    d = pca_directions(obj, states, dims=n)
    V = d.vectors.double().numpy()
    assert d.kind == "pca" and V.shape == (n, final.size)
    for k in range(n):
        # same line as numpy's singular vector; sign: the first checkpoint has a negative coordinate
        assert abs(V[k] @ vt[k]) == pytest.approx(1.0, abs=1e-5)
        assert M[0] @ V[k] < 0
    np.testing.assert_allclose(d.extra["explained_variance_ratio"], (s**2 / (s**2).sum())[:n], rtol=1e-6)
    np.testing.assert_allclose(d.extra["singular_values"], s, rtol=1e-5)


def test_filter_normalised_pca_rescales_filters(run):
    model, data, states, obj = run
    d = pca_directions(obj, states, dims=2, normalization="filter")
    plain = pca_directions(obj, states, dims=2)
    for v, p in zip(d.vectors, plain.vectors, strict=True):
        parts, praw = obj.layout.unflatten(v), obj.layout.unflatten(p)
        for name, w in model.named_parameters():
            if not w.requires_grad:
                continue
            if w.dim() == 1:
                assert torch.count_nonzero(parts[name]) == 0
            else:
                got = parts[name].reshape(w.shape[0], -1)
                np.testing.assert_allclose(got.norm(dim=1), w.detach().reshape(w.shape[0], -1).norm(dim=1), rtol=1e-5)
                cos = nn.functional.cosine_similarity(got, praw[name].reshape(w.shape[0], -1), dim=1)
                np.testing.assert_allclose(cos, 1.0, atol=1e-5)  # rescaled, not redirected


# ----------------------------------------------------------------------------- projection
@pytest.mark.parametrize("normalization", [None, "filter"])
def test_projection_matches_numpy_lstsq_and_direct_evaluation(run, normalization, tmp_path):
    model, data, states, obj = run
    d = pca_directions(obj, states, dims=2, normalization=normalization)
    t = project_trajectory(obj, d, states)
    final = _flat_np(model.state_dict(), model)
    A = d.vectors.double().numpy().T
    for i, st in enumerate(states):
        r = _flat_np(st, model) - final
        c, *_ = np.linalg.lstsq(A, r, rcond=None)
        np.testing.assert_allclose(t.coords[i], c, rtol=1e-5, atol=1e-6)
        assert t.off_plane[i] == pytest.approx(np.linalg.norm(r - A @ c), rel=1e-4, abs=1e-6)
        assert t.distance[i] == pytest.approx(np.linalg.norm(r), rel=1e-6)
        # the true loss: the checkpoint model evaluated directly (its buffer equals the final one here)
        assert t.loss[i] == pytest.approx(_direct_loss(model, st, data), rel=1e-5)
        # the projected point's loss: the model with theta0 + c @ D written into it by hand
        proj = final + A @ c
        ref = dict(model.state_dict())
        off = 0
        for name, p in model.named_parameters():
            if p.requires_grad:
                ref[name] = torch.as_tensor(proj[off : off + p.numel()]).view_as(p).float()
                off += p.numel()
        assert t.projected_loss[i] == pytest.approx(_direct_loss(model, ref, data), rel=1e-5)
    assert t.off_plane[-1] < 1e-6 and t.loss[-1] == pytest.approx(obj.loss())
    t.save(tmp_path / "traj.npz")
    back = load_trajectory(tmp_path / "traj.npz")
    for f in ("coords", "loss", "projected_loss", "off_plane", "distance"):
        np.testing.assert_array_equal(getattr(back, f), getattr(t, f))
    assert back.directions["fingerprint"] == d.fingerprint() and back.names == t.names


def test_projection_loss_is_the_checkpoint_models_own_and_the_surface_uses_the_objectives_buffers(run):
    """A checkpoint whose buffer differs: .loss is the checkpoint model evaluated directly (its own buffer);
    .projected_loss is the objective's function (final buffer)."""
    model, data, states, obj = run
    st = dict(states[1])
    st["scale"] = torch.tensor(0.2)
    t = project_trajectory(obj, pca_directions(obj, states, dims=2), [st, states[1]])
    assert t.loss[0] == pytest.approx(_direct_loss(model, st, data), rel=1e-5)
    with_final_buffer = dict(st, scale=model.scale.clone())
    assert abs(t.loss[0] - _direct_loss(model, with_final_buffer, data)) > 1e-3
    assert t.projected_loss[0] == pytest.approx(t.projected_loss[1], rel=1e-6)  # same weights: same surface value
    assert float(model.scale) == pytest.approx(1.3) and float(obj.loss()) == pytest.approx(t.center_value)


def test_trajectory_store_refuses_newer_schema_and_foreign_files(run, tmp_path):
    import io
    import json

    model, data, states, obj = run
    t = project_trajectory(obj, pca_directions(obj, states, dims=1), states[:2])
    t.save(tmp_path / "t.npz")
    z = dict(np.load(tmp_path / "t.npz"))
    meta = json.loads(str(z["meta"]))
    meta["schema_version"] = 99
    z["meta"] = np.asarray(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **z)
    (tmp_path / "new.npz").write_bytes(buf.getvalue())
    with pytest.raises(StoreError, match="schema version 99"):
        load_trajectory(tmp_path / "new.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(StoreError, match="not a readable landform trajectory"):
        load_trajectory(tmp_path / "other.npz")


# ----------------------------------------------------------------------------- plane and path
def test_plane_through_two_checkpoints_and_the_weights(run):
    model, data, states, obj = run
    d = plane_directions(obj, states[0], states[2])
    V = d.vectors.double().numpy()
    np.testing.assert_allclose(V @ V.T, np.eye(2), atol=1e-6)
    final = _flat_np(model.state_dict(), model)
    for key, st in (("a", states[0]), ("b", states[2])):
        r = _flat_np(st, model) - final
        xy = np.asarray(d.extra["coords"][key])
        np.testing.assert_allclose(xy @ V, r, atol=1e-5 * np.abs(r).max())  # the point lies in the plane, there
    assert d.extra["coords"]["a"][1] == 0.0
    with pytest.raises(InputError, match="one line"):
        mid = {k: (v + states[0][k]) / 2 if v.is_floating_point() else v for k, v in model.state_dict().items()}
        plane_directions(obj, states[0], mid)


def test_linear_path_matches_direct_interpolation(run):
    model, data, states, obj = run
    ls = linear_path(obj, states[0], states[3], resolution=5, span=(-0.5, 1.5))
    np.testing.assert_allclose(ls.axes[0], [-0.5, 0.0, 0.5, 1.0, 1.5])
    for t, v in zip(ls.axes[0], ls.values, strict=True):
        st = {k: states[0][k] + t * (states[3][k] - states[0][k]) for k in states[0]}
        assert v == pytest.approx(_direct_loss(model, st, data), rel=1e-5)
    assert ls.center_value == pytest.approx(_direct_loss(model, states[0], data), rel=1e-5)
    with pytest.raises(InputError, match="are equal"):
        linear_path(obj, states[1], states[1])


# ----------------------------------------------------------------------------- plots and the numpy-only layer
def test_plots_draw_the_projected_path_and_both_losses(run):
    from landform import grid_landscape, random_directions
    from landform.plot import plot_contour, plot_trajectory, plot_trajectory_loss

    model, data, states, obj = run
    d = pca_directions(obj, states, dims=2)
    t = project_trajectory(obj, d, states)
    ls = grid_landscape(obj, d, span=1.0, resolution=5, progress=False)
    ax = plot_trajectory(t, plot_contour(ls, colorbar=False), landscape=ls)
    np.testing.assert_array_equal(ax.lines[-1].get_xydata(), t.coords)
    ax = plot_trajectory(t, origin=t.coords[1])
    np.testing.assert_allclose(ax.lines[-1].get_xydata(), t.coords - t.coords[1])
    other = grid_landscape(obj, random_directions(obj, 2, seed=0), span=1.0, resolution=3, progress=False)
    with pytest.raises(InputError, match="fingerprints differ"):
        plot_trajectory(t, landscape=other)
    ax = plot_trajectory_loss(t)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), t.loss)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), t.projected_loss)
    twin = [a for a in ax.figure.axes if a is not ax][0]
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(twin.lines[0].get_ydata(), t.off_plane / t.distance, equal_nan=True)


def test_saved_trajectory_and_its_plots_need_no_torch(run, tmp_path):
    import subprocess
    import sys

    model, data, states, obj = run
    project_trajectory(obj, pca_directions(obj, states, dims=2), states).save(tmp_path / "t.npz")
    code = (
        "import sys; from landform.projection import load_trajectory; from landform.plot.trajectory import "
        f"plot_trajectory; t = load_trajectory({str(tmp_path / 't.npz')!r}); plot_trajectory(t); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(t.n_checkpoints)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(states))
