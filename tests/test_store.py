from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from landform import Landscape, Objective, StoreError, grid_landscape, load_landscape, random_directions


class Interrupting:
    """A loss that raises KeyboardInterrupt after a number of calls (simulates Ctrl-C mid-run)."""

    def __init__(self, loss_fn, after: int) -> None:
        self.loss_fn, self.after, self.calls = loss_fn, after, 0
        self.__qualname__ = "cross_entropy"

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
    assert meta["schema_version"] == 1 and meta["format"] == "landform.landscape"


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


def test_foreign_and_corrupt_stores_are_refused(tmp_path, mlp_problem):
    obj = Objective(*mlp_problem)
    grid_landscape(obj, random_directions(obj, 1, seed=0), resolution=3, out=str(tmp_path / "a"), progress=False)
    with pytest.raises(StoreError, match="different run"):
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
