"""Runs inside the reference environment (landscaper 1.3.1, numpy<2): one timed task, one JSON line out.

Never imported by landform; benchmarks call it with the reference venv's Python and a task file.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time

import numpy as np


def _model_and_data(task):
    import torch

    from landform.recipes.digits import DigitsCNN

    blob = torch.load(task["model_file"], weights_only=True)
    model = DigitsCNN(blob["width"])
    model.load_state_dict(blob["state"])
    model.eval()
    return model, blob["x"], blob["y"]


def grid(task):
    import torch
    from landscaper.compute import compute_loss_landscape

    model, x, y = _model_and_data(task)
    dirs_flat = torch.load(task["dirs_file"], weights_only=True)  # (n, P)
    params = list(model.parameters())
    dirs = []
    for v in dirs_flat:
        parts, i = [], 0
        for p in params:
            parts.append(v[i : i + p.numel()].view_as(p).clone())
            i += p.numel()
        dirs.append(parts)

    def scalar_fn(m, data):
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(m(data[0]), data[1]))

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        t0 = time.perf_counter()
        loss, coords = compute_loss_landscape(
            model,
            (x, y),
            dirs,
            scalar_fn,
            steps=task["steps"],
            distance=task["distance"],
            dim=task["dim"],
            device="cpu",
        )
        dt = time.perf_counter() - t0
    np.save(task["out_file"], loss)
    return {"seconds": dt}


def topology(task):
    from landscaper import LossLandscape

    values = np.load(task["values_file"])
    ranges = [np.linspace(-1, 1, s) for s in values.shape]
    out = {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        t0 = time.perf_counter()
        ll = LossLandscape(values, ranges)
        tree = ll.get_sublevel_tree()
        out["merge_tree_seconds"] = time.perf_counter() - t0
        if task.get("smad", True):
            t1 = time.perf_counter()
            out["smad"] = float(ll.smad(normalize=True, weighted=True))
            out["smad_seconds"] = time.perf_counter() - t1
    out["n_minima"] = len(tree.leaves)
    return out


def smad_many(task):
    """landscaper's released SMAD (contour tree) and minima count of several saved arrays, one process."""
    from landscaper import LossLandscape

    out = []
    for f in task["values_files"]:
        values = np.load(f)
        ranges = [np.linspace(-1, 1, s) for s in values.shape]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            t0 = time.perf_counter()
            ll = LossLandscape(values, ranges)
            tree = ll.get_sublevel_tree()
            smad = float(ll.smad(normalize=True, weighted=True))
        out.append({"smad": smad, "n_minima": len(tree.leaves), "seconds": time.perf_counter() - t0})
    return {"results": out}


def hessian(task):
    import torch
    from landscaper.hessian import PyHessian

    model, x, y = _model_and_data(task)
    crit = torch.nn.functional.cross_entropy
    ph = PyHessian(model, crit, [(x, y)], "cpu")
    count = [0]
    orig = ph.hv_product

    def counted(v):
        count[0] += 1
        return orig(v)

    ph.hv_product = counted
    torch.manual_seed(task.get("seed", 0))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        t0 = time.perf_counter()
        vals, vecs = ph.eigenvalues(maxIter=task["max_iter"], tol=task["tol"], top_n=task["k"])
        dt = time.perf_counter() - t0
    flat = torch.stack([torch.cat([t.reshape(-1) for t in v]) for v in vecs])
    torch.save({"values": torch.tensor(vals), "vectors": flat}, task["out_file"])
    return {"seconds": dt, "n_hvp": count[0], "values": [float(v) for v in vals]}


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        t = json.load(fh)
    print(json.dumps({"grid": grid, "topology": topology, "hessian": hessian, "smad_many": smad_many}[t["task"]](t)))
