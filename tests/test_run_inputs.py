"""Corrupt or foreign saved results are refused with a StoreError, unreadable direction files with an InputError,
and the run's stage cache is not fooled by a change its hash cannot see (found by the skeptic review)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from landform import Landscape, Objective, load_landscape
from landform.errors import InputError, StoreError
from landform.results import SavedDensity, load_density, load_run, save_density
from landform.run import RunConfig, analyze


def _run_folder(tmp_path, hessian=None):
    run = tmp_path / "run"
    Landscape(np.arange(9.0).reshape(3, 3), (np.arange(3.0),) * 2).save(run / "landscape")
    doc = {"format": "landform.run", "schema_version": 2, "landscape": {"shape": [3, 3]},
           "topology": {"smad": 0.0, "n_minima": 1}, "hessian": hessian or {}}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(doc))
    return run, doc


@pytest.mark.parametrize(
    "change, match",
    [
        ({"hessian": {"top_eigenvalues": "abc"}}, "top_eigenvalues"),
        ({"hessian": {"top_eigenvalues": 3.0}}, "top_eigenvalues"),
        ({"topology": {"smad": "x"}}, "smad"),
        ({"timings": "x"}, "'timings' section"),
        ({"schema_version": True}, "not a positive integer"),
        ({"schema_version": 0}, "not a positive integer"),
    ],
)
def test_summary_with_wrong_types_is_refused(tmp_path, change, match):
    run, doc = _run_folder(tmp_path)
    load_run(run)  # the untouched folder loads
    (run / "summary.json").write_text(json.dumps({**doc, **change}))
    with pytest.raises(StoreError, match=match):
        load_run(run)


def test_corrupt_arrays_are_refused_with_a_store_error(tmp_path):
    run, _ = _run_folder(tmp_path)
    values = run / "landscape" / "values.npy"
    values.write_bytes(values.read_bytes()[:100])
    with pytest.raises(StoreError, match="values.npy: unreadable or corrupt"):
        load_run(run).landscape()
    save_density(tmp_path / "d.npz", SavedDensity(np.ones(3), np.ones(3)))
    assert load_density(tmp_path / "d.npz").density.shape == (3,)
    (tmp_path / "d.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:40])
    with pytest.raises(StoreError, match="unreadable or corrupt"):
        load_density(tmp_path / "d.npz")
    np.save(tmp_path / "p.npy", np.ones((2, 2)))
    with pytest.raises(StoreError, match="unreadable or corrupt"):
        load_landscape(tmp_path / "p.npy")


def _objective(loss):
    torch.manual_seed(0)
    x = torch.randn(24, 3, generator=torch.Generator().manual_seed(1))
    return Objective(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), (x, (x[:, 0] > 0).long()), loss)


def test_unreadable_directions_file_is_an_input_error(tmp_path):
    (tmp_path / "dirs.npy").write_bytes(b"not an array")
    cfg = RunConfig(resolution=3, directions=str(tmp_path / "dirs.npy"), trace_hvp=0, density_probes=0,
                    sharpness_rho=0, report=False, progress=False)  # fmt: skip
    with pytest.raises(InputError, match="directions: cannot read"):
        analyze(_objective(nn.CrossEntropyLoss()), cfg, tmp_path / "run")


def test_trace_is_recomputed_when_only_a_loss_hyperparameter_changes(tmp_path):
    from landform.hessian import hessian_trace

    cfg = RunConfig(resolution=3, directions="random", trace_hvp=3, density_probes=0, sharpness_rho=0,
                    report=False, progress=False)  # fmt: skip
    first = analyze(_objective(nn.CrossEntropyLoss()), cfg, tmp_path / "run")
    smoothed = _objective(nn.CrossEntropyLoss(label_smoothing=0.5))  # same repr, same state_dict, other loss
    (tmp_path / "run" / "landscape").rename(tmp_path / "old-landscape")  # the landscape store has its own guard
    second = analyze(smoothed, cfg, tmp_path / "run")
    assert second.hessian.trace == hessian_trace(smoothed, method="hutch++", n_hvp=3, seed=0).value
    assert second.hessian.trace != first.hessian.trace


def test_out_that_is_a_file_is_an_input_error(tmp_path):
    from landform.run import compare

    (tmp_path / "f").write_text("x")
    cfg = RunConfig(resolution=3, directions="random", trace_hvp=0, density_probes=0, sharpness_rho=0, report=False,
                    progress=False)  # fmt: skip
    with pytest.raises(InputError, match="out: .* is a file"):
        analyze(_objective(nn.CrossEntropyLoss()), cfg, tmp_path / "f")
    run, _ = _run_folder(tmp_path)
    with pytest.raises(InputError, match="out: .* is a file"):
        compare([run], tmp_path / "f")


# ---------------------------------------------------------------------------------------------- review fixes
FAST = dict(resolution=5, span=1.0, directions="random", trace_hvp=0, density_probes=0, sharpness_rho=0,
            report=False, progress=False)  # fmt: skip


def _mlp(seed=0, flip=False, loss=None):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))  # P = 32
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    if flip:
        y = 1 - y
    return Objective(model, (x, y), loss or nn.functional.cross_entropy)


def _dense_hessian(obj):
    assert len(obj._batches) == 1
    return torch.autograd.functional.hessian(lambda t: obj._batch_loss_theta(t, obj._batches[0]), obj.theta0)


def test_trace_budget_of_at_least_p_hvps_gives_the_exact_trace(tmp_path):
    from landform.estimate import stage_counts

    obj = _mlp()
    exact = float(_dense_hessian(obj).trace())
    for budget, folder in ((obj.num_params + 8, "a"), (10**9, "b")):  # 10**9 used to allocate a (3e8, P) sketch
        r = analyze(obj, RunConfig(**{**FAST, "trace_hvp": budget}), tmp_path / folder)
        assert r.hessian.trace_n_hvp == obj.num_params and r.hessian.trace_stderr == 0.0
        assert abs(r.hessian.trace - exact) < 1e-5 * max(1.0, abs(exact))
        counts = {c.name: c.hvps for c in stage_counts(num_params=32, dims=2, resolution=5, trace_hvp=budget)}
        assert counts["trace"] == r.hessian.trace_n_hvp  # --estimate predicts what the run spends


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"trace_hvp": 1}, r"trace_hvp \(--trace-hvp\): Hutch\+\+ needs at least 3 .* or 0 to skip"),
        ({"trace_hvp": 2}, r"trace_hvp \(--trace-hvp\): Hutch\+\+ needs at least 3"),
        ({"report": "no"}, r"report \(--no-report\): expected True or False"),
        ({"progress": None}, r"progress \(--quiet\): expected True or False"),
        ({"lanczos_tol": 0}, r"lanczos_tol: expected a finite number > 0"),
        ({"seed": -1}, r"seed \(--seed\): expected an integer >= 0"),
        ({"chunk_points": 0}, r"chunk_points \(--chunk-points\): expected an integer >= 1"),
    ],
)
def test_run_config_names_the_bad_field_and_its_flag(bad, match):
    with pytest.raises(InputError, match=match):
        RunConfig(**bad).validate()
    RunConfig(**{k: {"trace_hvp": 3, "report": True, "progress": False, "lanczos_tol": 1e-3, "seed": 0,
                     "chunk_points": 1}[k] for k in bad}).validate()  # fmt: skip


def test_more_dims_than_parameters_is_refused_naming_dims(tmp_path):
    with pytest.raises(InputError, match=r"dims \(--dims\): 33 directions asked of an objective with 32 parameters"):
        analyze(_mlp(), RunConfig(**{**FAST, "dims": 33, "resolution": 2}), tmp_path / "r")


def test_load_functions_refuse_a_non_path():
    with pytest.raises(InputError, match="path: expected a file or folder path"):
        load_landscape(3)
    with pytest.raises(InputError, match="path: expected a file or folder path"):
        load_run(None)


def test_compare_refuses_a_duplicate_and_keeps_two_folders_of_one_name(tmp_path):
    from landform.run import compare

    a = analyze(_mlp(), RunConfig(**FAST), tmp_path / "a" / "run")
    b = analyze(_mlp(seed=3), RunConfig(**FAST), tmp_path / "b" / "run")
    with pytest.raises(InputError, match="same folder"):
        compare([tmp_path / "a" / "run", tmp_path / "a" / ".." / "a" / "run"], None)
    cmp = compare([tmp_path / "a" / "run", tmp_path / "b" / "run"], None)
    assert [row[1] for row in cmp.rows] == [a.topology.smad, b.topology.smad] and len(cmp.bottleneck) == 1


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("change", ["dims", "seed", "objective", "metrics"])
def test_a_refused_rerun_leaves_every_file_untouched(tmp_path, monkeypatch, change):
    import landform.directions

    out = tmp_path / "run"
    analyze(_mlp(), RunConfig(**FAST), out)
    if change == "metrics":  # the directions are recomputed (identical), and must not be written before refusing
        (out / "directions.npz").unlink()
    before = _snapshot(out)
    assert ((out / "directions.npz") in before) == (change != "metrics")
    calls = []
    orig = landform.directions.random_directions
    monkeypatch.setattr(landform.directions, "random_directions", lambda *a, **k: (calls.append(1), orig(*a, **k))[1])
    cfg = {"dims": {"dims": 3}, "seed": {"seed": 1}, "objective": {}, "metrics": {"metrics": ("accuracy",)}}[change]
    with pytest.raises(StoreError, match="holds a landscape of a different run"):
        analyze(_mlp(seed=5) if change == "objective" else _mlp(), RunConfig(**{**FAST, **cfg}), out)
    assert _snapshot(out) == before
    if change != "seed":  # objective and grid are checked before the directions are computed
        assert calls == []


def test_keyless_directions_are_reused_only_with_a_store_of_the_same_objective(tmp_path):
    from landform import random_directions
    from landform.results import SavedDirections, load_directions, save_directions

    obj = _mlp()
    fresh = random_directions(obj, 2, seed=0).vectors.numpy()
    other = np.linalg.qr(np.random.default_rng(0).normal(size=(32, 2)))[0].T.copy()
    # a landform 0.1 file (no key) in a folder with no landscape store: recomputed, and the log says so
    save_directions(tmp_path / "new" / "directions.npz", SavedDirections(other, "random", None, 0, spec="random", dims=2))
    logs = []
    analyze(obj, RunConfig(**FAST), tmp_path / "new", log=logs.append)
    np.testing.assert_array_equal(load_directions(tmp_path / "new" / "directions.npz").vectors, fresh)
    assert any("no key" in m and "recomputing" in m for m in logs)
    # the same file beside a landscape store of this objective (written with those directions): reused
    old = tmp_path / "old"
    analyze(obj, RunConfig(**FAST), old)
    save_directions(old / "directions.npz", SavedDirections(fresh, "random", None, 0, spec="random", dims=2))
    logs.clear()
    analyze(obj, RunConfig(**FAST), old, log=logs.append)
    assert any("reusing" in m for m in logs) and load_directions(old / "directions.npz").key is None


def test_objective_identity_sees_data_and_weights():
    from landform.run import objective_identity

    base = objective_identity(_mlp())
    assert len({base, objective_identity(_mlp(flip=True)), objective_identity(_mlp(seed=2))}) == 3
    assert objective_identity(_mlp()) == base


def test_directions_cache_follows_its_key_file_and_lanczos_tol(tmp_path, monkeypatch):
    import shutil

    import landform.hessian
    from landform.results import load_directions

    out = tmp_path / "run"
    v1, v2 = (np.linalg.qr(np.random.default_rng(s).normal(size=(32, 2)))[0].T.copy() for s in (1, 2))
    np.save(tmp_path / "d.npy", v1)
    analyze(_mlp(), RunConfig(**{**FAST, "directions": str(tmp_path / "d.npy")}), out)
    shutil.rmtree(out / "landscape")
    np.save(tmp_path / "d.npy", v2)  # same request, other file content: its key differs
    analyze(_mlp(), RunConfig(**{**FAST, "directions": str(tmp_path / "d.npy")}), out)
    np.testing.assert_allclose(load_directions(out / "directions.npz").vectors, v2, rtol=1e-6)
    calls = []
    orig = landform.hessian.hessian_directions
    monkeypatch.setattr(landform.hessian, "hessian_directions", lambda *a, **k: (calls.append(k["tol"]), orig(*a, **k))[1])
    for tol in (1e-5, 1e-3):
        shutil.rmtree(out / "landscape")
        analyze(_mlp(), RunConfig(**{**FAST, "directions": "hessian", "lanczos_tol": tol}), out)
    assert calls == [1e-5, 1e-3]


def test_stage_caches_follow_rho_and_density_steps(tmp_path):
    from landform.metrics import sharpness

    obj, out = _mlp(), tmp_path / "run"
    cfg = {**FAST, "sharpness_rho": 0.05, "density_probes": 1, "density_steps": 8}
    analyze(obj, RunConfig(**cfg), out)
    r = analyze(obj, RunConfig(**{**cfg, "sharpness_rho": 0.2, "density_steps": 5}), out)
    assert r.sharpness.rho == 0.2 and r.sharpness.average == sharpness(obj, rho=0.2, kind="average", seed=0).value
    assert r.hessian.density_n_hvp == 5 and r.density().n_hvp == 5


def test_compare_lambda_max_is_the_largest_hessian_eigenvalue(tmp_path):
    from landform.run import compare

    obj = _mlp()
    r = analyze(obj, RunConfig(**{**FAST, "directions": "hessian", "dims": 2}), tmp_path / "run")
    top = float(torch.linalg.eigvalsh(_dense_hessian(obj))[-1])
    lam = compare([tmp_path / "run"], None).rows[0][4]
    assert abs(lam - top) < 1e-4 * abs(top) and lam == max(r.hessian.top_eigenvalues)


def test_topology_is_skipped_on_a_landscape_with_nan(tmp_path):
    def loss(o, t):  # NaN where the cross-entropy passes 2 (the corners of a span-6 grid)
        ce = nn.functional.cross_entropy(o, t)
        return ce + torch.sqrt(2.0 - ce)

    logs = []
    with pytest.warns(UserWarning, match="NaN"):
        r = analyze(_mlp(loss=loss), RunConfig(**{**FAST, "span": 6.0, "resolution": 7}), tmp_path / "r", log=logs.append)
    assert r.landscape().n_nonfinite > 0 and r.topology is None and r.pairs() is None
    assert not (tmp_path / "r" / "persistence.npy").exists() and any("topology skipped" in m for m in logs)
