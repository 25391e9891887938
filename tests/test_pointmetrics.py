"""Per-point metrics recorded with the loss, against direct evaluation on perturbed copies of the model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from landform import (
    LandformError,
    Objective,
    StoreError,
    grid_landscape,
    load_landscape,
    random_directions,
    scattered_landscape,
)
from landform.pointmetrics import accuracy
from landform.sampling import ScatteredLandscape


def _problem():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(23, 4, generator=g), torch.randint(0, 3, (23,), generator=g)
    return model, x, y


def _direct(model, x, y, coeffs, D):
    """Accuracy and loss of a deep copy of the model moved by hand to theta0 + coeffs @ D."""
    m = copy.deepcopy(model).eval()
    delta = torch.as_tensor(np.asarray(coeffs), dtype=D.dtype) @ D
    with torch.no_grad():
        i = 0
        for p in m.parameters():
            p.add_(delta[i : i + p.numel()].view_as(p))
            i += p.numel()
        out = m(x)
    return float((out.argmax(1) == y).double().mean()), float(nn.functional.cross_entropy(out, y))


def margin(outputs, targets):  # mean of a per-sample quantity that is not 0/1
    return (outputs.gather(1, targets[:, None]).squeeze(1) - outputs.logsumexp(1)).mean()


@pytest.mark.parametrize("private_copy", [True, False])
def test_recorded_accuracy_equals_direct_evaluation(private_copy):
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy, batch_size=10, private_copy=private_copy)
    d = random_directions(obj, 2, seed=1)
    ls = grid_landscape(
        obj, d, span=3.0, resolution=5, metrics={"accuracy": accuracy, "margin": margin}, progress=False
    )
    assert set(ls.metrics) == {"accuracy", "margin"} and ls.metrics["accuracy"].shape == ls.values.shape
    assert len(np.unique(ls.metrics["accuracy"])) >= 3  # the metric varies over the grid
    for i, j in [(0, 0), (1, 3), (2, 2), (4, 1), (3, 4)]:
        acc, loss = _direct(model, x, y, [ls.axes[0][i], ls.axes[1][j]], d.vectors)
        assert ls.metrics["accuracy"][i, j] == pytest.approx(acc, abs=1e-12)
        assert ls.values[i, j] == pytest.approx(loss, rel=1e-5)
    plain = grid_landscape(obj, d, span=3.0, resolution=5, progress=False)
    np.testing.assert_allclose(ls.values, plain.values, rtol=1e-6)


def test_metrics_are_weighted_by_batch_size():
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy, batch_size=10)  # batches of 10, 10 and 3
    ls = grid_landscape(
        obj, random_directions(obj, 1, seed=0), span=2.0, resolution=3, metrics={"m": margin}, progress=False
    )
    with torch.no_grad():
        ref = float(margin(model.eval()(x), y))
    assert ls.metrics["m"][1] == pytest.approx(ref, rel=1e-6)


def test_metrics_saved_loaded_and_resumed(tmp_path, monkeypatch):
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy, batch_size=10)
    d = random_directions(obj, 2, seed=2)
    ls = grid_landscape(obj, d, span=2.0, resolution=4, metrics={"accuracy": accuracy}, progress=False)
    ls.save(tmp_path / "saved")
    back = load_landscape(tmp_path / "saved")
    np.testing.assert_array_equal(back.metrics["accuracy"], ls.metrics["accuracy"])
    # interrupted run: the chunks on disk carry their metrics; the resumed run fills in the rest
    out = tmp_path / "run"
    import landform.pointmetrics as pm

    real = pm.loss_and_metrics
    calls = {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] > 4:  # the centre, then 3 groups of 2 points: a kill after the third chunk
            raise KeyboardInterrupt
        return real(*a, **k)

    obj.point_batch_size = 2
    monkeypatch.setattr(pm, "loss_and_metrics", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grid_landscape(
            obj, d, span=2.0, resolution=4, metrics={"accuracy": accuracy}, out=out, chunk_points=2, progress=False
        )
    monkeypatch.setattr(pm, "loss_and_metrics", real)
    partial = load_landscape(out)
    assert not partial.complete and 0 < (~np.isnan(partial.metrics["accuracy"])).sum() < 16
    resumed = grid_landscape(
        obj, d, span=2.0, resolution=4, metrics={"accuracy": accuracy}, out=out, chunk_points=2, progress=False
    )
    np.testing.assert_array_equal(resumed.metrics["accuracy"], ls.metrics["accuracy"])
    np.testing.assert_array_equal(load_landscape(out).metrics["accuracy"], ls.metrics["accuracy"])
    # other metrics (other names or other code) are another run
    with pytest.raises(StoreError, match="different run"):
        grid_landscape(obj, d, span=2.0, resolution=4, metrics={"acc": accuracy}, out=out, progress=False)
    with pytest.raises(StoreError, match="different run"):
        grid_landscape(obj, d, span=2.0, resolution=4, metrics={"accuracy": margin}, out=out, progress=False)


def test_old_stores_without_metrics_still_load(tmp_path):
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    ls = grid_landscape(obj, random_directions(obj, 1, seed=0), span=1.0, resolution=3, progress=False)
    ls.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "landscape.json").read_text())
    assert "metrics" not in meta and not (tmp_path / "old" / "metrics.npy").exists()
    assert load_landscape(tmp_path / "old").metrics == {}


def test_scattered_metrics_match_direct_and_roundtrip(tmp_path):
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy, batch_size=10)
    d = random_directions(obj, 2, seed=3)
    pts = np.random.default_rng(0).uniform(-3, 3, size=(7, 2))
    sl = scattered_landscape(obj, d, pts, metrics={"accuracy": accuracy})
    for i in range(7):
        acc, loss = _direct(model, x, y, pts[i], d.vectors)
        assert sl.metrics["accuracy"][i] == pytest.approx(acc, abs=1e-12)
        assert sl.values[i] == pytest.approx(loss, rel=1e-5)
    sl.save(str(tmp_path / "s.npz"))
    np.testing.assert_array_equal(
        ScatteredLandscape.load(str(tmp_path / "s.npz")).metrics["accuracy"], sl.metrics["accuracy"]
    )


def test_a_non_scalar_metric_is_refused_with_the_fix():
    model, x, y = _problem()
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    d = random_directions(obj, 1, seed=0)

    def per_sample(outputs, targets):
        return (outputs.argmax(1) == targets).float()

    with pytest.raises(LandformError, match=r"metrics\['acc'\]: it returned \(23,\); .*batch MEAN"):
        grid_landscape(obj, d, span=1.0, resolution=3, metrics={"acc": per_sample}, progress=False)
    with pytest.raises(LandformError, match=r"metrics\['acc'\]: it returned \(23,\)"):
        scattered_landscape(obj, d, np.zeros((2, 1)), metrics={"acc": per_sample})
    with pytest.raises(LandformError, match=r"metrics\['acc'\]: expected a callable"):
        grid_landscape(obj, d, span=1.0, resolution=3, metrics={"acc": "accuracy"}, progress=False)
    with pytest.raises(LandformError, match="metrics: expected a dict"):
        grid_landscape(obj, d, span=1.0, resolution=3, metrics=[accuracy], progress=False)
