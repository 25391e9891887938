"""Helpers shared by the case-study examples: one run folder per model with a landscape, summary and report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landform import Objective, grid_landscape, hessian_directions, hessian_trace
from landform.metrics import robust_smad, sharpness
from landform.recipes.digits import fit_classifier as fit  # noqa: F401  (the examples' training loop)
from landform.report import build_report
from landform.store import atomic_write_json
from landform.topology import merge_tree, pairs_from_tree, persistence_range, smad


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def analyse_model(
    name: str,
    model: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    out: Path,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    span: float = 1.0,
    resolution: int = 21,
    info: dict[str, Any] | None = None,
    loss_fn: Any = None,
    n_hvp: int = 30,
    with_sharpness: bool = True,
    progress: bool = False,
    tol: float = 1e-5,
) -> dict[str, Any]:
    """Hessian-direction landscape, SMAD with its spread over data subsamples (``seeds``; none = skipped),
    trace, lambda_max, sharpness; writes out/<name>/ with summary.json and report.html and returns the
    summary. ``loss_fn`` defaults to cross-entropy."""
    t0 = time.perf_counter()
    run = out / name
    run.mkdir(parents=True, exist_ok=True)
    obj = Objective(model, train, loss_fn or torch.nn.functional.cross_entropy)
    d = hessian_directions(obj, 2, seed=0, tol=tol)
    t_dirs = time.perf_counter() - t0
    ls = grid_landscape(obj, d, span=span, resolution=resolution, out=str(run / "landscape"), progress=progress)
    t_grid = time.perf_counter() - t0 - t_dirs
    tree = merge_tree(ls.values)
    pairs = pairs_from_tree(tree)
    np.save(run / "persistence.npy", pairs)
    rob = (
        robust_smad(obj, seeds=seeds, data_fraction=0.8, directions="hessian", span=span, resolution=resolution)
        if seeds
        else None
    )
    tr = hessian_trace(obj, n_hvp=n_hvp, seed=0)
    summary = {
        "recipe": {"name": name, **(info or {})},
        "landscape": ls.summary(),
        "directions": {k: v for k, v in ls.directions.items() if k != "fingerprint"},
        "topology": {
            "smad": smad(tree),
            "n_minima": tree.n_minima,
            "n_saddles": int(tree.saddles.size),
            "persistence_range": persistence_range(pairs),
        },
        "robust_smad": rob.summary() if rob is not None else None,
        "hessian": {
            "top_eigenvalues": [float(x) for x in d.eigenvalues],
            "trace": tr.value,
            "trace_stderr": tr.stderr,
            "trace_n_hvp": tr.n_hvp,
        },
        "sharpness": {
            "average": sharpness(obj, rho=0.05, kind="average").value,
            "worst": sharpness(obj, rho=0.05, kind="worst").value,
            "rho": 0.05,
        }
        if with_sharpness
        else None,
        "timings": {"total_s": time.perf_counter() - t0, "directions_s": t_dirs, "grid_s": t_grid},
    }
    atomic_write_json(run / "summary.json", summary)
    build_report(run)
    return summary


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(rows, indent=1, default=float))
