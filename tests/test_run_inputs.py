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
