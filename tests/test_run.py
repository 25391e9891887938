"""The library pipeline (landform.run) and the results layer (landform.results): the run's result equals its
parts computed by hand, it reloads without torch, reruns reuse what is unchanged, old folders still load and
the report recomputes no merge tree."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from landform import Objective, grid_landscape, hessian_trace, random_directions
from landform.errors import StoreError
from landform.metrics import sharpness
from landform.results import load_density, load_directions, load_merge_tree, load_run
from landform.run import RunConfig, analyze, compare
from landform.topology import merge_tree, pairs_from_tree, persistence_range, smad

CFG = dict(resolution=7, span=1.5, directions="random", trace_hvp=9, density_probes=1, density_steps=8,
           sharpness_rho=0.05, report=False, progress=False)  # fmt: skip


def _objective(loss=None, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] > 0).long()
    return Objective(model, (x, y), loss or nn.functional.cross_entropy)


class HVPCounter:
    def __init__(self, monkeypatch):
        self.n = 0
        orig = Objective.hvp

        def counted(obj, *a, **k):
            self.n += 1
            return orig(obj, *a, **k)

        monkeypatch.setattr(Objective, "hvp", counted)


def test_analyze_equals_its_parts_computed_by_hand(tmp_path):
    obj = _objective()
    r = analyze(obj, RunConfig(**CFG), tmp_path / "run", recipe_info={"name": "mlp"})
    d = random_directions(obj, 2, seed=0)
    ls = grid_landscape(obj, d, span=1.5, resolution=7, progress=False)
    np.testing.assert_array_equal(r.landscape().values, ls.values)
    tree = merge_tree(ls.values)
    pairs = pairs_from_tree(tree)
    assert r.topology.smad == smad(tree) and r.topology.n_minima == tree.n_minima
    assert r.topology.n_saddles == tree.saddles.size and r.topology.persistence_range == persistence_range(pairs)
    np.testing.assert_array_equal(r.pairs(), pairs)
    saved = load_merge_tree(tmp_path / "run" / "merge_tree.npz", ls.values)
    for k in ("minima", "saddles", "parent", "death", "basin_label", "arc_label"):
        np.testing.assert_array_equal(getattr(saved, k), getattr(tree, k))
    tr = hessian_trace(obj, method="hutch++", n_hvp=9, seed=0)
    assert (r.hessian.trace, r.hessian.trace_stderr, r.hessian.trace_n_hvp) == (tr.value, tr.stderr, tr.n_hvp)
    assert r.sharpness.average == sharpness(obj, rho=0.05, kind="average", seed=0).value
    assert r.sharpness.worst == sharpness(obj, rho=0.05, kind="worst", seed=0).value
    np.testing.assert_array_equal(load_directions(tmp_path / "run" / "directions.npz").vectors, d.vectors.numpy())
    assert r.density().n_hvp == r.hessian.density_n_hvp == 8
    # what analyze returned is what load_run reads back
    back = load_run(tmp_path / "run")
    assert back == r and back.to_dict() == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert back.schema_version == 2 and back.recipe == {"name": "mlp"}


def test_summary_written_once_complete_and_report_reads_the_saved_tree(tmp_path, monkeypatch):
    import landform.results.summary as results

    writes = []
    orig = results.atomic_write_json
    monkeypatch.setattr(results, "atomic_write_json", lambda p, o: (writes.append(p.name), orig(p, o)))
    out = tmp_path / "run"
    r = analyze(_objective(), RunConfig(**{**CFG, "report": True, "trace_hvp": 0, "density_probes": 0}), out)
    assert writes.count("summary.json") == 1
    doc = json.loads((out / "summary.json").read_text())
    assert doc["report"] == str(out / "report.html") and (out / "report.html").exists()
    assert doc["timings"]["report_s"] > 0 and doc["timings"]["total_s"] >= doc["timings"]["report_s"]
    assert r.report == doc["report"]

    import importlib

    from landform.report import build_report

    mt_module = importlib.import_module("landform.topology.merge_tree")

    def no_tree(*a, **k):
        raise AssertionError("the report computed a merge tree")

    monkeypatch.setattr(mt_module, "_run", no_tree)
    text = build_report(out).read_text()
    for fid in ("contour", "merge_tree", "barcode", "diagram", "profile"):
        assert f"id='fig-{fid}'" in text
    with pytest.raises(AssertionError, match="computed a merge tree"):
        merge_tree(r.landscape().values)  # the guard is live


def test_rerun_reuses_trace_density_sharpness_and_recomputes_on_seed_or_loss(tmp_path, monkeypatch):
    count = HVPCounter(monkeypatch)
    out = tmp_path / "run"
    first = analyze(_objective(), RunConfig(**CFG), out)
    assert count.n > 0
    count.n = 0
    again = analyze(_objective(), RunConfig(**CFG), out)
    assert count.n == 0  # trace, density and sharpness all reused
    assert again.hessian == first.hessian and again.sharpness == first.sharpness
    assert "trace_s" not in again.timings and again.stages == first.stages
    # another seed: every cached stage is recomputed
    other = analyze(_objective(), RunConfig(**{**CFG, "seed": 1}), tmp_path / "seed1")
    count.n = 0
    for f in ("summary.json", "density.npz"):
        (tmp_path / "seed1" / f).unlink()
        (tmp_path / "seed1" / f).write_bytes((out / f).read_bytes())
    reseeded = analyze(_objective(), RunConfig(**{**CFG, "seed": 1}), tmp_path / "seed1")
    assert count.n > 0 and reseeded.hessian.trace == other.hessian.trace
    # another loss (same name, other code): the stale summary of the first run must not be reused
    loss2 = tmp_path / "loss2"
    loss2.mkdir()
    for f in ("summary.json", "density.npz"):
        (loss2 / f).write_bytes((out / f).read_bytes())
    count.n = 0
    doubled = analyze(_objective(lambda o, t: 2.0 * nn.functional.cross_entropy(o, t)), RunConfig(**CFG), loss2)
    assert count.n > 0
    assert doubled.hessian.trace == pytest.approx(2 * first.hessian.trace, rel=1e-5)
    assert load_density(loss2 / "density.npz").key == doubled.stages["density"]["key"] != first.stages["density"]["key"]


def test_load_run_and_compare_need_no_torch(tmp_path):
    analyze(_objective(), RunConfig(**{**CFG, "density_probes": 1}), tmp_path / "a")
    analyze(_objective(seed=3), RunConfig(**CFG), tmp_path / "b")
    from landform.sampling import ScatteredLandscape  # re-exported from landform.results

    ScatteredLandscape(np.array([1.0, 0.5, 2.0]), np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).save(tmp_path / "s.npz")
    code = textwrap.dedent(
        f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, Block())
        from landform.run import load_run, compare
        from landform import load_landscape
        assert load_landscape({str(tmp_path / "s.npz")!r}).values.tolist() == [1.0, 0.5, 2.0]
        r = load_run({str(tmp_path / "a")!r})
        ls = r.landscape()
        tree = r.merge_tree(ls)
        c = compare([{str(tmp_path / "a")!r}, {str(tmp_path / "b")!r}], {str(tmp_path / "cmp")!r})
        print(r.topology.n_minima == tree.n_minima, r.density().n_hvp, len(c.rows), sorted(c.bottleneck))
        assert "torch" not in sys.modules
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "8", "2", "['a", "|", "b']"]


def _old_format_folder(tmp_path):
    """A run folder exactly as landform 0.1's `landform analyze` wrote it (no format tags anywhere)."""
    import io

    from landform import Landscape

    run = tmp_path / "old"
    axes = (np.linspace(-1, 1, 9), np.linspace(-1, 1, 7))
    g = np.meshgrid(*axes, indexing="ij")
    v = g[0] ** 2 + 0.5 * g[1] ** 2 + 0.3 * np.sin(5 * g[0]) + 1
    Landscape(v, axes, {"kind": "random", "seed": 0}, float(v[4, 3]), {"command": "landform analyze"}).save(
        run / "landscape"
    )
    tree = merge_tree(v)
    pairs = pairs_from_tree(tree)
    np.save(run / "persistence.npy", pairs)
    meta = {"spec": "random", "dims": 2, "seed": 0, "kind": "random", "normalization": None, "eigenvalues": None,
            "extra": {}}  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, vectors=np.eye(2, 27), meta=np.asarray(json.dumps(meta)))
    (run / "directions.npz").write_bytes(buf.getvalue())
    grid = np.linspace(-1, 3, 50)
    np.savez(run / "density.npz", grid=grid, density=np.exp(-(grid**2)), nodes=np.ones((2, 4)), weights=np.ones((2, 4)))
    summary = {
        "landform_version": "0.1.0",
        "recipe": {"spec": "r.py", "name": "r"},
        "landscape": {"shape": [9, 7], "center_value": float(v[4, 3]), "min": float(v.min()), "max": float(v.max()),
                      "argmin": [0.0, 0.0], "n_nonfinite": 0, "n_missing": 0},  # fmt: skip
        "directions": {"kind": "random", "seed": 0},
        "span": 1.0,
        "resolution": [9, 7],
        "topology": {"smad": smad(tree), "n_minima": tree.n_minima, "n_saddles": int(tree.saddles.size),
                     "persistence_range": persistence_range(pairs), "value_range": tree.value_range,
                     "graph": tree.graph},  # fmt: skip
        "hessian": {"trace": 3.5, "trace_stderr": 0.1, "trace_n_hvp": 30, "density_n_hvp": 80},
        "sharpness": {"average": 0.01, "worst": 0.05, "rho": 0.05},
        "timings": {"total_s": 2.0},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    return run, tree, pairs


def test_old_format_run_folder_loads_and_newer_or_foreign_is_refused(tmp_path):
    run, tree, pairs = _old_format_folder(tmp_path)
    r = load_run(run)
    assert r.schema_version == 1 and r.topology.smad == smad(tree) and r.hessian.trace == 3.5
    assert r.sharpness.worst == 0.05 and r.report is None
    np.testing.assert_array_equal(r.merge_tree().basin_label, tree.basin_label)  # computed once: not saved in 0.1
    np.testing.assert_array_equal(r.pairs(), pairs)
    d = load_directions(run / "directions.npz")
    assert d.matches("random", 2, 0) and d.key is None and d.vectors.shape == (2, 27)
    assert load_density(run / "density.npz").density.shape == (50,)
    from landform.report import build_report

    assert "3.5 ± 0.1" in build_report(run).read_text()

    doc = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**doc, "format": "landform.run", "schema_version": 99}))
    with pytest.raises(StoreError, match="newer than this landform understands.*upgrade landform"):
        load_run(run)
    (run / "summary.json").write_text(json.dumps([doc]))
    with pytest.raises(StoreError, match="To convert the folder, run the same `landform analyze` command again"):
        load_run(run)
    (run / "summary.json").write_text(json.dumps({**doc, "format": "something.else"}))
    with pytest.raises(StoreError, match="format is 'something.else'"):
        load_run(run)


def test_saved_tree_of_other_values_is_refused(tmp_path):
    analyze(_objective(), RunConfig(**{**CFG, "trace_hvp": 0, "density_probes": 0, "sharpness_rho": 0}), tmp_path)
    values = load_run(tmp_path).landscape().values
    with pytest.raises(StoreError, match="built from other landscape values"):
        load_merge_tree(tmp_path / "merge_tree.npz", values + 1e-12 * (values == values.max()))


def test_run_config_rejects_bad_fields():
    from landform.errors import InputError

    for bad, match in [({"dims": 0}, "dims"), ({"parallel": "x"}, "parallel"), ({"directions": "nope"}, "directions"),
                       ({"sharpness_rho": float("nan")}, "sharpness_rho"), ({"trace_hvp": 2.5}, "trace_hvp")]:  # fmt: skip
        with pytest.raises(InputError, match=match):
            RunConfig(**bad).validate()


def test_compare_reads_run_results(tmp_path):
    from landform.metrics import bottleneck_distance

    a = analyze(_objective(), RunConfig(**{**CFG, "density_probes": 0}), tmp_path / "a")
    b = analyze(_objective(seed=4), RunConfig(**{**CFG, "density_probes": 0}), tmp_path / "b")
    cmp = compare([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    assert cmp.rows[0][1:4] == [a.topology.smad, a.topology.persistence_range, a.topology.n_minima]
    assert cmp.rows[1][5] == b.hessian.trace and cmp.rows[1][7] == b.sharpness.worst
    assert cmp.bottleneck["a | b"] == bottleneck_distance(a.pairs(), b.pairs())
    assert json.loads(cmp.json_path.read_text())["rows"] == cmp.rows
