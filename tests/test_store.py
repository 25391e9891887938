from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from landform import Landscape, Objective, StoreError, grid_landscape, load_landscape, random_directions


class Interrupting:
    """A loss that raises KeyboardInterrupt after a number of calls (simulates Ctrl-C mid-run).

    Its counters change between runs but not its values: ``__landform_fingerprint__`` says it is ``loss_fn``.
    """

    def __init__(self, loss_fn, after: int) -> None:
        self.loss_fn, self.after, self.calls = loss_fn, after, 0

    def __landform_fingerprint__(self):
        return self.loss_fn

    def __call__(self, out, y):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.loss_fn(out, y)


def test_save_load_roundtrip(tmp_path, mlp_problem):
    obj = Objective(*mlp_problem)
    ls = grid_landscape(obj, random_directions(obj, 2, seed=0), span=(0.5, 1.0), resolution=(5, 3), progress=False)
    ls.save(tmp_path / "ls")
    back = load_landscape(tmp_path / "ls")
    np.testing.assert_array_equal(back.values, ls.values)
    for a, b in zip(back.axes, ls.axes, strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.center_value == ls.center_value
    assert back.directions["fingerprint"] == ls.directions["fingerprint"]
    assert back.provenance["num_params"] == obj.num_params
    meta = json.loads((tmp_path / "ls" / "landscape.json").read_text())
    assert meta["schema_version"] == 2 and meta["format"] == "landform.landscape"


def test_partial_landscape_roundtrip(tmp_path):
    vals = np.arange(6.0).reshape(2, 3)
    ev = np.array([[True, True, False], [True, False, True]])
    ls = Landscape(np.where(ev, vals, np.nan), (np.array([0.0, 1.0]), np.array([0.0, 1.0, 2.0])), evaluated=ev)
    ls.save(tmp_path / "p")
    back = load_landscape(tmp_path / "p")
    assert not back.complete and back.n_missing == 2
    np.testing.assert_array_equal(back.evaluated, ev)


def test_loading_and_topology_need_no_torch(tmp_path):
    ls = Landscape(np.random.default_rng(0).random((6, 5)), (np.linspace(-1, 1, 6), np.linspace(-1, 1, 5)))
    ls.save(tmp_path / "ls")
    code = (
        "import sys, landform; ls = landform.load_landscape(sys.argv[1]); "
        "s = ls.smad(); p = ls.persistence(); assert 'torch' not in sys.modules, 'torch imported'; print(s)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ls")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(ls.smad())


def test_interrupted_run_resumes_to_identical_values(tmp_path, cnn_problem):
    model, data, loss_fn = cnn_problem
    clean_obj = Objective(model, data, loss_fn)
    d = random_directions(clean_obj, 2, seed=5)
    kwargs = dict(span=(0.7, 0.4), resolution=(7, 5), chunk_points=4, progress=False)
    clean = grid_landscape(clean_obj, d, **kwargs)

    flaky = Interrupting(loss_fn, after=13)
    obj = Objective(model, data, flaky)
    flaky.calls = 0
    with pytest.raises(KeyboardInterrupt):
        grid_landscape(obj, d, out=str(tmp_path / "run"), **kwargs)
    partial = load_landscape(tmp_path / "run")
    assert not partial.complete and 0 < partial.n_missing < 35
    np.testing.assert_array_equal(partial.values[partial.evaluated], clean.values[partial.evaluated])
    done = 35 - partial.n_missing
    assert done == 12  # three whole chunks of 4 were written before the 14th call failed

    flaky.after = 10**9
    resumed = grid_landscape(obj, d, out=str(tmp_path / "run"), **kwargs)
    assert resumed.provenance["timings"]["points_evaluated"] == 35 - done
    np.testing.assert_array_equal(resumed.values, clean.values)
    assert not (tmp_path / "run" / "chunks").exists()
    # a finished store is loaded, not recomputed
    flaky.calls, flaky.after = 0, 1
    again = grid_landscape(obj, d, out=str(tmp_path / "run"), **kwargs)
    np.testing.assert_array_equal(again.values, clean.values)


def test_damaged_chunks_of_an_unfinished_store_name_the_file_to_delete(tmp_path, mlp_problem, stop_after_chunks):
    """A truncated or wrong-shaped value or metrics chunk is a StoreError that names chunks/c<i>.npy; deleting
    that file, as it says, recomputes the chunk and gives the uninterrupted landscape."""
    from landform.pointmetrics import accuracy

    obj = Objective(*mlp_problem)
    d = random_directions(obj, 2, seed=0)
    kw = dict(span=1.0, resolution=5, chunk_points=5, progress=False, metrics={"acc": accuracy})
    clean = grid_landscape(obj, d, **kw)
    with stop_after_chunks(3):
        grid_landscape(obj, d, out=str(tmp_path / "s"), **kw)
    chunks = tmp_path / "s" / "chunks"
    assert sorted(p.name for p in chunks.iterdir()) == [f"{c}{i:08d}.npy" for c in "cm" for i in range(3)]
    m1 = (chunks / "m00000001.npy").read_bytes()
    (chunks / "m00000001.npy").write_bytes(m1[: len(m1) // 2])  # truncated
    with pytest.raises(StoreError, match=r"metrics of chunk 1 are missing or corrupt .*delete chunks/c00000001\.npy"):
        grid_landscape(obj, d, out=str(tmp_path / "s"), **kw)
    np.save(chunks / "m00000001.npy", np.zeros((5, 2)))  # one column too many
    with pytest.raises(StoreError, match=r"metrics of chunk 1 have shape \(5, 2\), expected \(5, 1\); delete chunks/c0+1"):
        load_landscape(tmp_path / "s")
    np.save(chunks / "c00000002.npy", np.zeros(4))  # a value short
    (chunks / "c00000001.npy").unlink()
    with pytest.raises(StoreError, match=r"chunk 2 has shape \(4,\), expected \(5,\); delete chunks/c00000002\.npy"):
        grid_landscape(obj, d, out=str(tmp_path / "s"), **kw)
    (chunks / "c00000002.npy").unlink()
    resumed = grid_landscape(obj, d, out=str(tmp_path / "s"), **kw)
    assert resumed.provenance["timings"]["points_evaluated"] == 25 - 5  # chunk 0 was kept
    np.testing.assert_allclose(resumed.values, clean.values, rtol=1e-6)
    np.testing.assert_array_equal(resumed.metrics["acc"], clean.metrics["acc"])


def test_foreign_and_corrupt_stores_are_refused(tmp_path, mlp_problem):
    obj = Objective(*mlp_problem)
    grid_landscape(obj, random_directions(obj, 1, seed=0), resolution=3, out=str(tmp_path / "a"), progress=False)
    with pytest.raises(StoreError, match="different run; changed since it was written: directions"):
        grid_landscape(obj, random_directions(obj, 1, seed=1), resolution=3, out=str(tmp_path / "a"), progress=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a landform landscape"):
        grid_landscape(obj, random_directions(obj, 1), resolution=3, out=str(tmp_path / "b"), progress=False)
    assert (tmp_path / "b" / "notes.txt").read_text() == "mine"
    (tmp_path / "a" / "landscape.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        load_landscape(tmp_path / "a")
    (tmp_path / "a" / "landscape.json").write_text(json.dumps({"format": "landform.landscape", "schema_version": 99}))
    with pytest.raises(StoreError, match="newer"):
        load_landscape(tmp_path / "a")


def test_torch_tensor_directions_on_other_device_are_refused(mlp_problem):
    obj = Objective(*mlp_problem)
    from landform import InputError

    with pytest.raises(InputError, match="on meta"):
        grid_landscape(obj, torch.ones(1, obj.num_params, device="meta"), progress=False)


# ---------------------------------------------------------------------------------------------------------------
# The store's fingerprint: every component a value depends on, each named when it changed.

LOSS_SCALE = 1.0  # a module global read by a loss below (changed by one case)


def _ce(out, t):
    return torch.nn.functional.cross_entropy(out, t)


def _scaled(scale):
    return lambda out, t: scale * torch.nn.functional.cross_entropy(out, t)


def _with_default(out, t, smoothing=0.0):
    return torch.nn.functional.cross_entropy(out, t, label_smoothing=smoothing)


def _reads_global(out, t):
    return LOSS_SCALE * torch.nn.functional.cross_entropy(out, t)


def _change_middle_batch(x, y):
    y = y.clone()
    y[12] = (y[12] + 1) % 4  # batch 1 of 3 (batch_size 10): neither the first nor the last
    return x, y


def _bump_running_mean(model):
    with torch.no_grad():
        model.bn.running_mean[1] += 1e-3


def _bump_weight(model):
    with torch.no_grad():
        model.fc.bias[0] += 1e-3


def _bump_eps(model):
    model.bn.eps = 1e-3


# (name, component, first loss, second loss, change of (x, y), change of the model, change of grid kwargs)
CHANGES = [
    ("lambda vs 10x lambda", "loss", lambda o, t: _ce(o, t), lambda o, t: 10 * _ce(o, t), None, None, None),
    ("closure variable", "loss", _scaled(1.0), _scaled(1.5), None, None, None),
    ("default argument", "loss", _with_default, "default", None, None, None),
    ("referenced global", "loss", _reads_global, "global", None, None, None),
    (
        "partial arguments",
        "loss",
        functools.partial(torch.nn.functional.cross_entropy, label_smoothing=0.0),
        functools.partial(torch.nn.functional.cross_entropy, label_smoothing=0.1),
        None, None, None,
    ),  # fmt: skip
    (
        "module loss hyperparameter",
        "loss",
        torch.nn.CrossEntropyLoss(label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(label_smoothing=0.2),
        None, None, None,
    ),  # fmt: skip
    ("middle batch labels", "data", _ce, _ce, _change_middle_batch, None, None),
    ("BatchNorm running mean", "buffers", _ce, _ce, None, _bump_running_mean, None),
    ("a weight", "weights", _ce, _ce, None, _bump_weight, None),
    ("BatchNorm eps", "model", _ce, _ce, None, _bump_eps, None),
    ("span", "axes", _ce, _ce, None, None, {"span": 0.3}),
]


@pytest.mark.parametrize("case", CHANGES, ids=[c[0] for c in CHANGES])
def test_store_refuses_a_changed_component_naming_it(tmp_path, cnn_problem, monkeypatch, case):
    import copy

    from landform.store import describe_changes

    _, component, loss_a, loss_b, change_data, change_model, grid_kwargs = case
    model, (x, y), _ = cnn_problem
    d = random_directions(Objective(model, (x, y), _ce), 2, seed=0)
    kwargs = dict(span=0.5, resolution=(3, 5), out=str(tmp_path / "s"), progress=False)
    first = grid_landscape(Objective(model, (x, y), loss_a, batch_size=10), d, **kwargs)

    model_b = copy.deepcopy(model)
    if change_model is not None:
        change_model(model_b)
    xb, yb = change_data(x, y) if change_data is not None else (x, y)
    if loss_b == "default":
        loss_b = type(_with_default)(  # the same function with another default
            _with_default.__code__, _with_default.__globals__, "_with_default", (0.1,), _with_default.__closure__
        )
    elif loss_b == "global":
        monkeypatch.setattr(sys.modules[__name__], "LOSS_SCALE", 10.0)
        loss_b = _reads_global
    obj_b = Objective(model_b, (xb, yb), loss_b, batch_size=10)
    # the change is real: the values differ (so reusing the store would be wrong)
    kw_b = {**kwargs, **(grid_kwargs or {})}
    fresh = grid_landscape(obj_b, d, **{**kw_b, "out": None})
    assert not np.array_equal(fresh.values, first.values)
    with pytest.raises(StoreError) as err:
        grid_landscape(obj_b, d, **kw_b)
    msg = str(err.value)
    # exactly this component is named, with the fix
    assert f"changed since it was written: {describe_changes([component])}. " in msg, msg
    assert "another output path" in msg and "delete" in msg


def test_equal_objective_built_again_reuses_the_store(tmp_path, cnn_problem):
    """A separately built, equal objective (new model object, new tensors, new lambda) is the same run."""
    from conftest import make_cnn

    model, (x, y), _ = cnn_problem
    kwargs = dict(span=0.5, resolution=(3, 5), out=str(tmp_path / "s"), progress=False)
    obj = Objective(model, (x, y), lambda o, t: 2 * _ce(o, t), batch_size=10)
    d = random_directions(obj, 2, seed=0)
    first = grid_landscape(obj, d, **kwargs)
    obj2 = Objective(make_cnn(), (x.clone(), y.clone()), lambda o, t: 2 * _ce(o, t), batch_size=10)
    assert obj2.fingerprint() == obj.fingerprint()
    again = grid_landscape(obj2, random_directions(obj2, 2, seed=0), **kwargs)
    np.testing.assert_array_equal(again.values, first.values)
    assert again.provenance["timings"] == load_landscape(tmp_path / "s").provenance["timings"]  # loaded, not rerun


RECIPE_FOR_FINGERPRINT = """
import torch
from torch import nn

SCALE = 2.0


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.bn, self.b = nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(torch.relu(self.bn(self.a(x))))


def loss(out, t, w={"k": 1}):
    return SCALE * nn.functional.cross_entropy(out, t, label_smoothing=0.1) * len({1, 2, "a"})


def recipe():
    torch.manual_seed(0)
    m = Net()
    m.register_forward_hook(lambda mod, i, o: None)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 3, generator=g), torch.randint(0, 2, (20,), generator=g)
    return m, ({"x": x}, y), loss
"""


def test_fingerprint_is_the_same_in_another_process(tmp_path):
    """Resuming in a new process works: no address, string-hash seed or module name enters the hashes."""
    (tmp_path / "r.py").write_text(RECIPE_FOR_FINGERPRINT)
    code = (
        "import json, sys, torch; from landform.recipes import load_recipe; from landform import Objective; "
        "[torch.nn.Linear(1, 1).register_forward_hook(print) for _ in range(int(sys.argv[2]))]; "
        "r = load_recipe(sys.argv[1]); print(json.dumps(Objective(r.model, r.data, r.loss_fn).fingerprint()))"
    )
    fps = []
    for seed, hooks_before in (("1", "0"), ("2", "3")):  # other string-hash seed, other hook handle ids
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        cmd = [sys.executable, "-c", code, str(tmp_path / "r.py"), hooks_before]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        fps.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert fps[0] == fps[1]


def test_centre_guard_refuses_a_store_whose_centre_differs(tmp_path, mlp_problem):
    obj = Objective(*mlp_problem)
    d = random_directions(obj, 2, seed=0)
    kwargs = dict(span=0.5, resolution=(3, 3), out=str(tmp_path / "s"), progress=False)
    grid_landscape(obj, d, **kwargs)
    meta_path = tmp_path / "s" / "landscape.json"
    meta = json.loads(meta_path.read_text())
    grid_landscape(obj, d, **kwargs)  # untouched: accepted
    meta["center_value"] = float(np.nextafter(meta["center_value"], np.inf))  # one ulp off
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="loss at the centre .* every fingerprint component matches"):
        grid_landscape(obj, d, **kwargs)
    # the same guard holds for an unfinished store being resumed
    meta["complete"] = False
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="loss at the centre"):
        grid_landscape(obj, d, **kwargs)


def test_schema_1_store_loads_but_is_never_resumed(tmp_path, mlp_problem):
    obj = Objective(*mlp_problem)
    d = random_directions(obj, 1, seed=0)
    ls = grid_landscape(obj, d, resolution=3, out=str(tmp_path / "old"), progress=False)
    meta_path = tmp_path / "old" / "landscape.json"
    meta = json.loads(meta_path.read_text())
    meta["schema_version"], meta["fingerprint"] = 1, "0" * 64  # what landform 0.1 wrote
    meta_path.write_text(json.dumps(meta))
    np.testing.assert_array_equal(load_landscape(tmp_path / "old").values, ls.values)
    with pytest.raises(StoreError, match=r"older landform \(store schema 1\).*load_landscape.*delete"):
        grid_landscape(obj, d, resolution=3, out=str(tmp_path / "old"), progress=False)
    ls.save(tmp_path / "saved")
    with pytest.raises(StoreError, match="no fingerprint"):
        grid_landscape(obj, d, resolution=3, out=str(tmp_path / "saved"), progress=False)


def test_resume_with_batch_mode_auto_evaluates_as_the_stored_chunks_were(tmp_path, cnn_problem, stop_after_chunks):
    """batch_mode="auto" may pick vmap or loop by timing; a resumed run keeps the stored run's choice."""
    model, data, loss_fn = cnn_problem
    obj = Objective(model, data, loss_fn, batch_mode="vmap")
    d = random_directions(obj, 2, seed=1)
    kwargs = dict(span=0.4, resolution=(3, 5), chunk_points=4, out=str(tmp_path / "s"), progress=False)
    clean = grid_landscape(obj, d, **{**kwargs, "out": None})
    with stop_after_chunks(2):  # Ctrl-C after two chunks
        grid_landscape(obj, d, **kwargs)
    auto = Objective(model, data, loss_fn)  # on CPU "auto" alone would choose the loop
    resumed = grid_landscape(auto, d, **kwargs)
    assert auto.resolved_batch_mode == "vmap" and resumed.provenance["batch_mode"] == "vmap"
    np.testing.assert_array_equal(resumed.values, clean.values)
