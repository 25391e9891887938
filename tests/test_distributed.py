"""torch.distributed with the gloo backend on CPU: 2 ranks give the same landscape and HVPs as 1 rank."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from landform import load_landscape

RECIPE = textwrap.dedent(
    """
    import os

    import torch
    from torch import nn

    LOG = os.environ.get("LANDFORM_TEST_LOG")


    def logged_ce(out, t):
        # an independent witness of who evaluated what: each rank appends (rows, loss) of its no-grad calls
        v = nn.functional.cross_entropy(out, t)
        if LOG and not torch.is_grad_enabled():
            with open(LOG + "." + os.environ.get("RANK", "0"), "a") as fh:
                fh.write(f"{t.shape[0]} {float(v)!r}\\n")
        return v


    def recipe():
        torch.manual_seed(int(os.environ.get("RANK", "0")))  # each rank builds ANOTHER model
        model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(90, 3, generator=g), torch.randint(0, 2, (90,), generator=g)
        return model, (x, y), logged_ce
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _analyze(recipe, out, nproc, parallel, extra=()):
    base = [
        "analyze", str(recipe), "--directions", "hessian", "--resolution", "9,7", "--span", "1.5", "--out", str(out),
        "--chunk-points", "5", "--quiet", "--no-report", "--density-probes", "0", "--parallel", parallel, *extra,
    ]  # fmt: skip
    if nproc == 1:
        cmd = [sys.executable, "-m", "landform", *base]
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
            "127.0.0.1", "--master-port", str(_free_port()), "-m", "landform", *base,
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LANDFORM_TEST_LOG": str(out) + ".log"}
    out_ = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out_.returncode == 0, out_.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def _logged(out, rank) -> list[tuple[int, float]]:
    path = Path(str(out) + f".log.{rank}")
    return [(int(n), float(v)) for n, v in (line.split() for line in path.read_text().splitlines())]


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["grid", "data"])
def test_two_ranks_match_one(tmp_path, parallel):
    """Rank 1's recipe builds another model (seeded by RANK): rank 0's is broadcast, so 2 ranks give bitwise the
    single-process landscape; and the ranks really split the work (the grid's points, or the data's rows)."""
    recipe = tmp_path / "r.py"
    recipe.write_text(RECIPE)
    one = _analyze(recipe, tmp_path / "one", 1, parallel)
    two = _analyze(recipe, tmp_path / "two", 2, parallel)
    a = load_landscape(tmp_path / "one" / "landscape")
    b = load_landscape(tmp_path / "two" / "landscape")
    assert b.provenance["timings"]["ranks"] == 2 and b.provenance["timings"]["parallel"] == parallel
    if parallel == "grid":
        assert b.center_value == a.center_value
        np.testing.assert_array_equal(a.values, b.values)  # same points, same data: bitwise
        # each non-centre grid value was computed by exactly one rank, and each rank computed some
        grid = set(a.values.ravel().tolist()) - {a.center_value}
        assert len(grid) == a.values.size - 1
        share = [grid & {v for n, v in _logged(tmp_path / "two", r) if n == 90} for r in (0, 1)]
        assert share[0] and share[1], [len(s) for s in share]
        assert not share[0] & share[1] and share[0] | share[1] == grid
    else:
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)  # sums split across ranks: rounding only
        # every rank evaluated every point on its half of the rows (90 -> 45 + 45), the single process on all
        for r in (0, 1):
            rows = [n for n, _ in _logged(tmp_path / "two", r)]
            assert set(rows) == {45} and len(rows) >= a.values.size, (r, set(rows), len(rows))
        assert {n for n, _ in _logged(tmp_path / "one", 0)} == {90}
    # the HVP-based results (Lanczos eigenvalues, Hutch++ trace) agree too
    np.testing.assert_allclose(two["hessian"]["top_eigenvalues"], one["hessian"]["top_eigenvalues"], rtol=1e-5)
    assert two["hessian"]["trace"] == pytest.approx(one["hessian"]["trace"], rel=1e-5)
    assert two["topology"]["smad"] == pytest.approx(one["topology"]["smad"], rel=1e-6, abs=1e-12)


RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from landform import InputError, Objective, grid_landscape
    from landform.distributed import broadcast_model

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(rank)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].running_mean.fill_(rank)
    n = broadcast_model(model)
    state = [t.tolist() for t in model.state_dict().values()]
    every = [None, None]
    dist.all_gather_object(every, state)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 3, generator=g), torch.randint(0, 2, (20,), generator=g)
    y[10 + rank] = 1 - y[10 + rank]  # each rank holds other labels
    obj = Objective(model, (x, y), nn.functional.cross_entropy)
    try:
        grid_landscape(obj, torch.eye(2, obj.num_params), resolution=3, progress=False)
        refused = None
    except InputError as exc:
        refused = str(exc)
    if rank == 0:
        print(json.dumps({"n": n, "same": every[0] == every[1], "refused": refused}))
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_broadcast_model_and_ranks_with_other_data_are_refused(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(RANK_SCRIPT)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
        "--master-port", str(_free_port()), str(script),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 9 and res["same"]  # 6 parameters + 3 BatchNorm buffers, now rank 0's everywhere
    assert res["refused"] and "rank 1 differs from rank 0 in data (" in res["refused"], res["refused"]
